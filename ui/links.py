"""Shareable links: the run setup, the sliders and the open page mirrored into the URL.

A link looks like ``/?page=unlearn&dataset=digits&model=smallcnn&forget=class:3&method=ssd&alpha=10&lambda=1``.
The first half of this module is pure (no Streamlit, no torch): :func:`to_query` writes a
:class:`LinkState` as query parameters, :func:`parse_query` reads one back and checks every value
against what this server offers, and :func:`check_forget` checks the forget request against the
chosen dataset. Every refused value gives one sentence naming the parameter, and the parameter
falls back to its default. The second half is the Streamlit glue: :func:`follow_page_link`
(app.py, before the page runs), :func:`restore_setup` (the sidebar, once per session) and
:func:`mirror` (after each run and each slider move).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

# Query parameter names, in the order they are written.
P_PAGE, P_DATASET, P_MODEL, P_FORGET, P_METHOD, P_ALPHA, P_LAMBDA, P_SEED = (
    "page", "dataset", "model", "forget", "method", "alpha", "lambda", "seed",
)
PARAMS = (P_PAGE, P_DATASET, P_MODEL, P_FORGET, P_METHOD, P_ALPHA, P_LAMBDA, P_SEED)
FORGET_KINDS = ("class", "subclass", "random", "indices")
MAX_SHOWN = 40  # characters of a bad value quoted back in a message
MAX_INDICES = 100_000
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class LinkState:
    """What a link carries; None means 'not in the link' (the session's default applies)."""

    page: str | None = None
    dataset: str | None = None
    model: str | None = None
    forget_kind: str | None = None
    forget_value: int | str | tuple[int, ...] | None = None  # class index, sub-class name, k, indices
    method: str | None = None
    alpha: float | None = None
    lam: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class LinkChoices:
    """What this server offers, to check a link against."""

    pages: Sequence[str] = ()
    datasets: Sequence[str] = ()
    models: Sequence[str] = ()
    methods: Sequence[str] = ()
    alpha_range: tuple[float, float] = (0.1, 100.0)
    lambda_range: tuple[float, float] = (0.01, 5.0)


@dataclass
class ParsedLink:
    state: LinkState
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Pure: writing


def _number(value: float) -> str:
    return f"{value:g}"


def format_indices(indices: Sequence[int]) -> str:
    """Sorted indices as compact ranges: (0, 1, 2, 5, 7, 8) -> '0-2,5,7-8'."""
    values = sorted(set(int(i) for i in indices))
    parts: list[str] = []
    start = prev = None
    for value in values:
        if start is None:
            start = prev = value
        elif value == prev + 1:
            prev = value
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = value
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def format_forget(kind: str, value: int | str | Sequence[int] | None) -> str:
    if kind == "indices":
        return f"indices:{format_indices(value or ())}"  # type: ignore[arg-type]
    return f"{kind}:{value}"


def to_query(state: LinkState) -> dict[str, str]:
    """The query parameters for ``state`` (fields that are None are left out)."""
    out: dict[str, str] = {}
    if state.page:
        out[P_PAGE] = state.page
    if state.dataset:
        out[P_DATASET] = state.dataset
    if state.model:
        out[P_MODEL] = state.model
    if state.forget_kind:
        out[P_FORGET] = format_forget(state.forget_kind, state.forget_value)
    if state.method:
        out[P_METHOD] = state.method
    if state.alpha is not None:
        out[P_ALPHA] = _number(state.alpha)
    if state.lam is not None:
        out[P_LAMBDA] = _number(state.lam)
    if state.seed:
        out[P_SEED] = str(state.seed)
    return out


# ---------------------------------------------------------------------------------------------
# Pure: reading


def shown(value: Any) -> str:
    """A value safe to quote in a message: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _single(value: str | Sequence[str] | None) -> str | None:
    """The last value of a repeated parameter (what st.query_params[key] gives too)."""
    if value is None or isinstance(value, str):
        return value
    values = list(value)
    return str(values[-1]) if values else None


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parse_indices_text(text: str) -> tuple[int, ...]:
    """'0-9,15' -> (0, ..., 9, 15); ValueError for anything else (negative, reversed, too many)."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo_text, sep, hi_text = part.partition("-")
        if not lo_text.isdigit() or (sep and not hi_text.isdigit()):
            raise ValueError(part)
        lo, hi = int(lo_text), int(hi_text) if sep else int(lo_text)
        if hi < lo or len(values) + (hi - lo + 1) > MAX_INDICES:
            raise ValueError(part)
        values.update(range(lo, hi + 1))
    if not values:
        raise ValueError(text)
    return tuple(sorted(values))


def parse_forget(text: str) -> tuple[str, int | str | tuple[int, ...]]:
    """'class:3' / 'subclass:rocket' / 'random:50' / 'indices:0-9,15' -> (kind, value).

    A bare number means a class index. ValueError with a user-facing sentence otherwise.
    """
    text = text.strip()
    kind, sep, value = text.partition(":")
    if not sep:
        kind, value = "class", text
    kind, value = kind.strip().lower(), value.strip()
    if kind not in FORGET_KINDS:
        raise ValueError(f"must start with one of {', '.join(k + ':' for k in FORGET_KINDS)}")
    if kind == "class":
        if not value.isdigit():
            raise ValueError("must be a class index, e.g. class:3")
        return kind, int(value)
    if kind == "random":
        if not value.isdigit() or int(value) < 1:
            raise ValueError("must be a number of samples of at least 1, e.g. random:50")
        return kind, int(value)
    if kind == "indices":
        try:
            return kind, parse_indices_text(value)
        except ValueError:
            raise ValueError("must list training-set indices, e.g. indices:0-9,15") from None
    if not value:
        raise ValueError("must name a sub-class, e.g. subclass:rocket")
    return kind, value


def parse_query(params: Mapping[str, str | Sequence[str]], choices: LinkChoices) -> ParsedLink:
    """Read a link: every value is checked; a bad one gives a warning and is left out (default).

    Unknown parameters are ignored (e.g. Streamlit's own ``embed``). Whether a class index or a
    number of samples fits the dataset is checked later by :func:`check_forget`.
    """
    warnings: list[str] = []
    values: dict[str, Any] = {}

    def text(name: str) -> str | None:
        raw = _single(params.get(name))
        return None if raw is None else raw.strip()

    def pick(name: str, options: Sequence[str], what: str) -> None:
        raw = text(name)
        if raw is None:
            return
        if raw in options:
            values[name] = raw
        else:
            listed = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
            warnings.append(f"The link's {name} '{shown(raw)}' is not {what} here (choose from {listed}); "
                            f"using the default {name} instead.")

    pick(P_PAGE, list(choices.pages), "a page")
    pick(P_DATASET, list(choices.datasets), "an available dataset")
    pick(P_MODEL, list(choices.models), "an available model")
    pick(P_METHOD, list(choices.methods), "a live method")

    raw = text(P_FORGET)
    if raw is not None:
        try:
            values[P_FORGET] = parse_forget(raw)
        except ValueError as exc:
            warnings.append(f"The link's forget '{shown(raw)}' {exc}; forgetting the default class instead.")

    lo, hi = choices.alpha_range
    raw = text(P_ALPHA)
    if raw is not None:
        alpha = _float(raw)
        if alpha is None or alpha <= 0:
            warnings.append(f"The link's alpha '{shown(raw)}' must be a positive number; using the paper's default α instead.")
        elif not lo <= alpha <= hi:
            warnings.append(f"The link's alpha {shown(raw)} is outside the slider's range {lo:g} to {hi:g}; "
                            "using the paper's default α instead.")
        else:
            values[P_ALPHA] = alpha

    lo, hi = choices.lambda_range
    raw = text(P_LAMBDA)
    if raw is not None:
        lam = _float(raw)
        if lam is None or lam < 0:
            warnings.append(f"The link's lambda '{shown(raw)}' must be a number of at least 0; using λ = 1 instead.")
        elif not lo <= lam <= hi:
            warnings.append(f"The link's lambda {shown(raw)} is outside the slider's range {lo:g} to {hi:g}; using λ = 1 instead.")
        else:
            values[P_LAMBDA] = lam

    raw = text(P_SEED)
    if raw is not None:
        if raw.isdigit() and int(raw) <= MAX_SEED:
            values[P_SEED] = int(raw)
        else:
            warnings.append(f"The link's seed '{shown(raw)}' must be a whole number from 0 to {MAX_SEED}; using seed 0 instead.")

    forget = values.get(P_FORGET)
    state = LinkState(
        page=values.get(P_PAGE),
        dataset=values.get(P_DATASET),
        model=values.get(P_MODEL),
        forget_kind=forget[0] if forget else None,
        forget_value=forget[1] if forget else None,
        method=values.get(P_METHOD),
        alpha=values.get(P_ALPHA),
        lam=values.get(P_LAMBDA),
        seed=values.get(P_SEED),
    )
    return ParsedLink(state, warnings)


def check_forget(
    state: LinkState,
    *,
    num_classes: int,
    n_train: int,
    subclasses: Sequence[str] | None = None,
) -> ParsedLink:
    """Check the link's forget request against the chosen dataset; a bad one is dropped with a warning."""
    kind, value = state.forget_kind, state.forget_value
    if kind is None:
        return ParsedLink(state)
    problem = None
    if kind == "class" and not 0 <= int(value) < num_classes:  # type: ignore[arg-type]
        problem = f"class {value} is out of range: the dataset has classes 0 to {num_classes - 1}"
    elif kind == "subclass" and (not subclasses or value not in subclasses):
        problem = (f"'{shown(value)}' is not a sub-class of this dataset" if subclasses
                   else "this dataset has no sub-classes")
    elif kind == "random" and not 1 <= int(value) < n_train:  # type: ignore[arg-type]
        problem = f"{value} samples is not between 1 and {n_train - 1} (the training set has {n_train})"
    elif kind == "indices":
        indices = tuple(value or ())  # type: ignore[arg-type]
        if indices and indices[-1] >= n_train:
            problem = f"sample index {indices[-1]} is out of range: the training set has indices 0 to {n_train - 1}"
        elif len(indices) >= n_train:
            problem = "it covers every training sample, so nothing would remain"
    if problem is None:
        return ParsedLink(state)
    text = format_forget(kind, value)
    return ParsedLink(
        replace(state, forget_kind=None, forget_value=None),
        [f"The link's forget '{shown(text)}' does not fit: {problem}; forgetting the default class instead."],
    )


# ---------------------------------------------------------------------------------------------
# Streamlit glue

K_APPLIED = "_link_applied"  # the link was read (once per session)
K_WARNINGS = "_link_warnings"
K_PAGE_FOLLOWED = "_link_page_followed"


def linkable(choice: Any) -> bool:
    """Whether a dataset/model choice can go in a link: session uploads and local folders ('upload:…',
    'local:…') cannot."""
    return isinstance(choice, str) and bool(choice) and ":" not in choice


PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


def page_name(page: Any) -> str:
    """A page's name in links: the stem of its script (pages/sweep.py -> 'sweep')."""
    script = getattr(page, "_page", None)
    if isinstance(script, (str, Path)):
        return Path(script).stem
    return str(getattr(page, "url_path", "") or "unlearn")


def page_names() -> list[str]:
    """The pages a link may name: the scripts in pages/."""
    return sorted(p.stem for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))


