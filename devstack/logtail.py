"""The tail of a log file, for error messages that show why an engine did not come up."""
from __future__ import annotations

from collections import deque
from pathlib import Path


def tail_lines(path: Path, count: int = 40) -> str:
    """The last ``count`` lines of ``path`` (undecodable bytes replaced); "" when it is missing."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=count))
    except FileNotFoundError:
        return ""
