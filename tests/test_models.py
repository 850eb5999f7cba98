"""Model registry: every model runs on 8x8 greyscale and 32x32 RGB."""

import pytest
import torch

from ssd_core.errors import InputError
from ssd_core.models import available_models, build_model, has_conv_layers, last_conv_layer, resolve_device


@pytest.mark.parametrize("name", ["smallcnn", "resnet18", "resnet18_narrow", "vit_tiny"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_models_forward(name, shape):
    model = build_model(name, 7, shape, (0.5,) * shape[0], (0.25,) * shape[0], seed=0).eval()
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_seeded_build_is_deterministic_and_resnet_is_cifar_variant():
    a = build_model("resnet18_narrow", 10, (3, 32, 32), (0.5,) * 3, (0.2,) * 3, seed=1)
    b = build_model("resnet18_narrow", 10, (3, 32, 32), (0.5,) * 3, (0.2,) * 3, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    stem = a.net.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in a.modules())
    assert a.net.layer4[0].conv1.out_channels == 16 * 8
    full = build_model("resnet18", 10, (3, 32, 32), (0.5,) * 3, (0.2,) * 3)
    assert full.net.layer4[0].conv1.out_channels == 512
    assert 10e6 < sum(p.numel() for p in full.parameters()) < 12e6


def test_registry_and_helpers():
    models = available_models()
    assert {"smallcnn", "resnet18", "resnet18_narrow", "vit_tiny"} <= set(models)
    vit = build_model("vit_tiny", 10, (1, 8, 8), (0.5,), (0.2,))
    assert not has_conv_layers(vit.net.blocks) and last_conv_layer(build_model("smallcnn", 3, (1, 8, 8), (0.5,), (0.2,))) is not None
    with pytest.raises(InputError, match="Unknown model"):
        build_model("alexnet", 10, (1, 8, 8), (0.5,), (0.2,))


def test_torchvision_models_only_when_importable():
    try:
        import torchvision  # noqa: F401

        importable = True
    except Exception:  # noqa: BLE001 - a torch/torchvision mismatch raises RuntimeError
        importable = False
    assert ("tv_resnet18" in available_models()) == importable


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="Unknown device"):
        resolve_device("tpu")
