"""Unlearning methods on digits/smallcnn: baselines, instance-wise unlearning (L2UL) and SAPS.

Each method runs once per request (session-scoped caches), then several tests read the result.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from ssd_core.data import ForgetRequest, Subset, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.importance import hessian_diagonal
from ssd_core.methods import available_methods, config_fields, get_method, make_config, run_method
from ssd_core.methods.base import FORGET_ONLY, RETAIN_ONLY
from ssd_core.methods.loops import architecture_name, top_fraction_mask
from ssd_core.methods.saps import SAPSConfig, selection_scores
from ssd_core.train import accuracy, load_or_train

BASELINES = ("finetune", "neggrad_plus", "random_labels", "bad_teacher", "scrub", "salun")
CLASS_METHODS = ("retrain", *BASELINES, "saps")
NEW_METHODS = (*CLASS_METHODS, "l2ul")
FORGET_CLASS = 3


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def identical(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    current = model.state_dict()
    return current.keys() == state.keys() and all(torch.equal(current[k], state[k]) for k in state)


@pytest.fixture(scope="session")
def digits():
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    return dataset, model, snapshot(model)


@pytest.fixture(scope="session")
def class_split(digits):
    return make_split(digits[0], ForgetRequest("class", FORGET_CLASS))


@pytest.fixture(scope="session")
def instance_split(digits):
    return make_split(digits[0], ForgetRequest("random", k=16, seed=0))


@pytest.fixture(scope="session")
def original_accuracy(digits, class_split):
    model = digits[1]
    return {
        "forget_test": accuracy(model, class_split.forget_test),
        "retain_test": accuracy(model, class_split.retain_test),
        "test": accuracy(model, class_split.test),
    }


@pytest.fixture(scope="session")
def class_run(digits, class_split):
    """name -> MethodResult on the class-3 request with default settings (run once each)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = run_method(name, digits[1], class_split, device="cpu")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def l2ul_run(digits, instance_split):
    cache: dict = {}

    def get(variant: str):
        if variant not in cache:
            cache[variant] = run_method("l2ul", digits[1], instance_split, device="cpu", variant=variant)
        return cache[variant]

    return get


# ---------------------------------------------------------------------------------------------
# Class forgetting


def test_retrain_is_the_gold_standard(class_run, class_split, original_accuracy):
    result = class_run("retrain")
    assert result.diagnostics["architecture"] == "smallcnn"
    assert result.data_touched == RETAIN_ONLY
    assert accuracy(result.model, class_split.forget_test) <= 0.05
    assert abs(accuracy(result.model, class_split.retain_test) - original_accuracy["retain_test"]) <= 0.02


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_forgets_the_class_and_keeps_the_rest(name, class_run, class_split, original_accuracy):
    result = class_run(name)
    forget = accuracy(result.model, class_split.forget_test)
    retain = accuracy(result.model, class_split.retain_test)
    assert forget <= original_accuracy["forget_test"] - 0.5, f"{name}: forget-test {forget:.3f}"
    assert retain >= original_accuracy["retain_test"] - 0.10, f"{name}: retain-test {retain:.3f}"


@pytest.mark.parametrize("name", CLASS_METHODS)
def test_result_shape_and_original_untouched(name, class_run, digits):
    dataset, original, state = digits
    result = class_run(name)
    spec = get_method(name)
    assert "total" in result.seconds and all(v >= 0 for v in result.seconds.values())
    assert result.seconds["total"] >= max(v for k, v in result.seconds.items() if k != "total")
    assert result.data_touched == spec.data_touched
    assert result.model is not original
    assert not result.model.training
    assert identical(original, state), f"{name} modified the model it was given"
    json.dumps(result.diagnostics)  # the CLI writes diagnostics as JSON
    # the new model is a different set of tensors (no shared storage with the original)
    ours = {p.data_ptr() for p in original.parameters()}
    assert not ours & {p.data_ptr() for p in result.model.parameters()}


