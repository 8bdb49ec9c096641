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
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from devstack.config import SINGLE_NODE, cluster_discovery, engine_settings, write_run_config
from devstack.errors import EngineStartError
from devstack.install import install_elasticsearch, install_opensearch
from devstack.java import find_java_home
from devstack.logtail import tail_lines
from devstack.privileges import as_engine_user
from devstack.process import (
    Service,
    free_port,
    group_members,
    is_alive,
    require_free_port,
    spawn,
    terminate,
    wait_until,
)

# Requests to the engines must never go through a proxy configured for the outside world.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
log = logging.getLogger(__name__)
# Both engines keep this much of a disk free by default (the flood-stage watermark, 95% used, with at most 20 GB of
# headroom): below it Elasticsearch schedules no merge (a force-merge waits without an error) and both engines make
# indices read-only.
GIB = 1024**3
FLOOD_STAGE_FREE_SHARE = 0.05
FLOOD_STAGE_MAX_HEADROOM = 20 * GIB


def low_disk_warning(path: Path, free: int, total: int) -> str | None:
    """What will stall an engine whose data is on a disk with ``free`` of ``total`` bytes, or None.

    It warns from twice the engines' headroom down, because an index build needs room of its own:
    the stall it prevents is silent (a bench run waited 10 minutes on a force-merge with 12 GB of
    a 252 GB disk free).
    """
    headroom = min(FLOOD_STAGE_FREE_SHARE * total, FLOOD_STAGE_MAX_HEADROOM)
    if free >= 2 * headroom:
        return None
    return (f"{free / GIB:.1f} GB free on the disk of {path} ({total / GIB:.0f} GB): OpenSearch and Elasticsearch stop "
            f"merging and make indices read-only below {headroom / GIB:.1f} GB free (their flood-stage watermark): "
            "free disk space before building indices")


def warn_if_low_disk(run_dirs: list[Path]) -> None:
    """Log :func:`low_disk_warning` once per disk that holds engine data.

    The nodes of a local cluster usually share one disk: one warning says it, three repeat it.
    """
    by_disk = {path.stat().st_dev: path for path in run_dirs}
    for path in by_disk.values():
        usage = shutil.disk_usage(path)
        if (warning := low_disk_warning(path, usage.free, usage.total)) is not None:
            log.warning(warning)


@dataclass(frozen=True)
class EngineKind:
    """What differs between OpenSearch and Elasticsearch when starting one."""

    name: str
    install: Callable[[], Path]
    env_prefix: str  # <prefix>_JAVA_HOME, <prefix>_PATH_CONF, <prefix>_TMPDIR
    settings_file: str
    extra_settings: dict
    # Each kind has its own default ports, so that ``python -m devstack up`` runs both side by side.
    http_port: int
    transport_port: int


OPENSEARCH = EngineKind("opensearch", install_opensearch, "OPENSEARCH", "opensearch.yml", {}, 9200, 9300)
# Security is on by default in Elasticsearch 9 (TLS + passwords); the test node is loopback-only.
ELASTICSEARCH = EngineKind(
    "elasticsearch", install_elasticsearch, "ES", "elasticsearch.yml",
    {"xpack.security.enabled": False}, 9201, 9301,
)


ENGINES: dict[str, EngineKind] = {kind.name: kind for kind in (OPENSEARCH, ELASTICSEARCH)}


def start_search_engine(
    name: str,
    run_dir: Path,
    http_port: int | None = None,
    transport_port: int | None = None,
    heap: str = "1g",
    timeout_s: float = 180,
) -> Service:
    """OpenSearch (with k-NN and neural-search) or Elasticsearch (integ-test build, security off).

    Data and logs go under ``run_dir``; ``name`` is a key of :data:`ENGINES`. The ports default to
    the kind's own: OpenSearch 9200/9300, Elasticsearch 9201/9301.
    """
    try:
        kind = ENGINES[name]
    except KeyError:
        raise EngineStartError(f"unknown engine {name!r}; devstack runs {sorted(ENGINES)}") from None
    return start_engine(kind, run_dir, http_port or kind.http_port, transport_port or kind.transport_port,
                        heap, timeout_s)


@dataclass(frozen=True)
class NodeSpec:
    """How to (re)start one engine node: everything but the process."""

    kind: EngineKind
    run_dir: Path
    http_port: int
    transport_port: int
    heap: str
    discovery: dict = field(default_factory=lambda: dict(SINGLE_NODE))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class _Launch:
    """A node whose JVM was launched but is not known healthy yet."""

    spec: NodeSpec
    launcher: subprocess.Popen
    pid_file: Path
    started: float

    def pids(self) -> list[int]:
        self.launcher.poll()  # reap the launcher once it has daemonized the engine
        pid = read_pid(self.pid_file)
        return group_members(self.launcher.pid) + ([pid] if pid is not None and is_alive(pid) else [])

    def abort(self) -> None:
        terminate(self.pids())
        self.launcher.wait()


