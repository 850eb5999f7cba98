"""The README's glossary ("Words used here") names code that exists: every code name in its third column
is defined in the source, and every CLI flag in it is one the CLI accepts."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("ssd_core", "ui", "app_pages", "unlearning_lab") for p in (ROOT / d).rglob("*.py")]


def glossary_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Words used here", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return [(row[1].strip(), row[3]) for row in rows[1:]]


def test_every_code_name_in_the_glossary_is_defined():
    source = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    names = [(word, name) for word, code in glossary_rows() for name in re.findall(r"`([A-Za-z_][\w.]*)`", code)]
    assert len(names) >= 20
    missing = []
    for word, name in names:
        last = name.split(".")[-1]
        defined = re.search(rf"(class|def) {last}\b|^\s+{last}\s*[:=]|^{last}\s*=|\"{last}\"", source, re.MULTILINE)
        if not defined:
            missing.append(f"{word}: {name}")
    assert not missing, missing


def test_every_flag_in_the_glossary_is_accepted_by_the_cli():
    from ssd_core.cli_args import build_parser

    flags = {f for _, code in glossary_rows() for f in re.findall(r"`(--[a-z-]+)", code)}
    assert {"--alpha", "--lambda", "--guard", "--forget-class"} <= flags
    accepted = {option for action in build_parser()._subparsers._group_actions[0].choices["unlearn"]._actions
                for option in action.option_strings}
    assert flags <= accepted, flags - accepted
