"""Processes: launching detached, telling live from dead, stopping for sure, waiting for ready.

Launched processes get their own session (``start_new_session``): a Ctrl-C in the caller's
terminal does not reach them, and they outlive the CLI that started them. Their output goes to a
file, never a pipe, because a pipe nobody drains blocks the engine, and one held open by a
daemonized JVM never reaches end-of-file.

Liveness is read from ``/proc`` (Linux only) instead of ``kill(pid, 0)``, because a process that
has exited but was not reaped (an orphan in a container whose PID 1 does not reap) still answers
``kill`` as a zombie; ``/proc`` shows its state ``Z``, and devstack counts it as gone.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from devstack.errors import EngineStartError

STOP_GRACE_S = 20.0


@dataclass
class Service:
    """A running engine or Redis: where to reach it and how to stop it."""

    name: str
    url: str
    pid: int
    run_dir: Path
    started_in_s: float
    _child: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    _stopped: bool = field(default=False, repr=False, compare=False)

    def stop(self) -> None:
        """SIGTERM, up to 20 s to exit, then SIGKILL. A second call does nothing."""
        if self._stopped:
            return
        terminate([self.pid])
        if self._child is not None:
            terminate([self._child.pid])
            self._child.wait()
        self._stopped = True


def spawn(command: list[str], output: Path, cwd: Path) -> subprocess.Popen:
    """Start ``command`` in its own session with stdout and stderr appended to ``output``."""
    with open(output, "ab") as handle:
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, pgrp, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry))
    return members


def _signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        pids = [pid for pid in pids if is_alive(pid)]
        if not pids or time.monotonic() >= deadline:
            return pids
        time.sleep(0.1)


def terminate(pids: Iterable[int], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the live ``pids``, wait up to ``grace_s`` for them to exit, then SIGKILL the rest."""
    live = [pid for pid in pids if is_alive(pid)]
    _signal_all(live, signal.SIGTERM)
    survivors = _wait_gone(live, grace_s)
    _signal_all(survivors, signal.SIGKILL)
    _wait_gone(survivors, 5.0)


def wait_until(ready: Callable[[], bool], exited: Callable[[], bool], timeout_s: float) -> str | None:
    """Poll ``ready`` until it holds (-> None) or the process exits or time runs out (-> why)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return None
        if exited():
            return "the process exited during start-up"
        time.sleep(0.5)
    return f"not ready after {timeout_s:.0f} s"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_free_port(port: int) -> None:
    """Fail fast when something already listens on ``port``: readiness checks would ask it instead.

    SO_REUSEADDR makes a port that only has TIME_WAIT leftovers of a previous run count as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise EngineStartError(f"port {port} on 127.0.0.1 is already in use ({error})") from None