def follow_page_link(current: Any) -> None:
    """On a session's first run, switch to the page a link names (keeping its other parameters).

    Call in app.py between ``st.navigation`` and ``page.run()``.
    """
    import streamlit as st

    if st.session_state.get(K_PAGE_FOLLOWED):
        return
    st.session_state[K_PAGE_FOLLOWED] = True
    wanted = _single(st.query_params.get_all(P_PAGE) or None)
    if wanted is None:
        return
    wanted = wanted.strip()
    names = page_names()
    problem = None
    if wanted not in names:
        problem = f"The link's page '{shown(wanted)}' is not a page here (choose from {', '.join(names)}); opening this page instead."
    elif wanted != page_name(current):
        try:
            st.switch_page(f"pages/{wanted}.py", query_params=st.query_params.to_dict())
        except st.errors.StreamlitAPIException:
            problem = f"The link's page '{shown(wanted)}' cannot be opened here; opening this page instead."
    if problem:
        st.session_state.setdefault(K_WARNINGS, []).append(problem)


def _session_state_value(key: str, default: Any = None) -> Any:
    import streamlit as st

    return st.session_state.get(key, default)


def restore_setup(
    choices: LinkChoices,
    dataset_info: Callable[[str], tuple[int, int, Sequence[str] | None]],
    method_supports: Callable[[str, str], bool],
    default_alpha: Callable[[str, str], float],
) -> None:
    """Once per session: apply the link's settings to the session's widgets (before they are drawn).

    ``dataset_info(name)`` gives (number of classes, training-set size, sub-class names).
    Warnings are kept for :func:`show_warnings`. A session whose URL has none of our parameters
    is left alone.
    """
    import streamlit as st

    from .state import (K_ALPHA, K_ALPHA_FOR, K_CLASS, K_DATASET, K_INDICES, K_K, K_KIND, K_LAMBDA, K_METHOD,
                        K_MODEL, K_SEED, K_SUBCLASS, DEFAULT_DATASET, DEFAULT_LAMBDA, DEFAULT_METHOD, DEFAULT_MODEL,
                        snap_alpha)

    if st.session_state.get(K_APPLIED):
        return
    st.session_state[K_APPLIED] = True
    params = {key: st.query_params.get_all(key) for key in PARAMS if key != P_PAGE and key in st.query_params}
    if not params:
        return
    parsed = parse_query(params, choices)
    warnings = list(parsed.warnings)
    state = parsed.state
    dataset = state.dataset or _session_state_value(K_DATASET) or DEFAULT_DATASET
    try:
        num_classes, n_train, subclasses = dataset_info(dataset)
    except Exception:  # noqa: BLE001 - the sidebar reports a dataset that cannot load
        num_classes, n_train, subclasses = 0, 0, None
    if num_classes:
        checked = check_forget(state, num_classes=num_classes, n_train=n_train, subclasses=subclasses)
        state, warnings = checked.state, warnings + checked.warnings
    model = state.model or _session_state_value(K_MODEL) or DEFAULT_MODEL
    method = state.method or _session_state_value(K_METHOD) or DEFAULT_METHOD
    kind = state.forget_kind or "class"
    if state.method and not method_supports(state.method, kind):
        warnings.append(f"The link's method '{state.method}' does not support {kind} forget requests; "
                        "using the default method instead.")
        state = replace(state, method=None)
        method = DEFAULT_METHOD

    if state.dataset:
        st.session_state[K_DATASET] = state.dataset
    if state.model:
        st.session_state[K_MODEL] = state.model
    if state.method:
        st.session_state[K_METHOD] = state.method
    if state.seed is not None:
        st.session_state[K_SEED] = state.seed
    if state.forget_kind:
        st.session_state[K_KIND] = state.forget_kind
        if state.forget_kind == "class":
            st.session_state[K_CLASS] = int(state.forget_value)  # type: ignore[arg-type]
        elif state.forget_kind == "subclass":
            st.session_state[K_SUBCLASS] = state.forget_value
        elif state.forget_kind == "random":
            st.session_state[K_K] = int(state.forget_value)  # type: ignore[arg-type]
        else:
            st.session_state[K_INDICES] = format_indices(state.forget_value)  # type: ignore[arg-type]
    if state.alpha is not None or state.lam is not None or state.model or state.method:
        # the live panel resets alpha to the paper's default when (model, method) changes:
        # mark the sliders as set for this pair so the link's values survive
        st.session_state[K_ALPHA_FOR] = (model, method)
        st.session_state[K_ALPHA] = snap_alpha(state.alpha if state.alpha is not None else default_alpha(method, model))
        st.session_state[K_LAMBDA] = round(state.lam, 2) if state.lam is not None else DEFAULT_LAMBDA
    if warnings:
        st.session_state.setdefault(K_WARNINGS, []).extend(warnings)


