"""Find a Java 21+ runtime for the engines.

The integ-test distributions of OpenSearch 3.x and Elasticsearch 9 ship without a bundled JDK and
refuse anything older than Java 21, while the machine's default ``java`` may well be 17. We read
each candidate's ``release`` file (plain ``KEY="value"`` lines) rather than running ``java
-version``: it is instant and needs no process.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from devstack.errors import EngineStartError

MIN_JAVA = 21
JVM_ROOT = Path("/usr/lib/jvm")


def parse_java_major(release_text: str) -> int | None:
    """The major version named by ``JAVA_VERSION`` in a JDK ``release`` file, or None.

    ``"25.0.3"`` -> 25, ``"21"`` -> 21, ``"17-ea"`` -> 17, and the legacy ``"1.8.0_292"`` -> 8.
    """
    match = re.search(r'^JAVA_VERSION="?([0-9][^"\s]*)"?\s*$', release_text, re.MULTILINE)
    if match is None:
        return None
    parts = re.findall(r"\d+", match.group(1))
    major = int(parts[0])
    return int(parts[1]) if major == 1 and len(parts) > 1 else major


def java_major(java_home: Path) -> int | None:
    """The major version of the JDK at ``java_home``, or None when it has no readable release file."""
    try:
        return parse_java_major((java_home / "release").read_text(errors="replace"))
    except OSError:
        return None


def _is_usable(java_home: Path) -> bool:
    major = java_major(java_home)
    return major is not None and major >= MIN_JAVA and (java_home / "bin" / "java").exists()


def find_java_home(env: Mapping[str, str] = os.environ, jvm_root: Path = JVM_ROOT) -> Path:
    """ACEBERT_JAVA_HOME (must be 21+), else JAVA_HOME if 21+, else the newest 21+ JDK in jvm_root."""
    explicit = env.get("ACEBERT_JAVA_HOME")
    if explicit:
        if not _is_usable(Path(explicit)):
            raise EngineStartError(
                f"ACEBERT_JAVA_HOME={explicit} is not a Java {MIN_JAVA}+ JDK "
                f"(its release file says version {java_major(Path(explicit))})"
            )
        return Path(explicit)
    java_home = env.get("JAVA_HOME")
    if java_home and _is_usable(Path(java_home)):
        return Path(java_home)
    candidates = sorted(
        {path.resolve() for path in jvm_root.glob("*") if path.is_dir() and _is_usable(path)},
        key=lambda path: (java_major(path) or 0, str(path)),
    )
    if not candidates:
        raise EngineStartError(
            f"no Java {MIN_JAVA}+ found: OpenSearch 3 and Elasticsearch 9 need one. Set "
            f"ACEBERT_JAVA_HOME to a JDK {MIN_JAVA}+ or install one under {jvm_root} "
            "(e.g. apt-get install openjdk-21-jdk-headless, or a Temurin JDK)"
        )
    return candidates[-1]
