"""Per-run engine configuration, rendered as text.

Every run gets its own copy of the install's ``config/`` directory (pointed to by
``OPENSEARCH_PATH_CONF`` / ``ES_PATH_CONF``), with devstack's settings appended, so two runs of
one install never share config, data or logs, and the shared install is never edited. The
functions here only build text and copy files; they start nothing, so unit tests cover them.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Mapping

Settings = Mapping[str, "str | int | bool | list[str]"]


SINGLE_NODE = {"discovery.type": "single-node"}


def cluster_discovery(cluster_name: str, node_name: str, transport_ports: list[int]) -> dict:
    """Discovery settings of one node of a multi-node OpenSearch cluster on loopback.

    Every node lists every node's transport port as a seed, so a node that restarts finds the
    others again. ``node-1`` is the one cluster manager; the others hold data only. With two
    manager-eligible nodes a cluster cannot elect a manager once either is lost (a quorum of
    two is both), so a small test cluster that must survive a lost node has exactly one manager
    and loses data nodes; production clusters use three manager-eligible nodes (docs/scaling.md).
    """
    settings = {
        "cluster.name": cluster_name,
        "node.name": node_name,
        "discovery.seed_hosts": [f"127.0.0.1:{port}" for port in transport_ports],
        "cluster.initial_cluster_manager_nodes": ["node-1"],
    }
    if node_name != "node-1":
        settings["node.roles"] = ["data", "ingest"]
    return settings


def engine_settings(
    http_port: int, transport_port: int, data_dir: Path, logs_dir: Path, discovery: Settings = SINGLE_NODE
) -> dict:
    """Settings both engines need for a private cluster on loopback (single-node by default).

    Disk thresholds are off because a nearly full developer disk would otherwise make every
    index read-only; binding to 127.0.0.1 keeps the bootstrap checks (file descriptors,
    vm.max_map_count) as warnings instead of fatal errors.
    """
    return {
        **discovery,
        "network.host": "127.0.0.1",
        "http.port": http_port,
        "transport.port": transport_port,
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
    }


def render_settings(settings: Settings) -> str:
    """YAML lines, one flat dotted key each; strings and lists are JSON, which YAML reads as is."""
    lines = ["", "# --- added by devstack for this run ---"]
    for key, value in settings.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int):
            rendered = str(value)
        else:
            rendered = json.dumps(value)
        lines.append(f"{key}: {rendered}")
    return "\n".join(lines) + "\n"


def heap_options(heap: str) -> str:
    """A ``jvm.options.d`` file fixing the heap, e.g. ``"1g"`` -> ``-Xms1g`` and ``-Xmx1g``."""
    if not re.fullmatch(r"[1-9][0-9]*[kKmMgG]", heap):
        raise ValueError(f"heap must look like 512m or 1g, not {heap!r}")
    return f"-Xms{heap}\n-Xmx{heap}\n"


def relocate_jvm_options(text: str, data_dir: Path, logs_dir: Path) -> str:
    """Make the JVM's relative GC log, crash log and heap dump paths absolute, in the run directory.

    OpenSearch runs from the install's home, so its stock ``logs/gc.log`` and ``HeapDumpPath=data``
    would land in the shared install. Elasticsearch 9 runs its server inside ``path.logs``, but
    its launcher first probes the options with a JVM working in a scratch directory, where a
    relative ``gc.log`` would be written and left.
    """
    text = re.sub(r"(?<=[=:])(?:logs/)?(?=gc\.log|hs_err_pid)", f"{logs_dir}/", text)
    return re.sub(r"HeapDumpPath=data$", f"HeapDumpPath={data_dir}", text, flags=re.MULTILINE)


def write_run_config(
    install_config: Path,
    run_config: Path,
    settings_file: str,
    settings: Settings,
    heap: str,
) -> None:
    """Replace ``run_config`` by a fresh copy of ``install_config`` with this run's settings."""
    if run_config.exists():
        shutil.rmtree(run_config)
    shutil.copytree(install_config, run_config)
    data_dir, logs_dir = Path(str(settings["path.data"])), Path(str(settings["path.logs"]))
    jvm_options = run_config / "jvm.options"
    jvm_options.write_text(relocate_jvm_options(jvm_options.read_text(), data_dir, logs_dir))
    (run_config / "jvm.options.d").mkdir(exist_ok=True)
    (run_config / "jvm.options.d" / "heap.options").write_text(heap_options(heap))
    with open(run_config / settings_file, "a") as handle:
        handle.write(render_settings(settings))
