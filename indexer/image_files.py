"""Reading an event's image file safely: only under the image root, only a sane picture.

An event's ``image`` is producer input. Without these checks a producer could make a worker read
any file it can reach (``/etc/passwd``, ``/dev/zero``, a symlink out of the root), and the dead
letter's error would tell the caller whether that file exists. Every refusal here raises the one
typed :class:`~acebert.images.ImageError`, which parks that event alone, with an error that says
what to fix and nothing about the worker's file system outside the root.
"""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from acebert.images import ImageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Product photos are a few megapixels; 40 MP leaves room for a 7000 x 5000 original and stops
# decompression bombs (a small PNG that decodes to gigabytes) long before Pillow's own limit.
MAX_IMAGE_PIXELS = 40_000_000


def image_path(image: str, image_root: Path) -> Path:
    """``image`` resolved against ``image_root``; refused unless it stays inside the root.

    Symlinks are followed before the check, so a link that points out of the root is refused
    like ``../`` or an absolute path elsewhere. Whether the outside target exists is not said.
    """
    root = image_root.resolve()
    path = (root / image).resolve()  # an absolute ``image`` replaces root: checked below
    if not path.is_relative_to(root):
        raise ImageError(f"image path {image!r} is outside the image root (PRODUCT_IMAGE_ROOT); "
                         "send a path relative to it")
    return path


def read_image(path: Path) -> bytes:
    """The bytes of a regular file under the size cap that decodes to an allowed picture."""
    data = read_image_bytes(path)
    check_picture(data, path.name)
    return data


def read_image_bytes(path: Path) -> bytes:
    """The bytes of a regular file under the size cap, not yet decoded.

    The write path decodes a picture (:func:`check_picture`) only when the product tower will read
    it: bytes whose digest matches the stored document's were checked when they were first encoded.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ImageError(f"cannot read image {path.name!r}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"image {path.name!r} is not a regular file")
    if info.st_size > MAX_IMAGE_BYTES:
        raise ImageError(f"image {path.name!r} is {info.st_size} bytes; the limit is {MAX_IMAGE_BYTES}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image {path.name!r}: {exc.strerror or exc}") from exc
    return data


def check_picture(data: bytes, name: str) -> None:
    """Refuse data that is not a picture, is truncated, or decodes to too many pixels.

    The pixel count is read from the header before anything is decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(f"image {name!r} is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS}")
            image.load()  # a full decode: truncated data fails here, not in the encoder
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image {name!r} decodes to too many pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"image {name!r} is not a decodable picture") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image {name!r} is not a decodable picture: {exc}") from exc