def test_same_seed_same_model_other_seed_differs(digits, class_split):
    model = digits[1]
    first = run_method("random_labels", model, class_split, device="cpu", epochs=1)
    second = run_method("random_labels", model, class_split, device="cpu", epochs=1)
    other = run_method("random_labels", model, class_split, device="cpu", epochs=1, seed=1)
    assert identical(first.model, snapshot(second.model))
    assert not identical(first.model, snapshot(other.model))


@pytest.mark.parametrize(("name", "options"),
                         [("neggrad_plus", {"epochs": 1}), ("saps", {"epochs": 1, "n_probes": 1}), ("scrub", {"epochs": 1})])
def test_long_loops_report_progress(name, options, digits, class_split):
    seen: list[tuple[float, str]] = []
    run_method(name, digits[1], class_split, device="cpu", progress=lambda f, m: seen.append((f, m)), **options)
    fractions = [f for f, _ in seen]
    assert len(seen) >= 3 and all(0.0 <= f <= 1.0 for f in fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


def test_retrain_recognises_or_checks_the_architecture(digits, class_split):
    dataset, model, _ = digits
    assert architecture_name(model, dataset) == "smallcnn"
    with pytest.raises(InputError):
        run_method("retrain", model, class_split, device="cpu", model_name="vit_tiny", epochs=1)


# ---------------------------------------------------------------------------------------------
# Instance-wise unlearning (L2UL)


def test_l2ul_forgets_every_instance(l2ul_run, instance_split, digits):
    result = l2ul_run("adv+imp")
    d = result.diagnostics
    assert d["all_forgotten"] and d["n_forgotten"] == 16 and d["n_forget"] == 16
    assert accuracy(result.model, instance_split.forget_train) == 0.0
    assert d["n_adversarial"] == 16 * 9 and d["n_neighbours"] == 16 * 8
    assert d["adversarial_success"] > 0.9
    assert 1 <= d["steps"] <= 500
    assert [row["index"] for row in d["instances"]] == instance_split.forget_train.indices.tolist()
    assert all(row["before"] == row["label"] != row["after"] for row in d["instances"])
    assert result.data_touched == FORGET_ONLY
    assert identical(digits[1], digits[2])


def test_l2ul_adversarial_and_importance_keep_more_than_naive(l2ul_run, instance_split):
    naive = l2ul_run("naive")
    full = l2ul_run("adv+imp")
    assert naive.diagnostics["n_adversarial"] == 0
    assert accuracy(full.model, instance_split.test) >= accuracy(naive.model, instance_split.test)


def test_l2ul_keeps_test_accuracy_within_8_points(l2ul_run, instance_split, digits):
    """Forgetting 16 random digits costs test accuracy: from 0.994 to 0.950 on request seed 0 where it was
    first measured, 0.939 on a machine with only AVX2 (where the trajectory stops depends on the CPU's float noise; over
    request seeds 0 to 4 it ends between 0.886 and 0.964, see ssd_core/methods/l2ul.py, so the paper's
    5-point target is not met on digits). 8 points still tells the method from its broken forms: the
    paper's stand-ins alone end at 0.82, naive at 0.17."""
    original = accuracy(digits[1], instance_split.test)
    assert accuracy(l2ul_run("adv+imp").model, instance_split.test) >= original - 0.08


def test_l2ul_neighbours_keep_more_than_the_papers_stand_ins_alone(l2ul_run, instance_split, digits):
    """The same-label neighbours (our addition) are what holds test accuracy on digits."""
    paper_only = run_method("l2ul", digits[1], instance_split, device="cpu", neighbours_per_image=0)
    assert paper_only.diagnostics["all_forgotten"] and paper_only.diagnostics["n_neighbours"] == 0
    with_neighbours = accuracy(l2ul_run("adv+imp").model, instance_split.test)
    assert with_neighbours >= accuracy(paper_only.model, instance_split.test) + 0.05


def test_l2ul_relabel_moves_instances_to_the_given_labels(digits, instance_split):
    new = [(int(y) + 1) % 10 for y in instance_split.forget_train.y]
    result = run_method(
        "l2ul", digits[1], instance_split, device="cpu", variant="naive", relabel=",".join(map(str, new))
    )
    assert result.diagnostics["all_forgotten"]
    assert [row["new_label"] for row in result.diagnostics["instances"]] == new


def test_l2ul_rejects_what_it_cannot_do(digits, class_split):
    dataset, model, _ = digits
    with pytest.raises(InputError):
        run_method("l2ul", model, class_split, device="cpu")  # class requests are not instance-wise
    with pytest.raises(InputError):
        run_method("l2ul", model, make_split(dataset, ForgetRequest("random", k=129)), device="cpu")
    small = make_split(dataset, ForgetRequest("indices", indices=(0, 1)))
    with pytest.raises(InputError):
        run_method("l2ul", model, small, device="cpu", relabel=str(int(small.forget_train.y[0])))
    with pytest.raises(InputError):
        run_method("l2ul", model, small, device="cpu", relabel="1,2,3")
    with pytest.raises(InputError):
        run_method("l2ul", model, small, device="cpu", variant="adv+everything")


# ---------------------------------------------------------------------------------------------
# SAPS and the Hessian diagonal


def test_saps_changes_only_the_selected_entries(class_run, class_split, digits, original_accuracy):
    dataset, original, state = digits
    result = class_run("saps")
    config = SAPSConfig()
    masks = top_fraction_mask(selection_scores(original, class_split.train, config, torch.device("cpu")), config.p / 100)
    new_state = result.model.state_dict()
    changed_total = 0
    for name, before in state.items():
        if name in masks:
            changed = new_state[name] != before
            assert not bool((changed & ~masks[name]).any()), f"{name}: an unselected entry moved"
            changed_total += int(changed.sum())
        else:
            assert torch.equal(new_state[name], before), f"buffer {name} changed"
    total = sum(m.numel() for m in masks.values())
    assert result.diagnostics["selected"] == sum(int(m.sum()) for m in masks.values()) == round(0.05 * total)
    assert 0 < changed_total <= result.diagnostics["selected"]
    layer_fractions = result.diagnostics["per_layer_fraction"]
    assert set(layer_fractions) and all(0.0 <= f <= 1.0 for f in layer_fractions.values())
    assert accuracy(result.model, class_split.forget_test) <= original_accuracy["forget_test"] - 0.5


def test_saps_random_selection_also_stays_inside_its_mask(digits, class_split):
    dataset, original, state = digits
    result = run_method("saps", original, class_split, device="cpu", selection="random", p=1, epochs=1)
    masks = top_fraction_mask(selection_scores(original, class_split.train, SAPSConfig(selection="random", p=1), torch.device("cpu")), 0.01)
    for name, param in result.model.named_parameters():
        moved = param.detach() != state[name]
        assert not bool((moved & ~masks[name]).any())
    assert abs(result.diagnostics["selected_fraction"] - 0.01) < 1e-4


def test_hessian_diagonal_matches_the_exact_diagonal():
    from torch.func import functional_call, hessian

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x, y = torch.rand(24, 1, 2, 2), torch.randint(0, 3, (24,))
    data = Subset(x, y, torch.arange(24))
    estimate = hessian_diagonal(model, data, n_probes=3000, batch_size=24, seed=0)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p):
        return nn.functional.cross_entropy(functional_call(model, p, (x,)), y)

    exact = hessian(loss)(params)
    for name, p in params.items():
        diagonal = exact[name][name].reshape(p.numel(), p.numel()).diagonal().reshape(p.shape)
        assert torch.allclose(estimate[name], diagonal, atol=0.01 + 0.1 * float(diagonal.abs().max()))
    again = hessian_diagonal(model, data, n_probes=3, batch_size=8, seed=1)
    assert all(torch.equal(again[k], hessian_diagonal(model, data, n_probes=3, batch_size=8, seed=1)[k]) for k in again)
    assert all(p.grad is None for p in model.parameters())


