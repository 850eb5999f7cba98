"""The one signature every unlearning method shares, and the registry that lists them.

A method is ``run(model, split, config, *, device, progress) -> MethodResult``. It never modifies
``model``; it returns a new one. Its config is a dataclass whose fields carry ``metadata`` with
``help`` and, for numbers, ``min``/``max`` (what the CLI and the dashboard build controls from).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..data import ForgetSplit
from ..errors import InputError
from ..indices import parse_float, parse_int
from ..progress import OptionalProgress

# What a method reads besides the model (the dashboard shows it; cheaper is better).
FORGET_ONLY = "forget set only"
RETAIN_SUBSET = "forget set + a retain subset"
FULL_RETAIN = "forget set + full retain set"
FULL_DATA = "full training data (importance cached)"
RETAIN_ONLY = "full retain set"

ALL_REQUESTS = frozenset({"class", "subclass", "random", "indices"})


@dataclass
class MethodResult:
    model: nn.Module
    seconds: dict[str, float]  # per step, always with "total"
    data_touched: str
    diagnostics: dict[str, Any] = field(default_factory=dict)


RunFunction = Callable[..., MethodResult]


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when already on ``device`` (read-only use), else a copy moved there."""
    try:
        current = next(model.parameters()).device
    except StopIteration:
        return model
    if current == torch.device(device) or (current.type == torch.device(device).type == "cpu"):
        return model
    import copy

    return copy.deepcopy(model).to(device)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str
    config_cls: type
    run: RunFunction
    supports: frozenset[str] = ALL_REQUESTS
    data_touched: str = FULL_RETAIN

    def default_config(self, **overrides: Any) -> Any:
        return make_config(self.config_cls, overrides)


def param(default: Any, help: str, min: float | None = None, max: float | None = None, choices: tuple | None = None, log: bool = False) -> Any:
    """A config field with the metadata controls are built from."""
    meta = {"help": help, "min": min, "max": max, "choices": choices, "log": log}
    return field(default=default, metadata=meta)


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


_METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> None:
    _METHODS[spec.name] = spec


def available_methods() -> dict[str, MethodSpec]:
    import ssd_core.methods  # noqa: F401  (importing the package registers the built-in methods)

    return dict(_METHODS)


def get_method(name: str) -> MethodSpec:
    methods = available_methods()
    if name not in methods:
        raise InputError(f"Unknown method '{name}'; choose one of: {', '.join(methods)}.")
    return methods[name]


def run_method(
    name: str,
    model: nn.Module,
    split: ForgetSplit,
    config: Any = None,
    *,
    device: torch.device | str = "cpu",
    progress: OptionalProgress = None,
    **options: Any,
) -> MethodResult:
    """Look up ``name`` and run it, checking the request kind is supported."""
    spec = get_method(name)
    if split.request.kind not in spec.supports:
        raise InputError(f"Method '{name}' does not support {split.request.kind} forget requests.")
    if config is None:
        config = spec.default_config(**options)
    return spec.run(model, split, config, device=torch.device(device), progress=progress)
