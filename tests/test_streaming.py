"""Data that does not fit in memory: image folders and CIFAR files read batch by batch give the
same importance as the in-memory path, and peak memory does not grow with the number of images."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssd_core.checkpoints import config_for_dataset, save_model
from ssd_core.cli import main
from ssd_core.data import Subset, load_dataset
from ssd_core.data.streaming import StreamingImages, stream
from ssd_core.importance import compute_importance, importance_from_loader
from ssd_core.train import load_or_train

ROOT = Path(__file__).resolve().parent.parent


def _close(found: dict, expected: dict) -> None:
    for name in expected:
        scale = float(expected[name].abs().max()) or 1.0
        assert float((found[name] - expected[name]).abs().max()) <= 1e-6 * scale, name


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """The first 400 digits training images as PNGs in digits/<class>/, and the same images in
    memory in the folder's order (classes sorted, files sorted)."""
    dataset = load_dataset("digits")
    root = tmp_path_factory.mktemp("stream") / "digits"
    xs, ys = [], []
    for c in range(10):
        (root / f"c{c}").mkdir(parents=True)
        picked = torch.nonzero(dataset.train_y[:400] == c).flatten()
        for j, i in enumerate(picked.tolist()):
            Image.fromarray(dataset.train_x[i, 0].numpy()).save(root / f"c{c}" / f"{j:04d}.png")
            xs.append(dataset.train_x[i])
            ys.append(c)
    memory = Subset(torch.stack(xs), torch.tensor(ys), torch.arange(len(ys)))
    return root, memory, dataset


@pytest.mark.parametrize("estimator", ["fisher", "fisher_exact", "lossfree"])
def test_streamed_folder_gives_the_in_memory_importance(digits_folder, estimator):
    root, memory, dataset = digits_folder
    model = load_or_train(dataset, "smallcnn").model
    images = StreamingImages.folder(root)
    assert len(images) == len(memory) and images.size == (8, 8)
    assert torch.equal(images[0][0], memory.x[0]) and images[len(images) - 1][1] == int(memory.y[-1])
    found = importance_from_loader(model, stream(images, 64), estimator, "cpu")
    _close(found, compute_importance(model, memory, estimator, 64, "cpu"))


def test_cifar_records_are_memory_mapped_and_read_per_item(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50).astype(np.uint8)
    pixels = rng.integers(0, 256, (50, 3 * 32 * 32), dtype=np.uint8)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
    images = StreamingImages.cifar_file(path)
    assert isinstance(images.records, np.memmap) and len(images) == 50
    x, y = images[7]
    assert y == labels[7] and torch.equal(x, torch.from_numpy(pixels[7].reshape(3, 32, 32)))
    (tmp_path / "bad.bin").write_bytes(b"\x00" * 100)
    from ssd_core.errors import InputError

    with pytest.raises(InputError, match="not a CIFAR binary"):
        StreamingImages.cifar_file(tmp_path / "bad.bin")


