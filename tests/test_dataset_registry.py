"""The dataset registry (#22): the README's plug-in dataset runs through the CLI and appears in the
dashboard's sidebar; the built-ins carry their label, default model and file hint in one place."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from apptest_helpers import ROOT, assert_clean, new_app

from ssd_core.data import available_datasets, dataset_spec, load_dataset, register_dataset
from ssd_core.errors import InputError
from ssd_core.models import default_model_for


def readme_dataset() -> str:
    block = (ROOT / "README.md").read_text().split("<!-- example: my_dataset.py -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "my_dataset.py"
    path.write_text(readme_dataset())
    return path


def test_the_builtins_are_registered_with_their_label_model_and_hint():
    datasets = available_datasets()
    assert list(datasets)[:2] == ["digits", "shapes"]
    assert not datasets["digits"].needs_files and datasets["digits"].available()
    assert datasets["fashion_mnist"].label == "Fashion-MNIST — 28×28 clothes"
    for name in ("digits", "shapes", "mnist", "fashion_mnist", "cifar10", "cifar100", "cifar20"):  # one label style
        title, _, description = datasets[name].label.partition(" — ")
        assert title[0].isupper() and description and description[0].isdigit(), datasets[name].label
    assert "dataset-fashion-mnist" in (datasets["fashion_mnist"].hint or "")
    assert default_model_for("shapes") == "resnet18_narrow" and default_model_for("cifar10") == "resnet18"
    assert default_model_for("not-registered") == "smallcnn"
    with pytest.raises(InputError, match="Unknown dataset 'nope'; choose one of: digits, shapes"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("digits", lambda: None)  # type: ignore[arg-type, return-value]


def test_the_readme_dataset_is_about_20_lines_and_runs_through_the_cli(plugin, tmp_path):
    assert 12 <= len([line for line in readme_dataset().splitlines() if line.strip()]) <= 25
    listed = subprocess.run([sys.executable, "-m", "ssd_core", "--plugin", str(plugin), "list"], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["datasets"]["stripes"] == "stripes — 8×8 test patterns"
    run = subprocess.run([sys.executable, "-m", "ssd_core", "--plugin", str(plugin), "unlearn", "--dataset", "stripes",
                          "--forget-class", "checker", "--quiet", "--json", "-"], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["dataset"] == "stripes" and result["model"] == "smallcnn" and result["model_source"] == "trained"
    assert result["before"]["forget_test_acc"] > 0.9  # the model learnt the checkerboard ...
    assert result["after"]["forget_test_acc"] <= 0.05  # ... and SSD's default forgot it
    assert result["before"]["retain_test_acc"] - result["after"]["retain_test_acc"] <= 0.05


def test_the_plugin_dataset_appears_in_the_sidebar(plugin, monkeypatch):
    from ui.startup import load_plugins

    monkeypatch.setenv("UNLEARNING_LAB_PLUGINS", str(plugin))
    load_plugins.clear()
    at = new_app({"forget": "class:0"}).run()
    assert_clean(at)
    picker = at.selectbox(key="setup_dataset")
    assert "stripes — 8×8 test patterns" in picker.options
    assert dataset_spec("stripes").default_model == "smallcnn"
    at = new_app({"dataset": "stripes", "forget": "class:2"}).run()  # a link to it opens it
    assert_clean(at)
    assert at.selectbox(key="setup_dataset").value == "stripes"
    assert any("checker" in option for option in at.selectbox(key="setup_forget_class").options)
