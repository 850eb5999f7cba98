"""What a session has chosen (the run setup and the sliders), and the defaults.

Widget values live in ``st.session_state`` under the keys named here; widgets are created with
``persist_state="session"`` so a choice survives switching pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ssd_core.data import ForgetRequest

DEFAULT_DATASET = "digits"
DEFAULT_MODEL = "smallcnn"
DEFAULT_FORGET_CLASS = 0  # on digits/smallcnn this forgets cleanly at the paper's alpha
DEFAULT_METHOD = "ssd"
DEFAULT_LAMBDA = 1.0
UI_METHODS = ("ssd", "lfssd")  # the registry decides which of these exist
DEVICES = ("auto", "cpu", "gpu")

# alpha: a 1-1.5-2-3-5-7 ladder from 0.1 to 100 (log-spaced, round numbers, includes 5 and 10)
ALPHA_VALUES: tuple[float, ...] = tuple(
    float(f"{m * 10.0 ** e:.4g}") for e in (-1, 0, 1) for m in (1, 1.5, 2, 3, 5, 7)
) + (100.0,)
LAMBDA_MIN, LAMBDA_MAX, LAMBDA_STEP = 0.01, 5.0, 0.01

# session_state keys
K_DATASET = "setup_dataset"
K_MODEL = "setup_model"
K_KIND = "setup_forget_kind"
K_CLASS = "setup_forget_class"
K_SUBCLASS = "setup_forget_subclass"
K_K = "setup_forget_k"
K_INDICES = "setup_forget_indices"
K_METHOD = "setup_method"
K_ESTIMATOR = "setup_estimator"
K_BATCH = "setup_batch_size"
K_DEVICE = "setup_device"
K_SEED = "setup_seed"
K_ALPHA = "alpha"
K_LAMBDA = "lam"
K_VIEW = "view"
K_IMAGE_FORMAT = "modebar_format"
K_ALPHA_FOR = "_alpha_defaults_for"  # (model, method) the alpha default was set for (see ui.live)


def snap_alpha(value: float) -> float:
    """The grid value nearest to ``value`` on a log scale."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        return 10.0
    logs = np.log10(np.asarray(ALPHA_VALUES))
    return ALPHA_VALUES[int(np.argmin(np.abs(logs - math.log10(value))))]


def format_alpha(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class RunSetup:
    """Everything that decides the original model, the forget split and the importances."""

    dataset: str = DEFAULT_DATASET
    model: str = DEFAULT_MODEL
    request: ForgetRequest = field(default_factory=lambda: ForgetRequest("class", DEFAULT_FORGET_CLASS))
    method: str = DEFAULT_METHOD
    estimator: str = "fisher"
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0
    data_dir: str | None = None
    # Session-local uploads: the uploaded dataset's data fingerprint and the uploaded checkpoint's
    # weights fingerprint (None for the registry's datasets and trained originals). A setup with
    # either is prepared inside its session only (see ui.resources.prepare).
    data_upload: str | None = None
    model_upload: str | None = None
    owner: str | None = None  # the session a session-local setup belongs to (part of its key)

    @property
    def is_session_local(self) -> bool:
        return self.data_upload is not None or self.model_upload is not None

    def key(self) -> tuple:
        r = self.request
        return (self.dataset, self.data_dir, self.model, r.kind, r.target, r.k, r.indices, r.seed,
                self.method, self.estimator, self.batch_size, self.device, self.seed,
                self.data_upload, self.model_upload, self.owner)

    def forget_slug(self) -> str:
        r = self.request
        if r.kind in ("class", "subclass"):
            return f"{r.kind}{r.target}"
        if r.kind == "random":
            return f"random{r.k}s{r.seed}"
        return f"indices{len(r.indices or ())}"

    def slug(self) -> str:
        return f"{self.dataset}-{self.model}-{self.method}-{self.forget_slug()}"

    def describe(self, classes: list[str] | None = None) -> str:
        r = self.request
        what = r.describe()
        if r.kind == "class" and classes is not None and isinstance(r.target, int) and 0 <= r.target < len(classes):
            what = f"class '{classes[r.target]}'"
        return f"{self.model} on {self.dataset}, forgetting {what} with {self.method.upper()}"
