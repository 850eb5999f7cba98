"""unlearning_lab.figures: each builder draws exactly the numbers it is given (or derives them correctly)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from ssd_core.dampening import dampen
from ssd_core.metrics import evaluate
from unlearning_lab import figures


@pytest.fixture(scope="module")
def dampened(digits_run):
    model, report = dampen(digits_run.model, digits_run.importances.full, digits_run.importances.forget, 10.0, 1.0)
    return model, report


def test_figures_module_is_ui_free():
    import unlearning_lab.figures as module

    source = open(module.__file__).read()
    assert "streamlit" not in source


def test_per_class_bars_are_the_evaluated_accuracies(digits_run, dampened):
    before = evaluate(digits_run.model, digits_run.split)
    after = evaluate(dampened[0], digits_run.split)
    fig = figures.per_class_accuracy_figure(
        digits_run.dataset.classes, before.per_class_acc, after.per_class_acc, digits_run.split.forget_classes, "α = 10"
    )
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["before", "after"]
    np.testing.assert_allclose(bars[0].y, [100 * v for v in before.per_class_acc])
    np.testing.assert_allclose(bars[1].y, [100 * v for v in after.per_class_acc])
    # the forgotten class is coloured differently and outlined
    colours = list(bars[1].marker.color)
    assert colours[0] == figures.FORGET and colours[1] == figures.AFTER
    assert bars[1].marker.line.width[0] > 0 and bars[1].marker.line.width[1] == 0
    assert "α = 10" in fig.layout.title.text
    assert after.per_class_acc[0] < before.per_class_acc[0]


def test_accuracy_summary_handles_missing_values():
    fig = figures.accuracy_summary_figure(
        {"retain_test_acc": 0.9, "forget_test_acc": None, "mia": 0.5}, {"retain_test_acc": 0.8, "forget_test_acc": None, "mia": 0.1}
    )
    before, after = fig.data
    assert list(before.x) == ["Retain (test)", "Forget (test)", "MIA"]
    assert before.y[0] == pytest.approx(90.0) and before.y[1] is None and after.y[2] == pytest.approx(10.0)


def test_confusion_matrices_are_row_normalised_with_difference():
    before = [[8, 2], [0, 10]]
    after = [[1, 9], [0, 10]]
    fig = figures.confusion_matrices_figure(["a", "b"], before, after)
    b, a, d = (np.asarray(t.z) for t in fig.data)
    np.testing.assert_allclose(b, [[80, 20], [0, 100]])
    np.testing.assert_allclose(a, [[10, 90], [0, 100]])
    np.testing.assert_allclose(d, a - b)
    assert fig.data[2].zmin == -100 and fig.data[2].zmax == 100


def test_layer_ratio_summaries_match_a_direct_computation():
    full = {"w": torch.tensor([1.0, 1.0, 2.0, 0.0, 4.0, 1.0]), "b": torch.tensor([0.0, 0.0])}
    forget = {"w": torch.tensor([10.0, 0.1, 2.0, 3.0, 0.0, 1000.0]), "b": torch.tensor([0.0, 1.0])}
    summaries = {s.name: s for s in figures.layer_ratio_summaries(full, forget)}
    w = summaries["w"]
    ratios = np.log10([10.0, 0.1, 1.0, 1000.0])  # entries where both are > 0
    assert w.size == 6 and w.n_finite == 4 and w.n_full_zero == 1 and w.n_forget_zero == 1
    assert w.p50 == pytest.approx(np.quantile(ratios, 0.5))
    assert w.mean == pytest.approx(ratios.mean())
    assert sum(w.hist_counts) == 4
    b = summaries["b"]
    assert b.n_finite == 0 and b.n_full_zero == 1 and math.isnan(b.p50)
    fig = figures.importance_ratio_figure(list(summaries.values()), alpha=10.0)
    assert list(fig.data[0].x) == ["w"]  # tensors without a finite ratio are left out
    assert fig.layout.shapes[0].y0 == pytest.approx(1.0)  # log10(alpha)


def test_ratio_histogram_colours_bins_above_threshold(digits_run):
    summary = figures.layer_ratio_summaries(digits_run.importances.full, digits_run.importances.forget)[0]
    fig = figures.ratio_histogram_figure(summary, alpha=10.0)
    bar = fig.data[0]
    selected = [c for x, c in zip(bar.x, bar.marker.color) if x > 1.0 + bar.width]
    kept = [c for x, c in zip(bar.x, bar.marker.color) if x < 1.0 - bar.width]
    assert set(selected) == {figures.SELECTED} and set(kept) == {figures.KEPT}
    assert sum(bar.y) == summary.n_finite


def test_importance_scatter_splits_at_alpha(digits_run):
    sample = figures.sample_importances(digits_run.importances.full, digits_run.importances.forget, n=2000, seed=0)
    assert sample.full.size == 2000 and sample.total > 2000
    again = figures.sample_importances(digits_run.importances.full, digits_run.importances.forget, n=2000, seed=0)
    np.testing.assert_array_equal(sample.full, again.full)  # seeded
    for alpha in (1.0, 10.0, 100.0):
        fig = figures.importance_scatter_figure(sample, alpha)
        kept, chosen, line = fig.data
        expected = int((sample.forget > alpha * sample.full).sum())
        assert len(chosen.x) == expected and len(kept.x) == sample.full.size - expected
        np.testing.assert_allclose(np.asarray(line.y) / np.asarray(line.x), alpha, rtol=1e-6)
        assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_selected_fraction_bars_follow_the_report(dampened):
    report = dampened[1]
    layers = report.layers
    fig = figures.selected_fraction_figure([la.name for la in layers], [la.fraction_selected for la in layers],
                                           [la.selected for la in layers], [la.size for la in layers])
    np.testing.assert_allclose(fig.data[0].y, [100 * la.fraction_selected for la in layers])
    assert fig.data[0].x[0] == figures.short_layer_name(layers[0].name)


def test_weights_and_filter_figures_measure_the_dampening(digits_run, dampened):
    name = next(n for n, p in digits_run.model.named_parameters() if p.dim() == 4)
    before = dict(digits_run.model.named_parameters())[name].detach()
    after = dict(dampened[0].named_parameters())[name].detach()
    changed = int((before != after).sum())
    fig = figures.weights_figure(before, after, name, n=10**9)
    unchanged_trace, dampened_trace = fig.data[0], fig.data[1]
    assert len(dampened_trace.x) == changed and len(unchanged_trace.x) == before.numel() - changed
    assert f"{changed:,} of {before.numel():,}" in fig.layout.title.text
    heat = figures.filter_dampening_figure(before, after, name)
    z = np.asarray(heat.data[0].z)
    assert z.shape == tuple(before.shape[:2])
    expected = 100 * (1 - after.flatten(2).norm(dim=2) / before.flatten(2).norm(dim=2).clamp_min(1e-30))
    np.testing.assert_allclose(z, expected.clamp(0, 100).double().numpy(), atol=1e-6)
    assert z.min() >= 0 and z.max() <= 100


def test_saliency_figure_shares_a_colour_scale_per_row():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(2, 1, 8, 8), dtype=np.uint8)
    before, after = rng.random((2, 8, 8)), 3 * rng.random((2, 8, 8))
    fig = figures.saliency_figure(images, before, after, ["forget: 0", "retain: 1"], "Saliency")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len([t for t in fig.data if t.type == "image"]) == 2 and len(heatmaps) == 6
    for row in range(2):
        b, a, d = heatmaps[3 * row: 3 * row + 3]
        assert b.zmax == a.zmax == pytest.approx(max(before[row].max(), after[row].max()))
        np.testing.assert_allclose(d.z, after[row] - before[row])
        assert d.zmin == -d.zmax


def test_saliency_row_labels_fit_their_rows_with_long_class_names():
    """Fashion-MNIST's labels ("forget: T-shirt/top", "predicted T-shirt/top → Ankle boot") are wrapped into the
    left margin, one horizontal block per row, never taller than the row (they overlapped as axis titles)."""
    rng = np.random.default_rng(0)
    n = 4
    labels = [f"forget: T-shirt/top<br>predicted T-shirt/top → Ankle boot {i}" for i in range(n)]
    fig = figures.saliency_figure(rng.integers(0, 255, (n, 1, 8, 8), dtype=np.uint8), rng.random((n, 8, 8)),
                                  rng.random((n, 8, 8)), labels, "Saliency")
    rows = [a for a in fig.layout.annotations if a.xanchor == "right"]
    assert len(rows) == n and all(a.textangle in (None, 0) for a in rows)
    row_px = (fig.layout.height - fig.layout.margin.t - fig.layout.margin.b) / n
    for a in rows:
        lines = a.text.split("<br>")
        assert max(len(line) for line in lines) <= figures.SALIENCY_LABEL_CHARS, lines
        assert len(lines) * 1.3 * a.font.size <= row_px, (lines, row_px)
    centres = sorted(a.y for a in rows)
    assert min(b - a for a, b in zip(centres, centres[1:])) > 0.2  # one label per row
    assert [a.text.replace("<br>", " ") for a in sorted(rows, key=lambda a: -a.y)] == [
        label.replace("<br>", " ") for label in labels]
    assert not any(fig.layout[f"yaxis{k}"].title.text for k in ("", 5, 9, 13))


def test_forgetting_signal_histograms_use_log_values():
    groups = {"forget": (np.array([0.01, 0.02]), np.array([5.0, 6.0])), "test": (np.array([1.0]), np.array([1.0]))}
    fig = figures.forgetting_signal_figure(groups, "loss", (0.9, 0.1))
    assert len(fig.data) == 4
    np.testing.assert_allclose(fig.data[0].x, np.log10([0.01, 0.02]))
    np.testing.assert_allclose(fig.data[2].x, np.log10([5.0, 6.0]))
    assert "MIA 90.0%" in fig.layout.annotations[0].text and "MIA 10.0%" in fig.layout.annotations[1].text


def test_alpha_sweep_marks_the_current_alpha():
    fig = figures.alpha_sweep_figure([1, 10, 100], [0.0, 0.1, 0.9], [0.2, 0.95, 0.99], [0.5, 0.1, 0.0], current_alpha=10)
    assert isinstance(fig, go.Figure)
    np.testing.assert_allclose(fig.data[0].y, [0, 10, 90])
    marker = fig.data[-1]
    assert list(marker.x) == [10, 10] and fig.layout.xaxis.type == "log"


# ---------------------------------------------------------------------------------------------
# Landscape figures and the presentation theme


def test_landscape_heatmap_draws_the_grid_as_given():
    grid = [[0.0, 0.5, None], [0.25, 1.0, 0.75]]
    fig = figures.landscape_heatmap_figure([1.0, 10.0, 100.0], [0.5, 1.0], grid, "Forget accuracy", better="low",
                                           current=(10.0, 1.0), pareto=[(1.0, 0.5), (100.0, 1.0)])
    heat = fig.data[0]
    assert heat.type == "heatmap"
    custom = np.asarray(heat.customdata, dtype=object)
    assert custom.shape == (2, 3, 3) and list(heat.customdata[1][2]) == [100.0, 1.0, 0.75]
    assert [[cell[2] for cell in row] for row in heat.customdata] == grid  # the values exactly, None kept
    # one colour rule: the colour is how good a cell is, so a lower-is-better metric is drawn as 1 - value
    assert [list(row) for row in heat.z] == [[1.0, 0.5, None], [0.75, 0.0, 0.25]]
    assert list(heat.x) == ["1", "10", "100"] and list(heat.y) == ["0.5", "1"]
    assert heat.zmin == 0 and heat.zmax == 1
    assert list(heat.colorbar.ticktext) == ["100%", "75%", "50%", "25%", "0%"]  # the top is the best: 0% forgotten
    rings, cross = fig.data[1], fig.data[2]
    assert list(rings.x) == ["1", "100"] and list(rings.y) == ["0.5", "1"]
    assert list(cross.x) == ["10"] and list(cross.y) == ["1"]
    high = figures.landscape_heatmap_figure([1.0], [1.0], [[0.5]], "Retain", better="high")
    assert heat.colorscale == high.data[0].colorscale and list(high.data[0].z[0]) == [0.5]
    assert list(high.data[0].colorbar.ticktext) == ["0%", "25%", "50%", "75%", "100%"]


def test_frontier_marks_pareto_settings_and_carries_alpha_lambda():
    points = [
        figures.FrontierPoint(1.0, 1.0, retain=0.90, forget=0.00, pareto=True),
        figures.FrontierPoint(10.0, 1.0, retain=0.99, forget=0.05, pareto=True),
        figures.FrontierPoint(3.0, 1.0, retain=0.85, forget=0.10, pareto=False),
    ]
    fig = figures.tradeoff_frontier_figure(points, original=(0.99, 1.0), retrained=(0.99, 0.0), current=(3.0, 1.0))
    others, front = fig.data[0], fig.data[1]
    assert list(others.x) == [0.85] and list(others.y) == [0.10]
    assert list(front.x) == [0.90, 0.99] and list(front.y) == [0.0, 0.05]  # sorted along the frontier
    assert [list(c[:2]) for c in front.customdata] == [[1.0, 1.0], [10.0, 1.0]]
    names = [t.name for t in fig.data]
    assert "original model" in names and "retrained (gold standard)" in names
    assert any(n.startswith("current (α 3") for n in names)
    assert "α 10, λ 1" in front.text[1] and "MIA n/a" in front.text[1]


def test_presentation_theme_recolours_and_enlarges_without_touching_data(digits_run, dampened):
    before = evaluate(digits_run.model, digits_run.split, with_mia=False)
    after = evaluate(dampened[0], digits_run.split, with_mia=False)
    fig = figures.per_class_accuracy_figure(digits_run.dataset.classes, before.per_class_acc, after.per_class_acc,
                                            digits_run.split.forget_classes)
    assert figures.apply_theme(fig, "default") is fig
    themed = figures.apply_theme(fig, "presentation")
    okabe = {v.upper() for v in figures.OKABE_ITO.values()}
    assert themed.data[0].marker.color.upper() == figures.OKABE_ITO["sky_blue"].upper()
    after_colours = [c.upper() for c in themed.data[1].marker.color]
    assert after_colours[0] == figures.OKABE_ITO["vermillion"].upper()  # the forgotten class
    assert set(after_colours) <= okabe
    np.testing.assert_allclose(themed.data[1].y, fig.data[1].y)  # same numbers
    assert themed.layout.title.font.size > fig.layout.title.font.size
    assert themed.layout.template.layout.font.size >= 20
    assert fig.data[0].marker.color == figures.BEFORE  # the original figure is untouched


def test_presentation_theme_is_valid_for_every_builder(digits_run, dampened):
    model, report = dampened
    sample = figures.sample_importances(digits_run.importances.full, digits_run.importances.forget, n=300)
    summaries = figures.layer_ratio_summaries(digits_run.importances.full, digits_run.importances.forget)
    name = next(n for n, p in digits_run.model.named_parameters() if p.dim() == 4)
    before = dict(digits_run.model.named_parameters())[name].detach()
    after = dict(model.named_parameters())[name].detach()
    rng = np.random.default_rng(0)
    built = [
        figures.accuracy_summary_figure({"mia": 0.5}, {"mia": 0.1}),
        figures.confusion_matrices_figure(["a", "b"], [[1, 0], [0, 1]], [[0, 1], [0, 1]]),
        figures.importance_ratio_figure(summaries, 10.0),
        figures.ratio_histogram_figure(summaries[0], 10.0),
        figures.importance_scatter_figure(sample, 10.0),
        figures.weights_figure(before, after, name, n=200),
        figures.filter_dampening_figure(before, after, name),
        figures.saliency_figure(rng.integers(0, 255, (1, 1, 8, 8), dtype=np.uint8), rng.random((1, 8, 8)),
                                rng.random((1, 8, 8)), ["x"], "Saliency"),
        figures.forgetting_signal_figure({"forget": (np.array([0.1]), np.array([1.0]))}),
        figures.alpha_sweep_figure([1, 10], [0.0, 0.5], [0.9, 1.0], [0.2, 0.0], current_alpha=10),
    ]
    default_colours = {c.lower() for c in figures.PRESENTATION_COLOURS}
    for fig in built:
        themed = figures.apply_theme(fig, "presentation")
        assert len(themed.data) == len(fig.data)
        text = themed.to_json().lower()
        leftovers = [c for c in default_colours if f'"{c}"' in text]
        assert not leftovers, (fig.layout.title.text, leftovers)


def test_the_forgetting_signal_is_explained_for_the_request_kind():
    """After retraining, a whole class's losses sit far above the test set's; random samples look like test
    images. The caption says which (it used to promise the second for both)."""
    from unlearning_lab.figures import signal_caption

    assert "far above the test set" in signal_caption("class") and "looks like the test set" not in signal_caption("class")
    assert "far above the test set" in signal_caption("subclass")
    for kind in ("random", "indices"):
        assert "looks like the test set" in signal_caption(kind)


def test_the_audits_class_distance_chart_keeps_the_forgotten_class_among_digit_labels():
    """Digit class names look like numbers: the x axis must stay categorical or "5 (forgotten)" is dropped."""
    from unlearning_lab.figures_audit import class_distance_figure

    fig = class_distance_figure([str(i) for i in range(10)], {"assd": [0.1] * 10}, [5])
    assert fig.layout.xaxis.type == "category"
    assert list(fig.layout.xaxis.categoryarray)[5] == "5 (forgotten)" and len(fig.layout.xaxis.categoryarray) == 10


def test_the_alpha_sweeps_current_alpha_label_stays_inside_the_plot():
    """Automatic α sits at the right end of the slider (113 on digits class 3): its label writes leftwards."""
    from unlearning_lab.figures import alpha_sweep_figure

    alphas = [0.1, 1.0, 10.0, 112.682]
    right = alpha_sweep_figure(alphas, [0.0] * 4, [0.9] * 4, [0.1] * 4, current_alpha=112.682)
    left = alpha_sweep_figure(alphas, [0.0] * 4, [0.9] * 4, [0.1] * 4, current_alpha=0.2)
    assert right.data[-1].textposition == "top left" and left.data[-1].textposition == "top right"
    assert right.data[-1].name == "current α = 113"
