"""Every ``UNLEARNING_LAB_*`` environment variable, in one place, read through one object.

:data:`VARIABLES` lists them with their defaults and meaning (the README's table is this list);
:func:`settings` reads the environment now and returns a frozen :class:`Settings`. A value that
does not parse is logged and replaced by its default, so a typo in a server's configuration never
stops the lab. The library reads the fields it needs (cache, data, memory, checkpoints, uploads);
the dashboard reads the rest from the same object.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "UNLEARNING_LAB_"


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name without the prefix, default (as text) and meaning."""

    name: str
    default: str
    meaning: str

    @property
    def env(self) -> str:
        return PREFIX + self.name


VARIABLES: tuple[Variable, ...] = (
    Variable("CACHE", "~/.cache/unlearning-lab", "where trained models and importances are cached on disk"),
    Variable("DATA", "~/.cache/unlearning-lab/data",
             "where file-based datasets (MNIST, CIFAR, image folders) are looked for and downloaded to"),
    Variable("DATA_ROOTS", "<DATA>", "colon-separated folders the dashboard may read a dataset folder from"),
    Variable("MEMORY_BUDGET_MB", "2048",
             "the most memory one job may use for user data; larger uploads, datasets and trainings are refused first"),
    Variable("MAX_CHECKPOINT_MB", "200", "largest checkpoint accepted (upload or --checkpoint)"),
    Variable("UPLOAD_MAX_ZIP_MB", "500", "largest dataset zip accepted"),
    Variable("UPLOAD_MAX_MB", "500", "largest total size a dataset zip may unpack to"),
    Variable("UPLOAD_MAX_FILES", "20000", "most files in a dataset zip"),
    Variable("UPLOAD_MAX_PIXELS", "16777216", "most pixels of one uploaded image (4096 x 4096)"),
    Variable("UPLOAD_MAX_TOTAL_PIXELS", "2000000000", "most pixels of all images of a zip together (decoding time)"),
    Variable("UPLOAD_MAX_RATIO", "200", "highest compression ratio of a zip member or the whole zip (zip bombs)"),
    Variable("UPLOAD_MAX_DATASET_MB", "2048", "largest decoded dataset from a zip"),
    Variable("UPLOAD_MAX_SIDE", "128", "images are stored at most this many pixels a side (larger ones are shrunk while decoding)"),
    Variable("MAX_HEAVY_JOBS", "2", "training, importance and method runs at once; others wait in a queue"),
    Variable("THREADS", "min(4, cores)", "PyTorch threads of the dashboard's server"),
    Variable("MAX_PREPARED", "8", "prepared runs (model, importances, evaluation of a setup) kept in memory"),
    Variable("MAX_LIVE", "64", "evaluated slider settings kept in memory"),
    Variable("LIVE_CACHE_MB", "256", "memory for the kept slider settings' outputs"),
    Variable("LIVE_SAMPLE", "200", "on data of more than 3,000 images a slider move reads each card (forget/retain x "
             "train/test) on a fixed class-stratified sample of at most this many images (the CLI's --eval-sample); "
             "0 reads every image"),
    Variable("PREFETCH", "1", "0 stops evaluating the slider's neighbouring settings in the background"),
    Variable("ALLOW_MODEL_FACTORY", "0",
             "1 lets dashboard users load architectures from Python code on the server (importing code runs it)"),
    Variable("DEBUG", "0", "1 shows full error details (tracebacks) in the CLI and in the report's PDF step"),
    Variable("CHROMIUM", "/usr/bin/chromium", "the Chromium the benchmarks and browser tests drive"),
    Variable("PLUGINS", "(none)", "colon-separated Python files the dashboard imports at start, as the CLI's --plugin "
             "(the methods, datasets and models they register appear on the pages; importing code runs it)"),
)


# Images per card a slider move reads on large data: 200 keeps a move on shapes/resnet18_narrow (718 images) at
# about 250 ms on 2 cores and Fashion-MNIST/smallcnn at about 100 ms (bench/bench_live.py); 250 was 333 ms at p95.
LIVE_SAMPLE = 200


