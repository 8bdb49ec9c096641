"""Start single-node OpenSearch and Elasticsearch on 127.0.0.1 from the cached installs.

Each start: install if needed (cached), copy the install's config into the caller's run
directory with this run's ports, paths and heap, launch the engine daemonized with a pid file
(``-d -p``), and poll cluster health until yellow. If the engine dies or the deadline passes,
everything it started is stopped and ``EngineStartError`` carries the tail of its logs, so a
failing fixture explains itself instead of hanging.

The two engines differ only in the data of ``EngineKind``; the start-up code is shared.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from devstack.config import engine_settings, write_run_config
from devstack.errors import EngineStartError
from devstack.install import install_elasticsearch, install_opensearch
from devstack.java import find_java_home
from devstack.logtail import tail_lines
from devstack.privileges import as_engine_user
from devstack.process import (
    Service,
    group_members,
    is_alive,
    require_free_port,
    spawn,
    terminate,
    wait_until,
)

# Requests to the engines must never go through a proxy configured for the outside world.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class EngineKind:
    """What differs between OpenSearch and Elasticsearch when starting one."""

    name: str
    install: Callable[[], Path]
    env_prefix: str  # <prefix>_JAVA_HOME, <prefix>_PATH_CONF, <prefix>_TMPDIR
    settings_file: str
    extra_settings: dict


OPENSEARCH = EngineKind("opensearch", install_opensearch, "OPENSEARCH", "opensearch.yml", {})
# Security is on by default in Elasticsearch 9 (TLS + passwords); the test node is loopback-only.
ELASTICSEARCH = EngineKind(
    "elasticsearch", install_elasticsearch, "ES", "elasticsearch.yml",
    {"xpack.security.enabled": False},
)


def start_opensearch(
    run_dir: Path,
    http_port: int = 9200,
    transport_port: int = 9300,
    heap: str = "1g",
    timeout_s: float = 180,
) -> Service:
    """OpenSearch with k-NN and neural-search, data and logs under ``run_dir``."""
    return start_engine(OPENSEARCH, run_dir, http_port, transport_port, heap, timeout_s)


def start_elasticsearch(
    run_dir: Path,
    http_port: int = 9201,
    transport_port: int = 9301,
    heap: str = "1g",
    timeout_s: float = 180,
) -> Service:
    """Elasticsearch (integ-test distribution, security off), data and logs under ``run_dir``."""
    return start_engine(ELASTICSEARCH, run_dir, http_port, transport_port, heap, timeout_s)


def start_engine(
    kind: EngineKind, run_dir: Path, http_port: int, transport_port: int, heap: str, timeout_s: float
) -> Service:
    """Launch ``kind`` and wait until its cluster is yellow; see the module docstring."""
    home = kind.install()
    java_home = find_java_home()
    run_dir = run_dir.resolve()
    for port in (http_port, transport_port):
        require_free_port(port)
    _prepare_run_dir(kind, home, run_dir, http_port, transport_port, heap)
    pid_file = run_dir / f"{kind.name}.pid"
    pid_file.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{http_port}"
    started = time.monotonic()
    command = _launch_command(kind, home, java_home, run_dir, pid_file)
    launcher = spawn(as_engine_user(command, [home, run_dir]), run_dir / "console.log", cwd=home)

    def engine_pids() -> list[int]:
        launcher.poll()  # reap the launcher once it has daemonized the engine
        pid = read_pid(pid_file)
        return group_members(launcher.pid) + ([pid] if pid is not None and is_alive(pid) else [])

    def abort() -> None:
        terminate(engine_pids())
        launcher.wait()

    try:
        failure = wait_until(lambda: is_healthy(url), lambda: not engine_pids(), timeout_s)
    except BaseException:  # e.g. Ctrl-C: leave no detached engine behind
        abort()
        raise
    pid = read_pid(pid_file)
    if failure is None and pid is None:
        failure = f"{url} answered, but {pid_file} was not written"
    if failure is not None:
        abort()
        raise EngineStartError(f"{kind.name} did not start: {failure}\n{_log_report(kind, run_dir)}")
    return Service(kind.name, url, pid, run_dir, time.monotonic() - started, _child=launcher)


def _prepare_run_dir(
    kind: EngineKind, home: Path, run_dir: Path, http_port: int, transport_port: int, heap: str
) -> None:
    """data/, logs/, tmp/ and a fresh config/ for this run (existing data is kept)."""
    for sub in ("data", "logs", "tmp"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    settings = {
        **engine_settings(http_port, transport_port, run_dir / "data", run_dir / "logs"),
        **kind.extra_settings,
    }
    write_run_config(home / "config", run_dir / "config", kind.settings_file, settings, heap)


def _launch_command(
    kind: EngineKind, home: Path, java_home: Path, run_dir: Path, pid_file: Path
) -> list[str]:
    """``env VAR=... bin/<engine> -d -p <pid file>``: daemonized, configured by the run dir."""
    env = {
        f"{kind.env_prefix}_JAVA_HOME": java_home,
        f"{kind.env_prefix}_PATH_CONF": run_dir / "config",
        f"{kind.env_prefix}_TMPDIR": run_dir / "tmp",
        # Elasticsearch's launcher JVM probes the JVM options from a /tmp/final-flags* directory
        # that it leaves behind on every start; OpenSearch's launcher ignores this variable.
        "CLI_JAVA_OPTS": f"-Djava.io.tmpdir={run_dir / 'tmp'}",
    }
    variables = [f"{key}={value}" for key, value in env.items()]
    return ["env", *variables, str(home / "bin" / kind.name), "-d", "-p", str(pid_file)]


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _log_report(kind: EngineKind, run_dir: Path) -> str:
    """The last lines of the launcher's output and of the engine's own log."""
    parts = []
    for path in (run_dir / "console.log", run_dir / "logs" / f"{kind.name}.log"):
        tail = tail_lines(path)
        if tail:
            parts.append(f"--- last lines of {path} ---\n{tail}")
    return "\n".join(parts) or f"(no log output in {run_dir})"


def get_json(url: str, timeout_s: float = 10.0) -> object:
    """GET ``url`` and decode its JSON body."""
    with _OPENER.open(url, timeout=timeout_s) as response:
        return json.load(response)


def cluster_health(url: str) -> str | None:
    """``green`` or ``yellow``; None while the cluster is red, starting, or unreachable."""
    try:
        health = get_json(f"{url}/_cluster/health?wait_for_status=yellow&timeout=5s")
    except (OSError, ValueError):  # URLError, HTTPError (408 while red) and timeouts are OSErrors
        return None
    if not isinstance(health, dict) or health.get("timed_out"):
        return None
    return health.get("status")


def is_healthy(url: str) -> bool:
    return cluster_health(url) in ("yellow", "green")


def opensearch_has_plugin(url: str, name: str) -> bool:
    """Whether the node at ``url`` runs plugin ``name`` (e.g. ``opensearch-neural-search``)."""
    rows = get_json(f"{url}/_cat/plugins?format=json")
    return any(row.get("component") == name for row in rows) if isinstance(rows, list) else False
