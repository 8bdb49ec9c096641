"""The serving path imports no torch, the serving install set has none, and loading an encoder
needs neither the network nor ``HF_HUB_OFFLINE``.

A process that searches or ingests through an ONNX export must not pay for importing torch
(seconds and hundreds of MB per process). Each check runs in a fresh interpreter, because this
test process has imported torch already; that interpreter runs without ``HF_HUB_OFFLINE`` and
with every network call refused, so loading is shown to stay offline by itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The serving install set (requirements-serving.lock), which scripts/install.sh puts here.
SERVING_PYTHON = REPO_ROOT / ".venv-serving" / "bin" / "python"
# The entry points of the API, the CLI and the workers, and the switch between models.
SERVING_ENTRY_POINTS = ("system", "service.http", "service.cli", "workers.main", "indexer.reembed",
                        "indexer.rollout")
# Modules the search and ingestion processes import to serve an ONNX export.
SERVING_MODULES = (
    "acebert.encoder",
    "acebert.loading",
    "acebert.onnx_encoder",
    "acebert.onnx_layout",
    "acebert.checkpoint_layout",
    "acebert.features",
    "acebert.images",
    "indexer.pipeline",
    "query_rewriter.search",
)
# Runs before each check: any attempt to reach the network fails there and is remembered.
_REFUSE_NETWORK = """
import socket, sys
_network = []
def _refuse(*args, **kwargs):
    _network.append(args)
    raise OSError("network use in an offline check")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = _refuse
"""
ASSERT_NO_TORCH = "assert 'torch' not in sys.modules, 'torch was imported'\n"


def run_offline(code: str, python: Path | str = sys.executable) -> str:
    """Run ``code`` in a fresh ``python`` at the repository root, offline; returns its stdout.

    Fails the test when the code fails or tried to use the network.
    """
    assert Path(python).exists(), f"{python} is missing: run scripts/install.sh"
    env = {name: value for name, value in os.environ.items() if name != "HF_HUB_OFFLINE"}
    script = _REFUSE_NETWORK + code + "\nassert not _network, f'network use: {_network}'\n"
    result = subprocess.run(
        [str(python), "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_serving_modules_import_without_torch() -> None:
    run_offline(f"import {', '.join(SERVING_MODULES)}\n" + ASSERT_NO_TORCH)


def test_the_serving_install_set_has_no_torch_and_runs_every_entry_point() -> None:
    run_offline(
        "import importlib.util\n"
        "assert importlib.util.find_spec('torch') is None, 'torch is installed in the serving set'\n"
        f"import {', '.join(SERVING_MODULES + SERVING_ENTRY_POINTS)}\n",
        python=SERVING_PYTHON,
    )


def test_minilm_loads_offline_without_hf_hub_offline() -> None:
    out = run_offline(
        "from acebert.loading import load_encoder\n"
        "encoder = load_encoder('minilm', threads=1)\n"
        "import torch\n"
        "assert torch.get_num_threads() == 1\n"
        "print(encoder.encode_queries(['red shirt']).shape)\n"
    )
    assert out.strip() == "(1, 384)"
