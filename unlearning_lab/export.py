"""Exporting results: figure images (PNG/SVG), one self-contained HTML report, metrics as CSV
and JSON, the unlearned model as safetensors + JSON config, and zips of any of these.

Everything returns bytes (or str for HTML), so a caller decides where they go: a download
button, a file, a zip. Server-side images use kaleido 1.x, which drives a local Chrome or
Chromium; :func:`find_browser` says whether one exists, and :func:`render_images` raises
:class:`ImageExportUnavailable` (with one sentence for the user) when it does not.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import shutil
import threading
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any, TypeVar

from ssd_core.progress import OptionalProgress, report

T = TypeVar("T")

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("png", "svg")
PNG_SCALE = 3  # high resolution: layout pixels x 3
DEFAULT_WIDTH = 1100
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TYPICAL_BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
                    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")


class ImageExportUnavailable(RuntimeError):
    """Server-side image export cannot run here (no browser, or the browser failed)."""


def safe_name(text: str, max_length: int = 80) -> str:
    """A file-name-safe slug: letters, digits, '.', '_' and '-' only."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return (slug or "figure")[:max_length]


# ---------------------------------------------------------------------------------------------
# Images


def find_browser() -> str | None:
    """The Chrome/Chromium kaleido will use: $BROWSER_PATH, then the usual names and places."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if Path(env).is_file() else None
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for candidate in TYPICAL_BROWSERS:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    try:  # kaleido's own download location (kaleido_get_chrome)
        from choreographer.browsers.chromium import Chromium

        path = Chromium.find_browser(skip_local=False)
        return str(path) if path and Path(path).is_file() else None
    except Exception:  # noqa: BLE001  # pragma: no cover - depends on choreographer internals
        return None


def image_export_status() -> tuple[bool, str]:
    """(available, one sentence) for server-side PNG/SVG export."""
    browser = find_browser()
    if browser is None:
        return False, (
            "Server-side images need Chrome or Chromium, and none was found on this machine "
            "(install one or set BROWSER_PATH)."
        )
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False, "Server-side images need the kaleido package (pip install kaleido)."
    return True, f"Images are rendered with {browser}."


_render_lock = threading.Lock()


def render_images(
    figures: Mapping[str, Any],
    formats: Sequence[str] = IMAGE_FORMATS,
    *,
    scale: float = PNG_SCALE,
    width: int = DEFAULT_WIDTH,
    progress: OptionalProgress = None,
    folder: bool = True,
) -> dict[str, bytes]:
    """Render every figure in every format: {'png/<name>.png': bytes, 'svg/<name>.svg': ...}.

    PNGs are ``scale`` times the layout size; SVGs are vector. One browser session serves all
    figures (much faster than one per image); calls are serialised process-wide.
    """
    import plotly.io as pio

    for fmt in formats:
        if fmt not in ("png", "svg", "pdf", "jpeg", "webp"):
            raise ValueError(f"unsupported image format {fmt!r}")
    available, message = image_export_status()
    if not available:
        raise ImageExportUnavailable(message)
    browser = find_browser()  # handed to kaleido as its path: the process environment is left alone
    import kaleido

    out: dict[str, bytes] = {}
    jobs = [(name, fig, fmt) for fmt in formats for name, fig in figures.items()]
    with _render_lock:
        server = getattr(kaleido, "_global_server", None)
        started_here = False
        try:
            if server is not None and not server.is_running():
                kaleido.start_sync_server(n=1, timeout=90, silence_warnings=True, **({"path": browser} if browser else {}))
                started_here = True
            for i, (name, fig, fmt) in enumerate(jobs):
                report(progress, i / max(1, len(jobs)), f"rendering {name}.{fmt}")
                layout_width = getattr(fig.layout, "width", None) or width
                layout_height = getattr(fig.layout, "height", None) or 450
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "kopts ignored when using a server"
                    data = pio.to_image(fig, format=fmt, width=layout_width, height=layout_height,
                                        scale=scale if fmt != "svg" else 1)
                key = f"{fmt}/{safe_name(name)}.{fmt}" if folder else f"{safe_name(name)}.{fmt}"
                out[key] = data
        except ImageExportUnavailable:
            raise
        except Exception as exc:
            log.exception("image export failed")
            raise ImageExportUnavailable(
                "The browser used for server-side images failed to start or render; use the HTML report or the camera icon on each "
                "chart instead."
            ) from exc
        finally:
            if started_here:
                try:
                    kaleido.stop_sync_server(silence_warnings=True)
                except Exception:  # pragma: no cover
                    log.warning("could not stop the kaleido server", exc_info=True)
    report(progress, 1.0, f"rendered {len(out)} images")
    return out


def modebar_config(file_stem: str, image_format: str = "png", scale: float = PNG_SCALE) -> dict[str, Any]:
    """plotly.js config: the camera button downloads ``<file_stem>.<format>`` at high resolution."""
    fmt = image_format if image_format in ("png", "svg", "jpeg", "webp") else "png"
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": fmt,
            "filename": safe_name(file_stem),
            "scale": scale if fmt != "svg" else 1,
        },
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


# ---------------------------------------------------------------------------------------------
# HTML

_HTML_STYLE = """
body{font-family:Inter,'Source Sans Pro','Helvetica Neue',Arial,sans-serif;color:#1f2937;max-width:1180px;
margin:32px auto;padding:0 24px;line-height:1.5}
h1{font-size:28px;margin-bottom:4px} h2{font-size:20px;margin-top:40px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#6b7280} table{border-collapse:collapse;margin:12px 0} td,th{border:1px solid #e5e7eb;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left} .figure{margin:12px 0 28px}
"""


def figures_html(
    figures: Mapping[str, Any],
    title: str,
    *,
    subtitle: str = "",
    explanations: Mapping[str, str] | None = None,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    file_stem: str = "unlearning-lab",
) -> str:
    """One self-contained HTML page (plotly.js inlined once) with every figure, interactive."""
    import plotly.io as pio

    explanations = explanations or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_HTML_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="meta">{escape(subtitle)}</p>')
    if metrics:
        parts.append("<h2>Metrics</h2><table><tr><th>metric</th><th>before</th><th>after</th><th>change</th></tr>")
        for row in metrics:
            cells = [escape(str(row.get("metric", "")))] + [_fmt_cell(row.get(k)) for k in ("before", "after", "change")]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    for i, (name, fig) in enumerate(figures.items()):
        heading = explanations.get(name + ":title") or name.replace("_", " ").replace("-", " ").capitalize()
        parts.append(f'<section class="figure" id="{escape(safe_name(name))}"><h2>{escape(heading)}</h2>')
        if name in explanations:
            parts.append(f"<p>{escape(explanations[name])}</p>")
        parts.append(
            pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=True if i == 0 else False,
                div_id=f"fig-{safe_name(name)}",
                config=modebar_config(f"{file_stem}-{name}"),
            )
        )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


# ---------------------------------------------------------------------------------------------
# Metrics

SUMMARY_KEYS = ("retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc", "mia", "zrf")


def _change(before: Any, after: Any) -> float | None:
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        return float(after) - float(before)
    return None


def metrics_rows(before: Any, after: Any, classes: Sequence[str], report: Any | None = None) -> list[dict[str, Any]]:
    """Flat rows {group, metric, before, after, change}: scalar metrics (fractions), per-class
    test accuracy and, with SSD's dampening report, the number and fraction of dampened parameters
    (groups "report" and "report_per_layer": the report the CLI's and the page's JSON call
    ``diagnostics.report``)."""
    rows: list[dict[str, Any]] = []
    b, a = before.summary(), after.summary()
    for key in SUMMARY_KEYS:
        rows.append({"group": "summary", "metric": key, "before": b.get(key), "after": a.get(key),
                     "change": _change(b.get(key), a.get(key))})
    for i, name in enumerate(classes):
        pb = before.per_class_acc[i] if i < len(before.per_class_acc) else None
        pa = after.per_class_acc[i] if i < len(after.per_class_acc) else None
        rows.append({"group": "per_class_test_acc", "metric": f"class {name}", "before": pb, "after": pa,
                     "change": _change(pb, pa)})
    if report is not None:
        rows.append({"group": "report", "metric": "parameters_dampened", "before": 0,
                     "after": report.total_selected, "change": report.total_selected})
        rows.append({"group": "report", "metric": "fraction_dampened", "before": 0.0,
                     "after": report.fraction_selected, "change": report.fraction_selected})
        for layer in report.layers:
            rows.append({"group": "report_per_layer", "metric": layer.name, "before": 0,
                         "after": layer.selected, "change": layer.selected})
    return rows


def metrics_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["group", "metric", "before", "after", "change"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames})
    return buffer.getvalue().encode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    return value


def results_json(payload: Mapping[str, Any]) -> bytes:
    """Strict JSON (NaN/inf become null; objects with ``to_dict`` are expanded)."""
    return json.dumps(_jsonable(dict(payload)), indent=2, allow_nan=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Model


def model_files(model: Any, config: Any, file_stem: str, extra: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """{'<stem>.safetensors': weights, '<stem>.json': config} readable by checkpoints.load_model
    (with ``ModelConfig.from_dict`` on the JSON)."""
    from ssd_core.checkpoints import model_bytes

    stem = safe_name(file_stem)
    meta = {**config.to_dict(), **_jsonable(dict(extra or {}))}
    return {
        f"{stem}.safetensors": model_bytes(model),
        f"{stem}.json": json.dumps(meta, indent=2, allow_nan=False).encode("utf-8"),
    }


# ---------------------------------------------------------------------------------------------
# Zip


def zip_bytes(files: Mapping[str, bytes | str], root: str | None = None) -> bytes:
    """A zip of {path: content}; already-compressed formats are stored, the rest deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            name = f"{root}/{path}" if root else path
            compress = zipfile.ZIP_STORED if path.endswith((".png", ".zip", ".safetensors")) else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=compress)
    return buffer.getvalue()


def bundle(
    *,
    file_stem: str,
    metrics_csv_bytes: bytes,
    results_json_bytes: bytes,
    html: str | None,
    model: Mapping[str, bytes] | None = None,
    images: Mapping[str, bytes] | None = None,
    readme: str | None = None,
) -> bytes:
    """Everything as one zip, under a folder named after ``file_stem``."""
    files: dict[str, bytes | str] = {
        "metrics.csv": metrics_csv_bytes,
        "results.json": results_json_bytes,
    }
    if html is not None:
        files["report.html"] = html
    for name, data in (model or {}).items():
        files[f"model/{name}"] = data
    for name, data in (images or {}).items():
        files[f"figures/{name}"] = data
    if readme:
        files["README.txt"] = readme
    return zip_bytes(files, root=safe_name(file_stem))


def lazy(builder: Callable[[], T]) -> Callable[[], T]:
    """Wrap a builder so it runs at most once (for deferred downloads)."""
    cache: dict[str, T] = {}
    lock = threading.Lock()

    def build() -> T:
        with lock:
            if "value" not in cache:
                cache["value"] = builder()
            return cache["value"]

    return build
