"""Local OpenSearch, Elasticsearch and Redis for the demo and the tests, without Docker.

The machines this project runs on (and many CI runners) have no Docker engine. Both search
engines publish plain zip distributions as Maven artifacts, so devstack fetches those with Maven,
unpacks them once into a cache outside git, and starts single-node clusters on 127.0.0.1, each run
in its own directory. Redis comes from the system package. Start-up either succeeds or raises
``EngineStartError`` with the engine's own log lines, within a deadline.

    from devstack import start_opensearch
    service = start_opensearch(tmp_path / "os")
    ...  # talk to service.url
    service.stop()

Or from a shell: ``python -m devstack up`` / ``status`` / ``down`` / ``install``.
"""
from devstack.engines import opensearch_has_plugin, start_elasticsearch, start_opensearch
from devstack.errors import EngineStartError
from devstack.install import install_elasticsearch, install_opensearch
from devstack.process import Service
from devstack.redis import start_redis

__all__ = [
    "EngineStartError",
    "Service",
    "install_elasticsearch",
    "install_opensearch",
    "opensearch_has_plugin",
    "start_elasticsearch",
    "start_opensearch",
    "start_redis",
]