def show_warnings() -> None:
    """Show (once) what was wrong with the link this session was opened with."""
    import streamlit as st

    warnings = st.session_state.pop(K_WARNINGS, None)
    for message in warnings or ():
        st.warning(message, icon=":material/link_off:")


def current_state(page: str | None) -> LinkState:
    """The session's settings as a :class:`LinkState` (from session_state; nothing heavy)."""
    import streamlit as st

    from .state import (K_ALPHA, K_CLASS, K_DATASET, K_INDICES, K_K, K_KIND, K_LAMBDA, K_METHOD, K_MODEL, K_SEED,
                        K_SUBCLASS)

    ss = st.session_state
    kind = ss.get(K_KIND)
    value: Any = None
    if kind == "class":
        value = ss.get(K_CLASS)
    elif kind == "subclass":
        value = ss.get(K_SUBCLASS)
    elif kind == "random":
        value = ss.get(K_K)
    elif kind == "indices":
        try:
            value = parse_indices_text(str(ss.get(K_INDICES, "")).replace(" ", ""))
        except ValueError:
            kind = None  # a half-typed list is not put in the link
    if kind is not None and value is None:
        kind = None
    alpha, lam = ss.get(K_ALPHA), ss.get(K_LAMBDA)
    seed = ss.get(K_SEED)
    return LinkState(
        page=page,
        dataset=ss.get(K_DATASET),
        model=ss.get(K_MODEL),
        forget_kind=kind,
        forget_value=value,
        method=ss.get(K_METHOD),
        alpha=float(alpha) if isinstance(alpha, (int, float)) else None,
        lam=float(lam) if isinstance(lam, (int, float)) else None,
        seed=int(seed) if isinstance(seed, int) and seed > 0 else None,
    )


def mirror(page: str | None = None) -> None:
    """Write the session's settings into the URL (only what changed; uploads are left out).

    Does nothing until the session has read its own link (so an incoming link is never
    overwritten by defaults). ``page`` None keeps the page parameter already in the URL.
    """
    import streamlit as st

    if not st.session_state.get(K_APPLIED):
        return
    if page is None:
        page = _single(st.query_params.get_all(P_PAGE) or None)
    state = current_state(page)
    if not linkable(state.dataset):
        state = replace(state, dataset=None)
    if not linkable(state.model):
        state = replace(state, model=None)
    wanted = to_query(state)
    current = {k: v for k, v in st.query_params.to_dict().items()}
    ours = {k: v for k, v in current.items() if k in PARAMS}
    if ours == wanted:
        return
    others = {k: st.query_params.get_all(k) for k in current if k not in PARAMS}
    st.query_params.from_dict({**others, **wanted})
