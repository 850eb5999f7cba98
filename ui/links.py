"""Shareable links: the session's state (:class:`ui.state.LabState`) mirrored into the URL.

A link looks like ``/lesson?dataset=digits&model=smallcnn&forget=class:3&method=ssd&alpha=10&lambda=1``
(plus ``estimator``, ``batch``, ``device``, ``seed`` and ``view`` where they differ from their
defaults): the path names the page, the query the setup. A link into the app's root may name the
page as a parameter instead, ``/?page=lesson&...`` (what :mod:`ui.page_paths` redirects a typed
page address to); the app then opens that page and the address becomes its path again.

The first half of this module is pure (no Streamlit, no torch): :func:`to_query` writes a
:class:`LinkState`, :func:`parse_query` reads one back and checks every value against what this
server offers, :func:`check_forget` checks the forget request against the chosen dataset, and
:func:`state_from_link` / :func:`link_from_state` convert to and from the session's state. Every
refused value gives one sentence naming the parameter, and the parameter falls back to what a
fresh session would use.

The second half is the Streamlit glue, called by app.py around every run: :func:`sync` (before the
page runs) makes the state follow the URL whenever the URL was changed from outside (a shared link
opened, the address edited, the browser's back button), and :func:`mirror` (after each run and each
slider move) writes the state back. A URL without any of our parameters (Streamlit clears them on
a page switch) leaves the state as it is. So whatever was clicked before, the page shows what its
URL stands for, and a fresh session on the same URL shows the same.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ssd_core.errors import InputError
from ssd_core.indices import MAX_INDICES, format_indices, is_whole_number, parse_float, parse_indices
from ssd_core.memory import MAX_BATCH_SIZE
from unlearning_lab.text import printable

# Query parameter names, in the order they are written.
P_PAGE, P_DATASET, P_MODEL, P_FORGET, P_METHOD, P_ESTIMATOR, P_BATCH, P_ALPHA, P_LAMBDA, P_DEVICE, P_SEED, P_VIEW = (
    "page", "dataset", "model", "forget", "method", "estimator", "batch", "alpha", "lambda", "device", "seed", "view",
)
PARAMS = (P_PAGE, P_DATASET, P_MODEL, P_FORGET, P_METHOD, P_ESTIMATOR, P_BATCH, P_ALPHA, P_LAMBDA, P_DEVICE, P_SEED,
          P_VIEW)
SETUP_PARAMS = tuple(p for p in PARAMS if p != P_PAGE)
FORGET_KINDS = ("class", "subclass", "random", "indices")
AUTO = "auto"  # alpha=auto: the adaptive alpha with the collapse guard
PAPER = "paper"  # alpha=paper: the model's paper alpha, set by hand (as the CLI's --alpha paper)
OLD_LAMBDA = "lam"  # the CLI's old spelling of lambda, still read in links (and rewritten as lambda)
READ_PARAMS = (*PARAMS, OLD_LAMBDA)
MAX_SHOWN = 40  # characters of a bad value quoted back in a message
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class LinkState:
    """What a link carries; None means 'not in the link' (a fresh session's default applies)."""

    page: str | None = None
    dataset: str | None = None
    model: str | None = None
    forget_kind: str | None = None
    forget_value: int | str | tuple[int, ...] | None = None  # class index, sub-class name, k, indices
    method: str | None = None
    alpha: float | str | None = None  # a number, AUTO or PAPER
    lam: float | None = None
    seed: int | None = None
    estimator: str | None = None
    batch_size: int | None = None
    device: str | None = None
    view: str | None = None


@dataclass(frozen=True)
class LinkChoices:
    """What this server offers, to check a link against."""

    pages: Sequence[str] = ()
    datasets: Sequence[str] = ()
    models: Sequence[str] = ()
    methods: Sequence[str] = ()
    alpha_range: tuple[float, float] = (0.1, 100.0)
    lambda_range: tuple[float, float] = (0.01, 5.0)
    estimators: Sequence[str] = ("fisher", "fisher_exact", "lossfree")
    devices: Sequence[str] = ("auto", "cpu", "gpu")
    views: Sequence[str] = ()


@dataclass
class ParsedLink:
    state: LinkState
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Pure: writing


def _number(value: float) -> str:
    return f"{value:g}"


def format_forget(kind: str, value: int | str | Sequence[int] | None) -> str:
    if kind == "indices":
        return f"indices:{format_indices(value or ())}"  # type: ignore[arg-type]
    return f"{kind}:{value}"


def to_query(state: LinkState) -> dict[str, str]:
    """The query parameters for ``state`` (fields that are None are left out, seed 0 too)."""
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
    if state.estimator:
        out[P_ESTIMATOR] = state.estimator
    if state.batch_size is not None:
        out[P_BATCH] = str(state.batch_size)
    if state.alpha is not None:
        out[P_ALPHA] = state.alpha if state.alpha in (AUTO, PAPER) else _number(float(state.alpha))
    if state.lam is not None:
        out[P_LAMBDA] = _number(state.lam)
    if state.device:
        out[P_DEVICE] = state.device
    if state.seed:
        out[P_SEED] = str(state.seed)
    if state.view:
        out[P_VIEW] = state.view
    return out


# ---------------------------------------------------------------------------------------------
# Pure: reading


def shown(value: Any) -> str:
    """A value safe to quote in a message: printable and short."""
    return printable(value, MAX_SHOWN)


def _single(value: str | Sequence[str] | None) -> str | None:
    """The last value of a repeated parameter (what st.query_params[key] gives too)."""
    if value is None or isinstance(value, str):
        return value
    values = list(value)
    return str(values[-1]) if values else None


def _float(text: str) -> float | None:
    """A link's number, read by the CLI's parser (ASCII digits only: '٢٠' or '1_0' are not numbers)."""
    try:
        return parse_float(text)
    except InputError:
        return None


def parse_indices_text(text: str) -> tuple[int, ...]:
    """'0-9,15' -> (0, ..., 9, 15); ValueError for anything else (negative, reversed, too many, none)."""
    try:
        values = parse_indices(text, limit=MAX_INDICES)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    if not values:
        raise ValueError(text)
    return values


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
        if not is_whole_number(value) or len(value) > 9:
            raise ValueError("must be a class index, e.g. class:3")
        return kind, int(value)
    if kind == "random":
        if not is_whole_number(value) or len(value) > 9 or int(value) < 1:
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
        if raw is None or not options:
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
    pick(P_ESTIMATOR, list(choices.estimators), "an importance estimator")
    pick(P_DEVICE, list(choices.devices), "a device")
    pick(P_VIEW, list(choices.views), "a view")

    raw = text(P_FORGET)
    if raw is not None:
        try:
            values[P_FORGET] = parse_forget(raw)
        except ValueError as exc:
            warnings.append(f"The link's forget '{shown(raw)}' {exc}; forgetting the default class instead.")

    lo, hi = choices.alpha_range
    raw = text(P_ALPHA)
    if raw is not None and raw.strip().lower() in (AUTO, PAPER):
        values[P_ALPHA] = raw.strip().lower()
    elif raw is not None:
        alpha = _float(raw)
        if alpha is None or alpha <= 0:
            warnings.append(f"The link's alpha '{shown(raw)}' must be a positive number or auto; using the automatic α instead.")
        elif not lo <= alpha <= hi:
            warnings.append(f"The link's alpha {shown(raw)} is outside the slider's range {lo:g} to {hi:g}; "
                            "using the automatic α instead.")
        else:
            values[P_ALPHA] = alpha

    lo, hi = choices.lambda_range
    raw = text(P_LAMBDA) if text(P_LAMBDA) is not None else text(OLD_LAMBDA)
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
        if is_whole_number(raw) and len(raw) <= 10 and int(raw) <= MAX_SEED:
            values[P_SEED] = int(raw)
        else:
            warnings.append(f"The link's seed '{shown(raw)}' must be a whole number from 0 to {MAX_SEED}; using seed 0 instead.")

    raw = text(P_BATCH)
    if raw is not None:
        if is_whole_number(raw) and len(raw) <= 4 and 1 <= int(raw) <= MAX_BATCH_SIZE:
            values[P_BATCH] = int(raw)
        else:
            warnings.append(f"The link's batch '{shown(raw)}' must be a whole number from 1 to {MAX_BATCH_SIZE}; "
                            "using the method's batch size instead.")

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
        estimator=values.get(P_ESTIMATOR),
        batch_size=values.get(P_BATCH),
        device=values.get(P_DEVICE),
        view=values.get(P_VIEW),
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
    number = int(value) if isinstance(value, numbers.Integral) else None
    if kind == "class" and number is not None and not 0 <= number < num_classes:
        problem = f"class {value} is out of range: the dataset has classes 0 to {num_classes - 1}"
    elif kind == "subclass" and (not subclasses or value not in subclasses):
        problem = (f"'{shown(value)}' is not a sub-class of this dataset" if subclasses
                   else "this dataset has no sub-classes")
    elif kind == "random" and number is not None and not 1 <= number < n_train:
        problem = f"{value} samples is not between 1 and {n_train - 1} (the training set has {n_train})"
    elif kind == "indices":
        indices = tuple(int(i) for i in value) if isinstance(value, tuple) else ()
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


def linkable(choice: Any) -> bool:
    """Whether a dataset/model choice can go in a link: session uploads and local folders ('upload:…',
    'local:…') cannot."""
    return isinstance(choice, str) and bool(choice) and ":" not in choice


def state_from_link(link: LinkState) -> Any:
    """The state a fresh session opened on this link has (ui.state.LabState): the link's values,
    and for what it leaves out, what the link's choices bring along (a dataset its model, a model
    and method the paper's alpha, a method its estimator)."""
    from .state import LabState, choose

    state = LabState()
    if link.dataset:
        state = choose(state, dataset=link.dataset)
    if link.model:
        state = choose(state, model=link.model)
    if link.method:
        state = choose(state, method=link.method)
    changes: dict[str, Any] = {}
    if link.forget_kind == "class":
        changes.update(forget_kind="class", forget_class=int(link.forget_value))  # type: ignore[arg-type]
    elif link.forget_kind == "subclass":
        changes.update(forget_kind="subclass", forget_subclass=str(link.forget_value))
    elif link.forget_kind == "random":
        changes.update(forget_kind="random", forget_k=int(link.forget_value))  # type: ignore[arg-type]
    elif link.forget_kind == "indices":
        changes.update(forget_kind="indices", forget_indices=format_indices(link.forget_value or ()))  # type: ignore[arg-type]
    for name in ("estimator", "batch_size", "device", "seed", "view", "lam"):
        value = getattr(link, name)
        if value is not None:
            changes[name] = value
    if link.alpha == AUTO:
        changes["alpha_auto"] = True
    elif link.alpha == PAPER:
        changes["alpha_auto"] = False  # the state's alpha is already the model's paper alpha (choose)
    elif link.alpha is not None:
        changes.update(alpha=float(link.alpha), alpha_auto=False)
    if "lam" in changes:
        changes["lam"] = round(float(changes["lam"]), 2)
    return replace(state, **changes)


def link_from_state(state: Any, page: str | None) -> LinkState:
    """The link for a session's state (ui.state.LabState): uploads and defaults left out."""
    from .state import DEFAULT_VIEW, method_defaults

    defaults = method_defaults(state.method, state.model)
    kind = state.forget_kind
    value: Any
    if kind == "class":
        value = state.forget_class
    elif kind == "subclass":
        value = state.forget_subclass or None
    elif kind == "random":
        value = state.forget_k
    else:
        try:
            value = parse_indices_text(state.forget_indices)
        except ValueError:
            value = None  # a half-typed list is not put in the link
    if value is None:
        kind = None
    return LinkState(
        page=page,
        dataset=state.dataset if linkable(state.dataset) else None,
        model=state.model if linkable(state.model) else None,
        forget_kind=kind,
        forget_value=value,
        method=state.method,
        alpha=AUTO if state.alpha_auto else float(state.alpha),
        lam=float(state.lam),
        seed=int(state.seed) or None,
        estimator=state.estimator if state.estimator != defaults.get("estimator", state.estimator) else None,
        batch_size=int(state.batch_size) if state.batch_size != defaults.get("batch_size", state.batch_size) else None,
        device=state.device if state.device != "auto" else None,
        view=state.view if state.view != DEFAULT_VIEW else None,
    )


# ---------------------------------------------------------------------------------------------
# Streamlit glue

K_URL = "_link_url"  # our parameters as last read from or written to the URL
K_WARNINGS = "_link_warnings"

PAGES_DIR = Path(__file__).resolve().parent.parent / "app_pages"


def page_name(page: Any) -> str:
    """A page's name in links: the stem of its script (app_pages/sweep.py -> 'sweep')."""
    script = getattr(page, "_page", None)
    if isinstance(script, (str, Path)):
        return Path(script).stem
    return str(getattr(page, "url_path", "") or "unlearn")


def page_names() -> list[str]:
    """The pages a link may name: the scripts in app_pages/."""
    return sorted(p.stem for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))


