"""Unit tests for devstack's pure parts: no download, no engine, nothing beyond loopback."""
from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from devstack import EngineStartError, Service, opensearch_has_plugin
from devstack.cli import _service_list, read_state, write_state
from devstack.config import (
    engine_settings,
    heap_options,
    relocate_jvm_options,
    render_settings,
    write_run_config,
)
from devstack.engines import (
    FLOOD_STAGE_FREE_SHARE,
    FLOOD_STAGE_MAX_HEADROOM,
    GIB,
    cluster_health,
    low_disk_warning,
    warn_if_low_disk,
)
from devstack.install import Artifact, unzip
from devstack.java import find_java_home, java_major, parse_java_major
from devstack.logtail import tail_lines
from devstack.process import is_alive, require_free_port, spawn, terminate, wait_until
from devstack.redis import ping


# --- Java -----------------------------------------------------------------------------------

def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\nOS_NAME="Linux"\n')
    return home


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ('JAVA_VERSION="25.0.3"\n', 25),
        ('JAVA_VERSION="21"\n', 21),
        ('JAVA_VERSION="17.0.15"\nJAVA_RUNTIME_VERSION="17.0.15+6"\n', 17),
        ('JAVA_VERSION="1.8.0_292"\n', 8),
        ('JAVA_VERSION="22-ea"\n', 22),
        ('IMPLEMENTOR="x"\nJAVA_RUNTIME_VERSION="25.0.3+9-LTS"\n', None),
        ("", None),
    ],
)
def test_parse_java_major(text: str, major: int | None) -> None:
    assert parse_java_major(text) == major


def test_java_major_reads_release_file(tmp_path: Path) -> None:
    assert java_major(_fake_jdk(tmp_path, "jdk", "21.0.2")) == 21
    assert java_major(tmp_path / "missing") is None


def test_find_java_home_prefers_newest_21_plus_in_jvm_root(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "java-17", "17.0.15")
    _fake_jdk(tmp_path, "temurin-21", "21.0.5")
    newest = _fake_jdk(tmp_path, "temurin-25", "25.0.3")
    assert find_java_home(env={}, jvm_root=tmp_path) == newest.resolve()


def test_find_java_home_skips_old_java_home_but_honours_a_new_one(tmp_path: Path) -> None:
    old = _fake_jdk(tmp_path / "elsewhere", "jdk17", "17.0.15")
    new = _fake_jdk(tmp_path / "elsewhere", "jdk22", "22.0.1")
    jvm_root = tmp_path / "jvm"
    only = _fake_jdk(jvm_root, "jdk21", "21.0.1")
    assert find_java_home(env={"JAVA_HOME": str(old)}, jvm_root=jvm_root) == only.resolve()
    assert find_java_home(env={"JAVA_HOME": str(new)}, jvm_root=jvm_root) == new


def test_find_java_home_explicit_override_must_be_21_plus(tmp_path: Path) -> None:
    good = _fake_jdk(tmp_path, "jdk21", "21.0.1")
    old = _fake_jdk(tmp_path, "jdk17", "17.0.15")
    assert find_java_home(env={"ACEBERT_JAVA_HOME": str(good)}, jvm_root=tmp_path / "none") == good
    with pytest.raises(EngineStartError, match="ACEBERT_JAVA_HOME"):
        find_java_home(env={"ACEBERT_JAVA_HOME": str(old)}, jvm_root=tmp_path)


def test_find_java_home_without_any_21_says_so(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "java-17", "17.0.15")
    with pytest.raises(EngineStartError, match="no Java 21"):
        find_java_home(env={}, jvm_root=tmp_path)


# --- config rendering -----------------------------------------------------------------------

def test_render_settings_is_flat_yaml_with_quoted_strings() -> None:
    text = render_settings(
        engine_settings(9250, 9350, Path("/runs/a b/data"), Path("/runs/a b/logs"))
        | {"xpack.security.enabled": False}
    )
    lines = text.strip().splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == [
        'discovery.type: "single-node"',
        'network.host: "127.0.0.1"',
        "http.port: 9250",
        "transport.port: 9350",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        'path.data: "/runs/a b/data"',
        'path.logs: "/runs/a b/logs"',
        "xpack.security.enabled: false",
    ]


def test_cluster_nodes_seed_each_other_and_only_node_1_manages() -> None:
    from devstack.config import cluster_discovery

    settings = engine_settings(9251, 9351, Path("/r/data"), Path("/r/logs"),
                               cluster_discovery("c1", "node-2", [9350, 9351]))
    assert "discovery.type" not in settings
    lines = render_settings(settings).strip().splitlines()[1:6]
    assert lines == [
        'cluster.name: "c1"',
        'node.name: "node-2"',
        'discovery.seed_hosts: ["127.0.0.1:9350", "127.0.0.1:9351"]',
        'cluster.initial_cluster_manager_nodes: ["node-1"]',
        'node.roles: ["data", "ingest"]',
    ]
    assert "node.roles" not in cluster_discovery("c1", "node-1", [9350, 9351])


