"""``python -m devstack up|down|status|install``: local engines and Redis for the demo and tests.

``up`` starts the services detached (they outlive this command) and records them in a JSON state
file in ``--dir``; ``down`` and ``status`` read that file, so they work from any later shell.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from devstack.engines import ENGINES, cluster_health, start_search_engine
from devstack.errors import EngineStartError
from devstack.install import cache_root, install_elasticsearch, install_opensearch
from devstack.process import Service, is_alive
from devstack.redis import ping, start_redis

STARTERS: dict[str, Callable[[Path], Service]] = {
    **{name: partial(start_search_engine, name) for name in ENGINES},
    "redis": start_redis,
}
STATE_FILE = "state.json"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except EngineStartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description="Local OpenSearch, Elasticsearch and Redis."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    default_dir = cache_root() / "devstack-run"
    up = commands.add_parser("up", help="start the services detached and record them")
    up.add_argument("--only", type=_service_list, default=list(STARTERS),
                    help="comma-separated subset of " + ",".join(STARTERS))
    up.set_defaults(command=up_command)
    down = commands.add_parser("down", help="stop the services recorded by up")
    down.set_defaults(command=down_command)
    status = commands.add_parser("status", help="show whether the recorded services are up")
    status.set_defaults(command=status_command)
    install = commands.add_parser("install", help="download and unpack both engines (CI warm-up)")
    install.set_defaults(command=install_command)
    for sub in (up, down, status):
        sub.add_argument("--dir", type=Path, default=default_dir,
                         help=f"run and state directory (default {default_dir})")
    return parser


def _service_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(STARTERS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {unknown}; choose from {list(STARTERS)}"
        )
    return names


def read_state(directory: Path) -> list[Service]:
    """The services that ``up`` recorded in ``directory`` (empty when there is no state file)."""
    path = directory / STATE_FILE
    if not path.exists():
        return []
    return [
        Service(e["name"], e["url"], e["pid"], Path(e["run_dir"]), e["started_in_s"])
        for e in json.loads(path.read_text())
    ]


def write_state(directory: Path, services: list[Service]) -> None:
    entries = [
        {
            "name": s.name, "pid": s.pid, "url": s.url,
            "run_dir": str(s.run_dir), "started_in_s": s.started_in_s,
        }
        for s in services
    ]
    (directory / STATE_FILE).write_text(json.dumps(entries, indent=2) + "\n")


def up_command(args: argparse.Namespace) -> int:
    running = [service.name for service in read_state(args.dir) if is_alive(service.pid)]
    if running:
        print(f"already up: {', '.join(running)} (stop: python -m devstack down --dir {args.dir})")
        return 1
    args.dir.mkdir(parents=True, exist_ok=True)
    services: list[Service] = []
    try:
        for name in args.only:
            print(f"starting {name} ...", flush=True)
            service = STARTERS[name](args.dir / name)
            services.append(service)
            print(f"{name:<14} {service.url:<28} up in {service.started_in_s:.1f} s", flush=True)
    except BaseException:
        for started in services:
            started.stop()
        raise
    write_state(args.dir, services)
    print(f"state: {args.dir / STATE_FILE}")
    return 0


def down_command(args: argparse.Namespace) -> int:
    services = read_state(args.dir)
    if not services:
        print(f"nothing recorded in {args.dir / STATE_FILE}")
    for service in services:
        started = time.monotonic()
        service.stop()
        print(f"stopped {service.name} (pid {service.pid}) in {time.monotonic() - started:.1f} s")
    (args.dir / STATE_FILE).unlink(missing_ok=True)
    return 0


def status_command(args: argparse.Namespace) -> int:
    services = read_state(args.dir)
    if not services:
        print(f"nothing recorded in {args.dir / STATE_FILE}")
        return 1
    all_up = True
    for service in services:
        alive = is_alive(service.pid)
        health = _health(service) if alive else "stopped"
        all_up = all_up and health in ("green", "yellow", "PONG")
        print(f"{service.name:<14} {service.url:<28} pid {service.pid:<8} {health}")
    return 0 if all_up else 1


def _health(service: Service) -> str:
    if service.name == "redis":
        return "PONG" if ping(urlsplit(service.url).port or 6379) else "not answering"
    return cluster_health(service.url) or "not answering"


def install_command(args: argparse.Namespace) -> int:
    for install in (install_opensearch, install_elasticsearch):
        started = time.monotonic()
        print(f"{install()}  ({time.monotonic() - started:.1f} s)")
    return 0
