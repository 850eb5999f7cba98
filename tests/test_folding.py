"""#25.3 Faster passes on the CPU: batch norms folded into their convolutions for evaluation. The folded copy
computes the model's function to float rounding (no prediction of the shipped shapes model changes), follows a
model dampened in place, never touches the caller's model, folds only what is safe to fold, and the prefix
shortcut skips no layer that reads a changed batch-norm parameter."""

from __future__ import annotations

import copy
import threading

import torch
from torch import nn

from ssd_core import folding
from ssd_core.data import ForgetRequest, Subset, load_dataset, make_split
from ssd_core.data.dataset import to_float
from ssd_core.engine import SSDEngine
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import logits_of, to_channels_last
from ssd_core.prefix import PrefixCache
from ssd_core.train import load_or_train


def _unfolded_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    plain = to_channels_last(copy.deepcopy(model)).eval()
    with torch.no_grad():
        return torch.cat([plain(to_float(x[s:s + 64], "cpu")) for s in range(0, len(x), 64)])


def test_the_folded_shapes_model_predicts_every_image_as_the_model_does():
    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow").model
    twin = folding.twin_of(model)
    assert twin is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.module.modules())  # every batch norm folded
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = dataset.test_x, dataset.test_y  # 1,000 images (the 4,000 training images too when measured)
    folded = logits_of(model, Subset(x, y, torch.arange(len(x))), "cpu")
    unfolded = _unfolded_logits(model, x)
    assert (folded - unfolded).abs().max() < 1e-4  # float rounding (6e-6 measured)
    assert torch.equal(folded.argmax(1), unfolded.argmax(1))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's model untouched


def test_a_model_dampened_in_place_is_evaluated_as_it_is_now():
    """The twin is loaded at every use: a scratch model dampened again gives what a fresh copy of it gives."""
    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow").model
    split = make_split(dataset, ForgetRequest("class", 2))
    imp = ssd_importances(model, split)
    engine, scratch = SSDEngine(model, imp.full, imp.forget), to_channels_last(copy.deepcopy(model))
    images = Subset(split.test.x[:256], split.test.y[:256], split.test.indices[:256])
    seen, batch_norms = [], set()
    for alpha in (10.0, 1.0, 38.8):  # α = 1 dampens batch-norm weights too
        damped, report = engine.at(alpha, 1.0, into=scratch)
        batch_norms.update(name for name in report.changed if ".bn" in name)
        now = logits_of(damped, images, "cpu")
        assert torch.equal(now, logits_of(copy.deepcopy(damped), images, "cpu"))  # a new twin, built from scratch
        assert (now - _unfolded_logits(damped, images.x)).abs().max() < 1e-4
        seen.append(now)
    assert not torch.equal(seen[0], seen[1])  # the moves really changed the model
    assert batch_norms  # and folded parameters with it


class StandardisedConv(nn.Conv2d):
    """A convolution that standardises its weights per output channel (timm's StdConv2d): scaling them changes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return self._conv_forward(x, w, self.bias)


class Unfoldable(nn.Module):
    """One pair that folds (conv -> bn) and four that must not: a batch norm whose convolution's output is also
    read elsewhere, one that normalises with the batch's statistics, one after a convolution that computes
    something else than its weights say, and one after a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv3, self.bn3 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4, track_running_stats=False)
        self.conv5, self.bn5 = StandardisedConv(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc, self.bn4 = nn.Linear(4 * 16, 3), nn.BatchNorm1d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        g = self.conv2(h)
        h = self.bn2(g) + g  # the convolution's output is read twice
        h = self.bn3(self.conv3(h))
        h = self.bn5(self.conv5(h))
        return self.bn4(self.fc(h.flatten(1)))


def test_only_a_convolution_whose_output_only_its_batch_norm_reads_is_folded():
    torch.manual_seed(0)
    model = Unfoldable()
    with torch.no_grad():  # statistics and affine parameters that are not the identity
        for bn in (model.bn1, model.bn2, model.bn4, model.bn5):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        for bn in (model.bn1, model.bn2, model.bn3, model.bn4, model.bn5):
            bn.weight.uniform_(0.5, 2)
            bn.bias.uniform_(-1, 1)
    model.eval()
    twin = folding.twin_of(model)
    assert twin is not None
    kept = {name for name, m in twin.module.named_modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)}
    assert kept == {"bn2", "bn3", "bn4", "bn5"}
    assert twin.sources["conv1.weight"] == ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias")
    x = torch.randint(0, 256, (12, 1, 4, 4), dtype=torch.uint8)
    images = Subset(x, torch.zeros(12, dtype=torch.long), torch.arange(12))
    assert (logits_of(model, images, "cpu", 12) - _unfolded_logits(model, x)[:12]).abs().max() < 1e-5


