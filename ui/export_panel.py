"""The export panel: metrics (CSV/JSON), the unlearned model (safetensors + config), every figure
as PNG/SVG (zip) and as one interactive HTML file, and everything as one zip.

Nothing heavy is built on a slider move: this panel only runs when its tab is open, the metrics
files are tiny, the model and HTML are built when their button is clicked (deferred downloads,
computed from the settings, not from the session's scratch model), and images are rendered only
after "Render images" is pressed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import streamlit as st

from ssd_core.checkpoints import config_for_dataset
from ssd_core.experiment import environment
from unlearning_lab import export, report

from . import resources
from .errors import show_error
from .layout import note_beside, working
from .resources import LiveResult, Prepared
from .state import K_IMAGE_FORMAT, current, keep
from .theme import current_theme, themed
from .views import FIGURES, ViewOptions, all_figures, file_stem, options_from_state

K_IMAGES = "_export_images"
SOURCE_LABELS = {"shipped": "shipped checkpoint", "cache": "cached checkpoint", "trained": "trained"}
LANDSCAPE_TITLES = {
    "landscape-forget": "Landscape: forget accuracy over alpha and lambda",
    "landscape-retain_test_acc": "Landscape: retain accuracy (test) over alpha and lambda",
    "landscape-mia": "Landscape: MIA over alpha and lambda",
    "landscape-frontier": "Landscape: trade-off frontier",
}


def settings_dict(p: Prepared, live: LiveResult) -> dict[str, Any]:
    s = p.setup
    return {
        "dataset": s.dataset,
        "model": s.model,
        "model_source": p.original.trained.source,
        "method": s.method,
        "params": {"alpha": live.alpha, "lam": live.lam, "estimator": s.estimator, "batch_size": s.batch_size},
        "forget": {**s.request.to_dict(), "description": s.request.describe(),
                   "forget_classes": list(p.split.forget_classes),
                   "n_forget_train": len(p.split.forget_train), "n_retain_train": len(p.split.retain_train),
                   "n_forget_test": len(p.split.forget_test), "n_retain_test": len(p.split.retain_test)},
        "seed": s.seed,
        "device": str(p.device),
    }


def run_seconds(p: Prepared, live: LiveResult) -> dict[str, float]:
    """Seconds per step of this result, named as in the CLI's JSON: preparing (data, original, importances,
    evaluating the original) plus this alpha's dampening and evaluation, and their true ``total`` (not the
    last slider move's)."""
    seconds = dict(p.seconds)
    for step, value in live.seconds.items():
        if step != "total":
            seconds[step] = seconds.get(step, 0.0) + value  # "evaluation": the original's and this one's
    seconds["total"] = sum(seconds.values())
    return seconds


def results_payload(p: Prepared, live: LiveResult) -> dict[str, Any]:
    return {
        **settings_dict(p, live),
        "seconds": run_seconds(p, live),
        "before": p.before.to_dict(),
        "after": live.evaluation.to_dict(),
        "diagnostics": {"report": live.report.to_dict()},  # the same name as in the CLI JSON
        "environment": environment(),
    }


def _fresh_live(p: Prepared, alpha: float, lam: float) -> LiveResult:
    """A live result with its own model (deferred downloads run after the scratch model moved on)."""
    return resources.compute_live(p, alpha, lam, scratch=None)


def _model_files(p: Prepared, alpha: float, lam: float, stem: str) -> dict[str, bytes]:
    live = _fresh_live(p, alpha, lam)
    config = config_for_dataset(p.setup.model, p.dataset)
    extra = {"unlearning": {"method": p.setup.method, "alpha": alpha, "lam": lam, "estimator": p.setup.estimator,
                            "forget": p.setup.request.to_dict(), "seed": p.setup.seed}}
    return export.model_files(live.model, config, stem, extra)


def report_command(p: Prepared, alpha: float, lam: float, auto: bool = False) -> str:
    """The CLI line that reproduces this run's numbers (``--alpha auto`` when the alpha was chosen
    automatically: the CLI then picks the same one)."""
    s = p.setup
    defaults = {f.name: f.default for f in dataclasses.fields(p.method_spec.config_cls)}
    extra = {k: v for k, v in (("estimator", s.estimator), ("batch_size", s.batch_size)) if defaults.get(k) != v}
    return report.cli_command(report.cli_args(
        dataset=s.dataset, model=s.model, request=s.request, method=s.method, alpha="auto" if auto else alpha, lam=lam,
        seed=s.seed,
        params=extra, device=s.device, data_dir=s.data_dir, eval_sample=p.live_sample,
    ))


def forget_text(p: Prepared) -> str:
    r = p.setup.request
    if r.kind == "class" and p.split.forget_classes:
        return f"class {r.target} ('{p.dataset.classes[p.split.forget_classes[0]]}')"
    return r.describe()


