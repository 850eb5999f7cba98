"""Unlearning methods, one module each, all with the contract in :mod:`.base`, run by :mod:`.runner`.

Shared loops and helpers live in :mod:`.loops`. Methods from other packages are found through the
``ssd_core.methods`` entry-point group; files with ``python -m ssd_core --plugin FILE``.
"""

from .base import (
    FORGET_ONLY,
    FULL_DATA,
    FULL_DATA_CACHED,
    FULL_RETAIN,
    LIVE_FIELDS,
    READS,
    RETAIN_ONLY,
    RETAIN_SUBSET,
    MethodOutcome,
    MethodResult,
    MethodSpec,
    available_methods,
    config_fields,
    get_method,
    load_plugin,
    make_config,
    param,
    register_method,
)
from .runner import DataContractError, MethodData, run_method

# Importing a method module registers it; this order is the order every list shows.
# isort: off
from . import ssd  # noqa: F401  (registers ssd, lfssd, assd and alfssd)
from . import retrain, finetune, neggrad_plus, random_labels, bad_teacher, scrub, salun  # noqa: F401
from . import l2ul, saps  # noqa: F401  (instance-wise unlearning, sharpness-aware selection)
from . import jit, unsir  # noqa: F401  (zero-shot Lipschitz smoothing, error-maximising noise)
# isort: on

__all__ = [
    "FORGET_ONLY", "FULL_DATA", "FULL_DATA_CACHED", "FULL_RETAIN", "LIVE_FIELDS", "READS", "RETAIN_ONLY", "RETAIN_SUBSET",
    "DataContractError", "MethodData", "MethodOutcome", "MethodResult", "MethodSpec", "available_methods", "config_fields",
    "get_method", "load_plugin", "make_config", "param", "register_method", "run_method",
]
