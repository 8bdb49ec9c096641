"""Download OpenSearch and Elasticsearch with Maven, unpack them and install plugins, once.

Both engines publish a plain-zip "integ-test" distribution (no bundled JDK) as Maven artifacts,
so Maven's own resolver fetches them: no hand-written download URLs, and Maven's local
repository doubles as the download cache. Each engine + version is unpacked once into
``<cache>/engines/<name>/``, the "install" directory that every run shares read-only (runs keep
their config, data and logs in their own directory, see ``devstack.engines``).

An install is built in a staging directory and renamed into place only when complete, so an
interrupted install is never mistaken for a good one; a file lock makes concurrent callers (two
pytest sessions, say) wait for one another instead of unpacking twice.

Versions come from environment variables (``OPENSEARCH_VERSION``, ``OPENSEARCH_PLUGIN_VERSION``,
``ELASTICSEARCH_VERSION``) with tested defaults. The k-NN and neural-search plugins must match
the core version exactly (3.6.0 core <-> 3.6.0.0 plugins), and Maven's version metadata for these
artifacts is incomplete, so versions are always exact, never ranges or LATEST.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from devstack.errors import EngineStartError
from devstack.java import find_java_home
from devstack.logtail import tail_lines

OPENSEARCH_VERSION = "3.6.0"
ELASTICSEARCH_VERSION = "9.2.0"

log = logging.getLogger(__name__)


class Artifact(NamedTuple):
    """Maven coordinates of one zip."""

    group: str
    artifact: str
    version: str

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:zip"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.zip"


def cache_root() -> Path:
    """``$ACEBERT_SEARCH_CACHE``, default ``~/.cache/acebert-search``: outside git, shared by runs."""
    return Path(os.environ.get("ACEBERT_SEARCH_CACHE", "~/.cache/acebert-search")).expanduser()


def engines_dir() -> Path:
    path = cache_root() / "engines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def install_opensearch() -> Path:
    """OpenSearch with the k-NN and neural-search plugins; returns its home directory."""
    version = os.environ.get("OPENSEARCH_VERSION", OPENSEARCH_VERSION)
    plugin_version = os.environ.get("OPENSEARCH_PLUGIN_VERSION", f"{version}.0")
    plugins = [
        Artifact("org.opensearch.plugin", "opensearch-knn", plugin_version),
        Artifact("org.opensearch.plugin", "neural-search", plugin_version),
    ]
    core = Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", version)
    return _install(f"opensearch-{version}-knn-neural-{plugin_version}", core, plugins)


def install_elasticsearch() -> Path:
    """Elasticsearch's integ-test distribution; returns its home directory."""
    version = os.environ.get("ELASTICSEARCH_VERSION", ELASTICSEARCH_VERSION)
    core = Artifact("org.elasticsearch.distribution.integ-test-zip", "elasticsearch", version)
    return _install(f"elasticsearch-{version}", core, plugins=[])


def _install(name: str, core: Artifact, plugins: list[Artifact]) -> Path:
    target = engines_dir() / name
    if target.is_dir():
        return target
    with _exclusive_lock(engines_dir() / f".{name}.lock"):
        if target.is_dir():
            return target
        for stale in engines_dir().glob(f".staging-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=engines_dir()))
        try:
            home = unzip(maven_download(core, staging / "download"), staging / "unpacked")
            for plugin in plugins:
                _install_plugin(home, maven_download(plugin, staging / "download"))
            home.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("installed %s", target)
    return target


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maven_download(artifact: Artifact, directory: Path) -> Path:
    """Fetch one zip through Maven into ``directory`` (Maven's repository under the cache)."""
    if shutil.which("mvn") is None:
        raise EngineStartError("Maven (mvn) is not on PATH: apt-get install maven")
    log.info("fetching %s with Maven", artifact.coordinates)
    command = [
        "mvn", "-q", "-B", f"-Dmaven.repo.local={cache_root() / 'engines' / 'm2'}",
        "dependency:copy", f"-Dartifact={artifact.coordinates}", f"-DoutputDirectory={directory}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    path = directory / artifact.file_name
    if result.returncode != 0 or not path.is_file():
        output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise EngineStartError(
            f"Maven could not fetch {artifact.coordinates} (exit {result.returncode}):\n{output}"
        )
    return path


def unzip(archive: Path, destination: Path) -> Path:
    """Extract ``archive`` keeping Unix permissions (zipfile drops them); returns its top directory."""
    with zipfile.ZipFile(archive) as zf:
        tops = {name.split("/", 1)[0] for name in zf.namelist()}
        if len(tops) != 1:
            raise EngineStartError(f"{archive} should hold one top directory, not {sorted(tops)}")
        for info in zf.infolist():
            extracted = zf.extract(info, destination)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(extracted, mode)
    return destination / tops.pop()


def _install_plugin(home: Path, plugin_zip: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_PATH_CONF")}
    env["OPENSEARCH_JAVA_HOME"] = str(find_java_home())
    command = [str(home / "bin" / "opensearch-plugin"), "install", "--batch", plugin_zip.as_uri()]
    log.info("installing plugin %s", plugin_zip.name)
    with open(home / "plugin-install.log", "a") as output:
        result = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    if result.returncode != 0:
        raise EngineStartError(
            f"installing {plugin_zip.name} failed (exit {result.returncode}):\n"
            + tail_lines(home / "plugin-install.log")
        )
