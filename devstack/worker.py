"""Start and stop real Celery worker processes for the demo, the tests and the benchmarks."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import EngineStartError
from devstack.logtail import tail_lines
from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
WARM_MARKER = "encoder loaded:"  # workers.tasks logs it; not imported, to keep devstack light


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen
    log: Path
    started_in_s: float

    def stop(self, grace_s: float = 30) -> None:
        """Warm shutdown (SIGTERM lets the current batch finish), then SIGKILL after ``grace_s``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()

    def check_alive(self) -> None:
        """Raise when the worker has exited: waiting on its queue would then never end."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited with {self.process.returncode}; see {self.log}")


def start_worker(
    settings: Settings, name: str, log: Path, concurrency: int = 1, timeout_s: float = 180
) -> WorkerProcess:
    """A ``celery -A workers.main worker`` process configured by ``settings``.

    The worker reads its settings from the environment (its entry point does), so ``settings``
    travel as :meth:`Settings.to_env`. Returns once every pool process has loaded its encoder,
    so that timings taken after it measure indexing, not model start-up.
    """
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **settings.to_env()}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.main", "worker", "-c", str(concurrency),
             "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineStartError(f"worker {name} exited with {process.returncode}:\n{tail_lines(log, 40)}")
        text = log.read_text(errors="replace")
        # "ready." comes from the main process; each pool process then loads the model.
        if " ready." in text and text.count(WARM_MARKER) >= concurrency:
            return WorkerProcess(name, process, log, time.perf_counter() - started)
        time.sleep(0.25)
    WorkerProcess(name, process, log, 0).kill()
    raise EngineStartError(f"worker {name} not ready after {timeout_s}s:\n{tail_lines(log, 40)}")