def test_heap_options() -> None:
    assert heap_options("1g") == "-Xms1g\n-Xmx1g\n"
    assert heap_options("512m") == "-Xms512m\n-Xmx512m\n"
    for bad in ("1", "1gb", "-1g", "0g", "1g -Xss1m"):
        with pytest.raises(ValueError):
            heap_options(bad)


def test_relocate_jvm_options_makes_relative_paths_absolute() -> None:
    opensearch = (
        "-XX:HeapDumpPath=data\n"
        "-XX:ErrorFile=logs/hs_err_pid%p.log\n"
        "8:-Xloggc:logs/gc.log\n"
        "9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags:filecount=32\n"
        "21-:-javaagent:agent/opensearch-agent.jar\n"
    )
    assert relocate_jvm_options(opensearch, Path("/r/data"), Path("/r/logs")) == (
        "-XX:HeapDumpPath=/r/data\n"
        "-XX:ErrorFile=/r/logs/hs_err_pid%p.log\n"
        "8:-Xloggc:/r/logs/gc.log\n"
        "9-:-Xlog:gc*,gc+age=trace,safepoint:file=/r/logs/gc.log:utctime,pid,tags:filecount=32\n"
        "21-:-javaagent:agent/opensearch-agent.jar\n"
    )
    elasticsearch = "-XX:ErrorFile=hs_err_pid%p.log\n-Xlog:gc*:file=gc.log:utctime\n# -XX:HeapDumpPath=/heap/dump/path\n"
    assert relocate_jvm_options(elasticsearch, Path("/r/data"), Path("/r/logs")) == (
        "-XX:ErrorFile=/r/logs/hs_err_pid%p.log\n-Xlog:gc*:file=/r/logs/gc.log:utctime\n"
        "# -XX:HeapDumpPath=/heap/dump/path\n"
    )


def test_write_run_config_copies_and_replaces(tmp_path: Path) -> None:
    install = tmp_path / "install" / "config"
    (install / "jvm.options.d").mkdir(parents=True)
    (install / "opensearch.yml").write_text("# stock\n")
    (install / "jvm.options").write_text("-XX:ErrorFile=logs/hs_err_pid%p.log\n")
    run_config = tmp_path / "run" / "config"
    settings = engine_settings(9200, 9300, tmp_path / "run" / "data", tmp_path / "run" / "logs")
    for _ in range(2):  # a restart in the same run directory must not append twice
        write_run_config(install, run_config, "opensearch.yml", settings, "512m")
    yml = (run_config / "opensearch.yml").read_text()
    assert yml.startswith("# stock\n") and yml.count("http.port: 9200") == 1
    assert (run_config / "jvm.options.d" / "heap.options").read_text() == "-Xms512m\n-Xmx512m\n"
    assert str(tmp_path / "run" / "logs" / "hs_err") in (run_config / "jvm.options").read_text()
    assert (install / "opensearch.yml").read_text() == "# stock\n"  # the install is untouched


# --- logs, archives, Maven coordinates ------------------------------------------------------

def test_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = tail_lines(log)
    assert tail.splitlines() == [f"line {i}" for i in range(60, 100)]
    assert tail_lines(log, 2) == "line 98\nline 99\n"
    assert tail_lines(tmp_path / "missing.log") == ""
    log.write_bytes(b"ok\n\xff\xfe broken\n")
    assert tail_lines(log) == "ok\n\ufffd\ufffd broken\n"


def test_artifact_coordinates() -> None:
    knn = Artifact("org.opensearch.plugin", "opensearch-knn", "3.6.0.0")
    assert knn.coordinates == "org.opensearch.plugin:opensearch-knn:3.6.0.0:zip"
    assert knn.file_name == "opensearch-knn-3.6.0.0.zip"


def test_unzip_keeps_executable_bits(tmp_path: Path) -> None:
    archive = tmp_path / "engine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, mode in (("engine-1.0/bin/engine", 0o755), ("engine-1.0/config/a.yml", 0o644)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, "x")
    home = unzip(archive, tmp_path / "out")
    assert home == tmp_path / "out" / "engine-1.0"
    assert stat.S_IMODE((home / "bin" / "engine").stat().st_mode) == 0o755
    assert stat.S_IMODE((home / "config" / "a.yml").stat().st_mode) == 0o644


