"""One local stack: Redis, the search engines and N Celery workers, started and stopped together.

The demo, the integration tests and every benchmark use this one context manager, so there is
one way to start the services, one way to configure a worker (from a ``Settings``), and one
place that stops everything, workers first, whatever happened in between.

    with local_stack(run_dir, engines=("opensearch",)) as stack:
        settings = stack.settings("opensearch", index_prefix="demo")
        stack.start_worker(settings, "demo", concurrency=2)
        ...
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from devstack.engines import start_search_engine
from devstack.process import Service, free_port
from devstack.redis import start_redis
from devstack.worker import WorkerProcess, start_worker
from settings import Settings

@dataclass
class LocalStack:
    """The running services of one :func:`local_stack`, and the workers started on them."""

    run_dir: Path
    redis: Service
    engines: dict[str, Service]
    workers: list[WorkerProcess] = field(default_factory=list)

    def settings(self, engine: str | None = None, **overrides: Any) -> Settings:
        """Settings that point at this stack's Redis and ``engine`` (default: the first one).

        Each worker pool process gets one encoder thread: several processes share a small
        machine with the engine, and more threads per process would only fight for its cores.
        """
        kind = engine or next(iter(self.engines))
        base = Settings(engine=kind, engine_url=self.engines[kind].url, redis_url=self.redis.url,
                        encoder_threads=1)
        return replace(base, **overrides)

    def start_worker(self, settings: Settings, name: str, concurrency: int = 1) -> WorkerProcess:
        """A worker on ``settings``, logging to ``run_dir/worker-<name>.log``, stopped with the stack."""
        worker = start_worker(settings, name, self.run_dir / f"worker-{name}.log", concurrency)
        self.workers.append(worker)
        return worker

    def stop_worker(self, worker: WorkerProcess) -> None:
        worker.stop()
        self.workers.remove(worker)

    def restart_redis(self) -> Service:
        """Stop Redis (SIGTERM: it writes its AOF) and start it again on the same port and data."""
        port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
        self.redis.stop()
        self.redis = start_redis(self.redis.run_dir, port=port)
        return self.redis


@contextmanager
def local_stack(
    run_dir: Path, engines: Sequence[str] = ("opensearch",), heap: str = "1g", parallel: bool = False
) -> Iterator[LocalStack]:
    """Redis and ``engines`` on free loopback ports, data and logs under ``run_dir``.

    ``parallel`` starts the engines side by side (faster when there are two, on a machine with
    the memory for both starting at once). Everything started is stopped on exit.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)  # the engines run as their own user and must reach their directories
    started: dict[str, Service] = {}
    stack: LocalStack | None = None
    try:
        started["redis"] = start_redis(run_dir / "redis", port=free_port())

        def start(kind: str) -> Service:
            return start_search_engine(kind, run_dir / kind, free_port(), free_port(), heap=heap)

        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(engines) if parallel else 1) as pool:
            futures = {kind: pool.submit(start, kind) for kind in engines}
            for kind, future in futures.items():  # collect every one, so none is left running
                try:
                    started[kind] = future.result()
                except BaseException as error:
                    failure = failure or error
                    continue
                print(f"{kind} up at {started[kind].url} in {started[kind].started_in_s:.1f}s", flush=True)
        if failure is not None:
            raise failure
        stack = LocalStack(run_dir, started["redis"], {kind: started[kind] for kind in engines})
        yield stack
    finally:
        if stack is not None:
            for worker in stack.workers:
                worker.stop()
            stack.redis.stop()  # the one running now, if restart_redis replaced the first
        for service in reversed(list(started.values())):
            service.stop()
