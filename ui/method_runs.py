"""Running registry methods on a prepared run, for the Compare, Instances and SAPS pages: inside the
heavy-job gate with progress, each result kept for the session by what determines it (setup key
without the sidebar's live method, method name, config values), and the per-method settings controls.

Metrics come from ``ssd_core.metrics`` exactly as a notebook would compute them: its ``Evaluator`` on
one batched pass with the prepared run's random reference logits for ZRF.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import torch

from ssd_core.data import ForgetSplit
from ssd_core.methods import available_methods, config_fields, make_config, run_method
from ssd_core.metrics import Evaluation, Evaluator, SplitOutputs
from ssd_core.train import TrainConfig
from unlearning_lab import jobs
from unlearning_lab.export import modebar_config
from unlearning_lab.text import duration

from .resources import Prepared
from .state import K_IMAGE_FORMAT, RunSetup, keep, kept
from .theme import themed

K_RESULTS = "_compare_results"
MAX_RESULTS = 24  # per session (each keeps its logits on train and test)


@dataclass
class MethodRun:
    """One method's run on one prepared setup, with its metrics."""

    method: str
    config: dict[str, Any]
    evaluation: Evaluation
    outputs: SplitOutputs
    seconds: dict[str, float]
    data_touched: str
    diagnostics: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # kept only when asked (the instance page needs none; memory)

    @property
    def total_seconds(self) -> float:
        return float(self.seconds.get("total", sum(self.seconds.values())))


def result_key(setup: RunSetup, method: str, config: dict[str, Any]) -> tuple:
    return (setup.split_key(), method, tuple(sorted((k, repr(v)) for k, v in config.items())))


def about(seconds: float) -> str:
    return "a few seconds" if seconds < 5 else f"about {duration(seconds)}"


def method_estimate(prepared: Prepared, method: str, config: dict[str, Any], image_seconds: float) -> str:
    """Before a run: roughly how long ``method`` takes here, from this machine's measured training speed
    (``image_seconds``: seconds per image per epoch, forward and backward). SSD reads the forget set once
    (I_D is cached); a retain-set method reads the retain set once per epoch; the retrained model may be on
    disk already. A method with another schedule gets no number rather than a guess."""
    from ssd_core.audit import reference_source
    from ssd_core.methods.base import FULL_DATA_CACHED, FULL_RETAIN, RETAIN_ONLY

    spec = available_methods()[method]
    split = prepared.split
    if method == "retrain":
        source = reference_source(split, prepared.setup.model, seed=prepared.setup.seed)
        if source is not None:
            return f"{method}: read from disk ({source}, no training)"
        epochs = int(config.get("epochs") or prepared.schedule.epochs)
        return f"{method}: {about(epochs * len(split.retain_train) * image_seconds)} ({epochs} epochs)"
    if spec.data_touched == FULL_DATA_CACHED:
        images = len(split.forget_train) + (0 if config.get("estimator", prepared.setup.estimator) == prepared.setup.estimator
                                            else len(split.train))
        return f"{method}: {about(images * image_seconds)}"
    if spec.data_touched in (FULL_RETAIN, RETAIN_ONLY) and isinstance(config.get("epochs"), int):
        epochs = config["epochs"]
        return f"{method}: {about(epochs * len(split.retain_train) * image_seconds)} ({epochs} epochs over the retain set)"
    return f"{method}: no estimate (its own schedule)"


def estimate_sentence(prepared: Prepared, configs: dict[str, dict[str, Any]]) -> str:
    """One sentence: each chosen method's expected time here (see :func:`method_estimate`)."""
    from .resources import image_seconds

    each = image_seconds(prepared.setup)
    parts = [method_estimate(prepared, method, config, each) for method, config in configs.items()]
    return "Expected here (from this machine's training speed): " + "; ".join(parts) + "."


def methods_for(kind: str) -> list[str]:
    """Registry methods that support this kind of forget request."""
    return [name for name, spec in available_methods().items() if kind in spec.supports]


def _small_diagnostics(diagnostics: dict[str, Any]) -> dict[str, Any]:
    """Diagnostics that are plain numbers, strings, small lists and dicts (what a table or JSON can hold)."""
    keep: dict[str, Any] = {}
    for key, value in diagnostics.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            keep[key] = value
        elif isinstance(value, (list, dict)):
            try:
                json.dumps(value)
                keep[key] = value
            except TypeError:
                pass
    return keep


@contextlib.contextmanager
def gate_slot(on_wait_message: Callable[[str], object]) -> Iterator[None]:
    """A slot of the process-wide heavy-job gate; while queued, ``on_wait_message`` gets 'Queued: N ahead', and
    "" once a job that waited starts (so no label says "Queued" while the job runs)."""
    waited = False

    def on_wait(position: int) -> None:
        nonlocal waited
        waited = True
        on_wait_message(f"Queued: {position - 1} ahead")

    with jobs.default_gate().slot(on_wait=on_wait):
        if waited:
            on_wait_message("")
        yield


def queue_note(progress: Callable[[float, str], None] | None) -> Callable[[str], None]:
    """A ``gate_slot`` message callback for work without a status box: 'Queued: N ahead' as its progress
    text (the "" of a start is left out: the work's own progress follows at once)."""

    def note(message: str) -> None:
        if progress is not None and message:
            progress(0.0, message)

    return note


