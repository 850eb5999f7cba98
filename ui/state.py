"""The session's run setup: one explicit object, never a widget key.

Streamlit deletes a widget's ``session_state`` entry when a run of another page does not draw
that widget, and the same key drawn on two pages is two widgets. So what the user has chosen
(dataset, model, forget request, method and its options, alpha, lambda, the open view) lives in
one frozen :class:`LabState` under :data:`K_STATE`, a plain session_state entry that no widget
owns. Widgets are views of it: :func:`bind` writes the state's value into the widget's key
before the widget is drawn and commits the widget's new value back through an ``on_change``
callback (which runs before the next run draws anything). The URL mirrors the state (see
:mod:`ui.links`) and every derived object (prepared run, importances, scratch model, results) is
looked up by :meth:`RunSetup.key`, so a stale object can never be shown under a new setup.

Changing one choice can change others (:func:`choose`): a new dataset brings its own model, a new
model or method brings the paper's alpha for it, a new method its estimator. :func:`normalize`
fits a state to a dataset (a class index in range, a k below the training-set size...). Both are
pure, so a link, a preset and a click all produce the same state.

Page-local controls (the Landscape's grid, the Compare page's methods...) are kept the same way
with :func:`keep`, so they too survive a visit to another page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ssd_core.data import ForgetRequest
from ssd_core.indices import format_indices, parse_indices

DEFAULT_DATASET = "digits"
DEFAULT_MODEL = "smallcnn"
DEFAULT_FORGET_CLASS = 3  # on digits/smallcnn the paper's alpha 10 collapses this one; auto does not
DEFAULT_METHOD = "ssd"
DEFAULT_LAMBDA = 1.0
DEFAULT_VIEW = "accuracy"
DEVICES = ("auto", "cpu", "gpu")
FORGET_KINDS = ("class", "subclass", "random", "indices")

# alpha: a 1-1.5-2-3-5-7 ladder from 0.1 to 100 (log-spaced, round numbers, includes 5 and 10)
ALPHA_VALUES: tuple[float, ...] = tuple(
    float(f"{m * 10.0 ** e:.4g}") for e in (-1, 0, 1) for m in (1, 1.5, 2, 3, 5, 7)
) + (100.0,)
ALPHA_MIN, ALPHA_MAX = ALPHA_VALUES[0], ALPHA_VALUES[-1]
# what a link may set: the ladder spans 0.1-100, but automatic alpha and the collapse guard can
# choose beyond it (digits class 3: 113), and turning auto off keeps that value
LINK_ALPHA_RANGE = (1e-3, 1e4)
LAMBDA_MIN, LAMBDA_MAX, LAMBDA_STEP = 0.01, 5.0, 0.01

K_STATE = "_lab_state"  # the LabState (not a widget key)
K_KEPT = "_lab_kept"  # page-local control values (not widget keys)
K_IMAGE_FORMAT = "modebar_format"

# widget keys: views of the state, rewritten from it before every draw
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
K_AUTO = "alpha_auto"
K_LAMBDA = "lam"
K_VIEW = "view"


def snap_alpha(value: float) -> float:
    """The ladder value nearest to ``value`` on a log scale."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        return 10.0
    return min(ALPHA_VALUES, key=lambda a: abs(math.log10(a) - math.log10(value)))


def alpha_options(alpha: float) -> list[float]:
    """The slider's values: the ladder, plus ``alpha`` itself where a link or a suggestion put it
    between two rungs (so the slider shows exactly the value the numbers are for)."""
    return sorted(set(ALPHA_VALUES) | {float(alpha)})


def clamp_lambda(value: float) -> float:
    return float(min(max(round(float(value), 2), LAMBDA_MIN), LAMBDA_MAX))


