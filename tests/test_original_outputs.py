"""The original's logits on every image, cached and shipped (ssd_core.original_outputs): a "before" read from a
file is bitwise a fresh pass's, and a file that is not this machine's or is damaged is computed again."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import ssd_core.original_outputs as oo
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.metrics import evaluate, split_outputs
from ssd_core.train import cache_dir, load_or_train


@pytest.fixture
def counted(monkeypatch):
    """How many images each logits_of call in the module evaluates."""
    calls: list[int] = []
    real = oo.logits_of

    def counting(model, data, device, batch_size=None):
        calls.append(len(data))
        return real(model, data, device, batch_size)

    monkeypatch.setattr(oo, "logits_of", counting)
    oo.clear_memory()
    yield calls
    oo.clear_memory()


def _setup(name: str, model_name: str):
    dataset = load_dataset(name)
    model = load_or_train(dataset, model_name, device="cpu").model.eval()
    return model, make_split(dataset, ForgetRequest("class", 2))


def _equal(a, b) -> bool:
    return torch.equal(a.train_logits, b.train_logits) and torch.equal(a.test_logits, b.test_logits)


def test_the_shipped_logits_are_read_checked_on_four_batches_and_equal_a_fresh_pass(counted):
    model, split = _setup("shapes", "resnet18_narrow")
    key = oo.outputs_key(model, split, "cpu")
    assert (oo.SHIPPED_OUTPUTS / f"{key}.safetensors").is_file()
    found = oo.original_outputs(model, split)
    n_images = len(split.train) + len(split.test)
    assert sum(counted) <= 4 * 64 < n_images  # the check's batches, not a pass over every image
    assert _equal(found, split_outputs(model, split, "cpu"))
    assert oo.original_outputs(model, split) is found and sum(counted) <= 4 * 64  # then from memory


def test_computed_logits_go_to_the_cache_and_are_read_from_it(counted):
    model, split = _setup("digits", "smallcnn")  # nothing shipped for digits
    (cache_dir() / "outputs" / f"{oo.outputs_key(model, split, 'cpu')}.safetensors").unlink(missing_ok=True)  # earlier tests
    fresh = split_outputs(model, split, "cpu")
    first = oo.original_outputs(model, split)
    assert _equal(first, fresh) and sum(counted) == len(split.train) + len(split.test)
    assert (cache_dir() / "outputs" / f"{oo.outputs_key(model, split, 'cpu')}.safetensors").is_file()
    oo.clear_memory()
    counted.clear()
    assert _equal(oo.original_outputs(model, split), fresh)
    assert 0 < sum(counted) < len(split.train)  # read, and checked on its first and last batches


@pytest.mark.parametrize("where", ["first row", "last row"])
def test_logits_another_machine_computed_are_not_used(counted, where):
    """Stored rows that differ from this machine's arithmetic in the last bit (the first or the last batch) make
    the whole entry be computed again, and the cache then holds this machine's."""
    model, split = _setup("digits", "smallcnn")
    fresh = split_outputs(model, split, "cpu")
    path = cache_dir() / "outputs" / f"{oo.outputs_key(model, split, 'cpu')}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    train = fresh.train_logits.clone()
    row = 0 if where == "first row" else -1
    train[row, 0] = torch.nextafter(train[row, 0], torch.tensor(float("inf")))
    save_file({"train": train, "test": fresh.test_logits.contiguous()}, str(path))
    assert _equal(oo.original_outputs(model, split), fresh)
    assert sum(counted) >= len(split.train) + len(split.test)  # computed
    assert torch.equal(load_file(str(path))["train"], fresh.train_logits)


def test_a_damaged_or_short_file_is_computed_again(counted, caplog):
    model, split = _setup("digits", "smallcnn")
    fresh = split_outputs(model, split, "cpu")
    path = cache_dir() / "outputs" / f"{oo.outputs_key(model, split, 'cpu')}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a safetensors file")
    assert _equal(oo.original_outputs(model, split), fresh)
    assert "unreadable" in caplog.text
    oo.clear_memory()
    save_file({"train": fresh.train_logits[:-1].contiguous(), "test": fresh.test_logits.contiguous()}, str(path))
    assert _equal(oo.original_outputs(model, split), fresh)


def test_the_clis_before_on_every_image_is_the_full_evaluation(capsys):
    """`unlearn` reads the original's logits through the cache; its "before" is evaluate()'s on every image."""
    import json

    from ssd_core.cli import main

    model, split = _setup("shapes", "resnet18_narrow")
    oo.clear_memory()
    assert main(["unlearn", "--dataset", "shapes", "--forget-class", "2", "--method", "ssd", "--alpha", "100",
                 "--quiet", "--json", "-"]) == 0
    before = json.loads(capsys.readouterr().out)["before"]
    want = evaluate(model, split).to_dict()
    for key in ("retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc", "mia",
                "per_class_acc", "confusion"):
        assert before[key] == want[key], key


def test_keep_false_computes_and_keeps_nothing(counted):
    """An upload's logits on a shared server (the page's audit of an uploaded checkpoint): computed, never kept."""
    model, split = _setup("digits", "smallcnn")
    path = cache_dir() / "outputs" / f"{oo.outputs_key(model, split, 'cpu')}.safetensors"
    path.unlink(missing_ok=True)
    for _ in range(2):
        assert _equal(oo.original_outputs(model, split, keep=False), split_outputs(model, split, "cpu"))
    assert sum(counted) == 2 * (len(split.train) + len(split.test)) and not path.exists()
