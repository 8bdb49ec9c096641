"""Run the engines as an unprivileged user when devstack itself runs as root.

OpenSearch and Elasticsearch refuse to start as root. CI containers and this project's machines
run as root, so devstack creates a system user without a home or shell, hands it the install and
the run directory, and launches through ``runuser``. As a normal user nothing changes.

The engine user must also be able to *reach* those directories: a cache under ``/root`` (mode
700) or pytest's ``/tmp/pytest-of-root`` is closed to it, so each such ancestor gets the search
(execute) bit for others. That lets a process pass through the directory by exact name; it does
not let anyone list it.
"""
from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import Sequence

from devstack.errors import EngineStartError

ENGINE_USER = "acebert-engine"

log = logging.getLogger(__name__)


def as_engine_user(command: list[str], owned: Sequence[Path]) -> list[str]:
    """``command`` as the engine will run it; as root, first hand ``owned`` to the engine user."""
    if os.geteuid() != 0:
        return command
    uid = ensure_engine_user()
    for path in owned:
        subprocess.run(["chown", "-R", f"{ENGINE_USER}:", str(path)], check=True)
        make_reachable(path, uid)
    return ["runuser", "-u", ENGINE_USER, "--", *command]


def ensure_engine_user() -> int:
    """The engine user's uid, creating the user on first use."""
    try:
        return pwd.getpwnam(ENGINE_USER).pw_uid
    except KeyError:
        pass
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ENGINE_USER]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        return pwd.getpwnam(ENGINE_USER).pw_uid
    except KeyError:
        raise EngineStartError(
            f"could not create user {ENGINE_USER} (engines refuse root): {result.stderr.strip()}"
        ) from None


def make_reachable(path: Path, uid: int) -> None:
    """Give every ancestor of ``path`` that ``uid`` cannot pass through the others' search bit."""
    for parent in path.resolve().parents:
        status = parent.stat()
        if status.st_uid != uid and not status.st_mode & stat.S_IXOTH:
            log.warning("chmod o+x %s so user %s can reach %s", parent, ENGINE_USER, path)
            os.chmod(parent, stat.S_IMODE(status.st_mode) | stat.S_IXOTH)
