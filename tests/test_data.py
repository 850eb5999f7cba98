"""Embedded datasets and forget requests."""

import subprocess
import sys

import pytest
import torch

from ssd_core.data import ForgetRequest, load_dataset, load_shapes, make_split, parse_indices
from ssd_core.errors import InputError


def test_digits_fixed_stratified_split():
    ds = load_dataset("digits")
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.train_y) + len(ds.test_y) == 1797
    assert ds.train_x.dtype == torch.uint8 and int(ds.train_x.max()) == 255
    train_share = torch.bincount(ds.train_y) / len(ds.train_y)
    test_share = torch.bincount(ds.test_y) / len(ds.test_y)
    assert torch.allclose(train_share, test_share, atol=0.01)  # stratified
    again = load_dataset("digits")
    assert again.fingerprint() == ds.fingerprint()


def test_digits_without_scikit_learn_equal_scikit_learns_own_loader_and_split():
    """load_digits reads scikit-learn's data file and a stored split, so the dashboard's first screen does not
    import scikit-learn (with scipy and pandas): the images, labels and split must be exactly scikit-learn's."""
    import numpy as np
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    from ssd_core.data import embedded

    bunch = sk_load_digits()
    images, labels = embedded._digits_arrays()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=bunch.target, random_state=0)
    mask = embedded.digits_test_mask()
    assert np.array_equal(np.flatnonzero(mask), np.sort(test_idx))
    assert np.array_equal(np.flatnonzero(~mask), np.sort(train_idx))
    data = load_dataset("digits")
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    assert torch.equal(data.test_x, torch.from_numpy(pixels[np.sort(test_idx)]))
    assert torch.equal(data.train_y, torch.from_numpy(bunch.target[np.sort(train_idx)].astype(np.int64)))
    code = "import sys; from ssd_core.data import load_dataset; load_dataset('digits'); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_shapes_deterministic_varied_and_not_linearly_trivial():
    a, b = load_shapes(n_train=600, n_test=200, seed=3), load_shapes(n_train=600, n_test=200, seed=3)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    c = load_shapes(n_train=600, n_test=200, seed=4)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.input_shape == (3, 32, 32) and a.num_classes >= 6
    assert set(a.train_y.tolist()) == set(range(a.num_classes))
    full = load_dataset("shapes")
    assert len(full.train_y) + len(full.test_y) >= 3000
    # Not linearly trivial: the best closed-form (exactly solved, so no convergence question)
    # ridge-regression classifier on raw pixels stays far from solving it (measured ~0.14,
    # chance 0.125; a small CNN reaches 0.98).
    n = 1000
    x = full.train_x[:n].reshape(n, -1).double() / 255.0
    mean = x.mean(0)
    x = x - mean
    x_test = full.test_x.reshape(len(full.test_x), -1).double() / 255.0 - mean
    targets = torch.nn.functional.one_hot(full.train_y[:n], full.num_classes).double()
    gram = x @ x.T
    best = 0.0
    for ridge in (0.1, 10.0, 1000.0):
        weights = x.T @ torch.linalg.solve(gram + ridge * torch.eye(n, dtype=torch.float64), targets)
        best = max(best, float(((x_test @ weights).argmax(1) == full.test_y).double().mean()))
    assert best < 0.5, best


def test_class_request_split():
    ds = load_dataset("digits")
    split = make_split(ds, ForgetRequest("class", 3))
    assert bool((split.forget_train.y == 3).all()) and bool((split.retain_train.y != 3).all())
    assert bool((split.forget_test.y == 3).all()) and bool((split.retain_test.y != 3).all())
    assert len(split.forget_train) + len(split.retain_train) == len(ds.train_y)
    assert len(split.forget_test) + len(split.retain_test) == len(ds.test_y)
    assert split.forget_classes == (3,)
    by_name = make_split(ds, ForgetRequest("class", "3"))
    assert torch.equal(by_name.forget_train.indices, split.forget_train.indices)


def test_random_and_indices_requests():
    ds = load_dataset("digits")
    a = make_split(ds, ForgetRequest("random", k=16, seed=1))
    b = make_split(ds, ForgetRequest("random", k=16, seed=1))
    c = make_split(ds, ForgetRequest("random", k=16, seed=2))
    assert len(a.forget_train) == 16 and torch.equal(a.forget_train.indices, b.forget_train.indices)
    assert not torch.equal(a.forget_train.indices, c.forget_train.indices)
    assert len(a.forget_test) == 0 and len(a.retain_test) == len(ds.test_y)
    picked = make_split(ds, ForgetRequest("indices", indices=(5, 1, 9)))
    assert picked.forget_train.indices.tolist() == [1, 5, 9]
    assert torch.equal(picked.forget_train.x[0], ds.train_x[1])


@pytest.mark.parametrize(
    "request_, message",
    [
        (ForgetRequest("class", 12), "out of range"),
        (ForgetRequest("class", "seven"), "not a class"),
        (ForgetRequest("random", k=0), "at least 1"),
        (ForgetRequest("random", k=10**6), "Cannot forget"),
        (ForgetRequest("indices", indices=()), "empty"),
        (ForgetRequest("indices", indices=(10**6,)), "out of range"),
        (ForgetRequest("subclass", "rocket"), "no sub-classes"),
    ],
)
def test_bad_requests_are_clear(request_, message):
    with pytest.raises(InputError, match=message):
        make_split(load_dataset("digits"), request_)


def test_forget_everything_is_refused():
    ds = load_dataset("digits")
    with pytest.raises(InputError, match="every"):
        make_split(ds, ForgetRequest("indices", indices=tuple(range(len(ds.train_y)))))


def test_parse_indices():
    assert parse_indices("3, 1,5-7") == (1, 3, 5, 6, 7)
    with pytest.raises(InputError):
        parse_indices("1,x")


def test_unknown_dataset():
    with pytest.raises(InputError, match="Unknown dataset"):
        load_dataset("imagenet")


def test_importing_the_library_keeps_float32_exact_on_nvidia_gpus():
    """PyTorch runs cuDNN convolutions in TF32 by default on recent NVIDIA GPUs: on an H200 SSD's Fisher importance
    was up to 47% off the CPU's with it and 0.03% without. Any computation with ssd_core goes through ssd_core.data,
    whose import turns TF32 off (checked in a fresh process, where PyTorch's default is still on)."""
    code = ("import torch; assert torch.backends.cudnn.allow_tf32; import ssd_core.importance; "
            "assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
