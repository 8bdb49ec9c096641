"""Workers index ACE-BERT vectors (title + raw image tokens) when a checkpoint is configured."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from devstack import LocalStack
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


def test_worker_indexes_acebert_vectors(stack: Stack, checkpoint: Path, services: LocalStack):
    if stack.kind != "opensearch":
        pytest.skip("the encoder is engine-independent; run once")
    from acebert.checkpoint import load_checkpoint_encoder
    from acebert.checkpoint_layout import weights_version

    settings = replace(stack.system.settings, encoder=str(checkpoint), index_prefix="itest-acebert",
                       queue_prefix="itest-acebert")
    worker = services.start_worker(settings, "acebert")
    try:
        system = System(settings)
        events = catalog_events(SAMPLE, limit=60)
        with_image = {e["product_id"] for e in events if "image" in e}
        assert 0 < len(with_image) < len(events)  # the sample mixes photo and title-only products
        system.producer.enqueue(events)
        system.queue.wait_drained(300, check=worker.check_alive)
        engine = system.engine
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
        services.stop_worker(worker)
