"""Importance and dampening against straightforward reference computations written here."""

import copy

import pytest
import torch
import torch.nn.functional as F

from ssd_core.dampening import dampen
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.importance import ImportanceCache, compute_importance
from ssd_core.models import build_for_dataset


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ds = load_dataset("digits")
    model = build_for_dataset("smallcnn", ds, seed=0)
    # A few training steps so BatchNorm running stats and weights are not at init.
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for i in range(0, 640, 64):
        x = ds.train_x[i : i + 64].float() / 255
        loss = F.cross_entropy(model(x), ds.train_y[i : i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    split = make_split(ds, ForgetRequest("class", 3))
    return ds, model, split


def reference_importance(model, subset, batch_size, kind):
    """Loop over batches, take .grad after backward, square (or abs), sum, divide by #batches."""
    model = copy.deepcopy(model).eval()
    totals = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    n_batches = 0
    for start in range(0, len(subset), batch_size):
        x = subset.x[start : start + batch_size].float() / 255
        y = subset.y[start : start + batch_size]
        model.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y) if kind == "fisher" else (out**2).sum(1).mean()
        loss.backward()
        for n, p in model.named_parameters():
            totals[n] += p.grad**2 if kind == "fisher" else p.grad.abs()
        n_batches += 1
    return {n: t / n_batches for n, t in totals.items()}


def assert_close(a, b, rtol=1e-6):
    for name in b:
        scale = b[name].abs().max().clamp_min(1e-30)
        assert (a[name] - b[name]).abs().max() / scale <= rtol, name


@pytest.mark.parametrize("kind", ["fisher", "lossfree"])
def test_importance_matches_reference(setup, kind):
    _, model, split = setup
    for subset in (split.train, split.forget_train):
        ours = compute_importance(model, subset, kind, batch_size=64)
        assert_close(ours, reference_importance(model, subset, 64, kind))


def test_exact_fisher_matches_per_sample_loop(setup):
    _, model, split = setup
    subset = split.forget_train.select(torch.arange(20))
    ours = compute_importance(model, subset, "fisher_exact", batch_size=7)
    reference = reference_importance(model, subset, 1, "fisher")  # batch 1 = per-sample, mean over samples
    assert_close(ours, reference, rtol=1e-5)
    # independent of batch size
    assert_close(compute_importance(model, subset, "fisher_exact", batch_size=20), ours, rtol=1e-5)


def test_dampening_matches_reference_and_leaves_input_alone(setup):
    _, model, split = setup
    full = compute_importance(model, split.train, "fisher")
    forget = compute_importance(model, split.forget_train, "fisher")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    alpha, lam = 10.0, 1.0
    new, report = dampen(model, full, forget, alpha, lam)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    expected_selected = 0
    for name, param in model.named_parameters():
        theta = param.detach().clone()
        for i in range(theta.numel()):  # the plain elementwise rule
            d, f = full[name].view(-1)[i].item(), forget[name].view(-1)[i].item()
            if f > alpha * d:
                expected_selected += 1
                theta.view(-1)[i] *= min(lam * d / f, 1.0)
        got = dict(new.named_parameters())[name].detach()
        assert torch.allclose(got, theta, rtol=1e-6, atol=0), name
    assert report.total_selected == expected_selected > 0
    for key, buffer in new.named_buffers():
        assert torch.equal(buffer, before[key]), key  # buffers (BatchNorm stats, normalisation) untouched


def test_zero_and_nonfinite_importance_give_no_nan(setup):
    _, model, _ = setup
    names = [n for n, _ in model.named_parameters()]
    full = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    forget = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    full[names[0]].view(-1)[0] = float("nan")
    forget[names[1]].view(-1)[0] = float("inf")
    forget[names[2]].view(-1)[:] = 0.0  # 0 > alpha * 0 is False: nothing selected here
    new, report = dampen(model, full, forget, 10, 1)
    for n, p in new.named_parameters():
        assert torch.isfinite(p).all(), n
    # I_D = 0 and selected -> the parameter becomes 0
    assert float(dict(new.named_parameters())[names[3]].abs().max()) == 0.0
    assert torch.equal(dict(new.named_parameters())[names[2]], dict(model.named_parameters())[names[2]])


def test_bad_hyperparameters(setup):
    _, model, split = setup
    imp = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    with pytest.raises(InputError, match="alpha"):
        dampen(model, imp, imp, 0.0, 1.0)
    with pytest.raises(InputError, match="lambda"):
        dampen(model, imp, imp, 10.0, -1.0)
    with pytest.raises(InputError, match="empty"):
        compute_importance(model, split.forget_train.select(torch.zeros(0, dtype=torch.long)))


def test_full_importance_cache_memory_and_disk(setup, tmp_path):
    ds, model, split = setup
    cache = ImportanceCache(tmp_path)
    first = cache.full_importance(model, split.train, ds.fingerprint())
    assert cache.misses == 1 and len(list(tmp_path.glob("*.safetensors"))) == 1
    second = cache.full_importance(model, split.train, ds.fingerprint())
    assert cache.hits == 1 and all(first[k] is second[k] for k in first)
    fresh = ImportanceCache(tmp_path)  # a new process: served from disk, same numbers
    third = fresh.full_importance(model, split.train, ds.fingerprint())
    assert fresh.misses == 0 and all(torch.equal(first[k], third[k]) for k in first)
    other = cache.full_importance(model, split.train, ds.fingerprint(), batch_size=32)
    assert cache.misses == 2 and not torch.equal(other[next(iter(other))], first[next(iter(first))])


@pytest.mark.parametrize("kind", ["fisher", "lossfree", "fisher_exact"])
def test_bf16_autocast_importance_is_close_to_float32_and_its_selection_changes_are_counted(setup, kind):
    """torch.autocast in bfloat16 (on CPU here, on CUDA where there is one): the importances really are
    computed in bf16 (they differ from float32's), stay within a few percent, and selection_changes
    counts exactly the parameters whose selection flips."""
    from ssd_core.dampening import selection_changes

    _, model, split = setup
    data = split.retain_train.select(torch.arange(128 if kind == "fisher_exact" else 512))
    full32 = compute_importance(model, data, kind, 64, "cpu")
    full16 = compute_importance(model, data, kind, 64, "cpu", autocast="bf16")
    forget32 = compute_importance(model, split.forget_train, kind, 64, "cpu")
    forget16 = compute_importance(model, split.forget_train, kind, 64, "cpu", autocast="bf16")
    differences = [float((full16[n] - full32[n]).abs().sum() / full32[n].abs().sum()) for n in full32]
    assert max(differences) > 1e-4  # bf16 arithmetic happened
    assert max(differences) < 0.1  # and it stays close
    assert all(full16[n].dtype == torch.float32 for n in full16)  # the sums stay float32

    changes = selection_changes((full32, forget32), (full16, forget16), 10.0)
    flipped = sum(int(((forget32[n] > 10 * full32[n]) ^ (forget16[n] > 10 * full16[n])).sum()) for n in full32)
    assert changes.changed == flipped
    assert changes.selected_reference == sum(int((forget32[n] > 10 * full32[n]).sum()) for n in full32)
    assert changes.total == sum(p.numel() for p in model.parameters())
    assert changes.changed < 0.1 * max(1, changes.selected_reference)  # most of the selection survives bf16
    with pytest.raises(InputError, match="autocast"):
        compute_importance(model, data, kind, 64, "cpu", autocast="fp8")


def test_the_importance_command_reports_bf16_against_float32(tmp_path, monkeypatch, capsys):
    import json

    from ssd_core.cli import main

    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    assert main(["importance", "--dataset", "digits", "--autocast", "bf16", "--forget-class", "3", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    low = out["autocast"]
    assert low["dtype"] == "bf16" and low["forget_class"] == 3 and low["alpha"] == 10.0
    assert 0 < low["changed"] < 0.1 * low["selected_reference"]
    assert 0 < low["largest_relative_difference_of_a_layers_I_D"] < 0.1
    # the cache keeps the float32 I_D: what every later run reads
    from safetensors.torch import load_file

    from ssd_core.data import load_dataset
    from ssd_core.train import load_or_train

    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    cached = load_file(out["cache_file"])
    again = compute_importance(model, dataset.train(), "fisher", 64, "cpu")
    assert_close(cached, again, rtol=1e-5)


def test_forget_importance_is_cached_per_forget_set_on_disk_for_classes_only(setup, tmp_path):
    """I_f is cached like I_D under a key naming the forget set's images: a class's I_f is read back from disk (a new
    process gets the same numbers without a pass), a random set's is kept in memory only, and another forget set
    never reads the first one's."""
    from ssd_core.methods.ssd import ssd_importances

    ds, model, split = setup
    first = ssd_importances(model, split, "fisher", 64, device="cpu", cache=ImportanceCache(tmp_path))
    direct = compute_importance(model, split.forget_train, "fisher", 64, "cpu")
    assert all(torch.equal(first.forget[k], direct[k]) for k in direct)
    assert len(list(tmp_path.glob("*-forget-*.safetensors"))) == 1
    fresh = ImportanceCache(tmp_path)  # a new process
    again = ssd_importances(model, split, "fisher", 64, device="cpu", cache=fresh)
    assert fresh.misses == 0 and again.full_cached
    assert all(torch.equal(first.forget[k], again.forget[k]) for k in direct)
    other = make_split(ds, ForgetRequest("class", 5))
    five = ssd_importances(model, other, "fisher", 64, device="cpu", cache=fresh)
    name = next(iter(direct))
    assert fresh.misses == 1 and not torch.equal(five.forget[name], first.forget[name])
    random_split = make_split(ds, ForgetRequest("random", k=50))
    ssd_importances(model, random_split, "fisher", 64, device="cpu", cache=fresh)
    assert fresh.misses == 2 and len(list(tmp_path.glob("*-forget-*.safetensors"))) == 2  # class 5 only added
