"""Layer by layer: where a forgotten class is still held, and a picture of it.

"An Illusion of Unlearning?" and Mirage (2026) found forgetting often sits between the features and the
classifier: the output forgets, the blocks below still separate the class. This module measures it per block:

- linear CKA (Kornblith et al. 2019, the Gram-matrix form) between a model's block outputs and the original's,
  and the retrained model's, on a seeded sample of forget-class images and of retain images: an unlearned model
  whose blocks stay at CKA ~1 to the original and below it to the retrained model has changed little inside;
- a linear probe (:func:`.probe.fit_probe`) at each block, on its channel-averaged output, read on the forget
  class's held-out images, beside the same probe on a randomly initialised model (its floor);
- a 2-D embedding (PCA; UMAP where umap-learn is installed) of the penultimate features, per model, on shared
  axes: whether the class's cluster dissolved (retrained) or is still there behind the classifier (hidden).

Blocks are found from the module tree (:func:`blocks`), so every registry architecture works without a table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..data import ForgetSplit, Subset
from ..errors import InputError
from .probe import feature_layer, fit_probe, penultimate_features, probe_predict, run_with_hooks

LAYER_SAMPLE = 300  # images per subset (forget class, retain) for CKA and the embedding: a seeded sample
PROBE_SAMPLE = 1000  # training images the per-block probes are fitted on
PROBE_ITERATIONS = 40  # L-BFGS iterations of a per-block probe (the penultimate probe's 200 cost seconds per block)
FEATURES = "features"  # the last point: the penultimate features (the classifier head's input)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
CONTAINERS = (nn.Sequential, nn.ModuleList)


def blocks(model: nn.Module) -> list[str]:
    """Module paths of the model's blocks in depth order: the network's parameterised top-level modules,
    one level into Sequential/ModuleList containers (ResNet's layer1.0, smallcnn's convolutions, ViT's
    blocks), without normalisation layers, the input normalisation and the classifier head; the head's
    input is added last as ``FEATURES``."""
    net = getattr(model, "net", model)
    prefix = "net." if net is not model else ""
    head = feature_layer(model)
    found: list[str] = []

    def keep(name: str, module: nn.Module) -> None:
        if module is head or isinstance(module, NORMS) or next(module.parameters(), None) is None:
            return
        found.append(prefix + name)

    for name, child in net.named_children():
        if isinstance(child, CONTAINERS):
            for inner, grandchild in child.named_children():
                keep(f"{name}.{inner}", grandchild)
        else:
            keep(name, child)
    return [*found, FEATURES]


def _pooled(output: torch.Tensor) -> torch.Tensor:
    """A block's output as one vector per image: channel means for feature maps, token means for sequences."""
    if output.dim() == 4:
        return output.mean((2, 3))
    if output.dim() == 3:
        return output.mean(1)
    return output.flatten(1)


