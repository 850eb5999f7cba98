"""Ready-made run setups: the SSD paper's experiments and classroom examples on the embedded data.

Pure data (plus tiny helpers that read it): no torch work, no file access, no UI. The dashboard
shows every preset; one whose dataset files are missing is shown but disabled (see
``Preset.needs_files`` and ``ui.presets``).

Paper setups (Foster, Schoepf & Brintrup, AAAI 2024; ResNet-18, lambda = 1, alpha = 10):

- full-class forgetting on CIFAR-100: rocket, mushroom, baby, lamp, sea;
- full-class forgetting on CIFAR-20 (the superclasses holding those five: vehicles 2, fruit and
  vegetables, people, household electrical devices, large natural outdoor scenes);
- sub-class forgetting on CIFAR-20: the same five fine classes, the model trained on the 20
  superclasses;
- random forgetting: random training samples across all classes.

Classroom presets run on the shipped checkpoints (digits and shapes) in seconds on a CPU; their
alphas were chosen so each forgets cleanly (measured with the shipped checkpoints, seed 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssd_core.data import SHAPE_CLASSES, ForgetRequest

PAPER = "paper"
CLASSROOM = "classroom"

PAPER_REFERENCE = "Foster, Schoepf & Brintrup, Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening, AAAI 2024"


@dataclass(frozen=True)
class Preset:
    """One run setup: data, model, what to forget, method and its alpha/lambda."""

    key: str
    title: str
    group: str  # PAPER or CLASSROOM
    dataset: str
    model: str
    forget_kind: str  # "class", "subclass", "random" (what ForgetRequest.kind takes)
    forget_target: int | str | None = None  # class index or name; sub-class name
    forget_k: int | None = None  # random forgetting: how many samples
    method: str = "ssd"
    alpha: float = 10.0
    lam: float = 1.0
    seed: int = 0
    note: str = ""

    @property
    def needs_files(self) -> bool:
        """True when the dataset is file-based (CIFAR, MNIST...), not shipped with the project."""
        from ssd_core.data import dataset_spec

        return dataset_spec(self.dataset).needs_files

    def request(self) -> ForgetRequest:
        if self.forget_kind == "random":
            return ForgetRequest("random", k=self.forget_k, seed=self.seed)
        return ForgetRequest(self.forget_kind, target=self.forget_target)  # type: ignore[arg-type]

    def describe(self) -> str:
        what = {
            "class": f"class {self.forget_target}",
            "subclass": f"sub-class {self.forget_target}",
            "random": f"{self.forget_k} random training samples",
        }.get(self.forget_kind, self.forget_kind)
        return (f"{self.model} on {self.dataset}, forget {what}, {self.method.upper()} "
                f"α = {self.alpha:g}, λ = {self.lam:g}, seed {self.seed}")


def _paper(key: str, title: str, dataset: str, kind: str, target: str | None = None, k: int | None = None,
           note: str = "") -> Preset:
    return Preset(key, title, PAPER, dataset, "resnet18", kind, target, k, "ssd", 10.0, 1.0, 0, note)


# the five forget targets of the paper (fine CIFAR-100 class -> its CIFAR-20 superclass)
PAPER_TARGETS: dict[str, str] = {
    "rocket": "vehicles_2",
    "mushroom": "fruit_and_vegetables",
    "baby": "people",
    "lamp": "household_electrical_devices",
    "sea": "large_natural_outdoor_scenes",
}

_TRAINS_FIRST = "No shipped checkpoint: ResNet-18 is trained once on the data first (a GPU is strongly advised)."

PRESETS: tuple[Preset, ...] = (
    # --- classroom: embedded data, shipped checkpoints, seconds on a CPU
    Preset("digits-forget-0", "Digits: forget the 0s", CLASSROOM, "digits", "smallcnn", "class", 0,
           alpha=10.0, lam=1.0,
           note="The paper's defaults forget the 0s cleanly: forget accuracy falls to 0%, the other digits keep theirs."),
    Preset("digits-forget-8", "Digits: forget the 8s (needs a larger α)", CLASSROOM, "digits", "smallcnn", "class", 8,
           alpha=50.0, lam=1.0,
           note="8 shares strokes with 0, 3, 6 and 9: at α = 10 SSD dampens shared parameters and the other digits "
                "suffer. α = 50 selects only what is specific to 8."),
    Preset("digits-lfssd-0", "Digits: forget the 0s without labels (LFSSD)", CLASSROOM, "digits", "smallcnn", "class", 0,
           method="lfssd", alpha=5.0, lam=1.0,
           note="Loss-free SSD needs no labels; its importances are on another scale, so it wants a smaller α (5)."),
    Preset("shapes-forget-triangle", "Shapes: forget the triangles (ResNet-18, narrow)", CLASSROOM, "shapes",
           "resnet18_narrow", "class", SHAPE_CLASSES.index("triangle"), alpha=30.0, lam=1.0,
           note="A residual network on 32×32 colour images. α = 10 also hurts the other shapes here; α = 30 forgets "
                "the triangles and keeps the rest."),
    Preset("fashion-forget-tshirt", "Fashion-MNIST: forget the T-shirts (watch the Shirts)", CLASSROOM,
           "fashion_mnist", "smallcnn", "class", 0, alpha=50.0, lam=1.0,
           note="Real photos of clothes. α = 50 (automatic α chooses 59.3) forgets the T-shirts and keeps the rest; "
                "in the per-class view, Shirt, Pullover and Dress are the neighbours to watch. At the paper's α = 10 "
                "the weights T-shirts share with them are dampened too and the retained classes collapse."),
    Preset("digits-random-20", "Digits: forget 20 random samples", CLASSROOM, "digits", "smallcnn", "random", None, 20,
           alpha=20.0, lam=1.0,
           note="Random samples have no class of their own, so SSD finds little that is specific to them: compare "
                "the forget-train accuracy with the test accuracy and watch the MIA, not a collapse to 0%."),
    # --- the paper's setups (need the CIFAR files)
    *(_paper(f"cifar100-{name}", f"CIFAR-100: forget class '{name}'", "cifar100", "class", name,
             note=f"Full-class forgetting on CIFAR-100 with ResNet-18 (paper). {_TRAINS_FIRST}")
      for name in PAPER_TARGETS),
    *(_paper(f"cifar20-{coarse}", f"CIFAR-20: forget superclass '{coarse}'", "cifar20", "class", coarse,
             note=f"Full-class (superclass) forgetting on CIFAR-20 with ResNet-18 (paper). {_TRAINS_FIRST}")
      for coarse in PAPER_TARGETS.values()),
    *(_paper(f"cifar20-sub-{name}", f"CIFAR-20: forget sub-class '{name}'", "cifar20", "subclass", name,
             note=f"Sub-class forgetting: the model knows the 20 superclasses; forget the fine class '{name}' inside "
                  f"'{PAPER_TARGETS[name]}' (paper). {_TRAINS_FIRST}")
      for name in PAPER_TARGETS),
    _paper("cifar10-random", "CIFAR-10: forget 100 random samples", "cifar10", "random", None, 100,
           note=f"Random forgetting: samples drawn across every class with the seed. {_TRAINS_FIRST}"),
)

_BY_KEY = {p.key: p for p in PRESETS}


def get_preset(key: str) -> Preset:
    if key not in _BY_KEY:
        from ssd_core.errors import InputError

        raise InputError(f"Unknown preset '{key}'; choose one of: {', '.join(_BY_KEY)}.")
    return _BY_KEY[key]


def presets_in(group: str) -> list[Preset]:
    return [p for p in PRESETS if p.group == group]


def class_index(preset: Preset, classes: list[str] | None = None) -> int | None:
    """The class index a class preset forgets (a name is looked up in ``classes`` or the known
    CIFAR class lists); None for other kinds."""
    if preset.forget_kind != "class":
        return None
    target = preset.forget_target
    if isinstance(target, int):
        return target
    names = classes
    if names is None:
        from ssd_core.data.files import CIFAR10_CLASSES, CIFAR100_COARSE_CLASSES, CIFAR100_FINE_CLASSES

        names = {"cifar100": CIFAR100_FINE_CLASSES, "cifar20": CIFAR100_COARSE_CLASSES,
                 "cifar10": CIFAR10_CLASSES}.get(preset.dataset)
    if names is None or target not in names:
        from ssd_core.errors import InputError

        raise InputError(f"Preset '{preset.key}': '{target}' is not a class of {preset.dataset}.")
    return list(names).index(str(target))
