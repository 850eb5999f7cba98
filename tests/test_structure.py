"""The layout the README describes is the layout the code has: dependencies point one way
(ssd_core <- unlearning_lab <- app), every module is named in the README, every setting is in
the one settings table."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# What each layer may not import (anywhere, including imports inside functions).
FORBIDDEN = {
    "ssd_core": {"unlearning_lab", "ui", "app_pages", "streamlit", "plotly", "pandas", "captum", "kaleido",
                 "playwright", "choreographer"},
    "unlearning_lab": {"ui", "app_pages", "streamlit"},
    "ui": {"app_pages"},
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file (relative imports stay in the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    offenders = {str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[package])
                 for path in (ROOT / package).rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_library_imports_without_the_dashboard_stack() -> None:
    """Importing all of ssd_core (every method, the CLI) and unlearning_lab loads no Streamlit, and
    ssd_core alone loads no plotly either."""
    code = (
        "import sys, pkgutil, importlib, ssd_core\n"
        "for m in pkgutil.walk_packages(ssd_core.__path__, 'ssd_core.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "assert not {'streamlit', 'plotly', 'pandas', 'captum'} & set(sys.modules), sorted(sys.modules)\n"
        "import unlearning_lab.figures, unlearning_lab.export, unlearning_lab.report, unlearning_lab.uploads\n"
        "assert 'streamlit' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def _modules(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.name == "__init__.py":
            if path.parent != ROOT / package:
                out.append(path.parent.name + "/")
        elif path.name != "__main__.py":
            out.append(path.name)
    return out


@pytest.mark.parametrize("package", ["ssd_core", "unlearning_lab", "ui", "app_pages"])
def test_readme_layout_names_every_module(package: str) -> None:
    layout = README[README.index("## Layout"):README.index("## Datasets")]
    missing = [name for name in _modules(package) if name not in layout]
    assert not missing, f"README's layout does not mention {missing} of {package}/"


def test_readme_settings_table_is_the_settings_list() -> None:
    from ssd_core.settings import markdown_table

    start = README.index("<!-- settings table")
    table = README[README.index("\n", start) + 1:README.index("<!-- end of settings table -->")].strip()
    assert table == markdown_table(), "run `python -m ssd_core.settings` and paste its table into README.md"


def test_every_environment_variable_is_a_setting() -> None:
    """No UNLEARNING_LAB_* is read anywhere without being in the one list (and so documented)."""
    from ssd_core.settings import VARIABLES

    known = {v.env for v in VARIABLES}
    used: dict[str, set[str]] = {}
    for folder in ("ssd_core", "unlearning_lab", "ui", "app_pages", "bench", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in re.findall(r"UNLEARNING_LAB_[A-Z_]+[A-Z]", path.read_text()):
                used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in (ROOT / "app.py", ROOT / "serve.py", ROOT / "Makefile"):
        for name in re.findall(r"UNLEARNING_LAB_[A-Z_]+[A-Z]", path.read_text()):
            used.setdefault(name, set()).add(path.name)
    assert not {name: where for name, where in used.items() if name not in known}


def test_settings_are_read_in_one_place() -> None:
    """Only ssd_core/settings.py reads os.environ for UNLEARNING_LAB_* (the others use settings())."""
    readers = []
    for folder in ("ssd_core", "unlearning_lab", "ui", "app_pages"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"(os\.environ|getenv)[^\n]*UNLEARNING_LAB_", text) and path.name != "settings.py":
                readers.append(str(path.relative_to(ROOT)))
    assert not readers


def test_the_dashboard_asks_the_engine_instead_of_running_ssds_steps() -> None:
    """ui/ and app_pages/ dampen and choose automatic alpha through ssd_core.engine.SSDEngine, so the page and
    the CLI cannot drift apart."""
    calls = re.compile(r"\b(dampen|adaptive_alpha|guard_fix|auto_setting)\(")
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in ("ui", "app_pages") for path in (ROOT / folder).rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if calls.search(line)]
    assert not found, found


def test_the_library_runs_ssd_through_the_engine_too() -> None:
    """Inside ssd_core only the engine (and the modules it is built on) run SSD's steps: the methods, the
    CLI, the sweep and the streamed path all go through SSDEngine."""
    calls = re.compile(r"\b(dampen|adaptive_alpha|auto_setting)\(")
    built_on = {"dampening.py", "guard.py", "engine.py"}
    found = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "ssd_core").rglob("*.py") if path.name not in built_on
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if calls.search(line) and not line.lstrip().startswith(("#", "def "))]
    assert not found, found


def _ui_imports() -> dict[str, set[str]]:
    """Each ui/ module and the ui/ modules it imports, at the top or inside a function."""
    import ast

    modules = {p.stem for p in (ROOT / "ui").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "ui").glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and (node.module == "ui" or node.module.startswith("ui.")):
                found |= {a.name for a in node.names} if node.module == "ui" else {node.module.split(".")[1]}
        graph[path.stem] = (found & modules) - {path.stem}
    return graph


def test_ui_has_no_import_cycles() -> None:
    """Shared parts below, pages above: no ui/ module imports one that (through others) imports it back,
    not even inside a function."""
    graph = _ui_imports()

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph[start])

    cycles = sorted(m for m in graph if reaches(m, m, {m}))
    assert not cycles, f"ui/ modules in an import cycle: {cycles}"



def test_no_module_is_over_600_lines_outside_the_figures() -> None:
    """Small modules with one job: the plotly figure collections are the only long files."""
    long = {str(p.relative_to(ROOT)): n for folder in ("ssd_core", "ui", "app_pages", "unlearning_lab")
            for p in (ROOT / folder).rglob("*.py") if (n := len(p.read_text().splitlines())) > 600
            and not p.name.startswith("figures")}
    assert not long, long
