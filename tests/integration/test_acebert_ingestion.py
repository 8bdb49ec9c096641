"""Workers index ACE-BERT vectors (title + raw image tokens) when a checkpoint is configured."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import pytest

from devstack import LocalStack, WorkerProcess
from indexer.catalog import catalog_events
from query_rewriter.search import HybridSearcher, SearchRequest
from system import System
from tests.integration.conftest import SAMPLE, Stack


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ACE-BERT checkpoint built from the base weights (untrained heads: this tests plumbing)."""
    import torch
    from transformers import AutoTokenizer

    from acebert.checkpoint import save_checkpoint
    from acebert.config import ModelConfig
    from acebert.minilm import base_model_path
    from acebert.model import AceBert

    torch.manual_seed(0)
    model = AceBert.from_backbone_path(ModelConfig(), base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    directory = tmp_path_factory.mktemp("acebert") / "checkpoint"
    save_checkpoint(directory, model, tokenizer, {"note": "integration test"})
    return directory


@dataclass
class Indexed:
    """A system whose settings name the checkpoint, and its worker."""

    system: System
    worker: WorkerProcess

    def drained(self) -> None:
        self.system.queue.wait_drained(300, check=self.worker.check_alive)


@pytest.fixture(scope="module")
def acebert(stack: Stack, checkpoint: Path, services: LocalStack) -> Iterator[Indexed]:
    """A worker whose settings name the checkpoint, on its own index and queue (OpenSearch only:
    the encoder and the switch between models are engine-independent)."""
    if stack.kind != "opensearch":
        pytest.skip("the encoder is engine-independent; run once")
    settings = replace(stack.system.settings, encoder=str(checkpoint), index_prefix="itest-acebert",
                       queue_prefix="itest-acebert")
    indexed = Indexed(System(settings), services.start_worker(settings, "acebert"))
    yield indexed
    services.stop_worker(indexed.worker)
    indexed.system.close()


def test_worker_indexes_acebert_vectors(acebert: Indexed, checkpoint: Path):
    from acebert.checkpoint import load_checkpoint_encoder
    from acebert.checkpoint_layout import weights_version

    events = catalog_events(SAMPLE, limit=60)
    with_image = {e["product_id"] for e in events if "image" in e}
    assert 0 < len(with_image) < len(events)  # the sample mixes photo and title-only products
    acebert.system.producer.enqueue(events)
    acebert.drained()
    engine = acebert.system.engine
    engine.refresh("itest-acebert")
    hits = engine.search("itest-acebert", {"size": 100, "_source": ["has_image", "model_version"],
                                           "query": {"terms": {"product_id": [e["product_id"] for e in events]}}})
    hits = hits["hits"]["hits"]
    assert len(hits) == len(events)
    assert {h["_source"]["model_version"] for h in hits} == {weights_version(checkpoint)}
    assert {h["_id"] for h in hits if h["_source"]["has_image"]} == with_image

    # The query tower of the same checkpoint searches the index it filled.
    searcher = HybridSearcher.over(engine, load_checkpoint_encoder(checkpoint), "itest-acebert")
    first = events[0]
    response = searcher.search(SearchRequest(query=first["title"], mode="knn", depth=20, size=20))
    assert first["product_id"] in {h.product_id for h in response.hits}


class Traffic:
    """A producer loop and a search loop, run against a system while it switches models.

    The producer sends rounds of upserts, updates and deletes (with increasing versions) for 40
    products and records the state they must end in; the searcher counts failed and empty answers.
    """

    def __init__(self, system: System) -> None:
        self.system = system
        self.expected: dict[str, tuple[int, bool]] = {}
        self.searches = self.failed = self.empty = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def send_round(self) -> None:
        self.rounds += 1
        events = []
        for i in range(40):
            product, version = f"live-{i}", self.rounds
            if (i + self.rounds) % 7 == 0:
                events.append({"type": "delete", "product_id": product, "version": version})
                self.expected[product] = (version, True)
            else:
                events.append({"type": "upsert", "product_id": product, "version": version,
                               "title": f"Live cotton shirt {i} round {self.rounds}"})
                self.expected[product] = (version, False)
        self.system.producer.enqueue(events)

    def _produce(self) -> None:
        while not self._stop.wait(0.5):
            self.send_round()

    def _search(self) -> None:
        while not self._stop.wait(0.05):
            self.searches += 1
            try:
                hits = self.system.searcher.search(SearchRequest("live cotton shirt", size=5)).hits
            except Exception:  # counted, not raised: the test asserts there were none
                self.failed += 1
                continue
            self.empty += not hits

    def __enter__(self) -> Traffic:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._produce), threading.Thread(target=self._search)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_reembed_under_live_traffic_loses_nothing_and_rolls_back(acebert: Indexed, checkpoint: Path):
    """While events and searches keep coming, ``reembed`` moves the index to another model
    (MiniLM) and ``rollback`` moves it back: the worker follows each switch without a restart,
    every product ends at its last event's version, encoded by its index's model, and no search
    fails or comes back empty."""
    from acebert.checkpoint_layout import weights_version
    from acebert.minilm import MiniLMEncoder
    from indexer.reembed import reembed, rollback

    system = acebert.system
    engine, names, root = system.engine, system.names, system.settings.image_root
    traffic = Traffic(system)
    traffic.send_round()
    acebert.drained()
    old = system.models.for_reads().index

    def state(index: str) -> tuple[dict[str, tuple[int, bool]], set[str]]:
        engine.refresh(index)
        hits = engine.search(index, {"size": 100, "version": True, "_source": ["deleted", "model_version"],
                                     "query": {"prefix": {"product_id": "live-"}}})["hits"]["hits"]
        products = {h["_id"]: (h["_version"], bool(h["_source"].get("deleted"))) for h in hits}
        return products, {h["_source"]["model_version"] for h in hits if not h["_source"].get("deleted")}

    with traffic:
        forward = reembed(engine, names, system.models, "minilm", image_root=root)
        time.sleep(3)  # writes and searches after the read alias moved
    acebert.drained()
    assert forward.source == old and system.models.for_reads().index == forward.target
    assert state(forward.target) == (traffic.expected, {MiniLMEncoder.model_version})
    assert traffic.rounds >= 4 and traffic.searches > 20

    with traffic:
        back = rollback(engine, names, system.models, image_root=root)
        time.sleep(3)
    acebert.drained()
    assert (back.source, back.target) == (forward.target, old)
    assert state(old) == (traffic.expected, {weights_version(checkpoint)})
    assert (traffic.failed, traffic.empty) == (0, 0)