def block_outputs(model: nn.Module, data: Subset, names: list[str], device: torch.device | str = "cpu",
                  pooled: bool = False, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Each block's output for every image of ``data`` (flattened, or pooled with ``pooled``), float on the CPU.
    Read with forward hooks that are removed afterwards; the model's mode is restored."""
    modules = dict(model.named_modules())
    captured: dict[str, list[torch.Tensor]] = {n: [] for n in names}

    def store(name: str, value: torch.Tensor) -> None:
        value = value.detach().float()  # copied below: a later in-place ReLU must not change what was read
        captured[name].append((_pooled(value) if pooled else value.flatten(1)).cpu().clone())

    hooks = [modules[n].register_forward_hook(lambda _m, _i, out, n=n: store(n, out if torch.is_tensor(out) else out[0]))
             for n in names if n != FEATURES]
    if FEATURES in names:
        hooks.append(feature_layer(model).register_forward_hook(lambda _m, inputs, _o: store(FEATURES, inputs[0])))
    run_with_hooks(model, data, hooks, device, batch_size)
    return {n: torch.cat(parts) if parts else torch.zeros(0, 0) for n, parts in captured.items()}


def centred_gram(x: torch.Tensor) -> torch.Tensor:
    """K = Xc Xc^T of the column-centred features (n x n, float64): all linear CKA needs of a representation, and
    far smaller than a block's flattened output (300 x 300 against 300 x 16,384 for a ResNet's first block)."""
    xc = x.double() - x.double().mean(0)
    return xc @ xc.T


def cka_of_grams(k: torch.Tensor, m: torch.Tensor) -> float:
    """Linear CKA from two centred Gram matrices: HSIC(K, M) / sqrt(HSIC(K, K) HSIC(M, M)); NaN when either
    representation is constant."""
    cross = float((k * m).sum())
    scale = float((k * k).sum().sqrt() * (m * m).sum().sqrt())
    return cross / scale if scale > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) of two representations of the same n images (n x d1, n x d2), in the
    Gram-matrix form. 1 for the same representation up to rotation, isotropic scale and shift."""
    return cka_of_grams(centred_gram(x), centred_gram(y))


def sample_of(data: Subset, limit: int, seed: int) -> Subset:
    """A seeded sample of at most ``limit`` images, in their original order."""
    if len(data) <= limit:
        return data
    generator = torch.Generator().manual_seed(seed)
    return data.select(torch.randperm(len(data), generator=generator)[:limit].sort().values)


@dataclass(frozen=True)
class LayerSamples:
    """The images every layer measurement of one request uses (seeded, the same for every model)."""

    forget: Subset  # forget-class (or forget-set) images, held out where the request has them
    retain: Subset  # retain images
    probe_train: Subset  # what the per-block probes are fitted on
    probe_held_out: Subset  # the forget class's held-out images the probes are read on


def layer_samples(split: ForgetSplit, seed: int = 0, sample: int = LAYER_SAMPLE, probe_sample: int = PROBE_SAMPLE
                  ) -> LayerSamples:
    forget = split.forget_test if len(split.forget_test) else split.forget_train
    retain = split.retain_test if len(split.retain_test) else split.retain_train
    return LayerSamples(sample_of(forget, sample, seed), sample_of(retain, sample, seed + 1),
                        sample_of(split.train, probe_sample, seed + 2), split.forget_test)


@dataclass
class Representation:
    """One model's blocks on the layer samples (computed once per audit and model), kept as centred Gram
    matrices (:func:`centred_gram`), not as the outputs themselves."""

    names: list[str]
    forget: dict[str, torch.Tensor]  # block -> centred Gram matrix on the forget sample
    retain: dict[str, torch.Tensor]  # the same on the retain sample
    probe: dict[str, float | None]  # block -> probe accuracy on the forget class's held-out images
    embedding_features: torch.Tensor  # penultimate features of the embedding's images (forget + retain sample)


def representation(model: nn.Module, samples: LayerSamples, num_classes: int, device: torch.device | str = "cpu"
                   ) -> Representation:
    """Block outputs of ``model`` on the samples and a linear probe at each block."""
    names = blocks(model)
    outputs = block_outputs(model, samples.forget, names, device)
    penultimate_forget = outputs[FEATURES]
    forget = {n: centred_gram(v) for n, v in outputs.items()}
    outputs = block_outputs(model, samples.retain, names, device)
    penultimate_retain = outputs[FEATURES]
    retain = {n: centred_gram(v) for n, v in outputs.items()}
    del outputs
    probe: dict[str, float | None] = {n: None for n in names}
    if len(samples.probe_held_out) and len(samples.probe_train):
        train = block_outputs(model, samples.probe_train, names, device, pooled=True)
        held = block_outputs(model, samples.probe_held_out, names, device, pooled=True)
        for n in names:
            fitted = fit_probe(train[n], samples.probe_train.y, num_classes, PROBE_ITERATIONS)
            probe[n] = float((probe_predict(fitted, held[n]) == samples.probe_held_out.y).double().mean())
    return Representation(names, forget, retain, probe, torch.cat([penultimate_forget, penultimate_retain]))


@dataclass(frozen=True)
class LayerRow:
    """One block of one model: CKA to the original and to the retrained model, and the probe."""

    block: str
    cka_original_forget: float
    cka_retrained_forget: float
    cka_original_retain: float
    cka_retrained_retain: float
    probe: float | None  # probe accuracy on the forget class's held-out images at this block

    def to_dict(self) -> dict:
        return asdict(self)


def layer_rows(model: Representation, original: Representation, retrained: Representation) -> list[LayerRow]:
    """Per block: linear CKA of ``model``'s outputs to the original's and the retrained model's."""
    return [LayerRow(n, cka_of_grams(model.forget[n], original.forget[n]), cka_of_grams(model.forget[n], retrained.forget[n]),
                     cka_of_grams(model.retain[n], original.retain[n]), cka_of_grams(model.retain[n], retrained.retain[n]),
                     model.probe[n]) for n in model.names]


def pca_2d(features: torch.Tensor) -> torch.Tensor:
    """The first two principal components of ``features`` (n x d -> n x 2), each scaled to unit variance and
    signed so its largest-magnitude coordinate is positive (stable across runs), so panels share their axes."""
    x = features.double() - features.double().mean(0)
    if x.shape[0] < 3 or x.shape[1] < 2:
        return torch.zeros(x.shape[0], 2, dtype=torch.float64)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    points = x @ v[:2].T
    points = points / points.std(0).clamp_min(1e-12)
    signs = torch.sign(points.gather(0, points.abs().argmax(0, keepdim=True))).clamp_min(0) * 2 - 1
    return points * signs


