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
from . import retrain, finetune, neggrad_plus, random_labels, bad_teacher, scrub, salun  # noqa: F401,E401  (baselines)
from . import l2ul, saps  # noqa: F401,E401  (instance-wise unlearning, sharpness-aware selection)

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