def _our_params() -> dict[str, str]:
    import streamlit as st

    out = {}
    for key in READ_PARAMS:
        if key in st.query_params:
            value = _single(st.query_params.get_all(key))
            if value is not None:
                out[key] = value
    return out


def sync(
    current_page: Any,
    choices: LinkChoices,
    dataset_facts: Callable[[str], tuple[int, int, Sequence[str] | None]],
    method_supports: Callable[[str, str], bool],
) -> None:
    """Before the page runs: make the state follow the URL when the URL changed from outside.

    On a session's first run, and whenever the URL carries our parameters and they differ from
    what this session last read or wrote (an edited address, the back button), the state becomes
    what a fresh session on that URL would have; what was wrong in the URL is kept for
    :func:`show_warnings`. A URL with none of our parameters (a page switch clears them) changes
    nothing. If the URL names another page than the one running, switch to it.
    """
    import streamlit as st

    from .state import DatasetFacts, current, normalize, set_state

    params = _our_params()
    first = K_URL not in st.session_state
    setup_params = {k: v for k, v in params.items() if k != P_PAGE}
    last = st.session_state.get(K_URL) or {}
    if not first and (not setup_params or setup_params == {k: v for k, v in last.items() if k != P_PAGE}):
        return
    st.session_state[K_URL] = params
    parsed = parse_query(params, replace(choices, pages=page_names()))
    warnings = list(parsed.warnings)
    link = parsed.state
    if params.get(P_PAGE) is not None and link.page is None:
        warnings = [w.replace("using the default page instead", "opening this page instead") for w in warnings]
    state = state_from_link(link)
    facts = None
    try:
        num_classes, n_train, subclasses = dataset_facts(state.dataset)
        facts = DatasetFacts(num_classes, n_train, subclasses)
    except Exception:  # noqa: BLE001 - the sidebar reports a dataset that cannot load
        pass
    if facts is not None and link.forget_kind is not None:
        checked = check_forget(link, num_classes=facts.num_classes, n_train=facts.n_train, subclasses=facts.subclasses)
        if checked.warnings:
            warnings += checked.warnings
            link = checked.state
            state = state_from_link(link)
    if link.method and not method_supports(link.method, state.forget_kind):
        warnings.append(f"The link's method '{link.method}' does not support {state.forget_kind} forget requests; "
                        "using the default method instead.")
        state = state_from_link(replace(link, method=None))
    set_state(normalize(state, facts))
    if warnings:
        st.session_state.setdefault(K_WARNINGS, []).extend(warnings)
    if link.page and link.page != page_name(current_page):
        # The new page's path names it, and its address carries the setup as mirror will write it, so
        # mirror has nothing to change and opening the link stays one history entry (ui/history.py).
        others = {k: v for k, v in st.query_params.to_dict().items() if k not in READ_PARAMS}
        try:
            st.switch_page(f"app_pages/{link.page}.py",
                           query_params={**others, **to_query(link_from_state(current(), None))})
        except st.errors.StreamlitAPIException:
            st.session_state.setdefault(K_WARNINGS, []).append(
                f"The link's page '{shown(link.page)}' cannot be opened here; opening this page instead.")