EMBEDDING_METHODS = {"pca": "PCA", "umap": "UMAP"}  # name -> how figures and captions call it


def umap_installed() -> bool:
    """Whether the optional umap-learn package can be imported (the UMAP picture needs it; PCA needs nothing)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def check_embedding(method: str) -> None:
    """One sentence, before any work, for an embedding that cannot be drawn here."""
    if method not in EMBEDDING_METHODS:
        raise InputError(f"Unknown embedding '{method}': choose {' or '.join(EMBEDDING_METHODS)}.")
    if method == "umap" and not umap_installed():
        raise InputError("The UMAP picture needs the umap-learn package (pip install umap-learn); PCA needs nothing.")


def umap_2d(features: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A seeded 2-D UMAP of ``features`` (n x d -> n x 2), centred and scaled to unit variance per axis like
    :func:`pca_2d`, so the panels of several models share their axes. Needs umap-learn."""
    check_embedding("umap")
    import umap

    n = features.shape[0]
    if n < 4:
        return torch.zeros(n, 2, dtype=torch.float64)
    fitted = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed, n_jobs=1)
    points = torch.from_numpy(fitted.fit_transform(features.double().numpy())).double()
    points = points - points.mean(0)
    return points / points.std(0).clamp_min(1e-12)


def embed_2d(features: torch.Tensor, method: str = "pca", seed: int = 0) -> torch.Tensor:
    """``features`` in 2-D by ``method`` ("pca": :func:`pca_2d`; "umap": :func:`umap_2d`)."""
    check_embedding(method)
    return umap_2d(features, seed) if method == "umap" else pca_2d(features)


def own_cluster(features: torch.Tensor, labels: torch.Tensor, target: int) -> float | None:
    """Of the ``target`` class's images, the share nearest to their own class's centre (of the classes present):
    high when the class still forms its own cluster in the features, whatever the classifier says."""
    classes = labels.unique()
    mask = labels == target
    if not bool(mask.any()) or len(classes) < 2:
        return None
    x = features.double()
    centres = torch.stack([x[labels == c].mean(0) for c in classes])
    nearest = classes[torch.cdist(x[mask], centres).argmin(1)]
    return float((nearest == target).double().mean())


@dataclass(frozen=True)
class Embedding:
    """The penultimate features of one model on the layer samples, in 2-D."""

    model: str
    points: list[list[float]]  # n x 2
    labels: list[int]
    forget: list[bool]  # which points are forget-set images
    own_cluster: float | None  # share of forget-class images nearest to their own class centre (full features)
    method: str = "pca"  # how the features were flattened to 2-D (EMBEDDING_METHODS)

    def to_dict(self) -> dict:
        return asdict(self)


def embedding(name: str, features: torch.Tensor, samples: LayerSamples, target: int | None, method: str = "pca",
              seed: int = 0) -> Embedding:
    """``features``: the model's penultimate features of ``samples.forget`` then ``samples.retain``; ``method``:
    "pca" (default) or "umap" (seeded by ``seed``)."""
    labels = torch.cat([samples.forget.y, samples.retain.y])
    forget = [True] * len(samples.forget) + [False] * len(samples.retain)
    points = embed_2d(features, method, seed)
    if len(samples.forget):  # turn each axis so the forget images lie on its positive side: every panel alike
        points = points * torch.where(points[:len(samples.forget)].mean(0) < 0, -1.0, 1.0).to(points.dtype)
    cluster = own_cluster(features, labels, target) if target is not None else None
    return Embedding(name, [[round(float(a), 4), round(float(b), 4)] for a, b in points.tolist()], labels.tolist(), forget,
                     cluster, method)


def class_target(split: ForgetSplit) -> int | None:
    """The forgotten class of a class request (None for other requests)."""
    return split.forget_classes[0] if split.request.kind == "class" and split.forget_classes else None


def embeddings(models: dict[str, nn.Module], split: ForgetSplit, seed: int = 0, device: torch.device | str = "cpu",
               method: str = "pca") -> dict[str, Embedding]:
    """The picture of hiding alone (no CKA, no probes): each model's penultimate features on the layer samples, in
    2-D by ``method``. What the Lesson's "hiding is not forgetting" step draws."""
    check_embedding(method)
    samples = layer_samples(split, seed)
    out = {}
    for name, model in models.items():
        features = torch.cat([penultimate_features(model, samples.forget, device),
                              penultimate_features(model, samples.retain, device)])
        out[name] = embedding(name, features, samples, class_target(split), method, seed)
    return out