def start_engine(
    kind: EngineKind, run_dir: Path, http_port: int, transport_port: int, heap: str, timeout_s: float
) -> Service:
    """Launch ``kind`` and wait until its cluster is yellow; see the module docstring."""
    return start_nodes([NodeSpec(kind, run_dir.resolve(), http_port, transport_port, heap)], timeout_s)[0]


def start_nodes(specs: list[NodeSpec], timeout_s: float) -> list[Service]:
    """Launch every node, then wait until each one answers yellow (a cluster forms only once all
    its initial cluster managers are up, so they cannot be started one after the other)."""
    launches: list[_Launch] = []
    try:
        for spec in specs:
            launches.append(_launch(spec))
        warn_if_low_disk([spec.run_dir for spec in specs])
        return [_await_healthy(launch, timeout_s) for launch in launches]
    except BaseException:  # a failed node or Ctrl-C: leave no detached engine behind
        for launch in launches:
            launch.abort()
        raise


def _launch(spec: NodeSpec) -> _Launch:
    kind, run_dir = spec.kind, spec.run_dir
    home = kind.install()
    java_home = find_java_home()
    for port in (spec.http_port, spec.transport_port):
        require_free_port(port)
    _prepare_run_dir(spec, home)
    pid_file = run_dir / f"{kind.name}.pid"
    pid_file.unlink(missing_ok=True)
    command = _launch_command(kind, home, java_home, run_dir, pid_file)
    launcher = spawn(as_engine_user(command, [home, run_dir]), run_dir / "console.log", cwd=home)
    return _Launch(spec, launcher, pid_file, time.monotonic())


def _await_healthy(launch: _Launch, timeout_s: float) -> Service:
    spec = launch.spec
    remaining = timeout_s - (time.monotonic() - launch.started)
    failure = wait_until(lambda: is_healthy(spec.url), lambda: not launch.pids(), remaining)
    pid = read_pid(launch.pid_file)
    if failure is None and pid is None:
        failure = f"{spec.url} answered, but {launch.pid_file} was not written"
    if failure is not None:
        raise EngineStartError(f"{spec.kind.name} did not start: {failure}\n{_log_report(spec.kind, spec.run_dir)}")
    return Service(spec.kind.name, spec.url, pid, spec.run_dir, time.monotonic() - launch.started,
                   _child=launch.launcher)


@dataclass
class Cluster:
    """A multi-node OpenSearch cluster on loopback, whose nodes a test can kill and bring back."""

    specs: list[NodeSpec]
    nodes: list[Service]

    @property
    def urls(self) -> list[str]:
        return [spec.url for spec in self.specs]

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``, as a crash or a lost machine would end it."""
        os.kill(self.nodes[index].pid, signal.SIGKILL)
        wait_until(lambda: not is_alive(self.nodes[index].pid), lambda: False, 30)

    def restart(self, index: int, timeout_s: float = 180) -> Service:
        """Start node ``index`` again on its ports and data directory; it rejoins the cluster."""
        self.nodes[index].stop()
        self.nodes[index] = start_nodes([self.specs[index]], timeout_s)[0]
        return self.nodes[index]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_opensearch_cluster(run_dir: Path, nodes: int = 2, heap: str = "1g", timeout_s: float = 240) -> Cluster:
    """``nodes`` OpenSearch nodes on 127.0.0.1 that discover each other, each under ``run_dir/node-<i>``.

    ``node-1`` is the cluster manager and the others are data nodes (see
    :func:`devstack.config.cluster_discovery`): a test may kill any node but the first. OpenSearch only: the multi-node behaviour under test (replicas, failover) is the engine's
    own, and one cluster per test run keeps the suite inside its time budget.
    """
    run_dir = run_dir.resolve()
    http_ports = [free_port() for _ in range(nodes)]
    transport_ports = [free_port() for _ in range(nodes)]
    cluster_name = f"acebert-{run_dir.name}"
    specs = [
        NodeSpec(OPENSEARCH, run_dir / f"node-{i}", http_ports[i - 1], transport_ports[i - 1], heap,
                 cluster_discovery(cluster_name, f"node-{i}", transport_ports))
        for i in range(1, nodes + 1)
    ]
    return Cluster(specs, start_nodes(specs, timeout_s))


def _prepare_run_dir(spec: NodeSpec, home: Path) -> None:
    """data/, logs/, tmp/ and a fresh config/ for this run (existing data is kept)."""
    run_dir = spec.run_dir
    for sub in ("data", "logs", "tmp"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    settings = {
        **engine_settings(spec.http_port, spec.transport_port, run_dir / "data", run_dir / "logs", spec.discovery),
        **spec.kind.extra_settings,
    }
    write_run_config(home / "config", run_dir / "config", spec.kind.settings_file, settings, spec.heap)


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
