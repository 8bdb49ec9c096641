#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine: Redis, uv, and the pinned
# Python stack (requirements.lock) into .venv, with uv's cache kept outside the repo so a second
# install takes seconds (torch alone is 3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian package)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; fi
fi

# Headless Chromium and its driver, for the search page's browser test (Debian packages).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "installing chromium and chromium-driver (Debian packages)"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi
fi

if ! command -v uv >/dev/null; then
  python3 -m pip install -q --disable-pip-version-check uv
fi
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/acebert-search/uv}"
# Compile every installed module to bytecode once, here. Where PYTHONDONTWRITEBYTECODE is set (as on the
# project's VMs), Python otherwise compiles torch, transformers and sentence-transformers from source in every
# process: 26 s to import torch and sentence-transformers on the 2-core AMD VM, 11 s compiled (docs/performance.md).
export UV_COMPILE_BYTECODE=1
[ -x .venv/bin/python ] || uv venv -q --python "${PYTHON:-python3}" .venv
uv pip install -q --python .venv/bin/python -r requirements.lock
uv pip install -q --python .venv/bin/python --no-deps -e .
echo "installed: $(.venv/bin/python --version), $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
# The serving set (requirements-serving.lock): the API and workers on an ONNX export, without
# torch. The tests check it imports every serving module and encodes with no torch installed.
[ -x .venv-serving/bin/python ] || uv venv -q --python "${PYTHON:-python3}" .venv-serving
uv pip install -q --python .venv-serving/bin/python -r requirements-serving.lock
uv pip install -q --python .venv-serving/bin/python --no-deps -e .
echo "installed the serving set in .venv-serving ($(du -sh .venv-serving | cut -f1); the full .venv is $(du -sh .venv | cut -f1))"