def test_cli_stream_dir_writes_the_importance(digits_folder, tmp_path, capsys):
    root, memory, dataset = digits_folder
    model = load_or_train(dataset, "smallcnn").model
    save_model(model, config_for_dataset("smallcnn", dataset), tmp_path / "model")
    assert main(["importance", "--stream-dir", str(root), "--checkpoint", str(tmp_path / "model.safetensors"),
                 "--checkpoint-config", str(tmp_path / "model.json"), "--out", str(tmp_path / "imp"), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["images"] == len(memory) and line["images_per_s"] > 0
    from safetensors.torch import load_file

    _close(load_file(line["out"]), compute_importance(model, memory, "fisher", 64, "cpu"))
    assert main(["importance", "--stream-dir", str(root), "--quiet"]) == 2
    assert "--checkpoint" in capsys.readouterr().err


PEAK = textwrap.dedent("""
    import resource, shutil, sys, torch
    from pathlib import Path
    from torch import nn
    sys.path.insert(0, sys.argv[3])
    from ssd_core.data.streaming import StreamingImages, stream
    from ssd_core.importance import importance_from_loader
    torch.set_num_threads(1)
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    blobs = [bytes.fromhex(h) for h in sys.argv[4].split(",")]
    for c in range(10):
        (root / f"c{c}").mkdir(parents=True)
    for i in range(n):  # n different files (the bytes repeat: writing, not encoding, is the cost)
        (root / f"c{i % 10}" / f"{i:06d}.png").write_bytes(blobs[i % len(blobs)])
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    images = StreamingImages.folder(root)
    importance_from_loader(model, stream(images, 256), "fisher", "cpu")
    shutil.rmtree(root)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
""")


def test_peak_memory_of_streamed_importance_does_not_grow_with_the_image_count(tmp_path):
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(16):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(buffer, format="PNG")
        blobs.append(buffer.getvalue().hex())
    peaks = {}
    for n in (2_000, 50_000):
        done = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / f"n{n}"), str(n), str(ROOT), ",".join(blobs)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[n] = int(done.stdout.split()[-1])
    # held whole, 50,000 32x32 grey images are 51 MB as uint8 and 205 MB as float32
    assert peaks[50_000] - peaks[2_000] < 20, peaks


def test_streamed_accuracy_equals_the_in_memory_one(digits_folder):
    from ssd_core.metrics import accuracy_from_loader, logits_of

    root, memory, dataset = digits_folder
    model = load_or_train(dataset, "smallcnn").model
    overall, per_class = accuracy_from_loader(model, stream(StreamingImages.folder(root), 64), 10)
    predicted = logits_of(model, memory, "cpu").argmax(1)
    assert overall == pytest.approx(float((predicted == memory.y).double().mean()), abs=1e-12)
    for c in range(10):
        mask = memory.y == c
        assert per_class[c] == pytest.approx(float((predicted[mask] == c).double().mean()), abs=1e-12)


@pytest.fixture(scope="module")
def digits_test_folder(tmp_path_factory):
    """The digits test images as PNGs in <class>/ folders, and in memory in the folder's order."""
    dataset = load_dataset("digits")
    root = tmp_path_factory.mktemp("stream-test") / "digits-test"
    xs, ys = [], []
    for c in range(10):
        (root / f"c{c}").mkdir(parents=True)
        for j, i in enumerate(torch.nonzero(dataset.test_y == c).flatten().tolist()):
            Image.fromarray(dataset.test_x[i, 0].numpy()).save(root / f"c{c}" / f"{j:04d}.png")
            xs.append(dataset.test_x[i])
            ys.append(c)
    return root, Subset(torch.stack(xs), torch.tensor(ys), torch.arange(len(ys)))


def _accuracies(model, memory, forget_class):
    from ssd_core.metrics import logits_of

    hit = logits_of(model, memory, "cpu").argmax(1) == memory.y
    forget = memory.y == forget_class
    return float(hit[forget].float().mean()), float(hit[~forget].float().mean())


@pytest.mark.parametrize("method", ["ssd", "assd"])
def test_streamed_unlearning_equals_the_in_memory_ssd(digits_folder, digits_test_folder, method):
    from ssd_core.dampening import dampen
    from ssd_core.guard import CollapseGuard, auto_setting
    from ssd_core.streamed import unlearn_streamed

    root, memory, dataset = digits_folder
    test_root, test_memory = digits_test_folder
    model = load_or_train(dataset, "smallcnn").model
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    result = unlearn_streamed(model, StreamingImages.folder(root), 3, method, test=StreamingImages.folder(test_root),
                              alpha=10.0 if method == "ssd" else None)

    full = compute_importance(model, memory, "fisher", 64, "cpu")
    forget_set = memory.select(memory.y == 3)
    forget = compute_importance(model, forget_set, "fisher", 64, "cpu")
    alpha = 10.0
    if method == "assd":
        guard = CollapseGuard(model, memory.select(memory.y != 3), forget_set, "cpu", whole_classes=True)
        alpha = auto_setting(model, full, forget, guard, len(forget_set), len(memory), 1.0).alpha
        assert result.auto is not None and result.auto["alpha"] == alpha
    expected_model, expected = dampen(model, full, forget, alpha, 1.0)
    assert result.alpha == pytest.approx(alpha, rel=1e-6)
    assert result.report.total_selected == expected.total_selected > 0
    assert (result.after.forget_test_acc, result.after.retain_test_acc) == pytest.approx(
        _accuracies(expected_model, test_memory, 3), abs=1e-6)
    assert (result.before.forget_test_acc, result.before.retain_test_acc) == pytest.approx(
        _accuracies(model, test_memory, 3), abs=1e-6)
    assert result.after.forget_test_acc < 0.2 < 0.9 < result.after.retain_test_acc  # it forgot, and kept the rest
    from ssd_core.metrics import entropy, logits_of, mia_from_entropies

    def mia(net):  # what metrics.Evaluator computes, on the same images
        return mia_from_entropies(*(entropy(logits_of(net, part, "cpu"))
                                    for part in (memory.select(memory.y != 3), test_memory, forget_set)))

    assert (result.before.mia, result.after.mia) == pytest.approx((mia(model), mia(expected_model)), abs=1e-9)
    assert result.after.mia < result.before.mia
    assert all(torch.equal(before[n], t) for n, t in model.state_dict().items())  # the original is untouched


def test_cli_unlearns_streamed_folders_and_refuses_the_methods_that_cannot_stream(digits_folder, digits_test_folder,
                                                                                  tmp_path, capsys):
    root, memory, dataset = digits_folder
    test_root, _ = digits_test_folder
    model = load_or_train(dataset, "smallcnn").model
    save_model(model, config_for_dataset("smallcnn", dataset), tmp_path / "model")
    common = ["unlearn", "--stream-dir", str(root), "--stream-test-dir", str(test_root), "--checkpoint",
              str(tmp_path / "model.safetensors"), "--checkpoint-config", str(tmp_path / "model.json"), "--quiet"]
    assert main([*common, "--forget-class", "c3", "--alpha", "10", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["streamed"] and out["forget_class"] == "c3" and out["n_train"] == len(memory)
    assert out["after"]["forget_test_acc"] < 0.2 and out["diagnostics"]["report"]["total_selected"] > 0
    assert main([*common, "--forget-class", "3"]) == 0  # auto: assd with the guard
    assert "assd on streamed" in capsys.readouterr().out
    assert main([*common, "--forget-class", "3", "--method", "finetune"]) == 2
    err = capsys.readouterr().err
    assert "needs it in memory" in err and len(err.strip().splitlines()) == 1
    assert main([*common[:7], "--forget-class", "3"]) == 2
    assert "--checkpoint-config" in capsys.readouterr().err