def test_hessian_diagonal_rejects_bad_arguments():
    model = nn.Linear(4, 2)
    data = Subset(torch.rand(3, 4), torch.tensor([0, 1, 0]), torch.arange(3))
    with pytest.raises(InputError):
        hessian_diagonal(model, data, n_probes=0)
    with pytest.raises(InputError):
        hessian_diagonal(model, data.select(torch.tensor([], dtype=torch.long)), n_probes=1)


# ---------------------------------------------------------------------------------------------
# Configs, registry and the CLI


def test_every_method_is_registered_with_documented_options():
    methods = available_methods()
    for name in NEW_METHODS:
        spec = methods[name]
        fields = config_fields(spec.config_cls)
        assert any(f["name"] == "seed" for f in fields) or name == "retrain"
        for f in fields:
            assert f["help"], f"{name}.{f['name']} has no help"
            if f["type"] in ("int", "float") and f["name"] != "seed":
                assert f["min"] is not None and f["max"] is not None, f"{name}.{f['name']} has no range"
        default = spec.default_config()
        assert make_config(spec.config_cls, dataclasses.asdict(default)) == default
    assert methods["l2ul"].supports == frozenset({"random", "indices"})


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("saps", {"p": 0}),
        ("saps", {"p": 11}),
        ("saps", {"selection": "curvature"}),
        ("finetune", {"lr": 0}),
        ("neggrad_plus", {"epochs": 0}),
        ("bad_teacher", {"retain_fraction": 0}),
        ("scrub", {"temperature": -1}),
        ("salun", {"mask_fraction": 2}),
        ("l2ul", {"adv_eps": 0}),
        ("retrain", {"epochs": "many"}),
        ("random_labels", {"learning_rate": 0.1}),
    ],
)
def test_bad_options_are_input_errors(name, options):
    with pytest.raises(InputError):
        get_method(name).default_config(**options)


