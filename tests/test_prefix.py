"""#25.2 Only what changed: a dampened model's logits from the first changed layer on are bitwise those of a
full forward pass, the layers before it are really skipped, and anything the shortcut cannot handle falls back."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import ssd_core.prefix as prefix
import ssd_core.tracing as tracing
from ssd_core.data import ForgetRequest, Subset, load_dataset, make_split
from ssd_core.engine import SSDEngine
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import eval_batch_size, logits_of, to_channels_last
from ssd_core.prefix import PrefixCache
from ssd_core.train import load_or_train


def _setup(dataset_name: str, model_name: str, cls: int, limit: int):
    dataset = load_dataset(dataset_name)
    original = load_or_train(dataset, model_name).model
    split = make_split(dataset, ForgetRequest("class", cls))
    imp = ssd_importances(original, split)
    images = Subset(split.test.x[:limit], split.test.y[:limit], split.test.indices[:limit])
    return original, SSDEngine(original, imp.full, imp.forget), images


@pytest.mark.parametrize(("dataset", "model", "cls", "alphas", "limit"), [
    ("digits", "smallcnn", 3, (5.0, 30.0, 113.0, 1000.0), 360),
    ("shapes", "resnet18_narrow", 2, (10.0, 38.8, 100.0), 300),
])
def test_logits_from_the_first_changed_layer_equal_a_full_pass(dataset, model, cls, alphas, limit):
    original, engine, images = _setup(dataset, model, cls, limit)
    before = {k: v.clone() for k, v in original.state_dict().items()}
    cache = PrefixCache(to_channels_last(copy.deepcopy(original)).eval(), images, eval_batch_size(images))
    scratch = to_channels_last(copy.deepcopy(original))
    cuts = []
    for alpha in alphas:
        damped, report = engine.at(alpha, 1.0, into=scratch)
        changed = [layer.name for layer in report.layers if layer.selected]
        shortcut = cache.logits(damped, changed)
        cuts.append(cache.cut(changed))
        if shortcut is None:
            continue
        assert torch.equal(shortcut, logits_of(damped, images, "cpu")), alpha  # bitwise, not approximately
    assert any(c is not None and c > 0 for c in cuts)  # somewhere it really skipped layers
    assert all(torch.equal(v, original.state_dict()[k]) for k, v in before.items())  # the original untouched
    if model == "resnet18_narrow":  # at the adaptive alpha nothing before layer3 changes: stem, layer1, layer2 skipped
        _, report = engine.at(38.8, 1.0, into=scratch)
        cut = cache.cut([layer.name for layer in report.layers if layer.selected])
        assert cut is not None and str(cache.nodes[cut].target).startswith("net.layer3")


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x.flatten(1))
        return self.b(h if h.sum() > 0 else -h)


def test_what_cannot_be_traced_or_kept_falls_back_to_the_full_pass(monkeypatch):
    """An untraceable model or an unknown parameter: no shortcut (None); over the memory cap: computed, not kept."""
    images = Subset(torch.randn(10, 1, 2, 2), torch.zeros(10, dtype=torch.long), torch.arange(10))
    assert PrefixCache(Branchy(), images, 4).logits(Branchy(), ["b.weight"]) is None
    original, engine, data = _setup("digits", "smallcnn", 3, 200)
    damped, report = engine.at(113.0, 1.0, into=to_channels_last(copy.deepcopy(original)))  # laid out as evaluated
    changed = [layer.name for layer in report.layers if layer.selected]
    assert PrefixCache(original, data, 64).logits(damped, ["not.a.parameter"]) is None
    monkeypatch.setattr(prefix, "MAX_KEPT_MB", 0)  # nothing may be kept: every pass starts from the images
    capped = PrefixCache(original, data, 64)
    assert torch.equal(capped.logits(damped, changed), logits_of(damped, data, "cpu", 64)) and not capped._kept  # same batches


def test_the_evaluator_with_the_shortcut_gives_the_same_numbers_as_without():
    """What the page's moves and the sweeps use: Evaluator(shortcut_from=original)(model, changed), for the live
    sample and for every image, with a scratch model in either memory layout."""
    from ssd_core.metrics import Evaluator

    dataset = load_dataset("shapes")
    original = load_or_train(dataset, "resnet18_narrow").model
    split = make_split(dataset, ForgetRequest("class", 2))
    imp = ssd_importances(original, split)
    engine = SSDEngine(original, imp.full, imp.forget)
    plain = Evaluator(split, max_per_subset=60, seed=1, stratified=True)
    quick = Evaluator(split, max_per_subset=60, seed=1, stratified=True, shortcut_from=original)
    for alpha, into in ((38.8, to_channels_last(copy.deepcopy(original))), (100.0, None)):
        damped, report = engine.at(alpha, 1.0, into=into)
        assert quick(damped, report.changed).to_dict() | {"seconds": 0} == plain(damped).to_dict() | {"seconds": 0}
        assert torch.equal(quick.outputs(damped, report.changed).train_logits, plain.outputs(damped).train_logits)


def test_a_new_cut_point_starts_from_the_nearest_kept_one_and_is_kept():
    original, engine, images = _setup("shapes", "resnet18_narrow", 2, 200)
    cache = PrefixCache(to_channels_last(copy.deepcopy(original)).eval(), images, eval_batch_size(images))
    scratch = to_channels_last(copy.deepcopy(original))
    seen = []
    for alpha in (100.0, 38.8, 100.0, 10.0, 38.8):  # back and forth, as a slider moves
        damped, report = engine.at(alpha, 1.0, into=scratch)
        assert torch.equal(cache.logits(damped, report.changed), logits_of(damped, images, "cpu")), alpha
        seen.append(cache.cut(report.changed))
    assert set(cache._kept) == set(seen) and len(cache._kept) == 3  # every cut point visited is kept (at most 3)


class InPlaceAfterTheCut(nn.Module):
    """A value computed before the first changed layer and changed in place after it (ReLU(inplace=True) style)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x.flatten(1))
        g = self.b(h)
        h = torch.relu_(h)
        return self.c(g + h)


