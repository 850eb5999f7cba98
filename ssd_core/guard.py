"""The collapse guard: did dampening take the retained classes down with the forget set, and if so,
which gentler setting keeps them?

SSD's selection (I_f > alpha * I_D) breaks when the forget set is a large share of the data: with
10 classes each is about 10 % of D, so weights shared by every class already sit near
I_f / I_D = 10 and alpha 10 dampens them too. The guard measures that on training data only: a
fixed, seeded sample of retain-train and the forget set (never test data: choosing alpha on the
test set would make the reported test numbers dishonest).

:meth:`CollapseGuard.check` compares retain accuracy before and after; :meth:`CollapseGuard.fix`
finds the window of alphas above the current one where the retained classes are kept and the
forget set is still forgotten (bisection on log alpha over the cached importances, milliseconds
per probe on the digits) and suggests its middle.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .dampening import AdaptiveAlpha, adaptive_alpha, dampen, finite_ratios
from .data import Subset
from .importance import ImportanceDict
from .metrics import logits_of, to_channels_last

RETAIN_DROP = 0.03  # the largest retain-accuracy drop (fraction) the guard accepts
SAMPLE = 512  # retain-train images the check looks at (and at most this many forget images)
# On large training sets (Fashion-MNIST: 54,000 retain images) 512 images measure a drop to about +-1 point,
# and a 1.6-point drop there was 3.6 on the test set: four times the retain sample where the data allows.
LARGE_DATA = 20_000
LARGE_SAMPLE = 2048
FORGET_SLACK = 0.05  # the fix may give back at most this much forget accuracy
FORGOTTEN = 0.05  # a forgotten class: forget accuracy at most this (what a model never trained on it gives)
BISECTION_STEPS = 16
# The wider search for whole classes (when no alpha on the line forgets and keeps): alpha on a log grid around
# the starting alpha (1/16 to 16 times, half-octave steps) times these lambdas (relative to the starting one),
# then eighth-octave steps around the best. Retain accuracy and forgetting are not monotone in alpha on real
# data (Fashion-MNIST T-shirt: alpha 35 leaves 8% recognised, alpha 50 none), so a grid, not a bisection.
SEARCH_ALPHAS = tuple(2 ** (k / 2) for k in range(-8, 9))
SEARCH_LAMBDAS = (1.0, 0.1, 0.01)
REFINE_ALPHAS = tuple(2 ** (k / 8) for k in (-3, -2, -1, 1, 2, 3))
FALLBACK_PROBES = 12  # with no setting that keeps and forgets: retain measured at the 12 that forget most


@dataclass(frozen=True)
class GuardCheck:
    """Retain and forget accuracy (on training data) of the original and of a dampened model."""

    alpha: float
    lam: float
    retain_before: float
    retain_after: float
    forget_before: float
    forget_after: float
    threshold: float
    forget_limit: float | None = None  # class requests: the forget accuracy a forgotten class stays under

    @property
    def drop(self) -> float:
        """Retain accuracy lost, as a fraction."""
        return self.retain_before - self.retain_after

    @property
    def fired(self) -> bool:
        """Whether retain accuracy fell by more than the threshold."""
        return self.drop > self.threshold

    @property
    def incomplete(self) -> bool:
        """Whether a class meant to be forgotten is still recognised (class requests only)."""
        return (self.forget_limit is not None and not math.isnan(self.forget_after)
                and self.forget_after > self.forget_limit)

    def sentence(self) -> str:
        """The guard's outcome in one sentence: the page shows it, the CLI prints it (after "collapse guard: ")."""
        if not self.fired and self.incomplete:
            return (f"Not forgotten: at α = {format_alpha(self.alpha)} the model still recognises {100 * self.forget_after:.1f}% "
                    f"of the forget set (a forgotten class stays under {100 * (self.forget_limit or 0):.0f}%).")
        if not self.fired:
            return (f"Retained classes kept: retain accuracy on a training sample moved {0.0 - 100 * self.drop:+.1f} points "
                    f"(the guard allows -{100 * self.threshold:.0f}).")
        return (f"Collapse: at α = {format_alpha(self.alpha)} retain accuracy on a training sample fell by "
                f"{100 * self.drop:.1f} points ({100 * self.retain_before:.1f}% -> {100 * self.retain_after:.1f}%), "
                f"more than the {100 * self.threshold:.0f} the guard allows.")

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "fired": self.fired, "incomplete": self.incomplete}

    @classmethod
    def from_dict(cls, values: dict) -> GuardCheck:
        """The check back from :meth:`to_dict` (the CLI words a result's JSON as the page words the object)."""
        limit = values.get("forget_limit")
        return cls(float(values["alpha"]), float(values["lam"]), float(values["retain_before"]),
                   float(values["retain_after"]), float(values["forget_before"]), float(values["forget_after"]),
                   float(values["threshold"]), None if limit is None else float(limit))