@dataclass(frozen=True)
class Settings:
    """The values of :data:`VARIABLES` (parsed; defaults where unset or invalid)."""

    cache_dir: Path
    data_dir: Path
    data_roots: tuple[Path, ...]
    memory_budget_mb: float
    max_checkpoint_mb: float
    upload_max_zip_mb: float
    upload_max_mb: float
    upload_max_files: int
    upload_max_pixels: int
    upload_max_total_pixels: int
    upload_max_ratio: float
    upload_max_dataset_mb: float
    upload_max_side: int
    max_heavy_jobs: int
    threads: int
    max_prepared: int
    max_live: int
    live_cache_mb: int
    prefetch: bool
    live_sample: int
    allow_model_factory: bool
    debug: bool
    chromium: str
    plugins: tuple[str, ...]


def _raw(name: str) -> str | None:
    value = os.environ.get(PREFIX + name)
    return value if value is not None and value.strip() else None


def _number(name: str, default: float, minimum: float = 0.0, whole: bool = False) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= minimum or (whole and not value.is_integer()):
        log.warning("Ignoring %s%s=%r (not a %s number above %g); using %g.", PREFIX, name, raw,
                    "whole" if whole else "positive", minimum, default)
        return default
    return value


def _flag(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


def settings() -> Settings:
    """The settings as the environment says now (cheap: read on every call, so a test or a
    server's configuration can change them)."""
    cache = Path(_raw("CACHE") or Path.home() / ".cache" / "unlearning-lab").expanduser()
    data = Path(_raw("DATA") or Path.home() / ".cache" / "unlearning-lab" / "data").expanduser()
    roots = tuple(Path(p).expanduser() for p in (_raw("DATA_ROOTS") or "").split(os.pathsep) if p.strip())
    return Settings(
        cache_dir=cache,
        data_dir=data,
        data_roots=roots or (data,),
        memory_budget_mb=_number("MEMORY_BUDGET_MB", 2048),
        max_checkpoint_mb=_number("MAX_CHECKPOINT_MB", 200),
        upload_max_zip_mb=_number("UPLOAD_MAX_ZIP_MB", 500),
        upload_max_mb=_number("UPLOAD_MAX_MB", 500),
        upload_max_files=int(_number("UPLOAD_MAX_FILES", 20_000, whole=True)),
        upload_max_pixels=int(_number("UPLOAD_MAX_PIXELS", 4096 * 4096, whole=True)),
        upload_max_total_pixels=int(_number("UPLOAD_MAX_TOTAL_PIXELS", 2e9, whole=True)),
        upload_max_ratio=_number("UPLOAD_MAX_RATIO", 200),
        upload_max_dataset_mb=_number("UPLOAD_MAX_DATASET_MB", 2048),
        upload_max_side=int(min(_number("UPLOAD_MAX_SIDE", 128, whole=True), 4096)),
        max_heavy_jobs=int(_number("MAX_HEAVY_JOBS", 2, whole=True)),
        threads=int(_number("THREADS", min(4, os.cpu_count() or 1), whole=True)),
        max_prepared=int(_number("MAX_PREPARED", 8, whole=True)),
        max_live=int(_number("MAX_LIVE", 64, whole=True)),
        live_cache_mb=int(_number("LIVE_CACHE_MB", 256, whole=True)),
        prefetch=_flag("PREFETCH", True),
        live_sample=int(_number("LIVE_SAMPLE", LIVE_SAMPLE, minimum=-1, whole=True)),
        allow_model_factory=_flag("ALLOW_MODEL_FACTORY", False),
        debug=_flag("DEBUG", False),
        chromium=_raw("CHROMIUM") or "/usr/bin/chromium",
        plugins=tuple(p.strip() for p in (_raw("PLUGINS") or "").split(os.pathsep) if p.strip()),
    )


def markdown_table() -> str:
    """:data:`VARIABLES` as the README's Markdown table (``python -m ssd_core.settings`` prints it)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.env}` | `{v.default}` | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
