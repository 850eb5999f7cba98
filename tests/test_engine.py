"""ssd_core.engine.SSDEngine: the same SSD as the library's functions and the CLI's methods."""

from __future__ import annotations

import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.engine import SSDEngine
from ssd_core.guard import CollapseGuard
from ssd_core.importance import ImportanceCache, compute_importance
from ssd_core.methods import run_method
from ssd_core.metrics import Evaluator
from ssd_core.train import load_or_train


def test_the_engine_dampens_and_picks_automatic_alpha_like_the_methods() -> None:
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", device="cpu").model
    split = make_split(dataset, ForgetRequest("class", 3))
    full = ImportanceCache(None).full_importance(model, split.train, f"{dataset.fingerprint()}-train", device="cpu")
    forget = compute_importance(model, split.forget_train, device="cpu")
    engine = SSDEngine(model, full, forget)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ours, report = engine.at(10.0, 1.0)
    theirs = run_method("ssd", model, split, device="cpu", alpha=10.0, lam=1.0).model
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))
    assert report.total_selected > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    point = engine.point(10.0, 1.0, Evaluator(split, "cpu", with_mia=False))
    assert point.alpha == 10.0 and point.selected == report.total_selected
    guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True)
    setting = engine.auto(guard, len(split.forget_train), len(split.train), 1.0)
    assd = run_method("assd", model, split, device="cpu")
    assert setting.alpha == assd.diagnostics["alpha"]


def test_the_readme_library_examples_run_as_printed(capsys):
    """README "The library": the run_method example, then the engine example on the same request."""
    import re
    from pathlib import Path

    import torch

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    library = text.split("## The library", 1)[1]
    first = re.search(r"```python\n(.*?)```", library, re.S).group(1)
    engine = re.search(r"```python\n(.*?)```", library.split("<!-- example: library-engine -->", 1)[1], re.S).group(1)
    namespace: dict = {}
    exec(first, namespace)  # the README's own code
    before = {k: v.clone() for k, v in namespace["original"].state_dict().items()}
    exec(engine, namespace)
    assert len(namespace["grid"].points) == 6 and namespace["report"].total_selected > 0
    assert all(torch.equal(v, namespace["original"].state_dict()[k]) for k, v in before.items())
    assert "forget_test_acc" in capsys.readouterr().out