def _html(p: Prepared, alpha: float, lam: float, options: ViewOptions, stem: str, theme_name: str = "default",
          extra_figures: dict[str, Any] | None = None, auto: bool = False) -> str:
    """The one-click report (unlearning_lab.report): setup, metrics, every figure, parameters, environment,
    seed and the CLI command that reproduces the numbers (``auto``: alpha was chosen automatically)."""
    live = _fresh_live(p, alpha, lam)
    figs = {name: themed(fig, theme_name) for name, fig in all_figures(p, live, options).items()}
    figs.update(extra_figures or {})
    s = p.setup
    t = p.original.trained
    setup = {
        "dataset": s.dataset,
        "model": f"{s.model} ({SOURCE_LABELS.get(t.source, t.source)}, original test accuracy {t.test_acc:.4f})",
        "forget": forget_text(p),
        "forget set (train / test images)": f"{len(p.split.forget_train)} / {len(p.split.forget_test)}",
        "retain set (train / test images)": f"{len(p.split.retain_train)} / {len(p.split.retain_test)}",
        "method": s.method.upper(),
        "device": str(p.device),
    }
    config = p.method_spec.default_config(alpha=alpha, lam=lam, estimator=s.estimator, batch_size=s.batch_size)
    params = {**dataclasses.asdict(config), "parameters dampened": live.report.total_selected,
              "fraction dampened": live.report.fraction_selected}
    import plotly
    import streamlit

    env = {**environment(), "plotly": plotly.__version__, "streamlit": streamlit.__version__, "device": str(p.device),
           "seed": s.seed}
    subtitle = (f"{s.describe(p.dataset.classes)} · alpha {alpha:g}, lambda {lam:g} · seed {s.seed} · "
                f"generated {time.strftime('%Y-%m-%d %H:%M')}")
    return report.build_report(
        setup=setup, before=p.before.summary(), after=live.evaluation.summary(), figures=figs, params=params,
        environment=env, seed=s.seed, command=report_command(p, alpha, lam, auto), subtitle=subtitle,
        figure_titles={**{f.id: f.title for f in FIGURES.values()}, **LANDSCAPE_TITLES},
        explanations={f.id: f.explanation for f in FIGURES.values()},
        extra_rows=[("Parameters dampened", 0, live.report.total_selected),
                    ("Fraction dampened", 0.0, live.report.fraction_selected)],
        seconds=run_seconds(p, live), file_stem=stem,
        notes=["Run it from the project folder (with the project's virtual environment active). Timings and the "
               "environment may differ; the metrics are the same for the same seed on the same kind of device."],
        audit=latest_audit(s),
    )


def latest_audit(setup) -> dict[str, Any] | None:
    """The session's most recent audit of this request (Audit page), with its CLI command, or None."""
    from .audit import K_AUDITS, cli_args

    for key, result in reversed(list(st.session_state.get(K_AUDITS, {}).items())):
        if key[0] == setup.split_key():
            return {**result, "command": "python -m ssd_core audit " + cli_args(setup, key[1]) + " --json -"}
    return None


def _landscape_figures(p: Prepared, theme_name: str) -> dict[str, Any]:
    """The Landscape page's figures when this session computed one for this setup."""
    from . import landscape

    stored = st.session_state.get(landscape.K_LANDSCAPE)
    if not stored or stored["key"][0] != p.key or not stored["result"].points:
        return {}
    result = stored["result"]
    figs = {f"landscape-{k}": v for k, v in landscape.heatmap_figures(result, None).items()}
    figs["landscape-frontier"] = landscape.frontier_figure(result, p, None)
    return {k: themed(v, theme_name) for k, v in figs.items()}


