"""Decoding product images into fixed-size RGB arrays.

Images reach the encoder as raw bytes (events) or file paths (bulk loads). Any of them may be
corrupt, truncated, in an unsupported format or missing; all of these raise :class:`ImageError`,
one typed error that the ingestion worker catches to park the event, rather than a zoo of
Pillow/OS exceptions.

JPEGs, nearly every catalogue photo, decode with simplejpeg: the same libjpeg-turbo as Pillow's,
called without Pillow's marker parsing in Python, which held the GIL for most of an image's time
and capped the featurizer that feeds a GPU tower (issue #14). It gives Pillow's pixels bit for bit
(every photo of the fashion catalogue; ``tests/unit/test_acebert.py`` checks the JPEG kinds).
Anything it declines (CMYK, a libjpeg warning, not a JPEG) goes to Pillow, which decides as before.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

JPEG_SIGNATURE = b"\xff\xd8\xff"
# Colourspaces whose RGB pixels libjpeg-turbo and Pillow compute alike; Pillow converts CMYK and YCCK its own way
FAST_COLOURSPACES = ("YCbCr", "Gray")


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
    data = _read(source)
    pixels = decode_jpeg(data)
    if pixels is None:
        pixels = decode_with_pillow(data, source)
    if pixels.shape[:2] != (height, width):
        resized = Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
        return np.array(resized, dtype=np.uint8)
    return pixels


def _read(source: bytes | str | Path) -> bytes:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"image not found: {path}")
        try:
            return path.read_bytes()
        except OSError as error:
            raise ImageError(f"unreadable image ({_describe(source)}): {error}") from error
    if isinstance(source, bytes):
        if not source:
            raise ImageError("image is empty (0 bytes)")
        return source
    raise ImageError(f"unsupported image source type {type(source).__name__}; use bytes or a path")


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """RGB ``uint8`` pixels of a YCbCr or greyscale JPEG that libjpeg-turbo decodes without a warning;
    None for anything else, which Pillow then decodes or refuses.

    Images over Pillow's decompression-bomb limit are left to Pillow, so that its limit still applies.
    """
    if not data.startswith(JPEG_SIGNATURE):
        return None
    try:
        height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
        too_large = bool(Image.MAX_IMAGE_PIXELS) and height * width > Image.MAX_IMAGE_PIXELS
        if colourspace not in FAST_COLOURSPACES or too_large:
            return None
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError:  # not decodable as it is (CMYK, truncated, corrupt): Pillow gives the verdict
        return None


def decode_with_pillow(data: bytes, source: bytes | str | Path) -> np.ndarray:
    """RGB ``uint8`` pixels of any format Pillow reads (alpha dropped, palettes and greyscale expanded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # forces full decoding: truncated data fails here, not later
            rgb = image.convert("RGB")
    except UnidentifiedImageError as error:
        raise ImageError(f"not a recognised image format ({_describe(source)})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"corrupt or unreadable image ({_describe(source)}): {error}") from error
    return np.array(rgb, dtype=np.uint8)  # a writable copy: torch.from_numpy needs one