def test_an_in_place_operation_after_the_cut_does_not_change_what_is_kept():
    torch.manual_seed(0)
    original = InPlaceAfterTheCut().eval()
    images = Subset(torch.randn(20, 1, 2, 2), torch.zeros(20, dtype=torch.long), torch.arange(20))
    cache = PrefixCache(original, images, 8)
    changed = copy.deepcopy(original)
    with torch.no_grad():
        changed.b.weight.mul_(0.5)
    for _ in range(3):  # the first pass keeps the cut point, the next ones start from it
        assert torch.equal(cache.logits(changed, ["b.weight"]), logits_of(changed, images, "cpu", 8))
    assert list(cache._kept) == [cache.cut(["b.weight"])]


def test_the_collapse_guard_with_the_shortcut_decides_exactly_as_without():
    """The guard's checks (every probe of automatic α's search, and a sampled move's check on the page) skip the
    unchanged layers too, with the same accuracies to the last bit."""
    from ssd_core.guard import CollapseGuard

    dataset = load_dataset("shapes")
    original = load_or_train(dataset, "resnet18_narrow").model
    split = make_split(dataset, ForgetRequest("class", 2))
    imp = ssd_importances(original, split)
    guard = CollapseGuard(original, split.retain_train, split.forget_train, "cpu", samples=128, whole_classes=True)
    plain = CollapseGuard(original, split.retain_train, split.forget_train, "cpu", samples=128, whole_classes=True)
    engine = SSDEngine(original, imp.full, imp.forget)
    scratch = to_channels_last(copy.deepcopy(original))
    for alpha in (100.0, 38.8, 10.0, 38.8):
        damped, report = engine.at(alpha, 1.0, into=scratch)
        assert guard.check(damped, alpha, 1.0, changed=report.changed) == plain.check(damped, alpha, 1.0)
        assert guard.check_setting(original, imp.full, imp.forget, alpha, 1.0, scratch) == plain.check(damped, alpha, 1.0)
    assert guard._prefix and guard._prefix[0]._kept  # the shortcut was really taken


def test_tracing_leaves_forward_passes_in_other_threads_alone():
    """torch.fx patches nn.Module for the whole process while it traces. A second session evaluating at that moment
    once failed in CI ("Something went wrong while re-dampening the model"; the server log: "module is not
    installed as a submodule"). Here another thread runs the traced model itself and another model in the middle
    of the trace, deterministically."""
    import threading

    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    seen: dict[str, object] = {}

    class MidTrace(nn.Module):
        def __init__(self, owner: list[nn.Module]) -> None:
            super().__init__()
            self.owner = owner  # a list, so the model is not a submodule of its own layer

        def forward(self, h):
            if isinstance(h, torch.fx.Proxy) and "during" not in seen:
                def evaluate():
                    try:
                        with torch.no_grad():
                            seen["during"] = (other(x), self.owner[0](x))
                    except Exception as exc:  # noqa: BLE001 - the test reports it
                        seen["during"] = exc
                worker = threading.Thread(target=evaluate)
                worker.start()
                worker.join(30)
            return h

    owner: list[nn.Module] = []
    model = nn.Sequential(nn.Linear(4, 4), MidTrace(owner), nn.ReLU(), nn.Linear(4, 2))
    owner.append(model)
    with torch.no_grad():
        expected = (other(x), model(x))
    seen.pop("during", None)
    graph = tracing.trace(model)
    assert graph is not None and any(node.op == "call_module" for node in graph.nodes)
    during = seen["during"]
    assert not isinstance(during, Exception), repr(during)
    assert torch.equal(during[0], expected[0]) and torch.equal(during[1], expected[1])
