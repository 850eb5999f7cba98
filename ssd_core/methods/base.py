"""The method contract: a spec, a config dataclass, a registry, and where methods come from.

A method is ``run(model, data, config, *, device, progress) -> MethodOutcome`` registered with a
:class:`MethodSpec`. :func:`ssd_core.methods.runner.run_method` calls it: the ``model`` it gets is
already the runner's own copy (on ``device``, eval mode, gradients on) and ``data`` holds only the
subsets the spec declares it reads (:data:`READS`), so what the lab shows as "data touched" is
enforced, not claimed. Its config is a dataclass whose fields carry ``help`` and, for numbers,
``min``/``max`` (what the CLI and the dashboard build controls from; see :func:`param`).

Methods come from this package, from installed packages through the ``ssd_core.methods``
entry-point group, and from files named with ``python -m ssd_core --plugin FILE`` (see
:func:`load_plugin`). A name can be registered once.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InputError
from ..indices import parse_float, parse_int
from ..plugins import load_entry_points, lookup

# What a method reads besides the model (the dashboard shows it; cheaper is better). The runner
# hands a method exactly these subsets of the training data and nothing else.
FORGET_ONLY = "forget set only"
RETAIN_SUBSET = "forget set + a retain subset"
FULL_RETAIN = "forget set + full retain set"
RETAIN_ONLY = "full retain set"
FULL_DATA = "full training data"
# the full data read once per model (an importance cached across requests) plus the forget set
FULL_DATA_CACHED = "full training data (importance cached)"
READS = (FORGET_ONLY, RETAIN_SUBSET, FULL_RETAIN, RETAIN_ONLY, FULL_DATA, FULL_DATA_CACHED)

ALL_REQUESTS = frozenset({"class", "subclass", "random", "indices"})
ENTRY_POINT_GROUP = "ssd_core.methods"


@dataclass
class MethodOutcome:
    """What a method returns to the runner: the unlearned model, optional seconds per step, and
    anything worth reporting (plain numbers, strings, lists, dicts, or objects with to_dict)."""

    model: nn.Module
    diagnostics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class MethodResult:
    """What :func:`~ssd_core.methods.runner.run_method` returns."""

    model: nn.Module
    seconds: dict[str, float]  # per step, always with "total"
    data_touched: str  # what the method was given to read (one of READS)
    diagnostics: dict[str, Any] = field(default_factory=dict)


RunFunction = Callable[..., MethodOutcome]
LIVE_FIELDS = ("alpha", "lam")  # what the Unlearn page's sliders move (through ssd_core.engine.SSDEngine)


@dataclass(frozen=True)
class MethodSpec:
    """A registered method. ``data_touched`` is one of :data:`READS`; for :data:`RETAIN_SUBSET`
    the config needs a ``retain_fraction`` field (the share of the retain set the runner draws)."""

    name: str
    description: str
    config_cls: type
    run: RunFunction
    supports: frozenset[str] = ALL_REQUESTS
    data_touched: str = FULL_RETAIN
    # True when the config's ``alpha`` defaults to the model family's paper value
    # (``ModelSpec.default_alpha``: 5 for vit_tiny, 10 for the CNNs) rather than the config's own default.
    model_alpha: bool = False

    def default_config(self, **overrides: Any) -> Any:
        return make_config(self.config_cls, overrides)

    @property
    def live_fields(self) -> tuple[str, ...]:
        """The config fields marked ``live`` (``param(..., live=True)``): the Unlearn page's sliders
        drive a method whose live fields are SSD's ``alpha`` and ``lam`` (:data:`LIVE_FIELDS`)."""
        return tuple(f.name for f in dataclasses.fields(self.config_cls) if f.metadata.get("live"))

    @property
    def is_live(self) -> bool:
        """Whether the dashboard can drive it live: it declares alpha and lambda live and computes its
        importances over the full data once (cached), so a slider move only dampens."""
        return set(self.live_fields) == set(LIVE_FIELDS) and self.data_touched == FULL_DATA_CACHED

    def config_for(self, model: str | None, **overrides: Any) -> Any:
        """The config this method runs with on ``model``: the model's paper alpha where the method takes it
        (the one place a model's paper alpha is read), then ``overrides``."""
        return make_config(self.config_cls, {**self.model_defaults(model), **overrides})

    def model_defaults(self, model: str | None) -> dict[str, Any]:
        """The settings this method takes from ``model`` (empty for an unknown model or none)."""
        if not self.model_alpha or model is None:
            return {}
        from ..models import get_spec

        try:
            return {"alpha": float(get_spec(model).default_alpha)}
        except InputError:
            return {}


# ---------------------------------------------------------------------------------------------
# Config fields


def param(default: Any, help: str, min: float | None = None, max: float | None = None, choices: tuple | None = None,
          log: bool = False, live: bool = False) -> Any:
    """A config field with the metadata controls are built from. ``live``: a slider of the dashboard's
    Unlearn page moves it (SSD's alpha and lambda; see :attr:`MethodSpec.live_fields`)."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "log": log, "live": live}
    return field(default=default, metadata=meta)


# The schedule fields most methods share, written once.
def seed_param(what: str = "the data order") -> Any:
    """The config field every method uses for its seed."""
    return param(0, f"seed for {what}", min=0, max=2**31 - 1)


def epochs_param(default: int, over: str = "the retain set") -> Any:
    """An epochs field (1 to 1000) over ``over``."""
    return param(default, f"epochs over {over}", min=1, max=1000)


def lr_param(default: float, optimiser: str = "SGD learning rate (momentum 0.9)", low: float = 1e-6,
             high: float = 10.0) -> Any:
    """A learning-rate field, log-scaled between ``low`` and ``high``; ``optimiser`` is its help text."""
    return param(default, optimiser, min=low, max=high, log=True)


def batch_param(default: int = 64, what: str = "retain batch size") -> Any:
    """A batch-size field (2 to 4096); ``what`` is its help text."""
    return param(default, what, min=2, max=4096)


def forget_batch_param(default: int = 32) -> Any:
    """The forget batch-size field (1 to 4096: a forget set can be one image)."""
    return param(default, "forget batch size", min=1, max=4096)


def config_fields(config_cls: type) -> list[dict[str, Any]]:
    """[{name, type, default, help, min, max, choices, log}] for a method's config dataclass."""
    rows = []
    for f in dataclasses.fields(config_cls):
        rows.append({"name": f.name, "type": type(f.default).__name__, "default": f.default, **f.metadata})
    return rows


