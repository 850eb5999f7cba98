"""A one-file report of one unlearning run: setup, metrics, every figure, parameters,
environment, seed and the exact command line that reproduces the numbers.

:func:`build_report` is pure (data in, HTML string out): the figures are embedded with plotly.js
inlined once (in the first figure only), so the file works offline. :func:`cli_args` /
:func:`cli_command` give the ``python -m ssd_core unlearn ...`` call for a setup, and
:func:`html_to_pdf` prints a report to PDF with a local Chromium (Playwright when installed, else
``chromium --headless --print-to-pdf``), raising :class:`PdfUnavailable` with one sentence where
there is no browser.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from ssd_core.audit.text import TESTS
from ssd_core.data import ForgetRequest
from ssd_core.indices import format_indices
from ssd_core.settings import settings

REPORT_TITLE = "Unlearning Lab report"
METRIC_LABELS = {
    "forget_test_acc": "Forget accuracy (test)",
    "forget_train_acc": "Forget accuracy (train)",
    "retain_test_acc": "Retain accuracy (test)",
    "retain_train_acc": "Retain accuracy (train)",
    "test_acc": "Test accuracy (all)",
    "mia": "MIA (forget samples called members)",
    "zrf": "ZRF",
}
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync")


class PdfUnavailable(RuntimeError):
    """No browser to print the report with (or it failed); the message is one sentence."""


# ---------------------------------------------------------------------------------------------
# The command line that reproduces a run


def cli_args(
    *,
    dataset: str,
    model: str,
    request: ForgetRequest,
    method: str,
    alpha: float | str | None,
    lam: float | None,
    seed: int,
    params: Mapping[str, Any] | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    eval_sample: int | None = None,
) -> list[str]:
    """Arguments of ``python -m ssd_core`` (``ssd_core.cli.main`` takes them as they are).

    ``params`` are further method options, passed as ``--param NAME=VALUE`` (e.g. the estimator
    and the importance batch size). A random request's seed is the run seed (as in the CLI). ``eval_sample``:
    the numbers were read on the page's live sample (``--eval-sample``)."""
    args = ["unlearn", "--dataset", dataset, "--model", model]
    if request.kind == "class":
        args += ["--forget-class", str(request.target)]
    elif request.kind == "subclass":
        args += ["--forget-subclass", str(request.target)]
    elif request.kind == "random":
        args += ["--forget-random", str(request.k)]
    elif request.kind == "indices":
        args += ["--forget-indices", format_indices(request.indices or ())]
    args += ["--method", method]
    if isinstance(alpha, str):  # "auto"
        args += ["--alpha", alpha]
    elif alpha is not None:
        args += ["--alpha", f"{alpha:.10g}"]
    if lam is not None:
        args += ["--lambda", f"{lam:g}"]
    for name, value in (params or {}).items():
        args += ["--param", f"{name}={value}"]
    args += ["--seed", str(int(seed))]
    if device and device not in ("auto",):
        args += ["--device", "cuda" if device == "gpu" else device]
    if data_dir:
        args += ["--data-dir", data_dir]
    if eval_sample:
        args += ["--eval-sample", str(int(eval_sample))]
    return args


def cli_command(args: Sequence[str]) -> str:
    """The shell line for :func:`cli_args` (quoted where needed)."""
    return "python -m ssd_core " + shlex.join(list(args))


