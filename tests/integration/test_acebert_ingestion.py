"""Workers index ACE-BERT vectors (title + raw image tokens) when a checkpoint is configured."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from devstack.worker import start_worker
from indexer.catalog import catalog_events
from query_rewriter.search import HybridSearcher, SearchRequest
from tests.integration.conftest import SAMPLE, Stack, wait_for, worker_env


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ACE-BERT checkpoint built from the base weights (untrained heads: this tests plumbing)."""
    import torch
    from transformers import AutoTokenizer

    from acebert.checkpoint import save_checkpoint
    from acebert.config import ModelConfig
    from acebert.encoder import base_model_path
    from acebert.model import AceBert

    torch.manual_seed(0)
    model = AceBert.from_backbone_path(ModelConfig(), base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    directory = tmp_path_factory.mktemp("acebert") / "checkpoint"
    save_checkpoint(directory, model, tokenizer, {"note": "integration test"})
    return directory


def test_worker_indexes_acebert_vectors(stack: Stack, checkpoint: Path, stack_dir: Path):
    if stack.kind != "opensearch":
        pytest.skip("the encoder is engine-independent; run once")
    from acebert.checkpoint import load_checkpoint_encoder, weights_version
    from service.runtime import Runtime

    settings = replace(stack.runtime.settings, encoder=str(checkpoint), index_prefix="itest-acebert",
                       queue_prefix="itest-acebert")
    worker = start_worker(worker_env(settings), "acebert", stack_dir / "worker-acebert.log")
    try:
        runtime = Runtime(settings)
        events = catalog_events(SAMPLE, limit=60)
        with_image = {e["product_id"] for e in events if "image" in e}
        assert 0 < len(with_image) < len(events)  # the sample mixes photo and title-only products
        from workers.producer import enqueue

        enqueue(events, runtime.queue, batch_size=settings.batch_size)
        wait_for(lambda: runtime.queue.pending() == 0 and runtime.queue.in_flight() == 0, 300,
                 f"the ACE-BERT worker (log: {worker.log})")
        engine = runtime.engine
        engine.refresh("itest-acebert")
        hits = engine.search("itest-acebert", {"size": 100, "_source": ["has_image", "model_version"]})["hits"]["hits"]
        assert len(hits) == len(events)
        assert {h["_source"]["model_version"] for h in hits} == {weights_version(checkpoint)}
        assert {h["_id"] for h in hits if h["_source"]["has_image"]} == with_image

        # The query tower of the same checkpoint searches the index it filled.
        searcher = HybridSearcher(engine, load_checkpoint_encoder(checkpoint), "itest-acebert")
        first = events[0]
        response = searcher.search(SearchRequest(query=first["title"], mode="knn", depth=20, size=20))
        assert first["product_id"] in {h.product_id for h in response.hits}
    finally:
        worker.stop()