@dataclass(frozen=True)
class LabState:
    """Everything the user has chosen. Immutable: a change makes a new state (:func:`update`)."""

    dataset: str = DEFAULT_DATASET  # a registry dataset, or an upload/local folder's id
    model: str = DEFAULT_MODEL  # a registry architecture, or an uploaded checkpoint's id
    forget_kind: str = "class"
    forget_class: int = DEFAULT_FORGET_CLASS
    forget_subclass: str = ""
    forget_k: int = 50
    forget_indices: str = "0-9"  # as typed (reformatted when it parses)
    method: str = DEFAULT_METHOD
    estimator: str = "fisher"
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0
    alpha: float = 10.0  # the slider's alpha, used when alpha_auto is off
    alpha_auto: bool = True  # adaptive alpha (ASSD) + the collapse guard's correction
    lam: float = DEFAULT_LAMBDA
    view: str = DEFAULT_VIEW

    def request(self) -> ForgetRequest:
        """The forget request (InputError for an index list that does not parse)."""
        if self.forget_kind == "class":
            return ForgetRequest("class", int(self.forget_class))
        if self.forget_kind == "subclass":
            return ForgetRequest("subclass", self.forget_subclass)
        if self.forget_kind == "random":
            return ForgetRequest("random", k=int(self.forget_k), seed=int(self.seed))
        return ForgetRequest("indices", indices=parse_indices(self.forget_indices))


@dataclass(frozen=True)
class RunSetup:
    """Everything that decides the original model, the forget split and the importances (what
    the prepared run is keyed by; alpha, lambda and the view are not part of it)."""

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

    def model_key(self) -> tuple:
        """What decides the original model (not the forget request or the live method)."""
        return (self.dataset, self.data_dir, self.model, self.device, self.seed, self.data_upload, self.model_upload,
                self.owner)

    def split_key(self) -> tuple:
        """What decides the original model and the forget split (not the live method)."""
        r = self.request
        return (*self.model_key(), r.kind, r.target, r.k, r.indices, r.seed)

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


# ---------------------------------------------------------------------------------------------
# Pure rules: defaults, choices that bring others along, fitting a state to a dataset


def default_model(dataset: str) -> str:
    """The model a dataset is meant for (its shipped checkpoint where there is one)."""
    from ssd_core.models import default_model_for

    return default_model_for(dataset)


def method_defaults(method: str, model: str) -> dict[str, Any]:
    """The method's own settings for this model: the paper's alpha, its estimator and batch size."""
    from ssd_core.errors import InputError
    from ssd_core.methods import get_method

    try:
        config = get_method(method).config_for(model)
    except InputError:
        return {}
    alpha = float(getattr(config, "alpha", 10.0))
    return {"alpha": alpha, "lam": float(getattr(config, "lam", DEFAULT_LAMBDA)),
            "estimator": str(getattr(config, "estimator", "fisher")),
            "batch_size": int(getattr(config, "batch_size", 64))}


def paper_alpha(method: str, model: str) -> float:
    return float(method_defaults(method, model).get("alpha", 10.0))


def choose(state: LabState, **changes: Any) -> LabState:
    """``state`` with ``changes`` applied, and what they bring along: a new dataset its model; a new
    model or method the paper's alpha (for when automatic alpha is off); a new method its estimator
    and batch size; an alpha set by hand turns automatic alpha off."""
    new = replace(state, **changes)
    if "alpha" in changes and "alpha_auto" not in changes:
        new = replace(new, alpha_auto=False)  # an alpha chosen by hand (slider, link, landscape) replaces auto
    if "dataset" in changes and changes["dataset"] != state.dataset and "model" not in changes:
        new = replace(new, model=default_model(new.dataset))
    if (new.model, new.method) != (state.model, state.method):
        defaults = method_defaults(new.method, new.model)
        if "alpha" not in changes:
            new = replace(new, alpha=defaults.get("alpha", new.alpha))
        if new.method != state.method:
            if "estimator" not in changes:
                new = replace(new, estimator=defaults.get("estimator", new.estimator))
            if "batch_size" not in changes:
                new = replace(new, batch_size=defaults.get("batch_size", new.batch_size))
    if "forget_indices" in changes:
        try:
            new = replace(new, forget_indices=format_indices(parse_indices(new.forget_indices)))
        except Exception:  # noqa: BLE001 - kept as typed; the sidebar shows why it is refused
            pass
    return new


@dataclass(frozen=True)
class DatasetFacts:
    """What :func:`normalize` needs to know about the chosen dataset."""

    num_classes: int
    n_train: int
    subclasses: Sequence[str] | None = None