def show_warnings() -> None:
    """Show (once) what was wrong with the URL this session followed (as plain text)."""
    import streamlit as st

    from unlearning_lab.text import plain

    for message in st.session_state.pop(K_WARNINGS, None) or ():
        st.warning(plain(message, limit=None), icon=":material/link_off:")


def mirror() -> None:
    """Write the session's setup into the URL (only when it changed; uploads are left out).

    The page is not written: the address's path already names it (``/lesson?dataset=...``), and a
    link's ``page`` parameter is only for links into the app's root (``/?page=lesson&...``, what the
    page-path redirect makes of a typed page address). Written here it would only repeat the path.
    After a click in the navigation this write restores the query Streamlit dropped; ui/history.py
    keeps that to the one history entry of the page switch.
    """
    import streamlit as st

    from .state import current

    if K_URL not in st.session_state:
        return  # the URL has not been read yet: never overwrite an incoming link with defaults
    wanted = to_query(link_from_state(current(), None))
    st.session_state[K_URL] = wanted
    current_params = st.query_params.to_dict()
    ours = {k: v for k, v in current_params.items() if k in READ_PARAMS}
    if ours == wanted:
        return
    others = {k: st.query_params.get_all(k) for k in current_params if k not in READ_PARAMS}
    st.query_params.from_dict({**others, **wanted})
