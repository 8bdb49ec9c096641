"""The search page at ``/`` and the product photos it shows, from ``/images/...``.

A photo is served only from under the image root, and only when it is a regular file that
decodes as a picture: a path out of the root (``..``, an absolute path, a symlink out) is a 404
that never carries the file. Like test_http_auth, these run in-process against a system whose
engine and Redis do not exist.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.http import STATIC_DIR, create_app
from settings import Settings
from system import System

NOWHERE = {"engine_url": "http://127.0.0.1:9", "redis_url": "redis://127.0.0.1:9/0"}


def jpeg(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, "JPEG")
    return out.getvalue()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` with pictures in it, and a picture and a secret next to it (outside the root)."""
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "images" / "1.jpg").write_bytes(jpeg())
    (root / "images" / "2.png").write_bytes(png())
    (root / "images" / "notes.txt").write_text("not a picture")
    (tmp_path / "outside.jpg").write_bytes(jpeg("green"))
    (tmp_path / "secret.txt").write_text("s3cret")
    os.symlink(tmp_path / "outside.jpg", root / "images" / "link-out.jpg")
    os.symlink(root / "images" / "1.jpg", root / "images" / "link-in.jpg")
    os.mkfifo(root / "images" / "fifo.jpg")
    return tmp_path


@pytest.fixture
def client(tree: Path) -> TestClient:
    return TestClient(create_app(System(Settings(image_root=tree / "root", **NOWHERE))),
                      raise_server_exceptions=False)


def test_the_page_is_served_at_the_root(client: TestClient):
    answer = client.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert 'id="search"' in answer.text and "/static/search.js" in answer.text
    for name, kind in (("search.js", "javascript"), ("search.css", "text/css")):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]


def test_the_page_never_puts_hit_data_into_inner_html():
    lines = (STATIC_DIR / "search.js").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_the_page_needs_no_key_and_is_not_in_the_api_schema(client: TestClient):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert "security" not in paths["/images/{image}"]["get"]


@pytest.mark.parametrize("path, media_type", [("images/1.jpg", "image/jpeg"), ("images/2.png", "image/png"),
                                               ("images/link-in.jpg", "image/jpeg"),
                                               ("images%2Fsub%2F..%2F1.jpg", "image/jpeg")])
def test_a_picture_under_the_root_is_served(client: TestClient, tree: Path, path: str, media_type: str):
    answer = client.get(f"/images/{path}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == media_type
    assert "max-age" in answer.headers["cache-control"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.content == (tree / "root" / "images" / Path(path.replace("%2F", "/")).name).read_bytes()


def test_an_absolute_path_inside_the_root_is_served(client: TestClient, tree: Path):
    answer = client.get(f"/images/{tree / 'root' / 'images' / '1.jpg'}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"


HOSTILE = [
    "..%2Foutside.jpg",                 # a picture next to the root
    "..%2Fsecret.txt",
    "..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "images%2F..%2F..%2Foutside.jpg",
    "%2Fetc%2Fpasswd",                  # absolute, outside the root
    "/etc/passwd",
    "{outside}",                        # absolute path of a picture outside the root
    "images/link-out.jpg",              # a symlink out of the root, to a real picture
    "images/notes.txt",                 # under the root, but not a picture
    "images/fifo.jpg",                  # not a regular file
    "images",                           # a directory
    "images/missing.jpg",
    "images/1.jpg%00.txt",              # a NUL byte
    "%2Fproc%2Fself%2Fenviron",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_anything_else_is_a_404_without_the_file(client: TestClient, tree: Path, path: str):
    path = path.format(outside=tree / "outside.jpg")
    answer = client.get(f"/images/{path}")
    # The handler's own 404 (not the router's): each hostile path did reach the checks.
    assert answer.status_code == 404 and answer.json() == {"detail": "no such image"}, answer.text
    for secret in (b"s3cret", b"root:", (tree / "outside.jpg").read_bytes()[:64]):
        assert secret not in answer.content
    assert str(tree) not in answer.text  # nothing about the file system either