def normalize(
    state: LabState,
    facts: DatasetFacts | None,
    methods: Mapping[str, Sequence[str]] | None = None,
    estimators: Sequence[str] | None = None,
) -> LabState:
    """``state`` fitted to its dataset (``facts``), its methods (name -> supported request kinds)
    and the method's estimators: out-of-range choices fall back to defaults."""
    new = state
    if facts is not None:
        kinds = [k for k in FORGET_KINDS if k != "subclass" or facts.subclasses]
        if new.forget_kind not in kinds:
            new = replace(new, forget_kind="class")
        if not 0 <= int(new.forget_class) < facts.num_classes:
            new = replace(new, forget_class=min(DEFAULT_FORGET_CLASS, facts.num_classes - 1))
        if facts.subclasses and new.forget_subclass not in facts.subclasses:
            new = replace(new, forget_subclass=str(facts.subclasses[0]))
        if facts.n_train > 1 and not 1 <= int(new.forget_k) < facts.n_train:
            new = replace(new, forget_k=min(50, facts.n_train - 1))
    if methods:
        supporting = [m for m, kinds in methods.items() if new.forget_kind in kinds]
        if supporting and new.method not in supporting:
            fallback = DEFAULT_METHOD if DEFAULT_METHOD in supporting else supporting[0]
            new = choose(new, method=fallback)
    if estimators and new.estimator not in estimators:
        new = replace(new, estimator=str(estimators[0]))
    if new.device not in DEVICES:
        new = replace(new, device="auto")
    if not (math.isfinite(new.alpha) and new.alpha > 0):
        new = replace(new, alpha=paper_alpha(new.method, new.model))
    if new.lam != clamp_lambda(new.lam):
        new = replace(new, lam=clamp_lambda(new.lam))
    return new


# ---------------------------------------------------------------------------------------------
# The session's state (Streamlit)


def current() -> LabState:
    """This session's state (the defaults on a new session)."""
    import streamlit as st

    state = st.session_state.get(K_STATE)
    if not isinstance(state, LabState):
        state = LabState()
        st.session_state[K_STATE] = state
    return state


def set_state(state: LabState) -> LabState:
    import streamlit as st

    st.session_state[K_STATE] = state
    return state


def update(**changes: Any) -> LabState:
    """Apply a user's choice (with what it brings along, see :func:`choose`)."""
    return set_state(choose(current(), **changes))


def _commit(field_name: str, key: str, convert: Callable[[Any], Any] | None) -> None:
    import streamlit as st

    value = st.session_state.get(key)
    if value is None:
        return
    update(**{field_name: convert(value) if convert is not None else value})


def bind(field_name: str, key: str, convert: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Widget kwargs that make the widget ``key`` a view of the state's ``field_name``: its value is
    written from the state now, and a user's change is committed back (converted by ``convert``)."""
    import streamlit as st

    if field_name not in _FIELDS:
        raise KeyError(field_name)
    st.session_state[key] = getattr(current(), field_name)
    return {"key": key, "on_change": _commit, "args": (field_name, key, convert)}


_FIELDS = {f.name for f in fields(LabState)}


def kept(key: str, default: Any = None) -> Any:
    """A page-local control's value (see :func:`keep`)."""
    import streamlit as st

    return st.session_state.setdefault(K_KEPT, {}).get(key, default)


def set_kept(key: str, value: Any) -> None:
    import streamlit as st

    st.session_state.setdefault(K_KEPT, {})[key] = value


def _commit_kept(key: str, then: Callable[[], None] | None) -> None:
    import streamlit as st

    if key in st.session_state:
        set_kept(key, st.session_state[key])
    if then is not None:
        then()


def keep(key: str, default: Any, *, valid: Sequence[Any] | None = None,
         then: Callable[[], None] | None = None, in_form: bool = False) -> dict[str, Any]:
    """Widget kwargs for a page-local control whose value survives visits to other pages: kept in
    :data:`K_KEPT` (not the widget key) and written into the widget before it is drawn. ``valid``:
    the options (a kept value no longer among them falls back to ``default``); ``then``: a further
    on_change callback. Inside a form (``in_form``, where widgets may not have callbacks) the
    form's submit button commits with :func:`commit_kept`."""
    import streamlit as st

    value = kept(key, default)
    if valid is not None:
        if isinstance(value, list):
            value = [v for v in value if v in valid]
        elif value not in valid:
            value = default
    set_kept(key, value)
    st.session_state[key] = value
    if in_form:
        return {"key": key}
    return {"key": key, "on_change": _commit_kept, "args": (key, then)}


def commit_kept(*keys: str) -> None:
    """Keep the current values of these widgets (a form's on_click)."""
    import streamlit as st

    for key in keys:
        if key in st.session_state:
            set_kept(key, st.session_state[key])
