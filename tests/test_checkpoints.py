"""Untrusted checkpoints: what loads (and reproduces the exporter's numbers) and what is refused."""

from __future__ import annotations

import io
import json
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from ssd_core.checkpoints import (
    ModelConfig,
    config_for_dataset,
    load_model,
    max_checkpoint_bytes,
    model_bytes,
    read_model_config,
    read_state_dict,
    save_model,
)
from ssd_core.errors import InputError
from ssd_core.models import build_model


class Evil:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture(scope="module")
def digits_setup():
    from ssd_core.data import ForgetRequest, load_dataset, make_split

    dataset = load_dataset("digits")
    config = config_for_dataset("smallcnn", dataset)
    model = build_model("smallcnn", dataset.num_classes, dataset.input_shape, dataset.mean, dataset.std, seed=0).eval()
    split = make_split(dataset, ForgetRequest("class", 0))
    return dataset, config, model, split


def _config(num_classes: int = 10, model: str = "smallcnn") -> ModelConfig:
    return ModelConfig(model=model, num_classes=num_classes, input_shape=(1, 8, 8), mean=(0.3,), std=(0.4,))


def _torch_bytes(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def _refused(source, config: ModelConfig | None = None, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        if config is None:
            read_state_dict(source, **kwargs)
        else:
            load_model(source, config, **kwargs)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message  # one sentence
    return message


def _replace_entry(data: bytes, entry_suffix: str, payload: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """A copy of a torch.save zip with one entry's bytes replaced (and optional extra entries)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names on purpose
        for info in source.infolist():
            target.writestr(info.filename, payload if info.filename.endswith(entry_suffix) else source.read(info))
        for name, value in (extra or {}).items():
            target.writestr(name, value)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# What loads


def test_safetensors_export_reloads_with_identical_outputs_and_metrics(digits_setup, tmp_path):
    from ssd_core.metrics import evaluate, logits_of

    dataset, config, model, split = digits_setup
    weights, meta = save_model(model, config, tmp_path / "exported", {"method": "ssd"})
    reloaded = load_model(weights, read_model_config(meta))
    assert not reloaded.training
    assert torch.equal(logits_of(model, dataset.test(), "cpu"), logits_of(reloaded, dataset.test(), "cpu"))
    assert evaluate(reloaded, split, "cpu").summary() == evaluate(model, split, "cpu").summary()
    # The in-memory download (model_bytes) loads the same way.
    again = load_model(model_bytes(model), config)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_pt_state_dict_variants_load_to_the_same_model(digits_setup):
    from ssd_core.metrics import evaluate

    dataset, config, model, split = digits_setup
    state = model.state_dict()
    expected = evaluate(model, split, "cpu", with_mia=False).summary()
    sources = {
        "plain": _torch_bytes(state),
        "wrapped": _torch_bytes({"state_dict": state, "epoch": 3, "best_acc": 0.9}),
        "bare network": _torch_bytes(model.net.state_dict()),
        "DataParallel": _torch_bytes({f"module.{k}": v for k, v in state.items()}),
    }
    for label, data in sources.items():
        reloaded = load_model(data, config)
        assert evaluate(reloaded, split, "cpu", with_mia=False).summary() == expected, label


def test_safetensors_whose_header_length_starts_like_a_pickle_loads(digits_setup):
    """A header of 128 + 256k bytes makes the file start with 0x80, the pickle protocol byte."""
    from safetensors.torch import save

    _, config, model, _ = digits_setup
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for pad in range(300):
        data = save(state, metadata={"pad": "x" * pad})
        if data[0] == 0x80:
            break
    assert data[0] == 0x80
    reloaded = load_model(data, config)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))


def test_half_precision_weights_are_accepted_and_cast(digits_setup):
    dataset, config, model, _ = digits_setup
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    reloaded = load_model(_torch_bytes(half), config)
    weight = reloaded.state_dict()["net.features.0.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, model.state_dict()["net.features.0.weight"].half().float())


# ---------------------------------------------------------------------------------------------
# Code execution is refused before anything is unpickled


def test_malicious_torch_save_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    data = _torch_bytes({"weight": torch.zeros(2), "payload": Evil(marker)})
    # The payload is live: unpickling it (what an unsafe load does) runs it.
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "evil.pt"
    path.write_bytes(data)
    message = _refused(path, _config())
    assert "pickled Python object ('builtins.exec')" in message and "unpickling objects can run code" in message
    assert not marker.exists()


def test_raw_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(Evil(marker))
    pickle.loads(data)  # live payload
    assert marker.exists()
    marker.unlink()
    message = _refused(data)
    assert message.startswith("The file is a raw pickle") and "can run code" in message
    assert not marker.exists()


def test_protocol_4_payload_inside_a_torch_zip_is_refused(tmp_path):
    """STACK_GLOBAL (protocol 4) names its target through the stack and the memo; still caught."""
    marker = tmp_path / "pwned"
    data = _replace_entry(_torch_bytes({"w": torch.zeros(1)}), "data.pkl", pickle.dumps(Evil(marker), protocol=4))
    message = _refused(data)
    assert "('builtins.exec')" in message
    assert not marker.exists()


def test_legacy_non_zip_torch_save_is_refused(digits_setup):
    _, config, model, _ = digits_setup
    data = _torch_bytes(model.state_dict(), _use_new_zipfile_serialization=False)
    assert "legacy pre-1.6 torch.save format" in _refused(data, config)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_is_refused(tmp_path):
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    assert _refused(path).startswith("TorchScript files are not accepted")


def test_pickled_whole_module_is_refused(digits_setup):
    _, config, model, _ = digits_setup
    message = _refused(_torch_bytes(model), config)
    assert "pickled Python object ('ssd_core.models.Classifier')" in message
    assert "state_dict()" in message


def test_torch_zip_with_extra_or_duplicate_entries_is_refused():
    data = _torch_bytes({"w": torch.zeros(1)})
    extra = _replace_entry(data, "data.pkl", zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl"), {"archive/run.py": b"print(1)"})
    assert "unexpected entry 'archive/run.py'" in _refused(extra)
    duplicate = _replace_entry(data, "nothing", b"", {"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2)})
    assert "duplicate entries" in _refused(duplicate)


# ---------------------------------------------------------------------------------------------
# Junk, truncated and oversized files


def test_empty_random_text_and_json_files_are_refused(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert _refused(empty) == "The checkpoint file is empty."
    random_bytes = torch.Generator().manual_seed(0)
    noise = bytes(torch.randint(0, 256, (4096,), generator=random_bytes, dtype=torch.uint8).tolist())
    assert _refused(noise).startswith("The file is neither safetensors nor a PyTorch state dict")
    assert _refused(b"hello, these are not weights\n" * 10).startswith("The file is neither safetensors")
    assert _refused(json.dumps(_config().to_dict()).encode()).startswith("This is a JSON file, not model weights")
    assert "does not exist" in _refused(tmp_path / "missing.safetensors")
    assert "does not exist" in _refused(tmp_path)  # a directory is not a file


def test_truncated_and_corrupt_files_are_refused(digits_setup):
    _, config, model, _ = digits_setup
    st = model_bytes(model)
    assert "truncated: its header promises" in _refused(st[: len(st) - 100], config)
    assert "truncated: it ends inside its header" in _refused(st[:50], config)
    pt = _torch_bytes(model.state_dict())
    assert "truncated or corrupt" in _refused(pt[: len(pt) // 2], config)
    bad_json = struct.pack("<Q", 10) + b"{not json}" + b"\0" * 8
    assert "header is not valid JSON" in _refused(bad_json)
    overlapping = json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    ).encode()
    assert "overlap or leave gaps" in _refused(struct.pack("<Q", len(overlapping)) + overlapping + b"\0" * 8)


def test_huge_safetensors_header_is_refused_without_reading_it():
    data = struct.pack("<Q", 1 << 30) + b"{" + b" " * 100
    assert "safetensors header is 1 GB, more than the 16 MB allowed" in _refused(data)


def test_size_cap_argument_and_environment(digits_setup, tmp_path, monkeypatch):
    _, config, model, _ = digits_setup
    path, _ = save_model(model, config, tmp_path / "m")
    assert _refused(path, config, max_bytes=1024) == "The checkpoint is larger than the 1 KB limit."
    assert "larger than the 1 KB limit" in _refused(path.read_bytes(), config, max_bytes=1024)
    monkeypatch.setenv("UNLEARNING_LAB_MAX_CHECKPOINT_MB", "0.01")
    assert max_checkpoint_bytes() == int(0.01 * 1024 * 1024)
    assert "larger than the 10.24 KB limit" in _refused(path, config)
    monkeypatch.setenv("UNLEARNING_LAB_MAX_CHECKPOINT_MB", "lots")
    assert max_checkpoint_bytes() == 200 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Mismatches with the chosen architecture


def test_other_architecture_is_named():
    narrow = build_model("resnet18_narrow", 10, (1, 8, 8), (0.3,), (0.4,), seed=0)
    message = _refused(model_bytes(narrow), _config())
    assert message == (
        "The checkpoint does not match smallcnn: it looks like a resnet18_narrow checkpoint; "
        "pick the architecture it was trained with."
    )
    unknown = {"encoder.weight": torch.zeros(3, 3), "decoder.bias": torch.zeros(3)}
    message = _refused(_torch_bytes(unknown), _config())
    assert message.startswith("The checkpoint does not match smallcnn (10 classes, 1x8x8 images): it lacks 'net.features.0.weight'")
    assert "unexpected 'net.encoder.weight' and 1 more" in message


def test_other_number_of_classes_is_named():
    five = build_model("smallcnn", 5, (1, 8, 8), (0.3,), (0.4,), seed=0)
    message = _refused(model_bytes(five), _config(10))
    assert message == (
        "The checkpoint was trained for 5 classes but 10 were chosen ('net.classifier.3.weight' has shape "
        "[5, 128], expected [10, 128]); pick the matching dataset or number of classes."
    )


def test_other_input_channels_are_named():
    rgb = build_model("smallcnn", 10, (3, 8, 8), (0.3,), (0.4,), seed=0)
    message = _refused(model_bytes(rgb), _config())
    assert "'normalize.mean' has shape [1, 3, 1, 1], expected [1, 1, 1, 1]" in message


def test_non_finite_and_wrong_dtype_values_are_refused():
    model = build_model("smallcnn", 10, (1, 8, 8), (0.3,), (0.4,), seed=0)
    state = model.state_dict()
    state["net.classifier.1.bias"] = state["net.classifier.1.bias"].clone()
    state["net.classifier.1.bias"][3] = float("nan")
    assert _refused(model_bytes_of(state), _config()) == (
        "The checkpoint has non-finite values (NaN or inf) in 'net.classifier.1.bias'."
    )
    state = model.state_dict()
    state["net.classifier.3.bias"] = torch.zeros(10, dtype=torch.int64)
    assert "'net.classifier.3.bias' has dtype torch.int64, but smallcnn expects torch.float32" in _refused(
        model_bytes_of(state), _config()
    )
    state = model.state_dict()
    state["normalize.std"] = torch.zeros_like(state["normalize.std"])
    assert "normalisation std ('normalize.std') must be positive" in _refused(model_bytes_of(state), _config())


def model_bytes_of(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


# ---------------------------------------------------------------------------------------------
# Config JSON


def test_config_json_is_validated(tmp_path):
    good = _config().to_dict()
    assert read_model_config(json.dumps(good).encode()) == ModelConfig.from_dict(good)
    with pytest.raises(InputError, match="num_classes must be between 2 and 10000, not 1000000000"):
        ModelConfig.from_dict({**good, "num_classes": 10**9})
    with pytest.raises(InputError, match=r"input_shape \[1, 100000, 100000\] is out of range"):
        ModelConfig.from_dict({**good, "input_shape": [1, 100000, 100000]})
    with pytest.raises(InputError, match="Unknown model 'evil'"):
        ModelConfig.from_dict({**good, "model": "evil"})
    with pytest.raises(InputError, match="missing 'model', 'num_classes' or 'input_shape'"):
        ModelConfig.from_dict({"model": "smallcnn"})
    with pytest.raises(InputError, match="not valid JSON"):
        read_model_config(b"{oops")
    with pytest.raises(InputError, match="std values must be positive"):
        ModelConfig.from_dict({**good, "std": [0.0]})
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * 1024 * 1024))
    with pytest.raises(InputError, match="model config is larger than the 1 MB limit"):
        read_model_config(big)