def make_config(config_cls: type, values: dict[str, Any]) -> Any:
    """Build a config, checking names, types and ranges with one clear sentence on error."""
    known = {f.name: f for f in dataclasses.fields(config_cls)}
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in known:
            raise InputError(f"Unknown option '{name}' for this method; options are {', '.join(known)}.")
        f = known[name]
        kind = type(f.default)
        if kind is int:
            value = parse_int(value, f"option '{name}'")
        elif kind is float:
            value = parse_float(value, f"option '{name}'")
        elif kind is str:
            value = str(value)
        elif kind is bool and isinstance(value, str):
            if value.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise InputError(f"Option '{name}' must be true or false, not '{value[:20]}'.")
            value = value.strip().lower() in ("1", "true", "yes", "on")
        lo, hi, choices = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices")
        if lo is not None and value < lo:
            raise InputError(f"Option '{name}' must be at least {lo}; got {value}.")
        if hi is not None and value > hi:
            raise InputError(f"Option '{name}' must be at most {hi}; got {value}.")
        if choices and value not in choices:
            raise InputError(f"Option '{name}' must be one of {', '.join(map(str, choices))}; got {value!r}.")
        clean[name] = value
    return config_cls(**clean)


def check_config(spec: MethodSpec, config: Any) -> Any:
    """``config`` checked against the spec: the right dataclass, every value in range."""
    if not isinstance(config, spec.config_cls):
        raise InputError(f"Method '{spec.name}' needs a {spec.config_cls.__name__}, not a {type(config).__name__}.")
    return make_config(spec.config_cls, {f.name: getattr(config, f.name) for f in dataclasses.fields(spec.config_cls)})


# ---------------------------------------------------------------------------------------------
# The registry

_METHODS: dict[str, MethodSpec] = {}
_PLUGINS: dict[Path, Any] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry. A name is registered once (a second, different method with the
    same name is an error; registering the very same spec again, e.g. from a re-imported plugin,
    changes nothing). Returns the spec."""
    if not spec.name or not spec.name.replace("_", "").isalnum() or not spec.name.isascii():
        raise ValueError(f"A method name must be letters, digits and '_'; got {spec.name!r}.")
    if spec.data_touched not in READS:
        raise ValueError(f"Method '{spec.name}' declares data_touched={spec.data_touched!r}; use one of {READS}.")
    if spec.data_touched == RETAIN_SUBSET and "retain_fraction" not in {f.name for f in dataclasses.fields(spec.config_cls)}:
        raise ValueError(f"Method '{spec.name}' reads a retain subset: its config needs a retain_fraction field.")
    existing = _METHODS.get(spec.name)
    if existing is not None:
        same = (getattr(existing.run, "__qualname__", None), getattr(existing.run, "__module__", None)) == \
               (getattr(spec.run, "__qualname__", None), getattr(spec.run, "__module__", None))
        if not same:
            raise ValueError(f"A method named '{spec.name}' is already registered (by {existing.run.__module__}).")
    _METHODS[spec.name] = spec
    return spec


def _load_entry_points() -> None:
    """Import the methods installed packages declare in the ``ssd_core.methods`` entry-point group
    (once). An entry point may name a module (whose import registers its methods) or a MethodSpec."""
    def register_spec(loaded: Any) -> None:
        if isinstance(loaded, MethodSpec):
            register_method(loaded)

    load_entry_points(ENTRY_POINT_GROUP, register_spec)


def load_plugin(path: str | Path) -> None:
    """Import a Python file that registers methods, datasets or models (``register_method``,
    ``ssd_core.data.register_dataset``, ``ssd_core.models.register``), once per file.

    Importing a file runs its code: only name files you trust."""
    resolved = Path(path).expanduser().resolve()
    if resolved in _PLUGINS:
        return
    if not resolved.is_file() or resolved.suffix != ".py":
        raise InputError(f"The plugin '{str(path)[:120]}' is not a .py file.")
    name = f"ssd_core_plugin_{len(_PLUGINS)}_{resolved.stem}"
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"The plugin '{str(path)[:120]}' cannot be imported.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except InputError:
        raise
    except Exception as exc:
        del sys.modules[name]
        raise InputError(f"The plugin '{resolved.name}' failed to import ({type(exc).__name__}: {str(exc)[:120]}).") from exc
    _PLUGINS[resolved] = module


def available_methods() -> dict[str, MethodSpec]:
    """Every registered method: the built-in ones, installed plugins and loaded plugin files."""
    import ssd_core.methods  # noqa: F401  (importing the package registers the built-in methods)

    _load_entry_points()
    return dict(_METHODS)


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``; InputError naming the choices otherwise."""
    return lookup(available_methods(), name, "method")