def render_export(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    options = options_from_state(p)
    alpha, lam = live.alpha, live.lam
    rows = export.metrics_rows(p.before, live.evaluation, p.dataset.classes, live.report)
    csv_bytes = export.metrics_csv(rows)
    json_bytes = export.results_json(results_payload(p, live))
    model_builder = export.lazy(lambda: _model_files(p, alpha, lam, stem))
    theme_name = current_theme()
    extra = _landscape_figures(p, theme_name)  # read session state now: deferred builders run later
    auto = current().alpha_auto  # read now: deferred builders run later
    html_builder = export.lazy(lambda: _html(p, alpha, lam, options, stem, theme_name, extra, auto))
    pdf_ok, pdf_message = report.pdf_status()
    pdf_builder = export.lazy(lambda: report.html_to_pdf(html_builder()))

    st.markdown(f"Every file holds the current settings (α = {alpha:g}, λ = {lam:g}); their names start with")
    st.code(f"{stem}-", language=None, wrap_lines=True)
    st.markdown("##### Numbers and model")
    # one row that wraps where the page is narrow: each button as wide as its label, no word broken
    c1 = c2 = c3 = c4 = c5 = st.container(horizontal=True, gap="small")
    c1.download_button("Metrics (CSV)", csv_bytes, f"{stem}-metrics.csv", "text/csv", key="dl_csv",
                       on_click="ignore", icon=":material/table:", width="content")
    c2.download_button("Results (JSON)", json_bytes, f"{stem}-results.json", "application/json", key="dl_json",
                       on_click="ignore", icon=":material/data_object:", width="content")
    c3.download_button("Model (safetensors)", lambda: model_builder()[f"{export.safe_name(stem)}.safetensors"],
                       f"{stem}.safetensors", "application/octet-stream", key="dl_model", on_click="ignore",
                       icon=":material/neurology:", width="content",
                       help="The unlearned weights; load with ssd_core.checkpoints.load_model and the config JSON.")
    c4.download_button("Model config (JSON)", lambda: model_builder()[f"{export.safe_name(stem)}.json"],
                       f"{stem}.json", "application/json", key="dl_model_config", on_click="ignore",
                       icon=":material/settings:", width="content")
    c5.download_button("Report (HTML)", html_builder, f"{stem}-report.html", "text/html", key="dl_html",
                       on_click="ignore", icon=":material/article:", width="content", type="primary",
                       help="One click, one self-contained file (works offline): setup, metrics, every figure "
                       "(interactive)" + (", the landscape" if extra else "") + ", parameters, environment, seed and "
                       "the command line that reproduces the numbers.")
    st.markdown("##### Report")
    r1, r2 = note_beside([1, 4])
    if pdf_ok:
        r1.download_button("Report (PDF)", pdf_builder, f"{stem}-report.pdf", "application/pdf", key="dl_pdf",
                           on_click="ignore", icon=":material/picture_as_pdf:", width="stretch",
                           help="The same report printed by the server's Chromium (takes a few seconds).")
        r2.caption(f"The HTML report is interactive; the PDF is for printing and archiving. {pdf_message}")
    else:
        r2.caption(f"Report (HTML) above holds everything. {pdf_message}")
    with st.expander("Command line that reproduces these numbers"):
        st.code(report_command(p, alpha, lam, auto), language="bash", wrap_lines=True)

    st.markdown("##### Figures as images")
    st.segmented_control(
        "The camera icon on each chart saves", ["png", "svg"], required=True,
        **keep(K_IMAGE_FORMAT, "png", valid=["png", "svg"]),
        format_func=lambda f: f.upper() + (" (high resolution)" if f == "png" else " (vector)"),
    )
    available, message = export.image_export_status()
    images_key = (p.key, alpha, lam, dataclasses.astuple(options))
    stored = st.session_state.get(K_IMAGES)
    images = stored[1] if stored and stored[0] == images_key else None
    if not available:
        st.info(
            f"{message} You can still save each chart from its camera icon (PNG or SVG, set above) or download "
            "the HTML report, which draws every figure in your browser.",
            icon=":material/info:",
        )
    elif images is None:
        if st.button("Render PNG and SVG of every figure", key="render_images", icon=":material/photo_library:"):
            try:
                with working("Rendering figures…", failed="Rendering failed") as work:
                    figs = {k: themed(v, theme_name) for k, v in all_figures(
                        p, live, options, progress=lambda f, m: work.progress(0.2 * f, m)).items()}
                    images = export.render_images(figs, progress=lambda f, m: work.progress(0.2 + 0.8 * f, m))
                    st.session_state[K_IMAGES] = (images_key, images)
                    work.done(f"Rendered {len(images)} images")
            except Exception as exc:  # noqa: BLE001 - any renderer failure is one sentence, the page goes on
                show_error(exc, "rendering images")
                images = None
        else:
            st.caption(f"{message} Rendering every figure takes a few seconds.")
    if images is not None:
        pngs = {k.split("/", 1)[1]: v for k, v in images.items() if k.startswith("png/")}
        svgs = {k.split("/", 1)[1]: v for k, v in images.items() if k.startswith("svg/")}
        c1, c2 = st.columns(2)
        c1.download_button(f"All figures, PNG ({len(pngs)} files, zip)", export.zip_bytes(pngs),
                           f"{stem}-figures-png.zip", "application/zip", key="dl_png", on_click="ignore",
                           icon=":material/image:", width="stretch")
        c2.download_button(f"All figures, SVG ({len(svgs)} files, zip)", export.zip_bytes(svgs),
                           f"{stem}-figures-svg.zip", "application/zip", key="dl_svg", on_click="ignore",
                           icon=":material/polyline:", width="stretch")

    st.markdown("##### Everything")
    readme = (
        f"Unlearning Lab export\n{p.setup.describe(p.dataset.classes)}\nalpha={alpha:g} lambda={lam:g} seed={p.setup.seed}\n\n"
        "metrics.csv / results.json: before and after metrics (accuracies are fractions).\n"
        "report.html: every figure, interactive, self-contained.\n"
        "model/: the unlearned model (safetensors) and its config (JSON) for ssd_core.checkpoints.load_model.\n"
        + ("figures/: PNG and SVG of every figure.\n" if images else "figures/: not included (render images first).\n")
    )
    frozen_images = dict(images or {})
    everything = export.lazy(lambda: export.bundle(
        file_stem=stem, metrics_csv_bytes=csv_bytes, results_json_bytes=json_bytes, html=html_builder(),
        model=model_builder(), images=frozen_images, readme=readme,
    ))
    st.download_button(
        "Everything (zip)" + ("" if images else " — without images; render them above to include them"),
        everything, f"{stem}-export.zip", "application/zip", key="dl_all", on_click="ignore",
        icon=":material/folder_zip:", type="primary",
    )