@dataclass(frozen=True)
class GuardFix:
    """The setting the guard suggests after a collapse, with its check."""

    alpha: float
    lam: float
    check: GuardCheck
    forgotten: bool  # forget accuracy within FORGET_SLACK of the collapsed setting's
    probes: int
    seconds: float
    lam_changed: bool = False  # the wider search chose another lambda than the one asked for

    @property
    def kept(self) -> bool:
        """Whether retain accuracy is within the threshold at the suggested setting."""
        return not self.check.fired

    def setting(self) -> str:
        """'α = 49.9, λ = 0.1' (λ only when the search changed it)."""
        return f"α = {format_alpha(self.alpha)}" + (f", λ = {self.lam:g}" if self.lam_changed else "")

    def sentence(self) -> str:
        c = self.check
        if not self.kept:
            return ("No setting keeps the retained classes within the guard's "
                    f"{100 * c.threshold:.0f} points (best: {self.setting()}, retain drop {100 * c.drop:.1f} points).")
        if not self.forgotten and c.forget_limit is not None:
            return (f"Cannot forget this class within the retain budget: the best setting that keeps retain accuracy "
                    f"within {100 * c.threshold:.0f} points ({self.setting()}) still recognises "
                    f"{100 * c.forget_after:.1f}% of the forget set (a forgotten class is under "
                    f"{100 * c.forget_limit:.0f}%).")
        tail = ("and the forget set is forgotten" if self.forgotten
                else "but the forget set is only partly forgotten there")
        return (f"{self.setting()} keeps retain accuracy within {100 * c.threshold:.0f} points "
                f"(drop {100 * c.drop:.1f}, forget accuracy {100 * c.forget_after:.1f}%) {tail}.")

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "lam": self.lam, "kept": self.kept, "forgotten": self.forgotten,
                "probes": self.probes, "check": self.check.to_dict()}  # seconds go with the run's timings

    @classmethod
    def from_dict(cls, values: dict, lam_asked: float | None = None) -> GuardFix:
        """The fix back from :meth:`to_dict`; ``lam_asked``: the lambda the search started from."""
        lam = float(values["lam"])
        return cls(float(values["alpha"]), lam, GuardCheck.from_dict(values["check"]), bool(values["forgotten"]),
                   int(values.get("probes", 0)), 0.0, lam_changed=lam_asked is not None and lam != lam_asked)


def format_alpha(alpha: float) -> str:
    """α as every page and the CLI show it: three significant digits (112.682 -> 113)."""
    return f"{alpha:.3g}"


def _sample(subset: Subset, limit: int, seed: int) -> Subset:
    if len(subset) <= limit:
        return subset
    generator = torch.Generator().manual_seed(seed)
    return subset.select(torch.randperm(len(subset), generator=generator)[:limit].sort().values)


