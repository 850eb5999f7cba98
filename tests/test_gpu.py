"""CUDA paths (skipped cleanly on machines without a CUDA GPU, such as CI)."""

import pytest
import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.importance import ImportanceCache, compute_importance
from ssd_core.methods import run_method
from ssd_core.metrics import evaluate
from ssd_core.train import load_or_train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_importance_on_cuda_matches_cpu():
    ds = load_dataset("digits")
    model = load_or_train(ds, "smallcnn", device="cpu").model
    split = make_split(ds, ForgetRequest("class", 1))
    cpu = compute_importance(model, split.forget_train, "fisher", 64, "cpu")
    gpu = compute_importance(model.to("cuda"), split.forget_train, "fisher", 64, "cuda")
    model.to("cpu")
    for name in cpu:
        assert gpu[name].device.type == "cuda"
        # float32 on both (ssd_core turns TF32 off: with it, 47% off on an H200; without, 3e-4 at most)
        assert torch.allclose(gpu[name].cpu(), cpu[name], rtol=1e-3, atol=1e-12), name


def test_ssd_on_cuda_forgets_and_leaves_original_on_cpu_untouched():
    ds = load_dataset("digits")
    model = load_or_train(ds, "smallcnn", device="cpu").model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = make_split(ds, ForgetRequest("class", 0))
    result = run_method("ssd", model, split, alpha=10, lam=1, device="cuda")
    assert next(result.model.parameters()).device.type == "cuda"
    after = evaluate(result.model, split, "cuda")
    assert after.forget_test_acc <= 0.05
    assert next(model.parameters()).device.type == "cpu"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    cache = ImportanceCache(None)
    full = cache.full_importance(model.to("cuda"), split.train, "digits", device="cuda")
    assert all(t.device.type == "cuda" for t in full.values())
