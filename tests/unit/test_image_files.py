"""Hostile and broken image paths are refused with ImageError, and say nothing outside the root."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from acebert.images import ImageError
from indexer.documents import encoder_input
from indexer.events import ProductUpsert
from indexer.image_files import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, image_path, read_image



def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    (root / "ok.jpg").write_bytes(_jpeg())
    (root / "truncated.jpg").write_bytes(_jpeg()[:200])
    (tmp_path / "secret.jpg").write_bytes(_jpeg())  # a real picture, but outside the root
    (root / "link-out.jpg").symlink_to(tmp_path / "secret.jpg")
    return root


def _upsert(image: str) -> ProductUpsert:
    return ProductUpsert(type="upsert", product_id="p1", version=1, title="Red shirt", image=image)


def test_a_picture_inside_the_root_is_read(root: Path):
    assert encoder_input(_upsert("ok.jpg"), root).image == _jpeg()
    assert encoder_input(_upsert(str(root / "ok.jpg")), root).image == _jpeg()  # absolute, but inside


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "/etc/passwd", "/dev/zero", "../secret.jpg",
                                     "link-out.jpg", "/no/such/file.jpg"])
def test_paths_out_of_the_root_are_refused_without_saying_whether_they_exist(root: Path, hostile: str):
    with pytest.raises(ImageError) as error:
        image_path(hostile, root)
    assert "outside the image root" in str(error.value)
    assert "No such file" not in str(error.value) and "decodable" not in str(error.value)


def test_a_device_or_directory_inside_the_root_is_not_a_regular_file(root: Path):
    (root / "sub").mkdir()
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(image_path("sub", root))


def test_a_missing_file_inside_the_root_is_named(root: Path):
    with pytest.raises(ImageError, match="cannot read image 'gone.jpg'"):
        read_image(image_path("gone.jpg", root))


def test_a_truncated_jpeg_is_refused(root: Path):
    with pytest.raises(ImageError, match="not a decodable picture"):
        read_image(image_path("truncated.jpg", root))


def test_a_decompression_bomb_is_refused_from_its_header(root: Path):
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1000  # just over the cap: about 50 megapixels with the margin
    Image.new("1", (side, side)).save(root / "huge.png")  # 1-bit, so the file stays small
    assert (root / "huge.png").stat().st_size < MAX_IMAGE_BYTES
    with pytest.raises(ImageError, match="pixels; the limit is"):
        read_image(image_path("huge.png", root))


def test_an_oversized_file_is_refused_before_it_is_read(root: Path):
    with open(root / "big.bin", "wb") as handle:
        handle.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no real disk use
    with pytest.raises(ImageError, match="bytes; the limit is"):
        read_image(image_path("big.bin", root))
