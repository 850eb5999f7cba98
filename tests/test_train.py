"""Training: seeded determinism, the checkpoint cache, retrain from scratch."""

import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.train import TrainConfig, accuracy, load_or_train, retrain_from_scratch, train_model


def small_config(seed=0):
    return TrainConfig("digits", "smallcnn", epochs=1, lr=1e-3, batch_size=64, seed=seed)


def test_training_is_seeded():
    ds = load_dataset("digits")
    a = train_model(ds, small_config(0), device="cpu")
    b = train_model(ds, small_config(0), device="cpu")
    c = train_model(ds, small_config(1), device="cpu")
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.test_acc == b.test_acc and 0.0 <= a.test_acc <= 1.0


def test_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    ds = load_dataset("digits")
    progress = []
    first = load_or_train(ds, "smallcnn", config=small_config(5), device="cpu", progress=lambda f, m: progress.append(f))
    assert first.source == "trained" and progress and progress[-1] == 1.0
    assert len(list((tmp_path / "models").glob("*.safetensors"))) == 1
    meta = list((tmp_path / "models").glob("*.json"))
    assert meta and '"test_acc"' in meta[0].read_text()
    second = load_or_train(ds, "smallcnn", config=small_config(5), device="cpu")
    assert second.source == "cache" and second.test_acc == first.test_acc
    s1, s2 = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_shipped_default_checkpoint_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    trained = load_or_train(load_dataset("digits"), "smallcnn", seed=0, device="cpu")
    assert trained.source == "shipped" and trained.test_acc > 0.95


def test_retrain_builds_a_fresh_model():
    ds = load_dataset("digits")
    split = make_split(ds, ForgetRequest("class", 4))
    original = train_model(ds, small_config(0), device="cpu").model
    retrained = retrain_from_scratch(ds, split.retain_train, "smallcnn", seed=0, config=small_config(0), device="cpu").model
    for (name, p0), p1 in zip(original.named_parameters(), retrained.parameters()):
        assert not torch.equal(p0, p1), f"{name} was carried over instead of re-initialised"
    assert accuracy(retrained, split.forget_test) < 0.05
