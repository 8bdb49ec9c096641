"""The files of an ACE-BERT checkpoint directory, and reading them without torch.

A checkpoint is written by :func:`acebert.checkpoint.save_checkpoint` (torch). Serving its ONNX
export needs only its config, its weights' version and its tokenizer, so reading those lives
here, in a module that imports neither torch nor transformers: the ONNX path stays torch-free.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

FORMAT = "acebert-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
BACKBONE_CONFIG = "backbone_config.json"
TOKENIZER = "tokenizer.json"  # written by the Hugging Face tokenizer's ``save_pretrained``


def read_config(directory: Path) -> dict[str, Any]:
    """The checkpoint's ``config.json``, checked for the expected format."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"not an ACE-BERT checkpoint (no {CONFIG}): {directory}")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: format {config.get('format')!r} is not {FORMAT!r}")
    return config


def weights_version(directory: Path) -> str:
    """``acebert-<12 hex of sha256(model.safetensors)>``: changes whenever the weights change."""
    digest = hashlib.sha256()
    with (Path(directory) / WEIGHTS).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"acebert-{digest.hexdigest()[:12]}"


def load_tokenizer(directory: Path) -> Tokenizer:
    """The tokenizer saved in ``directory`` (a checkpoint or the MiniLM backbone), read from its file.

    The ``tokenizers`` library reads it directly: loading it through ``transformers`` would
    import torch (transformers 5 does at import), which the ONNX serving path must not.
    """
    path = Path(directory) / TOKENIZER
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer ({TOKENIZER}) in {directory}")
    return Tokenizer.from_file(str(path))


def prepare_output(output: Path, overwrite: bool) -> None:
    """Refuse to mix a new model into an existing checkpoint directory unless asked to replace it.

    Why: a checkpoint's files are read together; a new model's weights beside an earlier model's
    ONNX export or blend would load as one model that nobody trained.
    """
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output} is not empty (an earlier model?); choose another --output or pass "
                                  "--overwrite to replace it")
        shutil.rmtree(output)
