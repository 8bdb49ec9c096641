"""A real two-node OpenSearch cluster: 2 shards with a replica, and a node lost without losing a search.

OpenSearch only: shard allocation, replica promotion and failover are the engine's own
behaviour, the same in Elasticsearch, and one more cluster per test run would not fit the
suite's time budget. The cluster is started once for this module; ``node-1`` is its cluster
manager and ``node-2`` a data node, which the failover test kills (see
:func:`devstack.config.cluster_discovery` for why a two-node cluster must lose its data node).
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from devstack import Cluster, LocalStack, start_opensearch_cluster
from indexer.catalog import catalog_events
from indexer.pipeline import index_events
from query_rewriter.search import SearchRequest
from system import System
from tests.integration.conftest import SAMPLE, wait_for

QUERIES = ["black watch for men", "women's blue jeans", "running shoes", "red handbag", "sports t-shirt",
           "green backpack", "white sneakers", "leather wallet"]


@pytest.fixture(scope="module")
def cluster(stack_dir: Path) -> Iterator[Cluster]:
    cluster = start_opensearch_cluster(stack_dir / "cluster", nodes=2)
    print(f"\ntwo-node cluster up at {cluster.urls} in {max(n.started_in_s for n in cluster.nodes):.1f}s")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def sharded(cluster: Cluster, services: LocalStack) -> Iterator[System]:
    """The sample catalogue indexed through a worker into 2 shards with 1 replica."""
    settings = services.settings(
        "opensearch", engine_url=",".join(cluster.urls), index_prefix="cluster", queue_prefix="itest-cluster",
        image_root=SAMPLE, batch_size=32, index_shards=2, index_replicas=1)
    worker = services.start_worker(settings, "cluster")
    system = System(settings)
    system.ensure_index()
    events = catalog_events(SAMPLE, limit=200)
    assert system.producer.enqueue(events).queued == len(events)
    system.queue.wait_drained(300, check=worker.check_alive)
    system.engine.refresh(system.names.read_alias)
    yield system
    services.stop_worker(worker)
    system.close()


def test_ingestion_through_workers_fills_two_shards_with_a_replica(sharded: System):
    engine, alias = sharded.engine, sharded.names.read_alias
    assert engine.count(alias) == 200
    index = engine.indices_of_alias(alias)[0]
    shards = engine.shard_copies(index)
    assert sorted(shards) == [(0, False), (0, True), (1, False), (1, True)]  # (shard, primary?)
    assert engine.health(wait_for_status="green", timeout="60s")["status"] == "green"


def test_hybrid_on_two_shards_matches_one_shard_with_dfs(sharded: System):
    """Per-shard BM25 statistics move scores on a small index; dfs_query_then_fetch removes that."""
    one = System(replace(sharded.settings, index_prefix="cluster-one", index_shards=1, index_replicas=0))
    one.ensure_index()
    report = index_events(catalog_events(SAMPLE, limit=200), engine=one.engine, encoder=one.encoder,
                          index=one.names.write_alias, image_root=SAMPLE)
    assert report.counts()["indexed"] == 200
    one.engine.refresh(one.names.read_alias)

    def top10(system: System, dfs: bool) -> list[list[str]]:
        return [[hit.product_id for hit in system.searcher.search(SearchRequest(q, size=10, dfs=dfs)).hits]
                for q in QUERIES]

    single = top10(one, dfs=False)
    assert top10(sharded, dfs=True) == single
    default = top10(sharded, dfs=False)
    overlap = sum(len(set(a) & set(b)) for a, b in zip(default, single)) / (10 * len(QUERIES))
    print(f"\ntop-10 overlap, 2 shards vs 1, without dfs: {overlap:.3f}")
    assert overlap > 0.5  # the same products in the main; the order is what per-shard statistics move


def test_a_node_killed_during_searches_and_ingestion_loses_nothing(sharded: System, cluster: Cluster):
    searches: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                hits = sharded.searcher.search(SearchRequest("black watch", size=5)).hits
                searches.append(len(hits))
            except Exception as exc:  # every failure is a finding: recorded, asserted below
                failures.append(repr(exc))
            time.sleep(0.05)

    tag = f"node-loss-{uuid.uuid4().hex[:8]}"
    events: list[dict[str, Any]] = [
        {"type": "upsert", "product_id": f"{tag}-{i}", "version": 1, "title": f"Failover tee number {i}"}
        for i in range(300)]
    loop = threading.Thread(target=search_loop, daemon=True)
    loop.start()
    try:
        sharded.producer.enqueue(events[:150])
        wait_for(lambda: len(searches) >= 20, 60, "the search loop to run")
        cluster.kill(1)
        killed_at = time.monotonic()
        sharded.producer.enqueue(events[150:])
        sharded.queue.wait_drained(300)
        wait_for(lambda: len(searches) >= 40, 60, "searches after the kill")
    finally:
        stop.set()
        loop.join()
    print(f"\n{len(searches)} searches, {len(failures)} failed; queue drained "
          f"{time.monotonic() - killed_at:.1f}s after the kill")
    assert failures == [] and all(count == 5 for count in searches)
    engine, alias = sharded.engine, sharded.names.read_alias
    engine.refresh(alias)
    assert engine.count(alias, {"prefix": {"product_id": tag}}) == len(events)
    assert [d for d in sharded.queue.dead_letters() if d.event.get("product_id", "").startswith(tag)] == []

    cluster.restart(1)
    assert engine.health(wait_for_status="green", timeout="120s")["status"] == "green"