class CollapseGuard:
    """Checks dampened models of one original against its retain and forget accuracy.

    Args:
        model: the original model (never modified).
        retain_train: the retain part of the training data (a fixed sample of it is used).
        forget_train: the forget set (at most ``samples`` of it).
        device: where to evaluate.
        threshold: the largest retain-accuracy drop accepted (fraction).
        samples: retain-train images in the sample (default :data:`SAMPLE`, :data:`LARGE_SAMPLE` when the
            retain set holds :data:`LARGE_DATA` images or more).
        seed: the sample's seed.
        whole_classes: the forget set is whole classes, so "forgotten" has a level (accuracy at most
            :data:`FORGOTTEN`, what a model never trained on them gives) and the guard also
            corrects an alpha that leaves them recognised. For samples it only guards the rest.
        cache: read and keep :meth:`fix`'s searches in :mod:`ssd_core.guard_cache` (False for a user's upload on
            a shared server, and where a search is timed).
    """

    def __init__(self, model: nn.Module, retain_train: Subset, forget_train: Subset, device: torch.device | str,
                 *, threshold: float = RETAIN_DROP, samples: int | None = None, seed: int = 0,
                 whole_classes: bool = False, cache: bool = True) -> None:
        self.device = torch.device(device)
        self.cache = cache
        self.threshold = float(threshold)
        self.forget_limit = FORGOTTEN if whole_classes else None
        if samples is None:
            samples = LARGE_SAMPLE if len(retain_train) >= LARGE_DATA else SAMPLE
        self.retain = _sample(retain_train, samples, seed)
        self.forget = _sample(forget_train, min(samples, SAMPLE), seed + 1)
        self._original = model
        self._prefix: dict[int, Any] = {}  # 0 retain, 1 forget: ssd_core.prefix.PrefixCache, built on first use
        self.retain_before, self.forget_before = self.accuracies(model)

    def accuracies(self, model: nn.Module, *, retain: bool = True, forget: bool = True,
                   changed: Sequence[str] | None = None) -> tuple[float, float]:
        """(retain, forget) accuracy of ``model`` on the guard's samples (NaN for an empty set or
        a part not asked for). ``changed``: the parameters in which ``model`` differs from the guard's
        original; the layers before the first of them are not recomputed (bitwise the same logits)."""
        out = []
        for i, (subset, wanted) in enumerate(((self.retain, retain), (self.forget, forget))):
            if len(subset) == 0 or not wanted:
                out.append(math.nan)
                continue
            logits = self._shortcut_logits(model, i, changed) if changed is not None else None
            if logits is None:
                logits = logits_of(model, subset, self.device)
            out.append(float((logits.argmax(1) == subset.y).float().mean()))
        return out[0], out[1]

    def _shortcut_logits(self, model: nn.Module, which: int, changed: Sequence[str]) -> torch.Tensor | None:
        """Logits on sample ``which`` (0 retain, 1 forget) from the first changed layer on (None: not here)."""
        if torch.device(self.device).type != "cpu":
            return None
        from .metrics import eval_batch_size
        from .prefix import PrefixCache

        if which not in self._prefix:
            subset = (self.retain, self.forget)[which]
            self._prefix[which] = PrefixCache(self._original, subset, eval_batch_size(subset), self.device)
        return self._prefix[which].logits(model, changed)

    def check_logits(self, train_logits: torch.Tensor, alpha: float, lam: float) -> GuardCheck:
        """The check from a dampened model's logits on the whole training split (what the dashboard
        already computed for its cards): the same samples, no further forward pass."""
        accuracies = []
        for subset in (self.retain, self.forget):
            if len(subset) == 0:
                accuracies.append(math.nan)
                continue
            predicted = train_logits[subset.indices].argmax(1)
            accuracies.append(float((predicted == subset.y).float().mean()))
        return GuardCheck(float(alpha), float(lam), self.retain_before, accuracies[0], self.forget_before, accuracies[1],
                          self.threshold, self.forget_limit)

    def check(self, dampened: nn.Module, alpha: float, lam: float, *, retain: bool = True,
              forget: bool = True, changed: Sequence[str] | None = None) -> GuardCheck:
        """The check of a model dampened at (alpha, lam) (only the parts asked for; NaN elsewhere); ``changed``
        as :meth:`accuracies`."""
        retain_acc, forget_acc = self.accuracies(dampened, retain=retain, forget=forget, changed=changed)
        return GuardCheck(float(alpha), float(lam), self.retain_before, retain_acc, self.forget_before, forget_acc,
                          self.threshold, self.forget_limit)

    def check_setting(self, model: nn.Module, full: ImportanceDict, forget: ImportanceDict, alpha: float, lam: float,
                      scratch: nn.Module | None = None, *, retain: bool = True, forget_part: bool = True) -> GuardCheck:
        """Dampen ``model`` at (alpha, lam) (into ``scratch`` when given) and check it."""
        dampened, report = dampen(model, full, forget, alpha, lam, with_statistics=False, into=scratch)
        changed = report.changed if model is self._original else None  # the shortcut reads the guard's original
        return self.check(dampened, alpha, lam, retain=retain, forget=forget_part, changed=changed)

    def fix(self, model: nn.Module, full: ImportanceDict, forget: ImportanceDict, alpha: float, lam: float, *,
            scratch: nn.Module | None = None) -> GuardFix:
        """A setting that keeps the retained classes and still (or now) forgets.

        Retain accuracy rises and forgetting fades as alpha grows (a larger alpha selects a subset of
        the parameters), so the good settings form a window: from the smallest alpha that keeps the
        retain drop within the threshold to the largest alpha that still forgets. Two bisections on
        log alpha over the cached importances find its ends (only the side of ``alpha`` that can
        hold them is searched), and the suggestion is its middle (geometric mean): the window's
        lower end sits on the collapse cliff, where held-out accuracy still falls by more than the
        training sample shows (digits class 3: 3.1 points on the sample, 5.0 on the test set at alpha
        25). "Forgets" is the class level (:data:`FORGOTTEN`) for whole classes and, for samples,
        no more than :data:`FORGET_SLACK` above what the collapsed setting reached. With no window,
        keeping the rest wins: the suggestion keeps it and says the forgetting is partial.

        Args:
            model: the original model (not modified; ``scratch`` is overwritten when given).
            full: I_D; forget: I_f (the cached importances).
            alpha: the setting's alpha; lam: lambda (kept).
            scratch: a same-architecture model to dampen into (saves a copy per probe).

        A search made before for the same model, importances, samples and start is read back from
        :mod:`ssd_core.guard_cache` (checked at its answer) unless the guard was built with ``cache=False``.

        Returns:
            The suggested alpha with its check, whether the forget set is forgotten there, and how
            many probes it took.
        """
        scratch = scratch if scratch is not None else to_channels_last(copy.deepcopy(model))
        if not self.cache:
            return self._search_fix(model, full, forget, alpha, lam, scratch)
        from .guard_cache import cached_fix

        return cached_fix(self, model, full, forget, alpha, lam, scratch,
                          lambda: self._search_fix(model, full, forget, alpha, lam, scratch))

    def _search_fix(self, model: nn.Module, full: ImportanceDict, forget: ImportanceDict, alpha: float, lam: float,
                    scratch: nn.Module) -> GuardFix:
        """:meth:`fix`'s search (two bisections on the line, then the wider search for whole classes)."""
        start = time.perf_counter()
        probes = 0

        def probe(a: float, retain: bool = True, forget_part: bool = True, lam_: float = lam) -> GuardCheck:
            nonlocal probes
            probes += 1
            return self.check_setting(model, full, forget, a, lam_, scratch, retain=retain, forget_part=forget_part)

        def done(a: float, check: GuardCheck, forgotten: bool) -> GuardFix:
            if not forgotten and self.forget_limit is not None and not check.fired:
                return self._search(alpha, (a, check), lam, probe, finite_ratios(full, forget), start, lambda: probes)
            return GuardFix(a, lam, check, forgotten, probes, time.perf_counter() - start)

        current = probe(alpha)
        if not current.fired and not current.incomplete:
            return done(alpha, current, True)
        if self.forget_limit is not None:
            limit = self.forget_limit
        else:
            limit = (0.0 if math.isnan(current.forget_after) else current.forget_after) + FORGET_SLACK

        def kept(check: GuardCheck) -> bool:
            return not check.fired

        def forgotten(check: GuardCheck) -> bool:
            return not math.isnan(check.forget_after) and check.forget_after <= limit + 1e-9

        if current.fired:  # collapsed: both window ends lie above alpha
            ratios = finite_ratios(full, forget)
            top = max(float(ratios.max()) * 1.001 if ratios.numel() else 0.0, alpha * 2)
            top_check = probe(top)
            if not kept(top_check):  # even dampening (almost) nothing collapses: no alpha helps
                return done(top, top_check, forgotten(top_check))
            low, _ = _boundary((alpha, current), (top, top_check), kept, lambda a: probe(a, forget_part=False))
            low_check = probe(low)
            if not forgotten(low_check):
                return done(low, low_check, False)
            high = top if forgotten(top_check) else _boundary((low, low_check), (top, top_check), forgotten,
                                                              lambda a: probe(a, retain=False))[0]
        else:  # kept but still recognised: both ends lie below alpha
            bottom = alpha / 1000
            bottom_check = probe(bottom)
            if not forgotten(bottom_check):  # no alpha forgets it
                return done(alpha, current, False)
            high, high_check = _boundary((bottom, bottom_check), (alpha, current), forgotten,
                                         lambda a: probe(a, retain=False))
            high_check = probe(high)
            if not kept(high_check):  # forgetting takes the rest with it: keep the rest
                return done(alpha, current, False)
            low = bottom if kept(bottom_check) else _boundary((high, high_check), (bottom, bottom_check), kept,
                                                              lambda a: probe(a, forget_part=False))[0]
            low_check = high_check if low == high else probe(low)
        middle = _readable(math.sqrt(low * high))
        middle_check = low_check if middle == low else probe(middle)
        if kept(middle_check) and forgotten(middle_check):
            return done(middle, middle_check, True)
        return done(low, low_check, forgotten(low_check))

    def _search(self, alpha: float, line: tuple[float, GuardCheck], lam: float, probe, ratios: torch.Tensor,
                start: float, probes) -> GuardFix:
        """Whole classes that no alpha on the line both forgets and keeps: search alpha and lambda together
        (:data:`SEARCH_ALPHAS` x :data:`SEARCH_LAMBDAS`, then :data:`REFINE_ALPHAS` around the best), on the
        guard's training samples only. Among the settings that keep the retained classes and forget, the one
        that keeps the most retain accuracy (then forgets most, then lies nearest the starting alpha and
        lambda); with none, the kept setting that forgets most (``line``, the bisection's answer, unless the
        grid finds a kept setting that forgets more), marked not forgotten."""
        limit = self.forget_limit if self.forget_limit is not None else 0.0
        top = float(ratios.max()) if ratios.numel() else 0.0
        seen: dict[tuple[float, float], GuardCheck] = {}

        def look(a: float, lam_: float) -> GuardCheck:
            key = (a, lam_)
            if key not in seen:
                check = probe(a, retain=False, lam_=lam_)
                if check.forget_after <= limit + 1e-9:  # retain only where it forgets
                    check = probe(a, lam_=lam_)
                seen[key] = check
            return seen[key]

        def feasible(c: GuardCheck) -> bool:
            return not math.isnan(c.retain_after) and not c.fired and c.forget_after <= limit + 1e-9

        def rank(item: tuple[tuple[float, float], GuardCheck]) -> tuple:
            (a, lam_), c = item
            return (c.retain_after, -c.forget_after, -abs(math.log(a / alpha)), -abs(math.log((lam_ + 1e-12) / (lam + 1e-12))))

        def measured_kept() -> list[tuple[tuple[float, float], GuardCheck]]:
            return [item for item in seen.items() if not math.isnan(item[1].retain_after) and not item[1].fired]

        def answer(a: float, lam_: float, check: GuardCheck, forgotten: bool) -> GuardFix:
            return GuardFix(a, lam_, check, forgotten, probes(), time.perf_counter() - start, lam_changed=lam_ != lam)

        def refined_best(a: float, lam_: float) -> GuardFix | None:
            """Eighth-octave steps around (a, lam_), then the best setting that keeps and forgets, if any."""
            for step in REFINE_ALPHAS:
                look(_readable(a * step), lam_)
            good = [item for item in seen.items() if feasible(item[1])]
            if not good:
                return None
            (best_a, best_lam), check = max(good, key=rank)
            return answer(best_a, best_lam, check, True)

        for factor in SEARCH_LAMBDAS:
            for step in SEARCH_ALPHAS:
                if alpha * step < top:  # larger alphas select nothing
                    look(_readable(alpha * step), lam * factor)
        good = [item for item in seen.items() if feasible(item[1])]
        if good:
            (a, lam_), _ = max(good, key=rank)
            found = refined_best(a, lam_)
            assert found is not None  # the coarse grid's best is still there
            return found
        # nothing forgets and keeps: measure retain where forgetting went furthest, refine around the kept
        # setting that forgets most, then say so
        for (a, lam_), c in sorted(seen.items(), key=lambda item: item[1].forget_after)[:FALLBACK_PROBES]:
            if math.isnan(c.retain_after):
                seen[(a, lam_)] = probe(a, lam_=lam_)
        if measured_kept():
            (a, lam_), _ = min(measured_kept(), key=lambda item: item[1].forget_after)
            found = refined_best(a, lam_)
            if found is not None:
                return found
            (a, lam_), check = min(measured_kept(), key=lambda item: item[1].forget_after)
            if check.forget_after < line[1].forget_after:
                return answer(a, lam_, check, False)
        return GuardFix(line[0], lam, line[1], False, probes(), time.perf_counter() - start)