CLI_OPTIONS = {
    "retrain": ["epochs=2"],
    "finetune": ["epochs=1"],
    "neggrad_plus": ["epochs=1"],
    "random_labels": ["epochs=1"],
    "bad_teacher": ["epochs=1"],
    "scrub": ["epochs=1"],
    "salun": ["epochs=1"],
    "saps": ["epochs=1", "n_probes=1", "hessian_samples=128"],
    "l2ul": ["max_steps=20", "adv_steps=10"],
    "ssd": ["alpha=10"],  # without an alpha the CLI runs assd
    "assd": [],
    "jit": ["max_epochs=1"],
    "unsir": ["noise_steps=5", "repair_epochs=1"],
}


def test_cli_runs_every_method_with_one_schema(capsys, digits):
    from ssd_core.cli import main

    schemas = {}
    for name, options in CLI_OPTIONS.items():
        request = ["--forget-random", "8"] if name == "l2ul" else ["--forget-class", str(FORGET_CLASS)]
        argv = ["unlearn", "--method", name, *request, "--quiet", "--device", "cpu", "--json", "-"]
        for option in options:
            argv += ["--param", option]
        assert main(argv) == 0, capsys.readouterr().err
        out = json.loads(capsys.readouterr().out)
        assert out["method"] == name and "total" in out["seconds"]
        assert out["data_touched"] == get_method(name).data_touched
        schemas[name] = (tuple(sorted(out)), tuple(sorted(out["before"])), tuple(sorted(out["after"])))
    assert len(set(schemas.values())) == 1, schemas
    assert identical(digits[1], digits[2])


def test_cli_bad_option_is_one_sentence(capsys):
    from ssd_core.cli import main

    assert main(["unlearn", "--method", "saps", "--forget-class", "3", "--quiet", "--param", "p=0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "p" in err
