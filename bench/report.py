"""What every benchmark report states: the machine, the commit, the command, and its tables."""
from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def machine() -> dict[str, Any]:
    """CPU count, model and memory of this machine (what a reader needs to compare numbers)."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory_gib = round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu_model, "memory_gib": memory_gib,
            "python": platform.python_version(), "platform": platform.platform()}


def commit() -> str:
    """The short HEAD sha, ``+dirty`` if tracked files outside ``docs/`` differ from it.

    ``docs/`` holds what benchmarks write and the prose around it: editing a report while a
    benchmark runs does not change the code being measured, so it does not make a run dirty.
    """
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(title: str, command: str) -> str:
    m = machine()
    return (
        f"# {title}\n\n"
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}` at commit `{commit()}` "
        f"on {m['nproc']} CPU cores ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB RAM, no GPU"
        f" unless stated.\n"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), "commit": commit(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that ran (``python -m MODULE ARGS``), quoted so a reader can paste it."""
    words = list(argv) if argv is not None else sys.argv[1:]
    return " ".join([f"python -m {module}", *(shlex.quote(word) for word in words)])


def stamp(command: str) -> dict[str, Any]:
    """What a report states about its run: the command, the machine, the commit and the day."""
    return {"command": command, "machine": machine(), "commit": commit(), "date": time.strftime("%Y-%m-%d")}


def write_report(
    name: str, payload: Mapping[str, Any], render: Callable[[Mapping[str, Any]], str], markdown: Path,
    results: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``<name>.json`` and the Markdown ``render(payload)``: to ``docs/results/`` and
    ``markdown``, or both into ``results`` when given (a smoke run that must not touch ``docs/``)."""
    json_dir = results or RESULTS
    json_dir.mkdir(parents=True, exist_ok=True)
    json_path = json_dir / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path = results / markdown.name if results else markdown
    md_path.write_text(render(payload))
    return json_path, md_path


@contextmanager
def run_directory(prefix: str) -> Iterator[Path]:
    """A temporary directory for the services a benchmark starts: removed after a success, kept
    (and named) after a failure, so their logs can be read. Readable by the engines' own user."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    except BaseException:
        print(f"engine, Redis and worker logs kept in {path}", flush=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
