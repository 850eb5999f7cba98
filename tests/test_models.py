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


def test_the_readme_model_runs_through_the_cli_and_is_in_the_sidebar(tmp_path, monkeypatch):
    """README "Adding a model": the example, as printed, trains on digits from the CLI and forgets class 3;
    loaded as the dashboard loads plug-ins, the sidebar offers it."""
    import json
    import re
    import subprocess
    import sys

    from apptest_helpers import ROOT, assert_clean, new_app

    from ssd_core.models import _REGISTRY
    from ui.startup import load_plugins

    example = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text().split("<!-- example: my_model.py -->", 1)[1],
                        re.S).group(1)
    assert 8 <= len([line for line in example.splitlines() if line.strip()]) <= 25
    plugin = tmp_path / "my_model.py"
    plugin.write_text(example)
    run = subprocess.run([sys.executable, "-m", "ssd_core", "--plugin", str(plugin), "unlearn", "--model", "mlp",
                          "--forget-class", "3", "--quiet", "--json", "-"], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["model"] == "mlp" and result["model_source"] == "trained"
    assert result["before"]["forget_test_acc"] > 0.85 and result["after"]["forget_test_acc"] <= 0.05
    assert result["before"]["retain_test_acc"] - result["after"]["retain_test_acc"] <= 0.05

    monkeypatch.setenv("UNLEARNING_LAB_PLUGINS", str(plugin))
    load_plugins.clear()
    try:
        at = new_app({"forget": "class:3"}).run()
        assert_clean(at)
        assert "mlp" in at.selectbox(key="setup_model").options
    finally:
        _REGISTRY.pop("mlp", None)
        load_plugins.clear()


def test_the_memory_probe_counts_the_same_bytes_on_the_cpu_without_importing_dynamo():
    """ssd_core.memory probes small models on the CPU: the same bytes as on the 'meta' device, without the 3.4-s
    torch._dynamo import that a meta forward pass through GroupNorm starts (every CLI run paid it)."""
    import subprocess
    import sys as _sys

    from ssd_core import memory
    from ssd_core.models import build_model

    model = build_model("smallcnn", 10, (1, 8, 8), (0.5,), (0.5,))
    on_cpu = memory.activation_bytes(model, (1, 8, 8))
    code = ("import sys, torch\nfrom ssd_core import memory\nfrom ssd_core.models import build_model\n"
            "model = build_model('smallcnn', 10, (1, 8, 8), (0.5,), (0.5,))\n"
            "print(memory.activation_bytes(model, (1, 8, 8)), 'torch._dynamo' in sys.modules)")
    out = subprocess.run([_sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(on_cpu), "False"]
    old = memory.SMALL_PROBE_VALUES
    try:
        memory.SMALL_PROBE_VALUES = 0  # force the meta device
        assert memory.activation_bytes(model, (1, 8, 8)) == on_cpu
    finally:
        memory.SMALL_PROBE_VALUES = old


@pytest.mark.parametrize("name", ["resnet18_narrow", "resnet18_cifar100"])
def test_an_evaluation_pass_adds_in_place_and_equals_the_pass_with_gradients(name):
    """Without gradients the ResNets add the shortcut and apply ReLU in place (models._inference, a faster CPU
    pass): the logits must be bitwise those of the out-of-place pass with gradients on, the input untouched,
    and the graph the prefix shortcut traces (under no_grad) must give the same logits too."""
    from ssd_core.data import Subset
    from ssd_core.metrics import logits_of
    from ssd_core.prefix import PrefixCache

    model = build_model(name, 5, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, seed=0).eval()
    torch.manual_seed(0)
    for m in model.modules():  # running statistics away from 0/1, so BatchNorm does something
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(6, 3, 32, 32)
    kept = x.clone()
    with_grad = model(x).detach()
    with torch.no_grad():
        without = model(x)
    assert torch.equal(with_grad, without) and torch.equal(x, kept)
    data = Subset(x, torch.zeros(6, dtype=torch.long), torch.arange(6))
    cache = PrefixCache(model, data, batch_size=6)
    last = [n for n, _ in model.named_parameters()][-1]  # a change in the head: the graph runs from a late cut
    assert cache.graph is not None and any(n.kwargs.get("inplace") for n in cache.nodes)
    assert torch.equal(cache.logits(model, [last]), logits_of(model, data, "cpu", batch_size=6))


@pytest.mark.parametrize("estimator", ["fisher", "lossfree"])
def test_the_importance_pass_takes_the_in_place_steps_and_its_numbers_stay_bitwise(estimator, monkeypatch):
    """The importance pass's torch.func transforms run with autograd off, so the ResNets take their in-place steps
    there too: its numbers (and so the shipped I_D files) must be bitwise those of the out-of-place forward."""
    from ssd_core import models
    from ssd_core.data import Subset
    from ssd_core.importance import compute_importance

    model = build_model("resnet18_narrow", 5, (3, 32, 32), (0.5,) * 3, (0.25,) * 3, seed=0).eval()
    torch.manual_seed(1)
    data = Subset(torch.rand(6, 3, 32, 32), torch.randint(0, 5, (6,)), torch.arange(6))
    taken = []
    inference = models._inference
    monkeypatch.setattr(models, "_inference", lambda: taken.append(inference()) or taken[-1])
    in_place = compute_importance(model, data, estimator, 3, "cpu")
    assert any(taken)  # the pass did take the in-place steps
    monkeypatch.setattr(models, "_inference", lambda: False)
    out_of_place = compute_importance(model, data, estimator, 3, "cpu")
    assert all(torch.equal(in_place[name], out_of_place[name]) for name in out_of_place)
