"""Start a private Redis on 127.0.0.1 for the Celery broker and the tests.

``redis-server`` comes from the system (``apt-get install redis-server``); the Debian package does
not start a service, and devstack would not use a shared one anyway. The AOF is on, in the run
directory, so a test can restart Redis and check that nothing queued is lost; RDB snapshots are
off. Readiness is a raw ``PING`` in RESP over a socket, so no client library is needed here.
"""
from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from devstack.errors import EngineStartError
from devstack.logtail import tail_lines
from devstack.process import Service, require_free_port, spawn, terminate, wait_until


def start_redis(run_dir: Path, port: int = 6379, timeout_s: float = 30) -> Service:
    """Redis on ``port`` with its AOF and log in ``run_dir``; stop it with ``Service.stop()``."""
    server = shutil.which("redis-server")
    if server is None:
        raise EngineStartError("redis-server is not on PATH: apt-get install redis-server")
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    require_free_port(port)
    command = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(run_dir),
        "--appendonly", "yes", "--save", "",
    ]
    started = time.monotonic()
    child = spawn(command, run_dir / "redis.log", cwd=run_dir)

    def abort() -> None:
        terminate([child.pid])
        child.wait()

    try:
        failure = wait_until(lambda: ping(port), lambda: child.poll() is not None, timeout_s)
    except BaseException:  # e.g. Ctrl-C: leave no detached Redis behind
        abort()
        raise
    if failure is not None:
        abort()
        raise EngineStartError(f"redis did not start: {failure}\n{tail_lines(run_dir / 'redis.log')}")
    url = f"redis://127.0.0.1:{port}/0"
    return Service("redis", url, child.pid, run_dir, time.monotonic() - started, _child=child)


def ping(port: int) -> bool:
    """True when Redis on ``port`` answers PING (not while it is still loading its AOF)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False
