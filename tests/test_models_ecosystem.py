"""Researchers' own architectures: the SSD authors' pytorch-cifar100 ResNet-18 layout (their weights
load with strict key checks) and any architecture through --model-factory, each unlearned end to end."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from ssd_core.checkpoints import config_for_dataset, load_model
from ssd_core.cli import main
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.methods import run_method
from ssd_core.metrics import evaluate
from ssd_core.models import Cifar100ResNet18, ModelSpec, register, register_factory
from ssd_core.train import TrainConfig, train_model

AUTHORS_KEYS = ("conv1.0.weight", "conv1.1.running_mean", "conv2_x.0.residual_function.0.weight",
                "conv2_x.1.residual_function.4.bias", "conv3_x.0.shortcut.0.weight", "conv3_x.0.shortcut.1.weight",
                "conv5_x.1.residual_function.3.weight", "fc.weight", "fc.bias")


@pytest.fixture(scope="module")
def width8(tmp_path_factory):
    """A width-8 pytorch-cifar100 ResNet-18 trained briefly on digits and saved as the authors' code
    saves it (torch.save of the bare network's state dict, no normalisation inside)."""
    register(ModelSpec("resnet18_cifar100_w8", "test width 8", lambda c, k, s: Cifar100ResNet18(c, k, 8), 6, 3e-3, 64))
    dataset = load_dataset("digits")
    trained = train_model(dataset, TrainConfig("digits", "resnet18_cifar100_w8", 6, 3e-3, 64), device="cpu")
    bare = trained.model.net.state_dict()
    path = tmp_path_factory.mktemp("authors") / "resnet18-shapes.pth"
    torch.save(dict(bare), path)
    return dataset, path, bare


def test_the_layout_has_the_authors_parameter_names():
    keys = set(Cifar100ResNet18(3, 100).state_dict())
    assert set(AUTHORS_KEYS) <= keys
    assert sum(p.numel() for p in Cifar100ResNet18(3, 100).parameters()) == 11_220_132  # ResNet-18 on CIFAR-100


def test_authors_weights_load_strictly_and_unlearn_with_ssd(width8):
    dataset, path, bare = width8
    model = load_model(path, config_for_dataset("resnet18_cifar100_w8", dataset))
    assert torch.equal(model.net.conv2_x[0].residual_function[0].weight, bare["conv2_x.0.residual_function.0.weight"])
    accuracy = evaluate(model, make_split(dataset, ForgetRequest("class", target=0)), "cpu", with_mia=False).per_class_acc
    best = max(range(len(accuracy)), key=lambda c: accuracy[c])
    split = make_split(dataset, ForgetRequest("class", target=best))
    before = evaluate(model, split, "cpu", with_mia=False)
    after = evaluate(run_method("ssd", model, split, alpha=10.0).model, split, "cpu", with_mia=False)
    assert before.forget_test_acc > 0.8
    assert after.forget_test_acc < before.forget_test_acc - 0.3  # SSD dampened what the class relies on


def test_a_wrong_key_names_the_first_bad_key(width8, tmp_path):
    dataset, _, bare = width8
    state = dict(bare)
    state["conv2_x.0.residual_function.9.weight"] = state.pop("conv2_x.0.residual_function.0.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as found:
        load_model(path, config_for_dataset("resnet18_cifar100_w8", dataset))
    message = str(found.value)
    assert "conv2_x.0.residual_function.0.weight" in message or "conv2_x.0.residual_function.9.weight" in message
    assert "\n" not in message


def test_model_factory_from_the_users_code_runs_from_the_cli(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        from torch import nn

        def tiny(in_channels, num_classes, image_size):
            return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, 64), nn.ReLU(),
                                 nn.Linear(64, num_classes))

        def not_a_model(in_channels, num_classes, image_size):
            return 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["unlearn", "--dataset", "digits", "--model-factory", "my_models:tiny", "--forget-class", "3",
                 "--alpha", "10", "--quiet", "--json", "-"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "my_models:tiny" and result["model_source"] == "trained"
    assert result["before"]["forget_test_acc"] > 0.8 and result["after"]["forget_test_acc"] < result["before"]["forget_test_acc"]
    for bad, words in (("my_models", "package.module:function"), ("nowhere_xyz:tiny", "Cannot import"),
                       ("my_models:missing", "no function")):
        with pytest.raises(InputError, match=words):
            register_factory(bad)
    assert main(["unlearn", "--dataset", "digits", "--model-factory", "my_models:not_a_model", "--forget-class", "3",
                 "--quiet"]) == 2
    assert "not a torch nn.Module" in capsys.readouterr().err




@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A 2-layer ViT for 10 classes at 16 px, random weights, saved with save_pretrained (offline)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=10)
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    ViTForImageClassification(config).save_pretrained(folder, safe_serialization=True)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.25] * 3}))
    return folder


def test_a_saved_hugging_face_vit_loads_wraps_and_unlearns_end_to_end(tiny_vit, capsys):
    from ssd_core.hf import load_hf_classifier

    model = load_hf_classifier(str(tiny_vit), num_classes=10)
    assert model.image_size == 16 and model.preprocessing == ((0.5,) * 3, (0.25,) * 3)
    # grey 8x8 digits in [0, 1]: repeated to 3 channels, resized to 16, normalised, logits out
    x = torch.rand(4, 1, 8, 8)
    expected = model.model(pixel_values=(torch.nn.functional.interpolate(
        x.expand(-1, 3, -1, -1), size=(16, 16), mode="bilinear", align_corners=False) - 0.5) / 0.25).logits
    assert torch.allclose(model(x), expected, atol=1e-6)
    code = main(["unlearn", "--dataset", "digits", "--model", f"hf:{tiny_vit}", "--forget-class", "3", "--alpha", "5",
                 "--quiet", "--json", "-"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_source"] == "hugging face" and result["diagnostics"]["report"]["total_selected"] > 0


def test_hugging_face_refusals_are_one_sentence(tiny_vit, tmp_path):
    from ssd_core.hf import load_hf_classifier

    with pytest.raises(InputError, match="dataset has 8"):
        load_hf_classifier(str(tiny_vit), num_classes=8)
    pickled = tmp_path / "bin-only"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_vit / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(InputError, match="only safetensors"):
        load_hf_classifier(str(pickled))
    with pytest.raises(InputError, match="hub"):
        load_hf_classifier("google/vit-base-patch16-224")  # offline here: one sentence, no traceback


def test_timm_models_are_optional_and_say_so_when_timm_cannot_be_imported():
    from ssd_core.models import get_spec

    try:
        import timm  # noqa: F401
    except Exception:  # noqa: BLE001 - here: not installed, or broken next to this torch
        with pytest.raises(InputError, match="timm"):
            get_spec("timm:resnet18")
    else:  # where timm imports, a timm name builds a model of the dataset's shape
        spec = get_spec("timm:resnet18")
        assert spec.build(3, 10, 32)(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
