"""The system is built in one place, from one Settings, and nothing reads the environment at import."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from settings import Settings
from system import System

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("acebert", "devstack", "engines", "es_mappings", "indexer", "query_rewriter", "service",
                    "workers")
# Celery's command line finds an app only as a module attribute: the worker entry point is the one
# module allowed to build the system from the environment when imported.
ENTRY_POINTS = {Path("workers/main.py")}
ENV_READS = ("environ", "getenv", "from_env")


def _module_level_env_reads(path: Path) -> list[int]:
    """Lines of ``path`` that touch the environment outside any function or class body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in ENV_READS:
                lines.append(node.lineno)
    return lines


def test_no_product_module_reads_the_environment_at_import():
    offenders = {}
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative not in ENTRY_POINTS and (lines := _module_level_env_reads(path)):
                offenders[str(relative)] = lines
    for module in ("settings.py", "system.py"):
        if lines := _module_level_env_reads(ROOT / module):
            offenders[module] = lines
    assert offenders == {}


def test_the_check_sees_a_module_level_read(tmp_path: Path):
    module = tmp_path / "bad.py"
    module.write_text("import os\nURL = os.environ.get('X', '')\n\ndef fine():\n    return os.environ['Y']\n")
    assert _module_level_env_reads(module) == [2]


def test_a_producer_process_does_not_import_the_task_module_or_a_model():
    code = ("import sys; import system, service.http, workers.producer; "
            "print(sorted(m for m in ('workers.tasks', 'workers.main', 'torch', 'sentence_transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    # system imports workers.tasks to register the drain task on a worker's app, not torch.
    assert out.stdout.strip() == "['workers.tasks']"


def test_the_system_takes_every_part_from_its_settings():
    settings = Settings(engine="elasticsearch", engine_url="http://127.0.0.1:1", redis_url="redis://127.0.0.1:2/3",
                        index_prefix="shop", queue_prefix="q", batch_size=7, ingest_max_retries=2,
                        ingest_task_time_limit_s=60, ingest_visibility_timeout_s=30, index_vectors="int8")
    system = System(settings)
    assert system.layout.vectors == "int8" and system.layout.quantized
    assert system.engine.kind == "elasticsearch" and system.engine.urls == ["http://127.0.0.1:1"]
    assert (system.names.read_alias, system.names.write_alias) == ("shop", "shop-write")
    assert system.queue.prefix == "q" and system.queue.pending_key == "q:events:pending"
    conf = system.celery.conf
    assert conf.broker_url == "redis://127.0.0.1:2/3" and conf.task_default_queue == "q.drain"
    assert conf.task_time_limit == 60 and conf.broker_transport_options["visibility_timeout"] == 30
    assert system.producer.batch_size == 7 and system.producer.celery is system.celery
    drain = system.worker_app().tasks["workers.drain"]
    assert drain.max_retries == 2
    system.close()


def test_two_systems_do_not_share_a_celery_app():
    first = System(Settings(redis_url="redis://127.0.0.1:1/0", queue_prefix="a"))
    second = System(Settings(redis_url="redis://127.0.0.1:2/0", queue_prefix="b"))
    assert first.celery is not second.celery
    assert first.celery.conf.broker_url != second.celery.conf.broker_url


def test_cli_options_override_the_environment_for_one_call(monkeypatch):
    from service.cli import _system, build_parser

    monkeypatch.setenv("INDEX_SHARDS", "3")
    monkeypatch.setenv("INDEX_REPLICAS", "2")
    args = build_parser().parse_args(["--replicas", "1", "--refresh-interval", "30s", "init"])
    layout = _system(args).layout
    assert (layout.shards, layout.replicas, layout.refresh_interval) == (3, 1, "30s")


def test_the_settings_model_is_loaded_once_whoever_asks_first():
    """A worker asks ``models`` (its write index's model) before ``ensure_index`` asks ``encoder``:
    both must get the one model in memory, not a copy each."""
    system = System(Settings(query_cache_size=0))
    through_index = system.models.encoder("minilm")
    assert through_index is system.encoder
