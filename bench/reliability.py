"""The fault run: events through real workers while workers, the engine and Redis fail.

``python -m bench.reliability [--catalog DIR] [--good N] [--bad N] [--stop-s S] [--tiny]``

Starts one OpenSearch node, Redis with its AOF on, and three Celery workers (MiniLM, one pool
process each), all real processes. The events are ``--good`` valid ones (upserts, updates,
deletes, out-of-order versions and duplicates, built from the catalogue's titles and photos) and
``--bad`` invalid ones (malformed JSON, a missing id, wrong types, oversize fields, an unknown
field, hostile and corrupt image paths), mixed, in six phases. Each phase sends its share of the
events while one fault happens:

==========  ==================================================================
phase       fault
==========  ==================================================================
baseline    none
worker A    SIGKILL of the whole process group of a worker holding a batch; a new one starts
worker B    the same again, for another worker
engine stop SIGSTOP of the engine for ``--stop-s`` seconds (20), then SIGCONT
engine      the engine stopped and started again
redis       Redis stopped and started again (its AOF keeps the queue)
==========  ==================================================================

After each phase the run waits until the queue is drained and the index holds, for every
product sent so far, the state its newest event implies. The time from the end of the fault
to that point is the phase's time to converge. At the end the index is compared with the final
expected state (lost, stale, resurrected, duplicated and unexpected documents must all be 0),
every live document's vector with a fresh encoding of its own title, category and photo,
every bad event must be in the dead-letter list with a reason naming its field, and no good
event may be there. Then the corrected version of each bad event is replayed, and must land.

Writes ``docs/results/reliability.json`` and ``docs/reliability.md`` (``--tiny``, the CI
configuration: a temporary directory). The pure parts (event generation, the expected state and
the comparison) are unit-tested in ``tests/unit/test_bench_reliability.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT

DEFAULT_CATALOG = (REPO_ROOT / DEFAULT_DATA_DIR).resolve()
RESULTS_NAME = "reliability"
MARKDOWN = REPO_ROOT / "docs" / "reliability.md"
PHASES = ("baseline", "worker A killed", "worker B killed", "engine stopped", "engine restarted",
          "redis restarted")
DELETE_SHARE = 0.12
# Updates that change only the price: the write path keeps their stored vector (indexer.pipeline).
PRICE_CHANGE_SHARE = 0.4
# A live document's vector must be its own input's encoding; batch padding moves a cosine by ~1e-7.
SAME_VECTOR_COSINE = 0.9999
DUPLICATE_SHARE = 0.03
DISORDER_WINDOW = 20
SEND_CHUNK = 50
# Three, so that two run when each of the two worker kills happens (replacements start meanwhile).
WORKERS = 3
CONVERGE_TIMEOUT_S = 600.0


# --- events (pure) --------------------------------------------------------------------------

def good_events(base: Sequence[Mapping[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` valid events over about ``count / 5`` products, as a flaky source would send them.

    Each product's events carry growing versions (with gaps, like timestamps); some are deletes,
    some deletes are followed by a re-creation. An upsert's title names the version that last
    changed it: ``PRICE_CHANGE_SHARE`` of the updates keep the title and change only the price.
    Delivery is disordered within windows of ``DISORDER_WINDOW`` events, and a few events are sent
    twice, later.
    """
    rng = random.Random(seed)
    products = max(count // 5, 1)
    versions = [0] * products
    titled = [0] * products  # the version each product's title was last changed at
    ordered: list[dict[str, Any]] = []
    duplicates = int(count * DUPLICATE_SHARE)
    for _ in range(count - duplicates):
        p = rng.randrange(products)
        versions[p] += 1 + rng.randrange(3)
        product_id = f"rel-{p}"
        if rng.random() < DELETE_SHARE:
            ordered.append({"type": "delete", "product_id": product_id, "version": versions[p]})
            continue
        row = base[p % len(base)]
        if not titled[p] or rng.random() >= PRICE_CHANGE_SHARE:
            titled[p] = versions[p]
        event = {"type": "upsert", "product_id": product_id, "version": versions[p],
                 "title": f"{row['title']} v{titled[p]}", "price": round(5 + rng.random() * 95, 2)}
        for key in ("category", "image"):
            if key in row:
                event[key] = row[key]
        ordered.append(event)
    sent = []
    for start in range(0, len(ordered), DISORDER_WINDOW):
        window = ordered[start:start + DISORDER_WINDOW]
        rng.shuffle(window)
        sent += window
    for _ in range(duplicates):
        position = rng.randrange(1, len(sent) + 1)
        sent.insert(position, dict(sent[rng.randrange(position)]))
    return sent


@dataclass(frozen=True)
class BadEvent:
    """An invalid event, the field its dead letter must name, and its corrected version."""

    raw: Any
    field: str
    corrected: dict[str, Any]


def bad_events(count: int, corrupt_image: str) -> list[BadEvent]:
    """``count`` invalid events, cycling through the kinds of mistake a producer makes."""
    kinds: list[Callable[[dict[str, Any]], tuple[Any, str]]] = [
        lambda ok: (json.dumps(ok)[:-7], "<event>"),  # malformed JSON, as a raw line
        lambda ok: ({k: v for k, v in ok.items() if k != "product_id"}, "product_id"),
        lambda ok: ({**ok, "price": "cheap"}, "price"),
        lambda ok: ({**ok, "version": "v1"}, "version"),
        lambda ok: ({**ok, "title": "x" * 3000}, "title"),
        lambda ok: ({**ok, "attributes": {f"k{i}": "v" for i in range(60)}}, "attributes"),
        lambda ok: ({**ok, "colour": "red"}, "colour"),
        lambda ok: ({**ok, "image": "../../etc/passwd"}, "image"),
        lambda ok: ({**ok, "image": "/dev/zero"}, "image"),
        lambda ok: ({**ok, "image": corrupt_image}, "image"),
    ]
    events = []
    for i in range(count):
        corrected = {"type": "upsert", "product_id": f"bad-{i}", "version": 1, "title": f"Corrected product {i}"}
        raw, named = kinds[i % len(kinds)](corrected)
        events.append(BadEvent(raw, named, corrected))
    return events


def event_key(event: Any) -> str:
    """An event's identity for matching it with its dead letter (which holds it as sent)."""
    return json.dumps(event, sort_keys=True)


def mix(good: Sequence[Any], bad: Sequence[Any], seed: int) -> list[Any]:
    """The bad events spread at random among the good ones, whose order is kept."""
    rng = random.Random(seed + 1)
    mixed = list(good)
    for event in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), event)
    return mixed


