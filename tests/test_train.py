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


def _build_script():
    """scripts/build_checkpoints.py as a module (what it ships: SHIPPED, SHIPPED_IMPORTANCE_FOR, ...)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "build_checkpoints.py"
    spec = importlib.util.spec_from_file_location("build_checkpoints", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shipped_dataset(name: str):
    from conftest import fashion_mnist_or_skip

    return fashion_mnist_or_skip() if name == "fashion_mnist" else load_dataset(name)


def test_every_shipped_checkpoint_matches_the_current_key(tmp_path, monkeypatch):
    """A change of training code bumps TRAINING_CODE_VERSION, which changes every key: the shipped
    files must then be rebuilt (scripts/build_checkpoints.py), or this fails instead of the app
    quietly retraining."""
    from ssd_core.train import SHIPPED_CHECKPOINTS, TrainConfig, checkpoint_key, find_checkpoint

    module = _build_script()
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    wanted = set()
    for dataset_name, model_name in module.SHIPPED:
        dataset = _shipped_dataset(dataset_name)
        assert find_checkpoint(dataset, model_name) == "shipped", (dataset_name, model_name)
        wanted.add(checkpoint_key(dataset, TrainConfig.default(dataset_name, model_name)))
        for seed in module.SHIPPED_TRAIN_SEEDS.get((dataset_name, model_name), ()):  # audit --train-seeds
            assert find_checkpoint(dataset, model_name, seed=seed) == "shipped", (dataset_name, model_name, seed)
            wanted.add(checkpoint_key(dataset, TrainConfig.default(dataset_name, model_name, seed)))
    shipped = {p.stem for p in SHIPPED_CHECKPOINTS.glob("*.safetensors") if not p.name.endswith(".lira.safetensors")}
    assert shipped == wanted  # nothing stale shipped


def test_every_shipped_importance_matches_its_model_and_the_code(tmp_path, monkeypatch):
    """Shipped I_D files are named by the cache's key (model fingerprint, data, estimator, batch, importance
    code version): a retrained checkpoint or a change of the importance code needs them rebuilt
    (scripts/build_checkpoints.py), or this fails instead of the app quietly computing I_D again."""
    from ssd_core.importance import SHIPPED_IMPORTANCE, ImportanceCache

    module = _build_script()
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    wanted = set()
    for dataset_name, model_name in module.SHIPPED_IMPORTANCE_FOR:
        dataset = _shipped_dataset(dataset_name)
        model = load_or_train(dataset, model_name, device="cpu").model
        for estimator in module.IMPORTANCE_ESTIMATORS:
            wanted.add(ImportanceCache.key(model, f"{dataset.fingerprint()}-train", estimator, module.IMPORTANCE_BATCH))
    for dataset_name, model_name in module.SHIPPED_FORGET_IMPORTANCE_FOR:  # every class's I_f
        wanted.update(module.forget_importance_keys(dataset_name, model_name).values())
    assert {p.stem for p in SHIPPED_IMPORTANCE.glob("*.safetensors")} == wanted


def test_a_first_shapes_request_reads_its_shipped_importance(tmp_path, monkeypatch):
    """Shapes' default model ships its I_D, so a fresh machine's first shapes request passes over the forget class
    only (718 images), not all 5,000 training images: the package's file answers and it is SSD's Fisher
    importance, non-negative and alive in every layer."""
    from ssd_core.importance import ImportanceCache
    from ssd_core.methods.ssd import ssd_importances

    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    dataset = load_dataset("shapes")
    model = load_or_train(dataset, "resnet18_narrow", device="cpu").model
    cache = ImportanceCache(None)  # no disk cache of its own: only the package's files can answer
    found = ssd_importances(model, make_split(dataset, ForgetRequest("class", 2)), "fisher", 64, device="cpu",
                            cache=cache)
    assert found.full_cached and cache.hits == 1 and cache.misses == 1  # I_D read; I_f computed
    assert set(found.full) == {name for name, _ in model.named_parameters()}
    assert all(bool((t >= 0).all()) and float(t.max()) > 0 for t in found.full.values())


def test_every_shipped_retrained_model_matches_its_request_and_the_code(tmp_path, monkeypatch):
    """The models retrained without each class ship under the key retrain_from_scratch looks for: the
    retrain method (Compare) and the audit's reference both read them instead of training; a change of
    training code, data or schedule needs them rebuilt (scripts/build_checkpoints.py), or this fails."""
    from ssd_core.audit import retrained_reference
    from ssd_core.methods import run_method
    from ssd_core.train import SHIPPED_CHECKPOINTS

    module = _build_script()
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    wanted = set()
    for dataset_name, model_name in module.SHIPPED_RETRAINED_FOR:
        dataset = _shipped_dataset(dataset_name)
        stems = module.retrained_stems(dataset_name, model_name)
        assert stems and set(stems) <= set(range(dataset.num_classes))
        assert all((SHIPPED_CHECKPOINTS / "retrained" / f"{stem}.safetensors").is_file() for stem in stems.values())
        wanted.update(stems.values())
        target = max(stems)
        split = make_split(dataset, ForgetRequest("class", dataset.classes[target]))  # by name: the same file as by index
        reference = retrained_reference(split, model_name, device="cpu")
        assert reference.source == "shipped" and reference.seconds > 60
        assert accuracy(reference.model, split.forget_test) == 0.0 and reference.test_acc > 0.8
        original = load_or_train(dataset, model_name, device="cpu").model
        result = run_method("retrain", original, make_split(dataset, ForgetRequest("class", target)), device="cpu")
        assert result.diagnostics["source"] == "shipped" and result.seconds["total"] < 30
        assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                     reference.model.state_dict().values(), strict=True))
    assert {p.stem for p in (SHIPPED_CHECKPOINTS / "retrained").glob("*.safetensors")} == wanted
    assert not list(tmp_path.glob("retrained/*"))  # read, never trained into the cache


def test_the_retrain_method_and_the_audit_share_one_retrained_model(tmp_path, monkeypatch):
    """Retraining a request once is enough: Compare's retrain row writes the model the audit's reference
    then reads (same weights), whether the class was named by index or by name."""
    from ssd_core.audit import retrained_reference
    from ssd_core.methods import run_method
    from ssd_core.models import ModelSpec, register

    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    register(ModelSpec("train_test_linear", "test: linear", lambda c, k, s: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(c * s * s, k)), 2, 1e-2, 64))
    ds = load_dataset("digits")
    original = train_model(ds, TrainConfig.default("digits", "train_test_linear"), device="cpu").model
    result = run_method("retrain", original, make_split(ds, ForgetRequest("class", 4)), device="cpu",
                        model_name="train_test_linear")
    assert result.diagnostics["source"] == "trained"
    assert len(list((tmp_path / "retrained").glob("*.safetensors"))) == 1
    reference = retrained_reference(make_split(ds, ForgetRequest("class", "4")), "train_test_linear", device="cpu")
    assert reference.source == "cache"
    assert all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                 reference.model.state_dict().values(), strict=True))
    again = run_method("retrain", original, make_split(ds, ForgetRequest("class", 4)), device="cpu",
                       model_name="train_test_linear")
    assert again.diagnostics["source"] == "cache" and again.diagnostics["recorded_training_s"] > 0
    other = run_method("retrain", original, make_split(ds, ForgetRequest("class", 5)), device="cpu",
                       model_name="train_test_linear")
    assert other.diagnostics["source"] == "trained"  # another request is another model


def test_importance_cache_key_names_the_code_version(tmp_path):
    from ssd_core.importance import IMPORTANCE_CODE_VERSION, ImportanceCache

    ds = load_dataset("digits")
    model = train_model(ds, small_config(0), device="cpu").model
    split = make_split(ds, ForgetRequest("class", 4))
    ImportanceCache(tmp_path).full_importance(model, split.forget_train, "data", device="cpu")
    (path,) = tmp_path.glob("*.safetensors")
    assert path.stem.endswith(f"-v{IMPORTANCE_CODE_VERSION}")


def test_retrain_builds_a_fresh_model(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    ds = load_dataset("digits")
    split = make_split(ds, ForgetRequest("class", 4))
    original = train_model(ds, small_config(0), device="cpu").model
    retrained = retrain_from_scratch(ds, split.retain_train, small_config(0), data_key=f"{ds.fingerprint()}-train",
                                     device="cpu").model
    for (name, p0), p1 in zip(original.named_parameters(), retrained.parameters()):
        assert not torch.equal(p0, p1), f"{name} was carried over instead of re-initialised"
    assert accuracy(retrained, split.forget_test) < 0.05