def test_unzip_rejects_several_top_directories(tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/x", "1")
        zf.writestr("b/y", "2")
    with pytest.raises(EngineStartError, match="one top directory"):
        unzip(archive, tmp_path / "out")


# --- processes ------------------------------------------------------------------------------

def _python(code: str, tmp_path: Path) -> subprocess.Popen:
    return spawn([sys.executable, "-c", code], tmp_path / "out.log", cwd=tmp_path)


def test_is_alive_counts_zombies_as_gone(tmp_path: Path) -> None:
    child = _python("pass", tmp_path)
    deadline = time.monotonic() + 10
    while is_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(child.pid)  # exited but not reaped yet: a zombie
    assert child.wait() == 0


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = _python(code, tmp_path)
    while "ready" not in (tmp_path / "out.log").read_text():
        time.sleep(0.05)
    started = time.monotonic()
    terminate([child.pid], grace_s=0.5)
    assert not is_alive(child.pid)
    assert child.wait() == -9
    assert time.monotonic() - started < 5


def test_service_stop_twice(tmp_path: Path) -> None:
    child = _python("import time; time.sleep(60)", tmp_path)
    service = Service("sleeper", "x://", child.pid, tmp_path, 0.0, _child=child)
    service.stop()
    assert child.returncode == -15
    service.stop()  # must neither raise nor signal a recycled pid


def test_low_disk_warning_starts_at_twice_the_engines_headroom() -> None:
    small, large = 100 * GIB, 1000 * GIB  # headroom: 5% of the small disk, the 20 GB cap on the large one
    small_headroom = FLOOD_STAGE_FREE_SHARE * small
    assert FLOOD_STAGE_MAX_HEADROOM == 20 * GIB and small_headroom < FLOOD_STAGE_MAX_HEADROOM < 0.05 * large
    assert low_disk_warning(Path("/data"), int(2 * small_headroom), small) is None
    assert low_disk_warning(Path("/data"), int(2 * small_headroom) - 1, small) is not None
    warning = low_disk_warning(Path("/data"), 9 * GIB, small)
    assert warning is not None and "9.0 GB free on the disk of /data (100 GB)" in warning and "below 5.0 GB" in warning
    assert low_disk_warning(Path("/data"), 2 * FLOOD_STAGE_MAX_HEADROOM, large) is None
    warning = low_disk_warning(Path("/data"), 2 * FLOOD_STAGE_MAX_HEADROOM - GIB, large)
    assert warning is not None and "below 20.0 GB" in warning and "free disk space" in warning


def test_the_low_disk_warning_is_logged_once_per_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Three nodes of a local cluster on one nearly full disk: one warning, not three."""
    from types import SimpleNamespace

    import devstack.engines

    nodes = [tmp_path / f"node-{number}" for number in range(3)]
    for node in nodes:
        node.mkdir()
    for free, expected in ((GIB, ["1.0 GB"]), (90 * GIB, [])):
        caplog.clear()
        usage = SimpleNamespace(total=100 * GIB, free=free)
        monkeypatch.setattr(devstack.engines.shutil, "disk_usage", lambda path: usage)
        with caplog.at_level("WARNING", logger=devstack.engines.log.name):
            warn_if_low_disk(nodes)
        assert [record.getMessage().split(" free")[0] for record in caplog.records] == expected


def test_wait_until_outcomes() -> None:
    assert wait_until(lambda: True, lambda: False, timeout_s=5) is None
    assert "exited" in (wait_until(lambda: False, lambda: True, timeout_s=5) or "")
    started = time.monotonic()
    assert "not ready after" in (wait_until(lambda: False, lambda: False, timeout_s=0.6) or "")
    assert time.monotonic() - started < 3


def test_require_free_port_and_ping() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(EngineStartError, match=f"port {port}"):
            require_free_port(port)
    require_free_port(port)
    assert ping(port) is False


# --- HTTP helpers against a tiny local server -----------------------------------------------

class _FakeEngine(BaseHTTPRequestHandler):
    answers = {
        "/_cat/plugins?format=json": [
            {"name": "n", "component": "opensearch-knn", "version": "3.6.0.0"},
            {"name": "n", "component": "opensearch-neural-search", "version": "3.6.0.0"},
        ],
        "/_cluster/health?wait_for_status=yellow&timeout=5s": {"status": "yellow", "timed_out": False},
    }

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.dumps(self.answers[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_engine_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_opensearch_has_plugin(fake_engine_url: str) -> None:
    assert opensearch_has_plugin(fake_engine_url, "opensearch-knn")
    assert opensearch_has_plugin(fake_engine_url, "opensearch-neural-search")
    assert not opensearch_has_plugin(fake_engine_url, "opensearch-ml")


def test_cluster_health(fake_engine_url: str) -> None:
    assert cluster_health(fake_engine_url) == "yellow"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    assert cluster_health(f"http://127.0.0.1:{closed_port}") is None


# --- CLI helpers ----------------------------------------------------------------------------

def test_service_list_parsing() -> None:
    assert _service_list("redis, opensearch") == ["redis", "opensearch"]
    with pytest.raises(Exception, match="unknown"):
        _service_list("opensearch,solr")


def test_state_round_trip(tmp_path: Path) -> None:
    services = [Service("redis", "redis://127.0.0.1:6379/0", 4242, tmp_path / "redis", 0.5)]
    write_state(tmp_path, services)
    assert read_state(tmp_path) == services
    assert read_state(tmp_path / "empty") == []


def test_each_engine_kind_has_its_own_default_ports_so_both_start_side_by_side():
    from devstack.engines import ENGINES

    ports = [port for kind in ENGINES.values() for port in (kind.http_port, kind.transport_port)]
    assert len(set(ports)) == 2 * len(ENGINES)