def test_a_model_without_a_pair_to_fold_has_no_twin():
    assert folding.twin_of(load_or_train(load_dataset("digits"), "smallcnn").model) is None  # GroupNorm
    assert folding.twin_of(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) is None


def test_two_threads_evaluating_one_model_get_what_one_thread_gets():
    """A model shared by two sessions has one twin; its lock keeps one pass from loading into another's."""
    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow").model
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.net.fc.weight.mul_(0.5)
    images = Subset(dataset.test_x[:192], dataset.test_y[:192], torch.arange(192))
    expected = {id(m): logits_of(m, images, "cpu") for m in (model, other)}
    results: list[bool] = []

    def evaluate(m: nn.Module) -> None:
        for _ in range(3):
            results.append(torch.equal(logits_of(m, images, "cpu"), expected[id(m)]))

    workers = [threading.Thread(target=evaluate, args=(m,)) for m in (model, model, other)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert results == [True] * 9


def test_the_shortcut_recomputes_from_the_convolution_a_changed_batch_norm_is_folded_into():
    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow").model
    images = Subset(dataset.test_x[:128], dataset.test_y[:128], torch.arange(128))
    cache = PrefixCache(model, images, 64)
    bn = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)][-2]
    conv = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)][-2]
    assert cache.cut([f"{bn}.weight"]) == cache.cut([f"{conv}.weight"])  # the same node: the folded convolution
    changed = to_channels_last(copy.deepcopy(model))
    with torch.no_grad():
        changed.get_submodule(bn).weight.mul_(0.3)
    for _ in range(2):  # the first pass keeps the cut point, the next one starts from it
        assert torch.equal(cache.logits(changed, [f"{bn}.weight"]), logits_of(changed, images, "cpu", 64))
    assert not torch.equal(cache.logits(changed, [f"{bn}.weight"]), logits_of(model, images, "cpu", 64))


def test_a_subclass_of_conv_or_batch_norm_is_never_folded():
    """Only the plain torch modules fold: a subclass may compute something else (timm's StdConv2d, BatchNormAct2d),
    should a tracer keep it as one call."""
    from ssd_core.tracing import trace

    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).eval()
    graph = trace(plain)
    assert graph is not None and len(folding._foldable(graph, dict(plain.named_modules()))) == 1
    subclass = dict(plain.named_modules()) | {"0": StandardisedConv(1, 4, 3)}
    assert folding._foldable(graph, subclass) == []

    class BatchNormAct(nn.BatchNorm2d):
        pass

    assert folding._foldable(graph, dict(plain.named_modules()) | {"1": BatchNormAct(4).eval()}) == []


def test_a_twin_lives_as_long_as_its_model():
    import gc
    import weakref

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten()).eval()
    images = Subset(torch.zeros(4, 1, 5, 5, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), torch.arange(4))
    logits_of(model, images, "cpu")
    twin = folding.twin_of(model)
    assert twin is not None and folding.parameter_sources(twin.module) is not None
    alive, twin_alive = weakref.ref(model), weakref.ref(twin)
    del model, twin
    gc.collect()
    assert alive() is None and twin_alive() is None  # nothing the lab keeps holds the model or its twin


def test_one_evaluation_loads_the_twin_once_and_the_next_move_loads_it_again(monkeypatch):
    """The train and test passes of one evaluation share one load; a move after it (the model dampened again in
    place) is loaded anew, so its numbers are its own."""
    from ssd_core.metrics import Evaluator

    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow").model
    split = make_split(dataset, ForgetRequest("class", 2))
    imp = ssd_importances(model, split)
    engine, scratch = SSDEngine(model, imp.full, imp.forget), to_channels_last(copy.deepcopy(model))
    evaluator = Evaluator(split, "cpu", max_per_subset=64, stratified=True)
    loads = []
    real = folding.FoldedTwin.load
    monkeypatch.setattr(folding.FoldedTwin, "load", lambda self, m: loads.append(m) or real(self, m))
    for alpha in (1.0, 38.8):
        damped, _ = engine.at(alpha, 1.0, into=scratch)
        before = len(loads)
        outputs = evaluator.outputs(damped)
        assert len(loads) == before + 1
        fresh = copy.deepcopy(damped)
        assert torch.equal(outputs.test_logits, evaluator.outputs(fresh).test_logits)