# ---------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body{font-family:Inter,'Source Sans Pro','Helvetica Neue',Arial,sans-serif;color:#1f2937;max-width:1180px;
margin:32px auto;padding:0 24px;line-height:1.5}
h1{font-size:28px;margin-bottom:4px} h2{font-size:20px;margin-top:40px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#6b7280} table{border-collapse:collapse;margin:12px 0} td,th{border:1px solid #e5e7eb;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left} .figure{margin:12px 0 28px;page-break-inside:avoid}
pre{background:#f3f4f6;padding:12px 14px;border-radius:6px;white-space:pre-wrap;word-break:break-all}
.kv td{text-align:left} .toc a{margin-right:14px}
@media print{body{margin:0;max-width:none;padding:0 4mm} .figure{break-inside:avoid}
h2,h3{break-after:avoid} table,pre{break-inside:avoid} tr{break-inside:avoid}}
"""
# An A4 page less the 10 mm side margins, in CSS pixels (96 per inch): the figures are drawn at this width
# before printing (plotly sizes them to the window once, so drawn at the screen's 1200 px they were cut).
PRINT_MARGIN_MM = 10
PRINT_WIDTH_PX = round((210 - 2 * PRINT_MARGIN_MM) / 25.4 * 96)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _kv_table(rows: Mapping[str, Any], table_id: str) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float) and math.isfinite(v):
            return escape(f"{v:.6g}")
        return _fmt(v) if not isinstance(v, str) else escape(v)

    cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{cell(v)}</td></tr>" for k, v in rows.items())
    return f'<table class="kv" id="{table_id}">{cells}</table>'


def build_report(
    *,
    setup: Mapping[str, Any],
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    figures: Mapping[str, Any],
    params: Mapping[str, Any],
    environment: Mapping[str, Any],
    seed: int,
    command: str,
    title: str = REPORT_TITLE,
    subtitle: str = "",
    figure_titles: Mapping[str, str] | None = None,
    explanations: Mapping[str, str] | None = None,
    extra_rows: Sequence[tuple[str, Any, Any]] = (),
    seconds: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
    file_stem: str = "unlearning-lab",
    audit: Mapping[str, Any] | None = None,
) -> str:
    """One self-contained HTML page.

    ``before`` / ``after`` are the scalar metrics (fractions; see ``METRIC_LABELS``), shown with 4
    decimals in a table whose cells carry ``data-metric`` and ``data-which`` attributes;
    ``extra_rows`` adds (label, before, after) rows (e.g. parameters dampened). ``figures`` maps a
    name to a plotly figure; plotly.js is inlined in the first figure only. ``command`` is the
    CLI line that reproduces the numbers. ``audit``: a result of ``ssd_core.audit.runner.audit_request``
    (JSON form) to add as an "Audit" section (the verdict table and the command that recomputes it).
    The exact numbers are also embedded as JSON
    (``<script type="application/json" id="report-data">``).
    """
    import plotly.io as pio

    from .export import modebar_config, safe_name

    figure_titles = figure_titles or {}
    explanations = explanations or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="meta">{escape(subtitle)}</p>')
    sections = [("setup", "Setup"), ("metrics", "Metrics"), ("figures", "Figures"), ("parameters", "Method parameters"),
                ("reproduce", "Reproduce"), ("environment", "Environment")]
    if audit is not None:
        sections.insert(2, ("audit", "Audit"))
    parts.append('<p class="toc">' + "".join(f'<a href="#{k}">{escape(v)}</a>' for k, v in sections) + "</p>")

    parts.append('<h2 id="setup">Setup</h2>')
    parts.append(_kv_table({**setup, "seed": seed}, "setup-table"))

    parts.append('<h2 id="metrics">Metrics</h2>')
    parts.append('<table id="metrics-table"><tr><th>metric</th><th>before</th><th>after</th><th>change</th></tr>')
    for key, label in METRIC_LABELS.items():
        if key not in before and key not in after:
            continue
        b, a = before.get(key), after.get(key)
        change = (a - b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        parts.append(
            f'<tr><td>{escape(label)}</td><td data-metric="{key}" data-which="before">{_fmt(b)}</td>'
            f'<td data-metric="{key}" data-which="after">{_fmt(a)}</td><td>{_fmt(change)}</td></tr>'
        )
    for label, b, a in extra_rows:
        change = (a - b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        parts.append(f"<tr><td>{escape(label)}</td><td>{_fmt(b)}</td><td>{_fmt(a)}</td><td>{_fmt(change)}</td></tr>")
    parts.append("</table>")
    parts.append('<p class="meta">Accuracies and MIA are fractions in [0, 1]; n/a where a subset is empty.</p>')

    if audit is not None:
        parts.append(_audit_section(audit))

    parts.append(f'<h2 id="figures">Figures ({len(figures)})</h2>')
    for i, (name, fig) in enumerate(figures.items()):
        heading = figure_titles.get(name) or name.replace("_", " ").replace("-", " ").capitalize()
        parts.append(f'<section class="figure" id="section-{escape(safe_name(name))}"><h3>{escape(heading)}</h3>')
        if name in explanations:
            parts.append(f"<p>{escape(explanations[name])}</p>")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=True if i == 0 else False,
                                 div_id=f"fig-{safe_name(name)}", config=modebar_config(f"{file_stem}-{name}")))
        parts.append("</section>")

    parts.append('<h2 id="parameters">Method parameters</h2>')
    parts.append(_kv_table(params, "params-table"))
    if seconds:
        parts.append("<p class=\"meta\">Seconds per step: " + escape(", ".join(f"{k} {v:.3f}" for k, v in seconds.items())) + "</p>")

    parts.append('<h2 id="reproduce">Reproduce</h2>')
    parts.append("<p>This command recomputes the metrics above (same seed, same numbers) and prints a summary of "
                 "them; add <code>--json FILE</code> to write every number as JSON:</p>")
    parts.append(f'<pre><code id="cli-command">{escape(command)}</code></pre>')
    for note in notes:
        parts.append(f'<p class="meta">{escape(note)}</p>')

    parts.append('<h2 id="environment">Environment</h2>')
    parts.append(_kv_table(environment, "environment-table"))

    data = {"setup": dict(setup), "seed": seed, "before": dict(before), "after": dict(after), "params": dict(params),
            "environment": dict(environment), "command": command, "figures": list(figures)}
    if audit is not None:
        data["audit"] = {k: v for k, v in audit.items() if not str(k).startswith("_")}
    payload = json.dumps(_clean(data), default=str, allow_nan=False).replace("</", "<\\/")
    parts.append(f'<script type="application/json" id="report-data">{payload}</script>')
    parts.append("</body></html>")
    return "\n".join(parts)


AUDIT_MARKS = {True: "forgotten", False: "not forgotten", None: "no verdict"}


def _audit_section(audit: Mapping[str, Any]) -> str:
    """The verdict table of an audit and the command that recomputes it."""
    body = audit["audit"]
    parts = ['<h2 id="audit">Audit: did it really forget?</h2>',
             "<p>Each test compares the unlearned model with a model retrained without the forget set.</p>",
             '<table id="audit-table"><tr><th>method</th><th>forgotten</th><th>verdict</th><th>value</th>'
             "<th>retrained</th><th>what it means</th></tr>"]
    for method, rows in body["verdicts"].items():
        for row in rows:
            parts.append(
                f'<tr><td>{escape(method)}</td><td>{escape(TESTS.get(row["test"], row["test"]))}</td>'
                f'<td data-audit="{escape(method)}:{escape(row["test"])}">{escape(AUDIT_MARKS[row["forgotten"]])}</td>'
                f'<td>{_fmt(row["value"])}</td><td>{_fmt(row["retrained"])}</td><td>{escape(row["sentence"])}</td></tr>')
    parts.append("</table>")
    models = {"original": body.get("original", {}), **body.get("unlearned", {}), "retrained": body.get("retrained", {})}
    if any(m.get("layers") for m in models.values()):
        parts.append("<p>Inside the model, block by block (forget images): linear CKA to the original and to the "
                     "retrained model, and a linear probe's accuracy on the forgotten class.</p>")
        parts.append('<table id="audit-layers"><tr><th>model</th><th>block</th><th>CKA to original</th>'
                     "<th>CKA to retrained</th><th>probe</th></tr>")
        for name, m in models.items():
            for row in m.get("layers") or []:
                parts.append(f"<tr><td>{escape(name)}</td><td>{escape(str(row['block']).removeprefix('net.'))}</td>"
                             f"<td>{row['cka_original_forget']:.3f}</td><td>{row['cka_retrained_forget']:.3f}</td>"
                             f"<td>{_fmt(row['probe'])}</td></tr>")
        parts.append("</table>")
    for note in body.get("notes", []):
        parts.append(f'<p class="meta">{escape(note)}</p>')
    if audit.get("command"):
        parts.append(f'<pre><code id="audit-command">{escape(audit["command"])}</code></pre>')
    return "\n".join(parts)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def figure_count(html: str) -> int:
    """How many plotly figures an HTML page draws (one ``plotly-graph-div`` each)."""
    return html.count('class="plotly-graph-div"')


# ---------------------------------------------------------------------------------------------
# PDF


def pdf_status() -> tuple[bool, str]:
    """(available, one sentence) for printing a report to PDF here."""
    from .export import find_browser

    browser = find_browser()
    if browser is None:
        return False, ("PDF needs Chrome or Chromium on the server and none was found; download the HTML report "
                       "and print it from your browser instead.")
    return True, f"PDF is printed with {browser}."


def _pdf_with_playwright(html_path: Path, browser_path: str, timeout_s: float) -> bytes:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=list(CHROMIUM_FLAGS), headless=True)
        try:
            page = browser.new_page(viewport={"width": PRINT_WIDTH_PX, "height": 1000})
            page.goto(html_path.as_uri(), wait_until="load", timeout=timeout_s * 1000)
            page.wait_for_function(  # every figure drawn
                "() => Array.from(document.querySelectorAll('.plotly-graph-div')).every(d => d.querySelector('.main-svg'))",
                timeout=timeout_s * 1000,
            )
            page.emulate_media(media="print")
            side = f"{PRINT_MARGIN_MM}mm"
            return page.pdf(format="A4", print_background=True, margin={"top": "12mm", "bottom": "12mm",
                                                                          "left": side, "right": side})
        finally:
            browser.close()


def _pdf_with_cli(html_path: Path, browser_path: str, timeout_s: float) -> bytes:
    out = html_path.with_suffix(".pdf")
    command = [browser_path, "--headless", *CHROMIUM_FLAGS, "--no-pdf-header-footer", "--virtual-time-budget=15000",
               f"--window-size={PRINT_WIDTH_PX},1000", f"--print-to-pdf={out}", html_path.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=timeout_s)
    return out.read_bytes()


def html_to_pdf(html: str, *, timeout_s: float = 90.0) -> bytes:
    """Print an HTML report to PDF with the local Chromium (figures drawn first)."""
    from .export import find_browser

    available, message = pdf_status()
    if not available:
        raise PdfUnavailable(message)
    browser_path = find_browser() or ""
    with tempfile.TemporaryDirectory(prefix="unlearning-lab-report-") as folder:
        path = Path(folder) / "report.html"
        path.write_text(html, encoding="utf-8")
        errors: list[str] = []
        try:
            import playwright  # noqa: F401
        except ImportError:
            pass
        else:
            try:
                return _pdf_with_playwright(path, browser_path, timeout_s)
            except Exception as exc:  # noqa: BLE001 - fall back to the command line
                errors.append(f"playwright: {exc}")
        try:
            data = _pdf_with_cli(path, browser_path, timeout_s)
            if data.startswith(b"%PDF"):
                return data
            errors.append("chromium wrote no PDF")
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append(f"chromium: {exc}")
    raise PdfUnavailable("The browser could not print the report to PDF; download the HTML report and print it "
                         "from your browser instead." + (f" ({errors[-1][:160]})" if settings().debug else ""))
