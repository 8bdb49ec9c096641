"""docker-compose.yml cannot run here (no Docker engine); this checks what can be checked."""
from pathlib import Path

import pytest
import yaml

import os
import shutil
import subprocess
from dataclasses import fields

from es_mappings import HnswGraph
from settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_ports_and_health_checks():
    services = COMPOSE["services"]
    assert {"opensearch", "redis", "worker", "api"} <= set(services)
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
    for name in ("worker", "api"):
        assert services[name]["depends_on"]["opensearch"]["condition"] == "service_healthy"


def test_app_environment_uses_the_names_the_code_reads():
    env = COMPOSE["services"]["worker"]["environment"]
    assert set(env) == set(ENV_NAMES)
    assert COMPOSE["services"]["api"]["environment"] == env
    assert env["SEARCH_URL"] == "http://opensearch:9200" and env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")


def test_settings_read_every_declared_name(monkeypatch):
    values = {"SEARCH_ENGINE": "elasticsearch", "SEARCH_URL": "http://es:9200", "REDIS_URL": "redis://r:1/0",
              "INDEX_PREFIX": "shop", "ACEBERT_ENCODER": "/ckpt", "PRODUCT_IMAGE_ROOT": "/img",
              "INGEST_BATCH_SIZE": "7", "QUEUE_PREFIX": "q", "QUERY_CACHE_SIZE": "0",
              "KNN_CANDIDATES": "500", "INDEX_VECTORS": "int8",
              "INDEX_HNSW": "48:512",
              "INDEX_SHARDS": "3", "INDEX_REPLICAS": "1", "INDEX_REFRESH_INTERVAL": "30s",
              "ACEBERT_ENCODER_THREADS": "1", "INGEST_MAX_RETRIES": "2", "INGEST_TASK_TIME_LIMIT": "60",
              "INGEST_VISIBILITY_TIMEOUT": "30", "API_KEY": "k"}
    assert set(values) == set(ENV_NAMES)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    s = Settings.from_env()
    assert (s.engine, s.engine_url, s.redis_url, s.index_prefix, s.encoder, str(s.image_root), s.batch_size,
            s.queue_prefix, s.query_cache_size, s.knn_candidates, s.index_shards, s.index_replicas, s.index_refresh_interval,
            s.encoder_threads, s.ingest_max_retries, s.ingest_task_time_limit_s,
            s.ingest_visibility_timeout_s, s.api_key, s.index_vectors, s.index_hnsw) == (
        "elasticsearch", "http://es:9200", "redis://r:1/0", "shop", "/ckpt", "/img", 7, "q", 0, 500, 3, 1, "30s", 1, 2,
        60, 30, "k", "int8", HnswGraph(48, 512))
    assert Settings.from_env().to_env() == values


def test_every_setting_has_one_environment_name():
    assert len(ENV_NAMES) == len({f.name for f in fields(Settings)})
    assert Settings.from_env({}) == Settings()  # nothing set: the defaults, read from no other place


def test_constructing_settings_reads_no_environment(monkeypatch):
    monkeypatch.setenv("SEARCH_ENGINE", "elasticsearch")
    assert Settings().engine == "opensearch"
    assert Settings.from_env().engine == "elasticsearch"


def test_a_bad_number_names_the_variable():
    with pytest.raises(ValueError, match="INGEST_BATCH_SIZE"):
        Settings.from_env({"INGEST_BATCH_SIZE": "lots"})


def test_compose_builds_from_the_locked_stack():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG REQUIREMENTS=requirements.lock" in dockerfile and "-r ${REQUIREMENTS}" in dockerfile


def test_the_api_and_workers_run_the_slim_image_on_an_onnx_export():
    services = COMPOSE["services"]
    for name in ("api", "worker"):
        assert services[name]["build"]["args"] == {"REQUIREMENTS": "requirements-serving.lock"}, name
        assert services[name]["environment"]["ACEBERT_ENCODER"].startswith("onnx-int8:/models/")
        assert services[name]["volumes"] == ["${ACEBERT_MODELS:-./models}:/models:ro"]
    train = services["train"]
    assert train["profiles"] == ["train"] and "build" in train and "args" not in train["build"]  # the full set
    output = train["command"][train["command"].index("--output") + 1]
    assert services["api"]["environment"]["ACEBERT_ENCODER"] == f"onnx-int8:{output}"


def test_the_build_context_leaves_the_local_environments_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".venv-serving", "models", ".env"} <= set(ignored)


def _published(service: dict) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_nothing_is_published_beyond_loopback_and_no_engine_or_redis_at_all():
    for name, service in COMPOSE["services"].items():
        for port in _published(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
            assert port.rsplit(":", 1)[-1] not in ("9200", "6379"), f"{name} publishes {port}"
    assert "ports" not in COMPOSE["services"]["opensearch"] and "ports" not in COMPOSE["services"]["redis"]


def test_redis_requires_a_password_and_the_api_a_key_from_the_environment():
    redis = COMPOSE["services"]["redis"]
    assert "--requirepass" in redis["command"]
    env = COMPOSE["services"]["api"]["environment"]
    for secret, where in (("REDIS_PASSWORD", env["REDIS_URL"]), ("API_KEY", env["API_KEY"])):
        assert f"${{{secret}:?" in where, f"{secret} must come from the environment and be required"
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text  # no secret value in git, only in the ignored .env


def test_secrets_file_is_ignored_by_git_and_has_an_example():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    assert "REDIS_PASSWORD=" in example and "API_KEY=" in example


def test_the_image_runs_as_a_non_root_user():
    users = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian package) not installed")
def test_docker_compose_accepts_the_file():
    env = {**os.environ, "REDIS_PASSWORD": "p", "API_KEY": "k"}
    result = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                             env={k: v for k, v in env.items() if k != "API_KEY"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "API_KEY" in missing.stderr


def test_a_relative_image_root_travels_to_another_process_absolute(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    env = Settings(image_root=Path("shop")).to_env()
    assert env["PRODUCT_IMAGE_ROOT"] == str(tmp_path / "shop")  # a worker started elsewhere finds the same directory
