"""Presets: the data is consistent, a preset maps to the right session state, the classroom presets
do what their note promises, and applying one in the app sets the sidebar and the sliders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ssd_core.data import load_dataset, make_split
from ssd_core.data.files import CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES
from ui import presets as ui_presets
from ui import state
from unlearning_lab.presets import CLASSROOM, PAPER, PRESETS, class_index, get_preset, presets_in


def test_preset_data_is_consistent():
    keys = [p.key for p in PRESETS]
    assert len(keys) == len(set(keys))
    for p in PRESETS:
        assert p.alpha in state.ALPHA_VALUES, p.key  # reachable on the live slider exactly
        assert state.LAMBDA_MIN <= p.lam <= state.LAMBDA_MAX
        assert p.forget_kind in ("class", "subclass", "random")
        assert p.method in ("ssd", "lfssd")
        assert p.note
    paper = presets_in(PAPER)
    assert {p.forget_target for p in paper if p.dataset == "cifar100"} == {"rocket", "mushroom", "baby", "lamp", "sea"}
    assert {p.forget_target for p in paper if p.forget_kind == "subclass"} == {"rocket", "mushroom", "baby", "lamp", "sea"}
    assert all(p.model == "resnet18" and p.alpha == 10.0 and p.lam == 1.0 for p in paper)
    assert any(p.forget_kind == "random" for p in paper)
    assert all(p.needs_files for p in paper)
    # classroom presets need no files, but for the real set Debian packages (dataset-fashion-mnist)
    assert {p.dataset for p in presets_in(CLASSROOM) if p.needs_files} == {"fashion_mnist"}


def test_paper_targets_resolve_to_cifar_classes():
    assert class_index(get_preset("cifar100-rocket")) == CIFAR100_FINE_CLASSES.index("rocket")
    assert class_index(get_preset("cifar20-people")) == CIFAR100_COARSE_CLASSES.index("people")
    assert class_index(get_preset("cifar20-sub-lamp")) is None  # sub-class: by name
    for p in presets_in(PAPER):
        if p.forget_kind == "subclass":
            assert p.forget_target in CIFAR100_FINE_CLASSES
        elif p.forget_kind == "class":
            names = CIFAR100_FINE_CLASSES if p.dataset == "cifar100" else CIFAR100_COARSE_CLASSES
            assert p.forget_target in names
    assert get_preset("cifar10-random").forget_k == 100 and len(CIFAR10_CLASSES) == 10


def test_preset_state_sets_the_run_setup():
    s = ui_presets.preset_state(get_preset("digits-forget-8"))
    assert s == state.LabState(dataset="digits", model="smallcnn", forget_kind="class", forget_class=8, method="ssd",
                               estimator="fisher", seed=0, alpha=50.0, alpha_auto=False, lam=1.0)
    s = ui_presets.preset_state(get_preset("digits-random-20"))
    assert s.forget_kind == "random" and s.forget_k == 20
    s = ui_presets.preset_state(get_preset("digits-lfssd-0"))
    assert s.method == "lfssd" and s.estimator == "lossfree" and s.alpha == 5.0
    s = ui_presets.preset_state(get_preset("cifar20-sub-rocket"))
    assert s.dataset == "cifar20" and s.forget_kind == "subclass" and s.forget_subclass == "rocket"
    s = ui_presets.preset_state(get_preset("cifar100-sea"))
    assert s.forget_class == CIFAR100_FINE_CLASSES.index("sea") and s.model == "resnet18"
    # what a preset does not set (the open view, the device) is kept
    base = state.LabState(view="weights", device="cpu", forget_class=3)
    s = ui_presets.preset_state(get_preset("digits-forget-0"), base=base)
    assert (s.view, s.device, s.forget_class) == ("weights", "cpu", 0)


def test_availability_disables_presets_without_files():
    ok, note = ui_presets.availability(get_preset("cifar100-rocket"), ["digits", "shapes"])
    assert not ok and "CIFAR100" in note and "cifar-100-binary" in note
    assert ui_presets.availability(get_preset("cifar100-rocket"), ["digits", "shapes", "cifar100"])[0]
    assert ui_presets.availability(get_preset("digits-forget-0"), ["digits", "shapes"])[0]


@pytest.mark.parametrize("key", ["digits-forget-0", "digits-forget-8", "digits-lfssd-0", "fashion-forget-tshirt"])
def test_classroom_class_presets_forget_and_keep(key):
    """What each note promises: forget accuracy near 0, retain accuracy kept (shipped checkpoints)."""
    from conftest import fashion_mnist_or_skip

    from ssd_core.dampening import dampen
    from ssd_core.methods.ssd import ssd_importances
    from ssd_core.metrics import Evaluator
    from ssd_core.train import load_or_train

    p = get_preset(key)
    ds = fashion_mnist_or_skip() if p.dataset == "fashion_mnist" else load_dataset(p.dataset)
    model = load_or_train(ds, p.model, seed=p.seed, device="cpu").model
    split = make_split(ds, p.request())
    imp = ssd_importances(model, split, "lossfree" if p.method == "lfssd" else "fisher")
    damped, _ = dampen(model, imp.full, imp.forget, p.alpha, p.lam, with_statistics=False)
    on_test = Evaluator(split, subsets=("forget_test", "retain_test"), with_mia=False)  # what the note promises
    before, after = on_test(model), on_test(damped)
    assert after.forget_test_acc <= 0.05, after.forget_test_acc
    assert after.retain_test_acc >= before.retain_test_acc - 0.03, (before.retain_test_acc, after.retain_test_acc)


def test_applying_a_preset_in_the_app_sets_sidebar_and_sliders(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("UNLEARNING_LAB_DATA", str(tmp_path))  # no CIFAR files here
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("app_pages/lesson.py").run()
    assert not at.exception
    # paper presets whose files are missing are summed up in one line, not listed one by one
    options = at.selectbox(key=ui_presets.K_PICK).options
    assert not any("CIFAR" in o for o in options)
    assert any("appear here once their files" in c.value and "cifar-100-binary" in c.value for c in at.caption)
    # a classroom preset applies: the run setup, slider values, and the numbers follow
    at.selectbox(key=ui_presets.K_PICK).set_value("digits-forget-8").run()
    at.button(key="preset_apply_lesson").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key=state.K_CLASS).value == 8
    assert at.selectbox(key=state.K_DATASET).value == "digits"
    s = at.session_state[state.K_STATE]
    assert (s.alpha, s.lam) == (50.0, 1.0)
    assert "forgetting class 8" in " ".join(c.value for c in at.caption)  # the run itself changed
    at.switch_page("app_pages/unlearn.py").run()
    assert not at.exception
    assert at.select_slider(key=state.K_ALPHA).value == 50.0  # the preset's alpha on the other page too