def expected_state(events: Iterable[Any]) -> dict[str, tuple[int, bool]]:
    """product id -> (version, deleted) of its newest valid event: what the index must end in."""
    state: dict[str, tuple[int, bool]] = {}
    for event in events:
        if not isinstance(event, dict) or event.get("type") not in ("upsert", "delete"):
            continue
        held = state.get(event["product_id"])
        if held is None or event["version"] > held[0]:
            state[event["product_id"]] = (event["version"], event["type"] == "delete")
    return state


def compare(expected: Mapping[str, tuple[int, bool]], documents: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Count what differs between the expected state and the index's documents.

    ``documents`` are ``{"id", "version", "deleted"}``. Lost: expected, absent. Stale: an older
    version than expected. Resurrected: expected deleted, found live. Duplicated: one product
    in more than one document. Unexpected: a document no valid event asked for.
    """
    seen: dict[str, Mapping[str, Any]] = {}
    counts = {"lost": 0, "stale": 0, "resurrected": 0, "duplicated": 0, "unexpected": 0}
    for doc in documents:
        if doc["id"] in seen:
            counts["duplicated"] += 1
        seen[doc["id"]] = doc
    for product, (version, deleted) in expected.items():
        doc = seen.get(product)
        if doc is None:
            counts["lost"] += 1
        elif doc["version"] < version:
            counts["stale"] += 1
        elif deleted and not doc["deleted"]:
            counts["resurrected"] += 1
    counts["unexpected"] = sum(product not in expected for product in seen)
    return counts


# --- the run (services) ---------------------------------------------------------------------

def _log(message: str) -> None:
    print(f"[reliability {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """The services of one fault run and what it has sent so far."""

    stack: Any  # devstack.LocalStack (Redis, workers)
    cluster: Any  # devstack.Cluster with one node
    system: Any  # system.System
    settings: Any
    workers: list[Any] = field(default_factory=list)
    starting: list[threading.Thread] = field(default_factory=list)  # replacement workers on their way
    bad: set[str] = field(default_factory=set)  # event_key of each bad event
    sent: list[Any] = field(default_factory=list)  # the valid events sent so far
    enqueue_retries: int = 0

    def send(self, events: Sequence[Any], pause_s: float) -> None:
        """Enqueue in chunks, as a producer client would: a chunk that fails (Redis down) is
        sent again after a pause, so some events may be queued twice (replays are idempotent)."""
        import redis
        from kombu.exceptions import OperationalError

        for start in range(0, len(events), SEND_CHUNK):
            chunk = events[start:start + SEND_CHUNK]
            while True:
                try:
                    self.system.producer.enqueue(chunk)
                    break
                except (redis.RedisError, OperationalError):
                    self.enqueue_retries += 1
                    time.sleep(0.5)
            self.sent += [event for event in chunk if event_key(event) not in self.bad]
            time.sleep(pause_s)

    def documents(self) -> list[dict[str, Any]]:
        engine, index = self.system.engine, self.system.names.read_alias
        engine.refresh(index)
        body: dict[str, Any] = {"size": 1000, "sort": [{"product_id": "asc"}], "version": True,
                                "_source": ["deleted"]}
        found = []
        while True:
            hits = engine.search(index, body)["hits"]["hits"]
            if not hits:
                return found
            found += [{"id": h["_id"], "version": h["_version"], "deleted": bool(h["_source"].get("deleted"))}
                      for h in hits]
            body["search_after"] = hits[-1]["sort"]

    def vector_mismatches(self) -> dict[str, int]:
        """Live documents whose stored vector is not the encoding of their own title, category and photo.

        Checks every write the run made, the reused vectors of price changes among them: a vector
        kept for an input that changed, or one written to the wrong product, shows here.
        """
        import numpy as np

        from es_mappings import VECTOR_FIELD
        from indexer.documents import encoder_input
        from indexer.events import parse_event

        engine, index, encoder = self.system.engine, self.system.names.read_alias, self.system.encoder
        body: dict[str, Any] = {"size": 500, "sort": [{"product_id": "asc"}], "query": {"exists": {"field": "title"}},
                                "_source": ["title", "category", "image", VECTOR_FIELD]}
        checked = mismatched = 0
        while hits := engine.search(index, body)["hits"]["hits"]:
            events = [parse_event({"type": "upsert", "product_id": h["_id"], "version": 1,
                                   **{k: v for k, v in h["_source"].items() if k != VECTOR_FIELD}}) for h in hits]
            fresh = encoder.encode_products([encoder_input(event, self.settings.image_root) for event in events])
            stored = np.asarray([h["_source"][VECTOR_FIELD] for h in hits], dtype=np.float32)
            cosine = (fresh * stored).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1))
            checked += len(hits)
            mismatched += int((cosine < SAME_VECTOR_COSINE).sum())
            body["search_after"] = hits[-1]["sort"]
        return {"checked": checked, "mismatched": mismatched}

    def converged(self) -> bool:
        import redis

        from engines import EngineError

        try:
            letters = self.system.queue.dead_letters()
            parked = [letter for letter in letters if event_key(letter.event) not in self.bad]
            if parked:  # a good event can only come back by an operator's replay: stop here
                raise RuntimeError(f"{len(parked)} good events were parked; first: {parked[0].error[:500]}")
            if self.system.queue.pending() + self.system.queue.in_flight():
                return False
            counts = compare(expected_state(self.sent), self.documents())
        except (EngineError, redis.RedisError) as exc:  # a service still coming back
            _log(f"not converged yet: {type(exc).__name__}")
            return False
        return not any(counts.values())

    def wait_converged(self, since: float) -> float:
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while not self.converged():
            if not self.alive_workers() and not any(t.is_alive() for t in self.starting):
                raise RuntimeError("no worker is running or starting; see the worker logs")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not converged {CONVERGE_TIMEOUT_S:.0f} s after the fault")
            time.sleep(0.5)
        return time.monotonic() - since

    def kill_worker(self) -> None:
        """SIGKILL (its whole process group) a worker that holds a batch; a replacement starts in
        the background, so the phase measures how the others take the dead one's batch back.

        The worker is frozen (SIGSTOP) before its lease is checked a second time: between a look
        and a kill it could otherwise finish its batch, and the phase would kill an idle worker.
        """
        from devstack.process import group_members

        def lease_pids() -> set[str]:
            return {owner.rsplit(":", 1)[1] for owner in self.system.queue.lease_owners().values()}

        def holds_a_batch(slot: int, pids: set[str]) -> bool:
            worker = self.workers[slot]
            return worker is not None and bool(pids & {str(pid) for pid in group_members(worker.process.pid)})

        def holder() -> int | None:
            pids = lease_pids()
            return next((slot for slot in range(len(self.workers)) if holds_a_batch(slot, pids)), None)

        deadline = time.monotonic() + 60
        while True:
            if (slot := holder()) is not None:
                os.killpg(self.workers[slot].process.pid, signal.SIGSTOP)
                if holds_a_batch(slot, lease_pids()):  # frozen with its batch: it can no longer let go of it
                    break
                os.killpg(self.workers[slot].process.pid, signal.SIGCONT)
            if time.monotonic() > deadline:
                raise TimeoutError("no worker claimed a batch within 60 s")
            time.sleep(0.02)
        self.workers[slot].kill()
        self.stack.workers.remove(self.workers[slot])
        self.workers[slot] = None
        replacement = threading.Thread(target=self.start_worker, args=(slot, f"rel-{slot}-replacement"))
        replacement.start()
        self.starting.append(replacement)

    def start_worker(self, slot: int, name: str) -> None:
        self.workers[slot] = self.stack.start_worker(self.settings, name)

    def start_workers(self, count: int) -> None:
        """``count`` workers, started side by side."""
        self.workers = [None] * count
        threads = [threading.Thread(target=self.start_worker, args=(slot, f"rel-{slot}")) for slot in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if None in self.workers:
            raise RuntimeError("a worker did not start; see the worker logs")

    def alive_workers(self) -> list[Any]:
        return [w for w in self.workers if w is not None and w.process.poll() is None]

    def stop_engine(self, seconds: float) -> None:
        pid = self.cluster.nodes[0].pid
        os.kill(pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pid, signal.SIGCONT)

    def restart_engine(self) -> None:
        self.cluster.restart(0)

    def restart_redis(self) -> None:
        self.stack.restart_redis()


def run_phases(run: Run, events: Sequence[Any], stop_s: float, pause_s: float) -> list[dict[str, Any]]:
    """Send each phase's share of ``events`` while its fault happens; time each convergence."""
    # each fault with how long events flow before it: a kill starts at once, because it waits for a worker
    # that holds a batch, and a small phase can be sent and drained before a later look sees any lease
    flowing = min(1.0, pause_s * 4)
    faults: list[tuple[Callable[[], None], float]] = [
        (lambda: None, flowing),
        (run.kill_worker, 0.0),
        (run.kill_worker, 0.0),
        (lambda: run.stop_engine(stop_s), flowing),
        (run.restart_engine, flowing),
        (run.restart_redis, flowing),
    ]
    share = -(-len(events) // len(PHASES))
    rows = []
    for number, (phase, (fault, lead_s)) in enumerate(zip(PHASES, faults)):
        part = events[number * share:(number + 1) * share]
        sender = threading.Thread(target=run.send, args=(part, pause_s))
        started = time.monotonic()
        sender.start()
        time.sleep(lead_s)
        fault()
        recovered = time.monotonic()
        sender.join()
        converge_s = run.wait_converged(recovered)
        rows.append({"phase": phase, "events": len(part), "fault_s": round(recovered - started, 1),
                     "converge_s": round(converge_s, 1)})
        _log(f"{phase}: {len(part)} events, fault over after {recovered - started:.1f}s, "
             f"converged {converge_s:.1f}s later")
    return rows


def check_dead_letters(run: Run, bad: Sequence[BadEvent], good: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every bad event parked with a reason naming its field; no good event parked. Returns the
    counts and the dead letters by :func:`event_key` of the event they hold."""
    letters = run.system.queue.dead_letters()
    by_event = {event_key(letter.event): letter for letter in letters}
    good_keys = {event_key(event) for event in good}
    parked = [(b, by_event[event_key(b.raw)]) for b in bad if event_key(b.raw) in by_event]
    report = {"dead_letters": len(letters), "bad_parked": len(parked), "bad_missing": len(bad) - len(parked),
              "reason_without_field": sum(b.field not in letter.error for b, letter in parked),
              "good_parked": sum(event_key(letter.event) in good_keys for letter in letters),
              "examples": {b.field: letter.error[:160] for b, letter in parked}}
    return report, by_event


def replay_corrected(run: Run, bad: Sequence[BadEvent], letters: Mapping[str, Any]) -> dict[str, Any]:
    """Replay each bad event's dead letter with its corrected version; they must all land."""
    started = time.monotonic()
    replayed = 0
    for event in bad:
        letter = letters.get(event_key(event.raw))
        if letter is not None:
            run.system.producer.replay([letter.id], event.corrected)
            replayed += 1
    run.sent += [event.corrected for event in bad]
    converge_s = run.wait_converged(started)
    return {"replayed": replayed, "converge_s": round(converge_s, 1),
            "dead_letters_left": len(run.system.queue.dead_letters())}


def run_all(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    from devstack import local_stack, start_opensearch_cluster
    from settings import Settings
    from system import System

    image_root = run_dir / "images"
    base = _catalog_with_images(args.catalog, image_root, limit=max(args.good // 5, 1))
    corrupt = image_root / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a picture" * 10)
    good = good_events(base, args.good, args.seed)
    bad = bad_events(args.bad, str(corrupt))
    events = mix(good, [b.raw for b in bad], args.seed)
    _log(f"{len(good)} good events over {len(expected_state(good))} products, {len(bad)} bad")

    cluster = None
    with local_stack(run_dir / "stack", engines=()) as stack:
        try:
            t = time.perf_counter()
            cluster = start_opensearch_cluster(run_dir / "engine", nodes=1, heap=args.heap)
            _log(f"OpenSearch up in {time.perf_counter() - t:.1f}s")
            settings = Settings(engine="opensearch", engine_url=cluster.urls[0], redis_url=stack.redis.url,
                                index_prefix="reliability", queue_prefix="reliability", encoder=args.encoder,
                                image_root=image_root, encoder_threads=1)
            run = Run(stack, cluster, System(settings), settings, bad={event_key(b.raw) for b in bad})
            t = time.perf_counter()
            run.start_workers(WORKERS)  # the first batch creates the index
            _log(f"{WORKERS} workers ready in {time.perf_counter() - t:.1f}s")
            started = time.perf_counter()
            phases = run_phases(run, events, args.stop_s, args.pause_s)
            final = compare(expected_state(good), run.documents())
            vectors = run.vector_mismatches()
            parked, letters = check_dead_letters(run, bad, good)
            replay = replay_corrected(run, bad, letters)
            for thread in run.starting:
                thread.join()
            after_replay = compare(expected_state(run.sent), run.documents())
            return {"events": {"good": len(good), "bad": len(bad), "products": len(expected_state(good))},
                    "settings": {"workers": WORKERS, "encoder": args.encoder,
                                 "ingest_max_retries": settings.ingest_max_retries,
                                 "stop_s": args.stop_s, "seed": args.seed},
                    "phases": phases, "final": final, "vectors": vectors, "dead_letters": parked, "replay": replay,
                    "after_replay": after_replay, "enqueue_retries": run.enqueue_retries,
                    "run_s": round(time.perf_counter() - started, 1)}
        finally:
            if cluster is not None:
                cluster.stop()


def _catalog_with_images(catalog: Path, image_root: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` catalogue products, their photos copied under ``image_root`` (which
    also receives the corrupt picture), image paths relative to it."""
    from indexer.catalog import catalog_events

    image_root.mkdir(parents=True, exist_ok=True)
    rows = catalog_events(catalog, limit=limit)
    for row in rows:
        if "image" in row:
            source = Path(row["image"])
            source = source if source.is_absolute() else catalog / source
            shutil.copyfile(source, image_root / source.name)
            row["image"] = source.name
    return rows


def markdown(payload: Mapping[str, Any]) -> str:
    """``docs/reliability.md`` from one run's payload."""
    m, e, s = payload["machine"], payload["events"], payload["settings"]
    lines = [
        "# Reliability: the fault run",
        "",
        f"Generated by `{payload['command']}` (commit {payload['commit']}, {payload['date']}) on "
        f"{m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB. Seed {s['seed']}.",
        "",
        f"One OpenSearch node, Redis with its AOF on, {s['workers']} workers ({s['encoder']}, one pool process "
        f"each, `INGEST_MAX_RETRIES={s['ingest_max_retries']}`). {e['good']:,} good events over "
        f"{e['products']:,} products (upserts, updates, deletes, out-of-order versions, duplicates) and "
        f"{e['bad']:,} bad ones (malformed JSON, a missing id, wrong types, oversize fields, an unknown field, "
        "hostile and corrupt image paths), mixed, sent in six phases. Each phase has one fault; after it, the run "
        "waits until the queue is drained and the index holds the newest state of every product sent so far.",
        "",
        "| phase | events | fault lasted (s) | converged after the fault (s) | minus the baseline (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    baseline = payload["phases"][0]["converge_s"]
    lines += [f"| {p['phase']} | {p['events']:,} | {p['fault_s']} | {p['converge_s']} | "
              f"{p['converge_s'] - baseline:+.1f} |" for p in payload["phases"]]
    f, d, r = payload["final"], payload["dead_letters"], payload["replay"]
    lines += [
        "",
        "Each phase sends its events faster than the workers index them, so the time to converge includes "
        "working off that backlog: the baseline phase, with no fault, measures the backlog alone, and the last "
        "column is what the fault added. A fault that outlasts the sending (the engine stop) leaves the backlog "
        "to be worked off after it, so its difference can be negative; a worker starting up (a replacement) "
        "competes with the others for the cores.",
        "",
        "Fault details: a worker holding a batch is SIGKILLed (its whole process group); the others take its "
        f"batch back while a replacement starts. The engine is SIGSTOPped for {s['stop_s']:g} s, then stopped and "
        "started. Redis is stopped and started; the producer re-sends a chunk that Redis refused (chunks re-sent "
        f"in this run: {payload['enqueue_retries']}).",
        "",
        "## The index against the event log",
        "",
        "| lost | stale | resurrected | duplicated | unexpected |",
        "|---:|---:|---:|---:|---:|",
        f"| {f['lost']} | {f['stale']} | {f['resurrected']} | {f['duplicated']} | {f['unexpected']} |",
        "",
        *([f"Vectors: each of the {v['checked']:,} live documents was encoded again from its own title, category "
           f"and photo after the run; {v['mismatched']} stored vectors differ from that (cosine below "
           f"{SAME_VECTOR_COSINE}). About {PRICE_CHANGE_SHARE:.0%} of the updates changed only the price and kept "
           "their stored vector.", ""] if (v := payload.get("vectors")) else []),
        f"Dead letters: {d['bad_parked']} of {e['bad']} bad events parked ({d['bad_missing']} missing), "
        f"{d['reason_without_field']} with a reason that does not name the field, {d['good_parked']} good events "
        f"parked. Replaying the corrected version of each ({r['replayed']}) landed all of them in "
        f"{r['converge_s']} s; {r['dead_letters_left']} dead letters left. After the replay: "
        f"{sum(payload['after_replay'].values())} differences.",
        "",
        "Reasons, one per kind:",
        "",
    ]
    lines += [f"- `{name}`: {reason}" for name, reason in d["examples"].items()]
    lines += ["", "The CI runs a tiny configuration of the same command (`--tiny`) in "
              "`tests/integration/test_reliability.py`.", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="directory with products.csv (and images)")
    parser.add_argument("--good", type=int, default=10_000, help="valid events (default: %(default)s)")
    parser.add_argument("--bad", type=int, default=1_000, help="invalid events (default: %(default)s)")
    parser.add_argument("--stop-s", type=float, default=20.0, help="how long the engine is SIGSTOPped")
    parser.add_argument("--pause-s", type=float, default=0.25, help="pause between chunks of 50 events")
    parser.add_argument("--encoder", default="minilm", help="encoder spec (default: %(default)s)")
    parser.add_argument("--heap", default="1g", help="the engine's JVM heap (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="the CI configuration: 300 good, 30 bad, "
                                                            "3 s stop; results in a temporary directory")
    parser.add_argument("--results", type=Path, default=None, help="output directory (default: docs/results, docs/)")
    parser.add_argument("--render", type=Path, default=None, metavar="JSON",
                        help="only write docs/reliability.md again from an earlier run's JSON")
    args = parser.parse_args(argv)
    if args.tiny:
        args.good, args.bad, args.stop_s, args.pause_s = 300, 30, 3.0, 0.05
        args.results = args.results or Path(tempfile.mkdtemp(prefix="acebert-reliability-tiny-"))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import command_line, run_directory, stamp, write_report

    args = parse_args(argv)
    if args.render is not None:
        MARKDOWN.write_text(markdown(json.loads(args.render.read_text())))
        return 0
    command = command_line("bench.reliability", argv)
    with run_directory("acebert-bench-reliability-") as run_dir:
        payload = {**stamp(command), **run_all(args, run_dir)}
    paths = write_report(RESULTS_NAME, payload, markdown, MARKDOWN, args.results)
    _log(f"wrote {paths[0]} and {paths[1]}")
    failures = sum(payload["final"].values()) + sum(payload["after_replay"].values())
    failures += payload["dead_letters"]["bad_missing"] + payload["dead_letters"]["reason_without_field"]
    failures += payload["dead_letters"]["good_parked"] + payload["replay"]["dead_letters_left"]
    failures += payload["vectors"]["mismatched"]
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
