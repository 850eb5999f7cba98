"""Unlearning methods, one module each, all with the signature in :mod:`.base`."""

from .base import (
    MethodResult,
    MethodSpec,
    available_methods,
    config_fields,
    get_method,
    make_config,
    register_method,
    run_method,
)
from . import ssd  # noqa: F401  (registers ssd and lfssd)

__all__ = [
    "MethodResult",
    "MethodSpec",
    "available_methods",
    "config_fields",
    "get_method",
    "make_config",
    "register_method",
    "run_method",
]
