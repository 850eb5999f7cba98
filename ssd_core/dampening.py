"""SSD selection and dampening, with a per-layer report, and the adaptive alpha.

Selection: parameter i is selected where I_f,i > alpha * I_D,i.
Dampening: beta_i = min(lambda * I_D,i / I_f,i, 1) and theta_i <- beta_i * theta_i for selected i.
A selected parameter with I_D = 0 becomes 0; NaN importances never select; buffers are untouched;
the model passed in is never modified (a copy is dampened and returned).

Adaptive alpha (ASSD, Schoepf, Foster, Brintrup 2024): alpha is the
(100 - ln(1 + 100 |Df| / |D|))-th percentile of the finite ratios I_f / I_D over all parameters,
so it follows the forget set's share of the data (a class of ten is ~10 % of D, and shared weights
already sit near I_f / I_D = 10: the paper's fixed alpha 10 then dampens them too).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import InputError
from .importance import ImportanceDict, trainable_parameters


@dataclass
class LayerReport:
    """What dampening did to one parameter tensor."""

    name: str
    shape: list[int]
    size: int
    selected: int
    fraction_selected: float
    mean_factor: float  # mean beta over the selected entries (1.0 when none)
    min_factor: float
    log10_ratio_mean: float  # statistics of log10(I_f / I_D) over entries where both are > 0
    log10_ratio_median: float
    log10_ratio_p95: float
    log10_ratio_max: float


@dataclass
class DampeningReport:
    alpha: float
    lam: float
    layers: list[LayerReport]

    @property
    def total_params(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def total_selected(self) -> int:
        return sum(layer.selected for layer in self.layers)

    @property
    def changed(self) -> list[str]:
        """The parameter tensors dampening may have changed (those with a selected entry)."""
        return [layer.name for layer in self.layers if layer.selected]

    @property
    def fraction_selected(self) -> float:
        return self.total_selected / max(1, self.total_params)

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "lam": self.lam,
            "total_params": self.total_params,
            "total_selected": self.total_selected,
            "fraction_selected": self.fraction_selected,
            "layers": [asdict(layer) for layer in self.layers],
        }


def check_hyperparameters(alpha: float, lam: float) -> None:
    """alpha must be > 0 and lambda >= 0, both finite."""
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise InputError(f"alpha must be a positive number; got {alpha}.")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise InputError(f"lambda must be zero or positive; got {lam}.")


def dampening_factors(
    full_importance: torch.Tensor, forget_importance: torch.Tensor, alpha: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(selected mask, beta) for one tensor; beta is 1 wherever nothing is selected.

    Args:
        full_importance: I_D of the tensor.
        forget_importance: I_f of the tensor.
        alpha: selection threshold (I_f > alpha * I_D).
        lam: dampening strength.
    """
    selected = forget_importance > alpha * full_importance  # False wherever a NaN is involved
    ratio = (lam * full_importance) / forget_importance  # only read where selected (I_f > 0 there)
    beta = torch.where(selected, ratio.clamp(max=1.0), torch.ones_like(ratio))
    beta = torch.nan_to_num(beta, nan=1.0, posinf=1.0, neginf=0.0)
    return selected, beta


@dataclass(frozen=True)
class SelectionChanges:
    """How two importance estimates (e.g. bf16 autocast against float32) differ in what SSD selects."""

    selected_reference: int  # parameters the reference (float32) importances select
    selected_other: int  # parameters the other importances select
    changed: int  # parameters selected by exactly one of the two
    total: int  # parameters compared

    def to_dict(self) -> dict[str, int]:
        return {"selected_reference": self.selected_reference, "selected_other": self.selected_other,
                "changed": self.changed, "total": self.total}


