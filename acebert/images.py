"""Decoding product images into fixed-size RGB arrays.

Images reach the encoder as raw bytes (events) or file paths (bulk loads). Any of them may be
corrupt, truncated, in an unsupported format or missing; all of these raise :class:`ImageError`,
one typed error that the ingestion worker catches to park the event, rather than a zoo of
Pillow/OS exceptions.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageError(ValueError):
    """An image that cannot be used: missing file, unreadable or corrupt data, bad format."""


def _describe(source: bytes | str | Path) -> str:
    return f"{len(source)} bytes" if isinstance(source, bytes) else f"file {str(source)!r}"


def load_image(source: bytes | str | Path, size: tuple[int, int]) -> np.ndarray:
    """Decode ``source`` to an RGB ``uint8`` array of shape ``(height, width, 3)``.

    ``size`` is ``(height, width)``. Greyscale, palette and alpha images are converted to RGB
    (alpha dropped) so every product looks the same to the image tokens.
    """
    height, width = size
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"image not found: {path}")
        stream: Path | io.BytesIO = path
    elif isinstance(source, bytes):
        if not source:
            raise ImageError("image is empty (0 bytes)")
        stream = io.BytesIO(source)
    else:
        raise ImageError(f"unsupported image source type {type(source).__name__}; use bytes or a path")
    try:
        with Image.open(stream) as image:
            image.load()  # forces full decoding: truncated data fails here, not later
            rgb = image.convert("RGB")
    except UnidentifiedImageError as error:
        raise ImageError(f"not a recognised image format ({_describe(source)})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"corrupt or unreadable image ({_describe(source)}): {error}") from error
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    return np.array(rgb, dtype=np.uint8)  # a writable copy: torch.from_numpy needs one
