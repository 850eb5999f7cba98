"""Shared, read-only resources: datasets, original models, importances and everything about a run setup that does not
depend on alpha or lambda.

They live in one process-wide :class:`unlearning_lab.store.ResultStore` held by ``st.cache_resource``, so every
session shares them and nothing is computed twice. The store (rather than caching the loaders themselves with
``st.cache_resource``) lets the long steps report progress to the page that asked for them. Nothing here is ever
mutated after it is built: sessions dampen into their own scratch copy (see :mod:`ui.live`).

Many users: the store is also how identical concurrent requests share one computation (one builder per key, the
others wait for its result; no second mechanism such as ``unlearning_lab.jobs.single_flight`` is layered on top).
The heavy part of every build (training or loading the original, importances, evaluation) runs inside a slot of the
process-wide ``unlearning_lab.jobs.default_gate()`` (``UNLEARNING_LAB_MAX_HEAVY_JOBS``, default 2), so a crowd
queues ("Queued: N ahead of you") instead of thrashing the CPU; slider moves are cheap and never queue.

Uploads (a user's checkpoint or dataset zip) never enter the shared store: a setup that uses one is prepared in its
own session (:func:`ui.store.store_for`), its key carries the upload's content hash and the session id, and its
importances are cached per session, keyed by the weights fingerprint.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
import torch
from torch import nn

from ssd_core.dampening import DampeningReport
from ssd_core.data import ForgetSplit, ImageDataset, make_split
from ssd_core.engine import SSDEngine
from ssd_core.errors import InputError
from ssd_core.guard import AutoSetting, CollapseGuard, GuardCheck, GuardFix
from ssd_core.importance import ImportanceCache, model_fingerprint
from ssd_core.methods import available_methods, get_method
from ssd_core.methods.base import MethodSpec
from ssd_core.methods.ssd import SSDImportances, ssd_importances
from ssd_core.metrics import (
    Evaluation,
    Evaluator,
    SplitOutputs,
    evaluate_outputs,
    live_sample_size,
    random_reference_logits,
    split_outputs,
    to_channels_last,
)
from ssd_core.models import ModelSpec, get_spec, last_conv_layer, resolve_device
from ssd_core.original_outputs import original_outputs
from ssd_core.progress import OptionalProgress, report, scaled
from ssd_core.settings import settings
from ssd_core.train import TrainConfig, TrainedModel, accuracy, find_checkpoint, load_or_train, train_model
from unlearning_lab import figures, jobs

from .state import RunSetup
from .store import cached_dataset, existing_store, resource_store, store_for

log = logging.getLogger("unlearning_lab.ui")


def heavy_slot(progress: OptionalProgress):
    """A slot of the process-wide heavy-job gate; while queued, the progress text says how many are ahead."""

    def on_wait(position: int) -> None:
        gate = jobs.default_gate()
        report(progress, 0.0, f"Queued: {position - 1} ahead of you (the server runs {gate.max_concurrent} heavy "
                              "jobs at a time; this starts by itself)")

    return jobs.default_gate().slot(on_wait=on_wait)


def configure_torch() -> None:
    """Keep torch from grabbing every core of a shared machine (UNLEARNING_LAB_THREADS overrides)."""
    threads = settings().threads
    if torch.get_num_threads() != max(1, threads):
        torch.set_num_threads(max(1, threads))


# ---------------------------------------------------------------------------------------------
# Datasets, methods, models


def available_datasets(data_dir: str | None = None) -> list[str]:
    """The registered datasets that can be loaded here: those that need no files, and the others whose
    files are in the data directory (each registration says how to tell)."""
    from ssd_core.data import available_datasets as registered

    return [name for name, spec in registered().items() if spec.available(data_dir)]


def ui_methods() -> dict[str, MethodSpec]:
    """The methods the dashboard drives live: those whose config declares alpha and lambda live
    (``MethodSpec.is_live``; ssd and lfssd, and any plug-in that does the same)."""
    return {name: spec for name, spec in available_methods().items() if spec.is_live}


def checkpoint_source(dataset: ImageDataset, model_name: str, seed: int) -> str | None:
    """'shipped' or 'cache' when a trained checkpoint exists for this choice, None when it will be
    trained, '' when that cannot be told."""
    try:
        return find_checkpoint(dataset, model_name, seed)
    except Exception:  # noqa: BLE001 - only a hint for the sidebar
        return ""


def needs_training(setup: RunSetup) -> bool:
    """Whether preparing ``setup`` would train its original model first (no shipped or cached
    checkpoint, not in memory; an uploaded dataset's model not yet trained in this session)."""
    if setup.model_upload is not None:
        return False
    if setup.data_upload is not None:
        from . import uploads

        upload = uploads.get_dataset(st.session_state, setup.data_upload)
        if upload is None:
            return False
        key = (upload.dataset.fingerprint(), setup.model, setup.seed, str(resolve_device(setup.device)))
        return key not in st.session_state.get(K_SESSION_ORIGINALS, {})
    dataset = cached_dataset(setup.dataset, setup.data_dir)
    if peek_original_model(dataset, setup.model, setup.seed, resolve_device(setup.device)) is not None:
        return False
    return checkpoint_source(dataset, setup.model, setup.seed) is None


def dataset_of(setup: RunSetup) -> ImageDataset:
    """The setup's dataset: the registry's (loaded once per process) or its session's upload."""
    if setup.data_upload is None:
        return cached_dataset(setup.dataset, setup.data_dir)
    from . import uploads

    upload = uploads.get_dataset(st.session_state, setup.data_upload)
    if upload is None:
        raise InputError("The uploaded dataset is no longer in this session; upload the zip again.")
    return upload.dataset


def training_estimate(setup: RunSetup) -> tuple[float, int, int]:
    """(estimated seconds, epochs, training images) for training ``setup``'s original model here."""
    from ssd_core.train import estimate_training_seconds

    dataset = dataset_of(setup)
    config = TrainConfig.default(dataset.name, setup.model, setup.seed)
    device = resolve_device(setup.device)
    key = (dataset.fingerprint(), setup.model, setup.seed, str(device))
    def measure() -> float:
        with heavy_slot(None):
            return estimate_training_seconds(dataset, config, device)

    seconds = resource_store().get("train_estimate", key, measure)
    return float(seconds), config.epochs, len(dataset.train_y)


def image_seconds(setup: RunSetup) -> float:
    """Seconds per training image per epoch (forward and backward) for ``setup``'s model here, measured:
    what every "about N min here" estimate multiplies (an importance pass costs about the same per image)."""
    seconds, epochs, n_train = training_estimate(setup)
    return seconds / max(1, epochs * n_train)


@dataclass
class OriginalModel:
    trained: TrainedModel
    model: nn.Module  # on ``device``, eval mode; shared: never modify
    device: torch.device
    fingerprint: str
    seconds: float


def original_model(
    dataset: ImageDataset, model_name: str, seed: int, device: torch.device, progress: OptionalProgress = None
) -> OriginalModel:
    """The trained original (shipped, cached on disk, or trained now), once per process."""
    key = (dataset.name, dataset.fingerprint(), model_name, seed, str(device))

    def build() -> OriginalModel:
        start = time.perf_counter()
        trained = load_or_train(dataset, model_name, seed=seed, device=device, progress=progress)
        model = trained.model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(True)
        return OriginalModel(trained, model, device, model_fingerprint(model), time.perf_counter() - start)

    return resource_store().get("model", key, build)


def peek_original_model(dataset: ImageDataset, model_name: str, seed: int, device: torch.device) -> OriginalModel | None:
    return resource_store().peek("model", (dataset.name, dataset.fingerprint(), model_name, seed, str(device)))


# ---------------------------------------------------------------------------------------------
# A prepared run (everything that does not depend on alpha or lambda)


@dataclass
class Prepared:
    setup: RunSetup
    dataset: ImageDataset
    split: ForgetSplit
    original: OriginalModel
    method_spec: MethodSpec
    model_spec: ModelSpec
    importances: SSDImportances
    # The original's logits and numbers on every image, computed on first use: on large data the Unlearn page's
    # cards read the live sample (``before_live``), so its first screen does not wait for 70,000 images.
    before_source: Callable[[], SplitOutputs]
    random_source: Callable[[], torch.Tensor]  # ZRF's random reference on the forget set, see random_logits
    ratio_summaries: list[figures.LayerRatioSummary]
    importance_sample: figures.ImportanceSample
    # What a slider move reads: every image, or on large data a fixed stratified sample per card
    # (:func:`live_sample_size`), skipping the layers before the first changed one (``shortcut_from``).
    live_evaluator: Evaluator
    before_live: Evaluation | None  # the original on the live sample, what the cards compare with (None: every image)
    seconds: dict[str, float] = field(default_factory=dict)
    _before_memo: list[tuple[SplitOutputs, Evaluation]] = field(default_factory=list, repr=False)

    @functools.cached_property
    def random_logits(self) -> torch.Tensor:
        """A random same-architecture model's logits on forget-train, computed on first use: only full-set
        numbers read them (ZRF), so a sampled first screen skips them (1.1 s on a Fashion-MNIST class)."""
        return self.random_source()

    def before_evaluation(self) -> tuple[SplitOutputs, Evaluation]:
        """The original's logits and numbers on every image (computed on first use, then kept)."""
        if not self._before_memo:
            outputs = self.before_source()
            evaluation = evaluate_outputs(outputs, self.split, random_forget_logits=self.random_logits)
            self._before_memo[:] = [(outputs, evaluation)]
        return self._before_memo[0]

    @property
    def before_outputs(self) -> SplitOutputs:
        """The original's logits on every training and test image."""
        return self.before_evaluation()[0]

    @property
    def before_eval(self) -> Evaluation:
        """The original's numbers on every image."""
        return self.before_evaluation()[1]

    @property
    def live_sample(self) -> int | None:
        """Images per card a move reads at most (None: all of them)."""
        return self.live_evaluator.max_per_subset

    @property
    def before(self) -> Evaluation:
        """The original's numbers on the images a move reads (the full-set ones when a move reads them all)."""
        return self.before_live if self.before_live is not None else self.before_eval

    @property
    def model(self) -> nn.Module:
        return self.original.model

    @property
    def device(self) -> torch.device:
        return self.original.device

    @property
    def schedule(self) -> TrainConfig:
        """The original's training schedule on this dataset (what retrain repeats without the forget set)."""
        return TrainConfig.default(self.dataset.name, self.model_spec.name, self.setup.seed)

    @property
    def key(self) -> tuple:
        return self.setup.key()

    @property
    def param_names(self) -> list[str]:
        return list(self.importances.full)

    def default_layer(self) -> str:
        """The last conv layer's weight when there is one, else the largest weight tensor."""
        names = self.param_names
        conv = last_conv_layer(self.model)
        if conv is not None:
            for name, module in self.model.named_modules():
                if module is conv and f"{name}.weight" in names:
                    return f"{name}.weight"
        params = dict(self.model.named_parameters())
        return max(names, key=lambda n: params[n].numel())


def _check_setup(setup: RunSetup) -> tuple[MethodSpec, ModelSpec, torch.device]:
    if setup.method not in ui_methods():
        raise InputError(f"The dashboard drives {', '.join(ui_methods())} live; '{setup.method}' is not one of them.")
    method_spec = get_method(setup.method)
    if setup.request.kind not in method_spec.supports:
        raise InputError(f"{setup.method.upper()} does not support {setup.request.kind} forget requests.")
    return method_spec, get_spec(setup.model), resolve_device(setup.device)


def _build(
    setup: RunSetup,
    dataset: ImageDataset,
    get_original: Callable[[torch.device, OptionalProgress], OriginalModel],
    progress: OptionalProgress,
    importance_cache: ImportanceCache | None = None,
) -> Prepared:
    """Everything about ``setup`` that does not depend on alpha or lambda (the heavy part gated)."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    report(progress, 0.0, f"loading {setup.dataset}")
    method_spec, model_spec, device = _check_setup(setup)
    split = make_split(dataset, setup.request)
    seconds["data"] = time.perf_counter() - start

    with heavy_slot(progress):
        start = time.perf_counter()
        original = get_original(device, scaled(progress, 0.02, 0.6))
        seconds["original_model"] = time.perf_counter() - start

        report(progress, 0.6, "importance on the full training data (cached after the first time)")
        importances = ssd_importances(
            original.model, split, setup.estimator, setup.batch_size, device=device, cache=importance_cache,
            model_key=original.fingerprint, progress=scaled(progress, 0.6, 0.92),
        )
        seconds["importance_full"] = importances.full_seconds
        seconds["importance_forget"] = importances.forget_seconds

        start = time.perf_counter()
        report(progress, 0.93, "evaluating the original model")
        per_card = live_sample_size(split)
        random_source = functools.partial(random_reference_logits, setup.model, split, device, seed=setup.seed)
        random_logits = random_source() if per_card is None else None  # sampled cards show no ZRF
        live_evaluator = Evaluator(split, device, max_per_subset=per_card, seed=setup.seed, stratified=True,
                                   random_forget_logits=random_logits,
                                   shortcut_from=original.model)
        before_live = live_evaluator(original.model) if per_card is not None else None
        seconds["evaluation"] = time.perf_counter() - start

    report(progress, 0.97, "summarising importance ratios")
    summaries = figures.layer_ratio_summaries(importances.full, importances.forget)
    sample = figures.sample_importances(importances.full, importances.forget, seed=setup.seed)
    prepared = Prepared(setup, dataset, split, original, method_spec, model_spec, importances,
                        lambda: _original_outputs(setup, original, split, device), random_source, summaries, sample,
                        live_evaluator, before_live, seconds)
    if random_logits is not None:  # small data: a move reads every image anyway, so the original's numbers now
        prepared.random_logits = random_logits
        start = time.perf_counter()
        prepared.before_evaluation()
        seconds["evaluation"] += time.perf_counter() - start
    report(progress, 1.0, "ready")
    return prepared


def _original_outputs(setup: RunSetup, original: OriginalModel, split: ForgetSplit, device: torch.device) -> SplitOutputs:
    """The original model's logits on the whole train and test splits, the same for every forget request: shared
    runs read them from ssd_core's cache (memory, disk, shipped); an upload's stay in its session (read-only)."""
    key = (original.fingerprint, split.dataset.fingerprint(), str(device))
    build = (lambda: split_outputs(original.model, split, device)) if setup.is_session_local else \
        (lambda: original_outputs(original.model, split, device, original.fingerprint))
    return store_for(setup).get("original_outputs", key, build)


def _prepare(setup: RunSetup, progress: OptionalProgress) -> Prepared:
    """A shared prepared run: a registry dataset (embedded or server files) and a registry model."""
    report(progress, 0.0, f"loading {setup.dataset}")
    _check_setup(setup)  # refuse a bad setup before loading anything
    dataset = cached_dataset(setup.dataset, setup.data_dir)
    return _build(
        setup, dataset,
        lambda device, p: original_model(dataset, setup.model, setup.seed, device, p),
        progress,
    )


# ---------------------------------------------------------------------------------------------
# Session-local runs (uploads)

K_SESSION_ORIGINALS = "_session_originals"
K_SESSION_IMPORTANCE = "_session_importance_cache"
MAX_SESSION_ORIGINALS = 2


def session_id() -> str:
    """This browser session's id (what session-local setups are keyed with)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def _session_importance_cache() -> ImportanceCache:
    """A per-session, memory-only importance cache (keyed by weights and data fingerprints; never on disk)."""
    cache = st.session_state.get(K_SESSION_IMPORTANCE)
    if cache is None:
        cache = ImportanceCache(directory=None, max_in_memory=2)
        st.session_state[K_SESSION_IMPORTANCE] = cache
    return cache


def _session_original(setup: RunSetup, dataset: ImageDataset, device: torch.device, progress: OptionalProgress) -> OriginalModel:
    """The uploaded checkpoint, or a registry model trained now on the uploaded dataset (kept in the session)."""
    from . import uploads

    start = time.perf_counter()
    if setup.model_upload is not None:
        upload = uploads.get_model(st.session_state, setup.model_upload)
        if upload is None:
            raise InputError("The uploaded checkpoint is no longer in this session; upload it again.")
        model = upload.model.to(device).eval()
        report(progress, 0.5, "measuring the uploaded model's test accuracy")
        test_acc = accuracy(model, dataset.test(), device)
        trained = TrainedModel(model, TrainConfig.default(dataset.name, setup.model, setup.seed), test_acc,
                               0.0, "uploaded checkpoint")
        return OriginalModel(trained, model, device, upload.fingerprint, time.perf_counter() - start)

    key = (dataset.fingerprint(), setup.model, setup.seed, str(device))
    originals: OrderedDict = st.session_state.setdefault(K_SESSION_ORIGINALS, OrderedDict())
    if key in originals:
        return originals[key]
    trained = train_model(dataset, TrainConfig.default(dataset.name, setup.model, setup.seed), device=device,
                          progress=progress)  # never written to the shared disk cache
    model = trained.model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(True)
    original = OriginalModel(trained, model, device, model_fingerprint(model), time.perf_counter() - start)
    originals[key] = original
    while len(originals) > MAX_SESSION_ORIGINALS:
        originals.popitem(last=False)
    return original


def _prepare_session_local(setup: RunSetup, progress: OptionalProgress) -> Prepared:
    _check_setup(setup)
    dataset = dataset_of(setup)
    return _build(
        setup, dataset,
        lambda device, p: _session_original(setup, dataset, device, p),
        progress, importance_cache=_session_importance_cache(),
    )


def prepare(setup: RunSetup, progress: OptionalProgress = None) -> Prepared:
    """The prepared run for ``setup``: built once per process and shared read-only, or, for a setup
    with an upload, built once in this session and kept there only."""
    def shared() -> None:
        report(progress, 0.0, "Another session is preparing exactly this run; waiting for its result")

    build = _prepare_session_local if setup.is_session_local else _prepare
    return store_for(setup).get("prepared", setup.key(), lambda: build(setup, progress), on_shared=shared)


def peek_prepared(setup: RunSetup) -> Prepared | None:
    store = existing_store(setup)
    return None if store is None else store.peek("prepared", setup.key())


def importance_ratios(prepared: Prepared) -> torch.Tensor:
    """The prepared run's finite I_f / I_D ratios (alpha-independent; computed once per run)."""
    from ssd_core.dampening import finite_ratios

    return store_for(prepared.setup).get(
        "ratios", prepared.key, lambda: finite_ratios(prepared.importances.full, prepared.importances.forget))


def _derived(prepared: Prepared, namespace: str, key: tuple, build: Callable[[], Any]) -> Any:
    """A value derived from a prepared run, computed once, kept where the run's results are kept."""
    return store_for(prepared.setup).get(namespace, (prepared.key, *key), build)


def collapse_guard(prepared: Prepared) -> CollapseGuard:
    """The run's collapse guard (its samples and the original's accuracy on them)."""
    split = prepared.split
    return _derived(prepared, "guard", (), lambda: CollapseGuard(
        prepared.model, split.retain_train, split.forget_train, prepared.device,
        whole_classes=prepared.setup.request.kind in ("class", "subclass"), cache=not prepared.setup.is_session_local))


def auto_alpha(prepared: Prepared, lam: float) -> AutoSetting:
    """What "auto" dampens with at this lambda: ssd_core.guard.auto_setting, the rule the CLI's assd
    follows, with the guard's check of the adaptive alpha read from the evaluation a slider move
    computes anyway (no extra forward pass)."""
    split = prepared.split

    def check_at(alpha: float) -> GuardCheck:
        return guard_check(prepared, compute_live(prepared, alpha, lam))

    return _derived(prepared, "auto_alpha", (float(lam),), lambda: engine(prepared).auto(
        collapse_guard(prepared), len(split.forget_train), len(split.train), lam, ratios=importance_ratios(prepared),
        check_at=check_at))


def guard_check(prepared: Prepared, live: LiveResult) -> GuardCheck:
    """The guard's check of a live result: from the logits the cards were computed from when a move reads every
    image, else on the guard's own samples (one forward pass, kept per setting)."""
    if prepared.live_sample is None:
        return collapse_guard(prepared).check_logits(live.outputs.train_logits, live.alpha, live.lam)
    return _derived(prepared, "guard_check", (float(live.alpha), float(live.lam)),
                    lambda: collapse_guard(prepared).check(live.model, live.alpha, live.lam, changed=live.report.changed))


def collapse_check(prepared: Prepared, live: LiveResult, runner: Callable[[Callable[[], Any]], Any] | None = None) -> GuardCheck:
    """The check behind a hand-set move's collapse warning; on a sample, the full check if known, else only its retain
    part (one pass, not two; forget accuracy NaN) run by ``runner`` (ui.prefetch.at_low_priority: not the session)."""
    if prepared.live_sample is None:
        return guard_check(prepared, live)
    setting, checker = (float(live.alpha), float(live.lam)), collapse_guard(prepared)
    if (known := store_for(prepared.setup).peek("guard_check", (prepared.key, *setting))) is not None:
        return known
    def build() -> GuardCheck:
        return checker.check(live.model, live.alpha, live.lam, forget=False, changed=live.report.changed)

    return _derived(prepared, "collapse_check", setting, build if runner is None else lambda: runner(build))


def full_live(prepared: Prepared, alpha: float, lam: float) -> tuple[SplitOutputs, Evaluation]:
    """The numbers of (alpha, lambda) on every training and test image, kept like a move's (where a move reads
    a sample: what the "All images" button shows)."""
    if prepared.live_sample is None:
        live = compute_live(prepared, alpha, lam)
        return live.outputs, live.evaluation

    def build() -> tuple[SplitOutputs, Evaluation]:
        model, _ = engine(prepared).at(alpha, lam)
        outputs = split_outputs(model, prepared.split, prepared.device)
        return outputs, evaluate_outputs(outputs, prepared.split, random_forget_logits=prepared.random_logits)

    return store_for(prepared.setup).get("live_full", (prepared.key, float(alpha), float(lam)), build)


def peek_full_live(prepared: Prepared, alpha: float, lam: float) -> Evaluation | None:
    """The all-image numbers of (alpha, lambda) when they were computed already (else None; nothing runs)."""
    if prepared.live_sample is None:
        return None
    found = store_for(prepared.setup).peek("live_full", (prepared.key, float(alpha), float(lam)))
    return None if found is None else found[1]


def guard_check_at(prepared: Prepared, alpha: float, lam: float) -> GuardCheck:
    """The guard's check of another setting (e.g. the paper's alpha while auto is on)."""
    return _derived(prepared, "guard_check", (float(alpha), float(lam)), lambda: collapse_guard(prepared).check_setting(
        prepared.model, prepared.importances.full, prepared.importances.forget, alpha, lam))


def keep_rest_setting(prepared: Prepared, alpha: float, lam: float) -> GuardFix:
    """The guard's suggestion after a collapse at (alpha, lam)."""
    return _derived(prepared, "guard_fix", (float(alpha), float(lam)), lambda: collapse_guard(prepared).fix(
        prepared.model, prepared.importances.full, prepared.importances.forget, alpha, lam))


# ---------------------------------------------------------------------------------------------
# Live results (one per slider position)


@dataclass
class LiveResult:
    alpha: float
    lam: float
    model: nn.Module  # the session's scratch model, overwritten by the next slider move
    report: DampeningReport
    outputs: SplitOutputs
    evaluation: Evaluation
    seconds: dict[str, float]


def scratch_model(prepared: Prepared) -> nn.Module:
    """A private same-architecture model to dampen into (one per session and prepared run), laid
    out channels_last so each slider move's evaluation runs without a further copy."""
    return to_channels_last(copy.deepcopy(prepared.model))


def _evaluate_live(prepared: Prepared, model: nn.Module, changed: list[str]) -> tuple[SplitOutputs, Evaluation]:
    """A move's outputs and numbers: on every image, or on the run's live sample (its outputs then have one row
    per sampled image, see :attr:`Prepared.live_evaluator`). ``changed``: the parameters dampening changed; the
    layers before the first of them are not recomputed (:class:`ssd_core.prefix.PrefixCache`, bitwise equal)."""
    start = time.perf_counter()
    outputs = prepared.live_evaluator.outputs(model, changed)
    evaluation = prepared.live_evaluator.from_outputs(outputs)
    evaluation.seconds = time.perf_counter() - start
    return outputs, evaluation


def engine(prepared: Prepared) -> SSDEngine:
    """SSD on this run's model and cached importances (ssd_core's engine: the page never dampens itself)."""
    return SSDEngine(prepared.model, prepared.importances.full, prepared.importances.forget)


def compute_live(prepared: Prepared, alpha: float, lam: float, scratch: nn.Module | None = None) -> LiveResult:
    """Dampen with cached importances and evaluate once (what a slider move costs).

    The dampened model is always the caller's own (``scratch``, or a new copy). Its outputs and metrics depend only
    on (prepared run, alpha, lambda), so they are kept, read-only (:func:`store_for`): for shared runs process-wide,
    so a classroom moving the same sliders on the same run evaluates each setting once and concurrent identical
    moves wait for one evaluation; for uploads in the session."""
    start = time.perf_counter()
    model, dampening_report = engine(prepared).at(alpha, lam, into=scratch)
    damp_seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs, evaluation = store_for(prepared.setup).get(
        "live", (prepared.key, float(alpha), float(lam)),
        lambda: _evaluate_live(prepared, model, dampening_report.changed))
    return LiveResult(alpha, lam, model, dampening_report, outputs, evaluation,
                      {"dampening": damp_seconds, "evaluation": time.perf_counter() - start})