def _readable(alpha: float) -> float:
    """Three significant digits: a number people can type back in."""
    return float(f"{alpha:.3g}")


def _boundary(good: tuple[float, GuardCheck], bad: tuple[float, GuardCheck], is_good, probe,
              precision: float = 0.05) -> tuple[float, GuardCheck]:
    """Bisection on log alpha between a good and a bad setting (either order): the good setting
    nearest the boundary, to within ``precision`` in log alpha (5 %).

    The property is assumed to change once between them: a larger alpha selects a subset of the
    parameters, so retain accuracy rises and forgetting fades as alpha grows."""
    (good_alpha, good_check), (bad_alpha, _) = good, bad
    if is_good(bad[1]):
        good_alpha, good_check, bad_alpha = bad_alpha, bad[1], good_alpha
    for _ in range(BISECTION_STEPS):
        if abs(math.log(good_alpha) - math.log(bad_alpha)) < precision:
            break
        middle = _readable(math.exp((math.log(good_alpha) + math.log(bad_alpha)) / 2))
        if middle in (good_alpha, bad_alpha):
            break
        check = probe(middle)
        if is_good(check):
            good_alpha, good_check = middle, check
        else:
            bad_alpha = middle
    return good_alpha, good_check


@dataclass(frozen=True)
class AutoSetting:
    """What "auto" chose: the adaptive alpha, the guard's check of it and, when that fired, the
    guard's correction (used when it keeps the retained classes)."""

    adaptive: AdaptiveAlpha
    lam: float
    check: GuardCheck | None  # None when the guard is off
    fix: GuardFix | None  # only when the check fired
    apply_fix: bool = True

    @property
    def corrected(self) -> bool:
        """Whether the guard's setting replaced the adaptive one."""
        return (self.apply_fix and self.fix is not None and self.fix.kept
                and (self.fix.alpha, self.fix.lam) != (self.adaptive.alpha, self.lam))

    @property
    def alpha(self) -> float:
        """The alpha to dampen with."""
        return self.fix.alpha if self.corrected and self.fix is not None else self.adaptive.alpha

    @property
    def lam_used(self) -> float:
        """The lambda to dampen with: the one asked for, unless the guard's wider search (whole classes that
        no alpha forgets at that lambda) chose another."""
        return self.fix.lam if self.corrected and self.fix is not None else self.lam

    def sentence(self) -> str:
        a = self.adaptive
        lam = f", λ = {self.lam_used:g}" if self.lam_used != self.lam else ""
        text = (f"Auto: α = {format_alpha(self.alpha)}{lam}. Adaptive SSD takes the {a.percentile:.2f}th percentile of I_f / I_D "
                f"(α = {format_alpha(a.alpha)}) because the forget set is {100 * a.n_forget / a.n_total:.1f}% of the training data")
        if self.check is not None and self.fix is not None and self.corrected:
            if self.check.fired:
                text += (f"; there retain accuracy on a training sample fell {100 * self.check.drop:.1f} points, so the "
                         f"collapse guard chose {self.fix.setting()}")
            else:
                text += (f"; there the forget set was still {100 * self.check.forget_after:.0f}% recognised, so the "
                         f"guard chose {self.fix.setting()}")
        elif self.check is not None and self.fix is not None:
            text += f". The guard warns: {self.check.sentence()} {self.fix.sentence()}"
        return text if text.endswith(".") else text + "."

    def cannot_forget(self) -> str | None:
        """For a whole class the guard could not forget within the retain budget: the one sentence the page
        and the CLI both show (with the numbers); None otherwise."""
        fix = self.fix
        if fix is None or not fix.kept or fix.forgotten or fix.check.forget_limit is None:
            return None
        return fix.sentence()

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "lam": self.lam_used, "adaptive": self.adaptive.to_dict(), "corrected": self.corrected,
                "check": None if self.check is None else self.check.to_dict(),
                "fix": None if self.fix is None else self.fix.to_dict()}