def selection_changes(reference: tuple[ImportanceDict, ImportanceDict], other: tuple[ImportanceDict, ImportanceDict],
                      alpha: float) -> SelectionChanges:
    """Compare SSD's selection (I_f > alpha * I_D) under two (I_D, I_f) estimates of the same model."""
    (full_a, forget_a), (full_b, forget_b) = reference, other
    selected_a = selected_b = changed = total = 0
    for name in full_a:
        a = forget_a[name] > alpha * full_a[name]
        b = forget_b[name].to(forget_a[name].device) > alpha * full_b[name].to(full_a[name].device)
        selected_a += int(a.sum())
        selected_b += int(b.sum())
        changed += int((a ^ b).sum())
        total += a.numel()
    return SelectionChanges(selected_a, selected_b, changed, total)


def finite_ratios(full_importance: ImportanceDict, forget_importance: ImportanceDict) -> torch.Tensor:
    """Every parameter's I_f / I_D where it is finite (I_D > 0), flattened into one float64 tensor.

    Parameters with I_D = 0 and I_f > 0 (infinite ratio, selected at every alpha) and NaNs are
    left out. The distribution of these ratios is what alpha is compared with.
    """
    parts = []
    for name, full in full_importance.items():
        forget = forget_importance[name]
        f, d = forget.detach().reshape(-1).double().cpu(), full.detach().reshape(-1).double().cpu()
        ratio = f / d
        parts.append(ratio[torch.isfinite(ratio) & (d > 0)])
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def adaptive_percentile(n_forget: int, n_total: int) -> float:
    """ASSD's percentile, 100 - ln(1 + 100 * n_forget / n_total) (e.g. 97.6 for a tenth of the data)."""
    if n_total < 1 or not 0 <= n_forget <= n_total:
        raise InputError(f"The forget set ({n_forget}) must be part of the training data ({n_total}).")
    return 100.0 - math.log1p(100.0 * n_forget / n_total)


def percentile(values: torch.Tensor, q: float) -> float:
    """The ``q``-th percentile of a 1-D tensor, interpolated linearly like numpy's default (any
    size: torch.quantile refuses tensors of more than 16 million entries)."""
    n = values.numel()
    if n == 0:
        raise InputError("No finite importance ratios: the importances are empty or zero everywhere.")
    flat = values.reshape(-1).double()
    position = min(max(q, 0.0), 100.0) / 100.0 * (n - 1)
    below = int(math.floor(position))
    above = min(below + 1, n - 1)
    low = float(torch.kthvalue(flat, below + 1).values)
    high = float(torch.kthvalue(flat, above + 1).values) if above != below else low
    return low + (high - low) * (position - below)


@dataclass(frozen=True)
class AdaptiveAlpha:
    """The alpha ASSD chose and what it was computed from."""

    alpha: float
    percentile: float
    n_forget: int
    n_total: int
    n_ratios: int  # finite ratios the percentile was taken over

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        return (f"alpha {self.alpha:.3g} is the {self.percentile:.2f}th percentile of I_f / I_D "
                f"(the forget set is {100 * self.n_forget / self.n_total:.1f}% of the training data)")


def adaptive_alpha(full_importance: ImportanceDict, forget_importance: ImportanceDict, n_forget: int, n_total: int,
                   ratios: torch.Tensor | None = None) -> AdaptiveAlpha:
    """ASSD's alpha for this forget set (see the module docstring).

    Args:
        full_importance: I_D; forget_importance: I_f.
        n_forget: |Df|, training images in the forget set.
        n_total: |D|, training images in all.
        ratios: :func:`finite_ratios` of the two when already computed (saves the pass).

    Returns:
        The alpha (never below the smallest positive ratio, so it stays a valid threshold) and the
        percentile it came from.
    """
    q = adaptive_percentile(n_forget, n_total)
    ratios = finite_ratios(full_importance, forget_importance) if ratios is None else ratios
    alpha = percentile(ratios, q)
    if alpha <= 0:  # most ratios are zero: select every parameter the forget set uses at all
        positive = ratios[ratios > 0]
        alpha = float(positive.min()) * (1 - 1e-9) if positive.numel() else 1.0
    return AdaptiveAlpha(alpha, q, int(n_forget), int(n_total), int(ratios.numel()))


