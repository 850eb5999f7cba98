"""`python -m ssd_core reproduce ssd-cifar100-fullclass` end to end on tiny CIFAR-100-format files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssd_core.cli import main
from ssd_core.data.files import CIFAR100_FINE_CLASSES
from ssd_core.reproduce import table_text

PAPER = ("rocket", "mushroom", "baby", "lamp", "sea")


def _records(per_class: int, rng: np.random.Generator) -> bytes:
    fine = np.repeat(np.arange(100), per_class)
    coarse = fine % 20
    # each class a different mean colour, so a small model learns something in a few epochs
    base = (fine[:, None] * np.array([37, 91, 53])[None, :]) % 200
    images = base[:, :, None, None] + rng.integers(0, 55, (len(fine), 3, 32, 32))
    rows = np.concatenate([coarse[:, None], fine[:, None], images.reshape(len(fine), -1)], axis=1)
    return rows.astype(np.uint8).tobytes()


@pytest.fixture(scope="module", autouse=True)
def tiny_model():
    """A linear model with a 3-epoch schedule, so the original and 5 retrains take seconds."""
    from torch import nn

    from ssd_core.models import ModelSpec, register

    register(ModelSpec("repro_linear", "test: linear", lambda c, k, s: nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, k)),
                       3, 1e-2, 64))


@pytest.fixture(scope="module")
def tiny_cifar100(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-100-binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "train.bin").write_bytes(_records(4, rng))
    (folder / "test.bin").write_bytes(_records(2, rng))
    return root


def test_reproduce_runs_the_papers_five_classes_and_prints_the_table(tiny_cifar100, capsys):
    assert all(name in CIFAR100_FINE_CLASSES for name in PAPER)
    code = main(["reproduce", "ssd-cifar100-fullclass", "--data-dir", str(tiny_cifar100), "--model", "repro_linear",
                 "--device", "cpu", "--quiet", "--json", "-"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [(r["class"], r["method"]) for r in result["rows"]] == [(c, m) for c in PAPER for m in ("ssd", "assd", "retrain")]
    for row in result["rows"]:
        assert 0.0 <= row["retain_test_acc"] <= 1.0 and 0.0 <= row["forget_test_acc"] <= 1.0 and row["seconds"] > 0
    assert {r["alpha"] for r in result["rows"] if r["method"] == "ssd"} == {10.0}
    assert all(r["alpha"] is not None and r["alpha"] != 10.0 for r in result["rows"] if r["method"] == "assd")
    assert result["ssd_over_retrain"] is not None and result["ssd_over_retrain"] < 1.0
    table = table_text(result)
    assert "rocket" in table and "SSD time over retrain time" in table


def test_reproduce_without_the_data_or_with_an_unknown_name_is_one_sentence(tmp_path, capsys):
    assert main(["reproduce", "ssd-cifar100-fullclass", "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert "CIFAR-100 files not found" in capsys.readouterr().err
    assert main(["reproduce", "nope", "--quiet"]) == 2
    assert "Unknown experiment" in capsys.readouterr().err


def test_reproduce_adds_the_vits_rows_from_a_saved_hugging_face_folder(tiny_cifar100, tmp_path, capsys):
    """A tiny random ViT for 100 classes stands in for the paper's fine-tuned ViT-B/16: its rows are
    SSD at the paper's ViT alpha (5) and adaptive SSD for the same five classes."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=100)
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit", safe_serialization=True)
    code = main(["reproduce", "ssd-cifar100-fullclass", "--data-dir", str(tiny_cifar100), "--model", "repro_linear",
                 "--vit", str(tmp_path / "vit"), "--device", "cpu", "--quiet", "--json", "-"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    vit_rows = [r for r in result["rows"] if r["model"] == "vit"]
    assert [(r["class"], r["method"]) for r in vit_rows] == [(c, m) for c in PAPER for m in ("ssd", "assd")]
    assert {r["alpha"] for r in vit_rows if r["method"] == "ssd"} == {5.0}
    assert 0.0 <= result["vit_test_acc"] <= 1.0
    assert len([r for r in result["rows"] if r["model"] == "repro_linear"]) == 15
    table = table_text(result)
    assert "no retrain row" in table and table.count("\nvit ") == 10