def auto_setting(model: nn.Module, full: ImportanceDict, forget: ImportanceDict, guard: CollapseGuard | None,
                 n_forget: int, n_total: int, lam: float, *, apply_fix: bool = True,
                 scratch: nn.Module | None = None, ratios: torch.Tensor | None = None,
                 check_at: Callable[[float], GuardCheck] | None = None) -> AutoSetting:
    """The adaptive alpha, checked by ``guard`` (None: no guard) and corrected when it collapses.

    Args:
        model: the original model (not modified; ``scratch`` is overwritten when given).
        full: I_D; forget: I_f (the cached importances).
        guard: the collapse guard for this model and split, or None.
        n_forget: |Df|; n_total: |D| (training images).
        lam: lambda.
        apply_fix: False only warns (the fix is still computed and reported).
        scratch: a same-architecture model to dampen into.
        ratios: :func:`~ssd_core.dampening.finite_ratios` of the two importances when already computed.
        check_at: the guard's check of the adaptive alpha when the caller has it cheaper (the dashboard
            reads it from the logits its cards were computed from); default: dampen and check here.

    Returns:
        The setting; its ``alpha`` is what to dampen with. The CLI's ``assd`` and the dashboard's
        "auto" both call this, so they pick the same alpha.
    """
    adaptive = adaptive_alpha(full, forget, n_forget, n_total, ratios=ratios)
    if guard is None:
        return AutoSetting(adaptive, float(lam), None, None, apply_fix)
    scratch = scratch if scratch is not None else to_channels_last(copy.deepcopy(model))
    check = (check_at(adaptive.alpha) if check_at is not None
             else guard.check_setting(model, full, forget, adaptive.alpha, lam, scratch))
    fix = guard.fix(model, full, forget, adaptive.alpha, lam, scratch=scratch) if check.fired or check.incomplete else None
    return AutoSetting(adaptive, float(lam), check, fix, apply_fix)
