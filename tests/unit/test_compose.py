"""docker-compose.yml cannot run here (no Docker engine); this checks what can be checked."""
from pathlib import Path

import yaml

from settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_ports_and_health_checks():
    services = COMPOSE["services"]
    assert {"opensearch", "redis", "worker", "api"} <= set(services)
    assert "9200:9200" in services["opensearch"]["ports"] and "8000:8000" in services["api"]["ports"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    for name in ("worker", "api"):
        assert services[name]["depends_on"]["opensearch"]["condition"] == "service_healthy"


def test_app_environment_uses_the_names_the_code_reads():
    env = COMPOSE["services"]["worker"]["environment"]
    assert set(env) == set(ENV_NAMES)
    assert COMPOSE["services"]["api"]["environment"] == env
    assert env["SEARCH_URL"] == "http://opensearch:9200" and env["REDIS_URL"].startswith("redis://redis:")


def test_settings_read_every_declared_name(monkeypatch):
    values = {"SEARCH_ENGINE": "elasticsearch", "SEARCH_URL": "http://es:9200", "REDIS_URL": "redis://r:1/0",
              "INDEX_PREFIX": "shop", "ACEBERT_ENCODER": "/ckpt", "PRODUCT_IMAGE_ROOT": "/img",
              "INGEST_BATCH_SIZE": "7", "QUEUE_PREFIX": "q", "QUERY_CACHE_SIZE": "0"}
    assert set(values) == set(ENV_NAMES)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    s = Settings.from_env()
    assert (s.engine, s.engine_url, s.redis_url, s.index_prefix, s.encoder, str(s.image_root), s.batch_size,
            s.queue_prefix, s.query_cache_size) == ("elasticsearch", "http://es:9200", "redis://r:1/0", "shop", "/ckpt",
                                                    "/img", 7, "q", 0)
    assert Settings.from_env().to_env() == values


def test_compose_builds_from_the_locked_stack():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile
