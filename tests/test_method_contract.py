"""The method contract, for every registered method (built-in or plugged in), and the ways in.

Each method runs through the runner with short settings: the model it was given is untouched,
the result has the documented shape, and it was handed only the data its spec declares. A
method that asks for more gets an error. Registration is once per name; plugins come from a file
(--plugin) or an installed package's entry point; the README's example works as printed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods import (
    FORGET_ONLY,
    READS,
    DataContractError,
    MethodOutcome,
    MethodSpec,
    available_methods,
    config_fields,
    param,
    register_method,
    run_method,
)
from ssd_core.methods.runner import MethodData
from ssd_core.train import load_or_train

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"epochs": 1, "max_epochs": 1, "max_steps": 5, "adv_steps": 3, "adv_per_image": 2, "hessian_samples": 64,
         "n_probes": 1, "neighbours_per_image": 1}


@pytest.fixture(scope="module")
def digits():
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    return dataset, model


def short_options(spec: MethodSpec) -> dict:
    names = {f["name"] for f in config_fields(spec.config_cls)}
    return {k: v for k, v in SHORT.items() if k in names}


class Spy(MethodData):
    """Records which subsets a method read."""

    read: list[str] = []

    def _get(self, name):
        Spy.read.append(name)
        return super()._get(name)


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_every_registered_method_keeps_the_contract(name, digits, monkeypatch):
    from ssd_core.methods import runner

    dataset, model = digits
    spec = available_methods()[name]
    assert spec.data_touched in READS
    for f in config_fields(spec.config_cls):
        assert f["help"], f"{name}.{f['name']} has no help"
    request = ForgetRequest("class", 3) if "class" in spec.supports else ForgetRequest("random", k=8, seed=0)
    split = make_split(dataset, request)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Spy.read = []
    monkeypatch.setattr(runner, "MethodData", Spy)
    result = run_method(name, model, split, device="cpu", **short_options(spec))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), f"{name} changed its input"
    assert result.model is not model and not result.model.training
    assert not {p.data_ptr() for p in model.parameters()} & {p.data_ptr() for p in result.model.parameters()}
    assert "total" in result.seconds and result.seconds["total"] >= max(result.seconds.values())
    assert result.data_touched == spec.data_touched
    json.dumps({k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in result.diagnostics.items()})
    given = {FORGET_ONLY: {"forget_train"}}.get(spec.data_touched)
    if given is not None:
        assert set(Spy.read) <= given, (name, Spy.read)


def test_asking_for_undeclared_data_is_an_error(digits):
    @dataclasses.dataclass
    class Config:
        seed: int = param(0, "seed", min=0, max=10)

    def greedy(model, data, config, *, device, progress=None):
        data.retain_train  # noqa: B018 - declares FORGET_ONLY, asks for the retain set
        return MethodOutcome(model)

    register_method(MethodSpec("greedy_test_method", "reads too much", Config, greedy, data_touched=FORGET_ONLY))
    split = make_split(digits[0], ForgetRequest("class", 3))
    with pytest.raises(DataContractError, match="declares it reads the forget set only, but asked for retain_train"):
        run_method("greedy_test_method", digits[1], split)


def test_a_name_is_registered_once():
    spec = available_methods()["ssd"]
    register_method(spec)  # the very same spec again (a re-import): nothing changes
    with pytest.raises(ValueError, match="already registered"):
        register_method(dataclasses.replace(spec, run=lambda *a, **k: None))
    with pytest.raises(ValueError, match="retain_fraction"):
        register_method(MethodSpec("subset_without_fraction", "x", type(spec.default_config()), spec.run,
                                   data_touched="forget set + a retain subset"))


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- example: my_method.py -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ssd_core", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_the_readme_method_is_listed_and_runs_from_the_cli(tmp_path):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(readme_example())
    assert 15 <= len([line for line in readme_example().splitlines() if line.strip()]) <= 30
    listed = _cli("--plugin", str(plugin), "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "shrink" in json.loads(listed.stdout)["methods"]
    run = _cli("--plugin", str(plugin), "unlearn", "--method", "shrink", "--forget-random", "10", "--param", "top=0.02",
               "--quiet", "--json", "-", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["method"] == "shrink" and result["data_touched"] == "forget set only"
    assert result["diagnostics"]["shrunk"] > 0 and result["params"]["top"] == 0.02
    assert result["after"]["forget_train_acc"] < result["before"]["forget_train_acc"]


def test_an_installed_package_adds_methods_through_its_entry_point(tmp_path):
    """A package on the path with an ``ssd_core.methods`` entry point (as pip would install it)."""
    package = tmp_path / "shrink_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(readme_example())
    info = tmp_path / "shrink_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shrink-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ssd_core.methods]\nshrink = shrink_plugin\n")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    listed = _cli("list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "shrink" in json.loads(listed.stdout)["methods"]


def test_a_method_that_declares_alpha_and_lambda_live_drives_the_unlearn_page():
    """Live methods by declaration: a plug-in whose config marks alpha and lambda live (and whose full-data
    importance is cached) is offered on the Unlearn page and gives the same cards as ssd itself."""
    from apptest_helpers import assert_clean, metric_values, new_app

    from ssd_core.methods.base import _METHODS
    from ui.state import K_METHOD

    spec = available_methods()["ssd"]
    assert spec.live_fields == ("alpha", "lam") and spec.is_live and available_methods()["lfssd"].is_live
    assert not available_methods()["assd"].is_live and not available_methods()["finetune"].is_live
    register_method(dataclasses.replace(spec, name="ssd_again", description="SSD, registered again as a plug-in."))
    try:
        at = new_app({"method": "ssd_again", "forget": "class:3", "alpha": "10"}).run()
        assert_clean(at)
        assert at.selectbox(key=K_METHOD).value == "ssd_again" and "SSD_AGAIN" in at.selectbox(key=K_METHOD).options
        again = metric_values(at)
        reference = new_app({"method": "ssd", "forget": "class:3", "alpha": "10"}).run()
        assert again == metric_values(reference)
    finally:
        _METHODS.pop("ssd_again")