def run_on_split(
    prepared: Prepared, split: ForgetSplit, method: str, config: dict[str, Any],
    progress: Callable[[float, str], None] | None = None, keep_model: bool = False,
    random_logits: torch.Tensor | None = None, on_wait: Callable[[str], None] | None = None,
) -> MethodRun:
    """Run ``method`` with ``config`` on ``split`` from the prepared original model, and evaluate it."""
    spec = available_methods()[method]
    cfg = make_config(spec.config_cls, config)
    with gate_slot(on_wait or queue_note(progress)):
        result = run_method(method, prepared.model, split, cfg, device=prepared.device, progress=progress)
        start = time.perf_counter()
        evaluator = Evaluator(split, prepared.device, random_forget_logits=random_logits)
        outputs = evaluator.outputs(result.model)
        evaluation = evaluator.from_outputs(outputs)
        evaluation.seconds = time.perf_counter() - start
    seconds = dict(result.seconds)
    return MethodRun(method, dict(config), evaluation, outputs, seconds, result.data_touched,
                     _small_diagnostics(result.diagnostics), result.model if keep_model else None)


def session_results() -> dict:
    return st.session_state.setdefault(K_RESULTS, {})


def cached_run(setup: RunSetup, method: str, config: dict[str, Any]) -> MethodRun | None:
    return session_results().get(result_key(setup, method, config))


def run_cached(
    prepared: Prepared, method: str, config: dict[str, Any], progress: Callable[[float, str], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> MethodRun:
    """The session's result for (setup, method, config), computed on first use."""
    results = session_results()
    key = result_key(prepared.setup, method, config)
    if key not in results:
        results[key] = run_on_split(prepared, prepared.split, method, config, progress,
                                    random_logits=prepared.random_logits, on_wait=on_wait)
        while len(results) > MAX_RESULTS:
            results.pop(next(iter(results)))
    return results[key]


# ---------------------------------------------------------------------------------------------
# Per-method settings


def default_values(method: str, seed: int = 0, model: str | None = None) -> dict[str, Any]:
    """The method's config defaults on ``model`` (SSD: the model's paper alpha), with a ``seed`` field set
    to the run's seed."""
    spec = available_methods()[method]
    values = {f["name"]: f["default"] for f in config_fields(spec.config_cls)}
    values.update(spec.model_defaults(model))
    if "seed" in values:
        values["seed"] = int(seed)
    return values


def widget_key(method: str, name: str) -> str:
    return f"cmp_cfg_{method}_{name}"


ARCHITECTURE_FIELDS = ("model_name",)  # the dashboard always knows the architecture: not shown


def architecture_defaults(method: str, schedule: TrainConfig | None) -> tuple[dict[str, Any], str | None]:
    """For options whose 0 means 'the original's own value' (retrain's schedule): the values that 0 stands
    for, shown instead of 0, and one sentence saying where they come from. ``schedule``: the original's
    (``TrainConfig.default`` for the dataset and architecture)."""
    if method != "retrain" or schedule is None:
        return {}, None
    values = {"epochs": int(schedule.epochs), "lr": float(schedule.lr), "batch_size": int(schedule.batch_size)}
    note = (f"Defaults: {schedule.model}'s own training schedule ({schedule.epochs} epochs, "
            f"{schedule.optimizer} with learning rate {schedule.lr:g}, batch {schedule.batch_size}), so the "
            "retrained model is what training without the forget set would have given.")
    return values, note


def settings_controls(method: str, seed: int, prefix: str = "cmp_cfg", skip: tuple[str, ...] = (),
                      schedule: TrainConfig | None = None) -> dict[str, Any]:
    """Widgets for a method's config fields (number inputs with the field's min/max); returns the values.
    ``schedule``: the original's training schedule, for options that default to its values (see
    :func:`architecture_defaults`)."""
    values = default_values(method, seed, schedule.model if schedule is not None else None)
    resolved, note = architecture_defaults(method, schedule)
    values.update(resolved)
    if note:
        st.caption(note)
    fields = config_fields(available_methods()[method].config_cls)
    cols = st.columns(3)
    for i, f in enumerate(f for f in fields if f["name"] not in skip and f["name"] not in ARCHITECTURE_FIELDS):
        name, default, help_text = f["name"], values[f["name"]], f.get("help")
        key = f"{prefix}_{method}_{name}"
        col = cols[i % 3]
        if f.get("choices"):
            options = list(f["choices"])
            values[name] = col.selectbox(name, options, help=help_text,
                                         **keep(key, default if default in options else options[0], valid=options))
        elif isinstance(default, bool):
            values[name] = col.checkbox(name, help=help_text, **keep(key, default))
        elif isinstance(default, int):
            int_lo = int(f["min"]) if f.get("min") is not None else None
            int_hi = int(f["max"]) if f.get("max") is not None else None
            values[name] = int(col.number_input(name, min_value=int_lo, max_value=int_hi, step=1, help=help_text,
                                                **keep(key, int(default))))
        elif isinstance(default, float):
            lo = float(f["min"]) if f.get("min") is not None else None
            hi = float(f["max"]) if f.get("max") is not None else None
            values[name] = float(col.number_input(name, min_value=lo, max_value=hi, help=help_text, format="%g",
                                                  step=None, **keep(key, float(default))))
        else:
            values[name] = col.text_input(name, help=help_text, **keep(key, str(default)))
    return values


def show_figure(fig: Any, name: str, stem: str, key: str | None = None) -> None:
    """A chart in the session's theme whose camera button saves '<stem>-<name>.<png|svg>'."""
    fmt = kept(K_IMAGE_FORMAT, "png")
    st.plotly_chart(themed(fig), key=key or f"chart-{name}", theme=None, config=modebar_config(f"{stem}-{name}", fmt))


