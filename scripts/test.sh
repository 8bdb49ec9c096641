#!/usr/bin/env bash
# Install everything, then run the whole test suite: unit tests, and integration tests against
# real OpenSearch, Elasticsearch, Redis and Celery workers that the suite starts once and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# docker-compose (Debian's 1.29) validates docker-compose.yml in a unit test; no Docker engine needed.
if ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq docker-compose >/dev/null 2>&1 || echo "docker-compose not installed: its test will skip"
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
# Download and unpack both engines up front (cached outside git) so that a slow download shows
# here, not as a fixture time-out.
.venv/bin/python -m devstack install
exec .venv/bin/python -m pytest -ra --durations=15 "$@"