def alpha_selecting(ratios: torch.Tensor, count: int) -> float | None:
    """The largest alpha that selects at least ``count`` finite-ratio parameters (just below the
    ``count``-th largest ratio), or None when fewer parameters have a positive ratio."""
    positive = ratios[ratios > 0]
    if positive.numel() < count or count < 1:
        return None
    kth = float(torch.topk(positive, count).values[-1])
    return kth * (1 - 1e-9)


def _log_ratio_stats(full: torch.Tensor, forget: torch.Tensor, max_samples: int = 200_000) -> tuple[float, ...]:
    valid = (full > 0) & (forget > 0) & torch.isfinite(full) & torch.isfinite(forget)
    if not bool(valid.any()):
        return (math.nan,) * 4
    ratio = torch.log10(forget[valid].double()) - torch.log10(full[valid].double())
    sample = ratio
    if ratio.numel() > max_samples:  # quantiles on a fixed-stride sample of huge layers
        sample = ratio[:: ratio.numel() // max_samples + 1]
    return (
        float(ratio.mean()),
        float(sample.median()),
        float(torch.quantile(sample, 0.95)),
        float(ratio.max()),
    )


def dampen(
    model: nn.Module,
    full_importance: ImportanceDict,
    forget_importance: ImportanceDict,
    alpha: float,
    lam: float,
    *,
    with_statistics: bool = True,
    into: nn.Module | None = None,
) -> tuple[nn.Module, DampeningReport]:
    """Return a dampened copy of ``model`` and a per-layer report.

    Args:
        model: the original model; never modified.
        full_importance: I_D per parameter name.
        forget_importance: I_f per parameter name.
        alpha: selection threshold: parameter i is selected where I_f > alpha * I_D.
        lam: dampening strength: beta = min(lam * I_D / I_f, 1) on selected parameters.
        with_statistics: False skips the log-ratio statistics (they do not depend on alpha/lambda).
        into: a same-architecture scratch model to overwrite instead of deep-copying (what the
            dashboard does on every slider move).

    Returns:
        The dampened model and the per-layer report (how many parameters each layer had selected).
    """
    check_hyperparameters(alpha, lam)
    if into is None:
        new_model = copy.deepcopy(model)
    else:
        new_model = into
        new_model.load_state_dict(model.state_dict())
    layers: list[LayerReport] = []
    with torch.no_grad():
        for name, param in trainable_parameters(new_model):
            if name not in full_importance or name not in forget_importance:
                raise InputError(f"The importances do not match this model (no entry for '{name}').")
            full = full_importance[name].to(param.device)
            forget = forget_importance[name].to(param.device)
            if full.shape != param.shape or forget.shape != param.shape:
                raise InputError(f"The importances do not match this model (shape of '{name}').")
            selected, beta = dampening_factors(full, forget, alpha, lam)
            n_selected = int(selected.sum())
            if n_selected:
                param.mul_(beta)
                chosen = beta[selected]
                mean_factor, min_factor = float(chosen.mean()), float(chosen.min())
            else:
                mean_factor = min_factor = 1.0
            stats = _log_ratio_stats(full, forget) if with_statistics else (math.nan,) * 4
            layers.append(
                LayerReport(
                    name=name,
                    shape=list(param.shape),
                    size=param.numel(),
                    selected=n_selected,
                    fraction_selected=n_selected / max(1, param.numel()),
                    mean_factor=mean_factor,
                    min_factor=min_factor,
                    log10_ratio_mean=stats[0],
                    log10_ratio_median=stats[1],
                    log10_ratio_p95=stats[2],
                    log10_ratio_max=stats[3],
                )
            )
    new_model.eval()
    return new_model, DampeningReport(alpha=float(alpha), lam=float(lam), layers=layers)
