"""Local OpenSearch, Elasticsearch and Redis for the demo and the tests, without Docker.

The machines this project runs on (and many CI runners) have no Docker engine. Both search
engines publish plain zip distributions as Maven artifacts, so devstack fetches those with Maven,
unpacks them once into a cache outside git, and starts single-node clusters on 127.0.0.1, each run
in its own directory. Redis comes from the system package. Start-up either succeeds or raises
``EngineStartError`` with the engine's own log lines, within a deadline.

The demo, the tests and the benchmarks start everything through one context manager:

    from devstack import local_stack
    with local_stack(run_dir, engines=("opensearch",)) as stack:
        settings = stack.settings(index_prefix="demo")
        stack.start_worker(settings, "demo")
        ...  # talk to stack.engines["opensearch"].url

Or from a shell: ``python -m devstack up`` / ``status`` / ``down`` / ``install``.
"""
from devstack.engines import ENGINES, Cluster, opensearch_has_plugin, start_opensearch_cluster, start_search_engine
from devstack.errors import EngineStartError
from devstack.install import install_elasticsearch, install_opensearch
from devstack.process import Service, free_port
from devstack.redis import start_redis
from devstack.stack import LocalStack, local_stack
from devstack.worker import WorkerProcess

__all__ = [
    "Cluster",
    "ENGINES",
    "EngineStartError",
    "LocalStack",
    "Service",
    "WorkerProcess",
    "free_port",
    "install_elasticsearch",
    "install_opensearch",
    "local_stack",
    "opensearch_has_plugin",
    "start_opensearch_cluster",
    "start_search_engine",
    "start_redis",
]
