"""``docs/performance.md`` as hand-written text plus one generated section per benchmark.

Each benchmark rewrites only the text between its own markers
(``<!-- bench:NAME:start -->`` ... ``<!-- bench:NAME:end -->``), so running one target keeps the
others' latest results and the hand-written discussion around them.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.report import ROOT

DOC = ROOT / "docs" / "performance.md"


def markers(name: str) -> tuple[str, str]:
    """The start and end comment lines of section ``name``."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"section name {name!r} must be lower-case letters, digits or '-'")
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` replaced by ``body``, or the section appended if absent."""
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"


def write_section(name: str, body: str, path: Path = DOC) -> Path:
    """Rewrite section ``name`` of the Markdown file at ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.is_file() else ""
    path.write_text(replace_section(text, name, body))
    return path
