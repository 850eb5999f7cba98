"""Shared fixtures: one small digits run (original model, class-0 split, SSD importances)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass

import pytest
import torch

# Tests run one at a time on the CI machine's two cores: torch uses both (servers the tests start
# set their own thread count).
os.environ.setdefault("UNLEARNING_LAB_THREADS", "2")
os.environ.setdefault("UNLEARNING_LAB_PREFETCH", "0")  # no background work between steps (tests enable it)
torch.set_num_threads(int(os.environ["UNLEARNING_LAB_THREADS"]))

# Tests never read or write the user's caches or data: one fresh folder per test session (the
# servers and CLI runs the tests start inherit it). Shipped checkpoints still load from the package.
_SCRATCH = tempfile.mkdtemp(prefix="unlearning-lab-tests-")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["UNLEARNING_LAB_CACHE"] = os.path.join(_SCRATCH, "cache")
os.environ["UNLEARNING_LAB_DATA"] = os.path.join(_SCRATCH, "data")


def _scan_components_once() -> None:
    """Every new AppTest scans all installed packages for Streamlit components (0.15-0.35 s each, several
    hundred AppTests in the suite: about a minute in all). The installed packages do not change while the
    tests run, so the first scan's answer serves every AppTest."""
    try:
        from streamlit.components.v2 import manifest_scanner
    except ImportError:  # another Streamlit: nothing to share
        return
    scan = manifest_scanner.scan_component_manifests
    found: list = []

    def scan_once(*args, **kwargs):
        if not found:
            found.append(scan(*args, **kwargs))
        return list(found[0])

    manifest_scanner.scan_component_manifests = scan_once


_scan_components_once()


@dataclass
class DigitsRun:
    dataset: object
    model: torch.nn.Module
    split: object
    importances: object


@pytest.fixture(scope="session")
def digits_run() -> DigitsRun:
    from ssd_core.data import ForgetRequest, load_dataset, make_split
    from ssd_core.methods.ssd import ssd_importances
    from ssd_core.train import load_or_train

    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    split = make_split(dataset, ForgetRequest("class", 0))
    return DigitsRun(dataset, model, split, ssd_importances(model, split, "fisher", 64, device="cpu"))


def fashion_mnist_or_skip():
    """Fashion-MNIST as a user gets it (no data folder given: the lab's folder, then Debian's
    /usr/share/datasets). On CI, where .ci/run installs Debian's dataset-fashion-mnist, missing files
    fail the test instead of skipping it."""
    from ssd_core.data import load_dataset
    from ssd_core.data.files import dataset_files_present

    if not dataset_files_present("fashion_mnist"):
        message = "Fashion-MNIST files not found (apt-get install dataset-fashion-mnist)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs them, so CI must have them")
        pytest.skip(message)
    return load_dataset("fashion_mnist")


@pytest.fixture(scope="session")
def fashion_mnist():
    return fashion_mnist_or_skip()
