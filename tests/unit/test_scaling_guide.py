"""The sizing guide's arithmetic (bench/scaling.py), with every expected value written as its formula.

No engine, no benchmark: the guide only does arithmetic over stored measurements, so what can
go wrong is the arithmetic and the reading of the JSON. The last test renders the guide from
the repository's own results into a temporary directory when those results are present.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import scaling
from bench.report import RESULTS
from bench.scaling import (
    bytes_per_document,
    coordinator_hits_per_leg,
    depth_for_budget,
    flatten,
    hnsw_bytes_per_vector,
    per_node,
    rate_per_worker,
    recommended_shards,
    seconds_to_process,
    shards_needed,
    vector_copies_bytes,
    workers_needed,
)

D, M, GB = 384, 16, 1e9


def test_hnsw_float_is_the_opensearch_formula() -> None:
    assert hnsw_bytes_per_vector(D, M) == pytest.approx(1.1 * (4 * 384 + 8 * 16))
    assert hnsw_bytes_per_vector(256, 16) * 1_000_000 == pytest.approx(1.1 * (4 * 256 + 8 * 16) * 1_000_000)


def test_hnsw_quantized_vectors_shrink_only_the_vector_part() -> None:
    assert hnsw_bytes_per_vector(D, M, bits=8) == pytest.approx(1.1 * (384 + 8 * 16))
    assert hnsw_bytes_per_vector(D, M, bits=1) == pytest.approx(1.1 * (384 * 1 / 8 + 8 * 16))


def test_replicas_multiply_and_nodes_divide_the_vector_memory() -> None:
    float_b = hnsw_bytes_per_vector(D, M)
    total = vector_copies_bytes(10_000_000, float_b, replicas=1)
    assert total == pytest.approx(10_000_000 * 1.1 * (4 * 384 + 8 * 16) * (1 + 1))
    assert per_node(total, 3) == pytest.approx(10_000_000 * 1.1 * (4 * 384 + 8 * 16) * 2 / 3)
    with pytest.raises(ValueError):
        per_node(total, 0)


def test_bytes_per_document() -> None:
    assert bytes_per_document(1_684_567_389, 1_000_000) == pytest.approx(1_684_567_389 / 1_000_000)


def test_shards_needed_rounds_up_and_never_goes_below_one() -> None:
    assert shards_needed(168.46 * GB, 10 * GB) == math.ceil(168.46 / 10)
    assert shards_needed(168.46 * GB, 50 * GB) == math.ceil(168.46 / 50)
    assert shards_needed(1.68 * GB, 50 * GB) == 1
    assert shards_needed(0.0, 50 * GB) == 1
    assert shards_needed(50 * GB, 50 * GB) == 1  # exactly full is still one shard


def test_recommended_shards_are_a_multiple_of_the_data_nodes_once_more_than_one() -> None:
    assert recommended_shards(168.46 * GB, 30 * GB, data_nodes=3) == 3 * math.ceil(math.ceil(168.46 / 30) / 3)
    assert recommended_shards(100 * GB, 30 * GB, data_nodes=3) == 3 * math.ceil(math.ceil(100 / 30) / 3)
    assert recommended_shards(16.85 * GB, 30 * GB, data_nodes=3) == 1  # one shard is not spread to three


def test_workers_needed_rounds_up() -> None:
    assert workers_needed(10_000_000 / 3600, 743.7) == math.ceil(10_000_000 / 3600 / 743.7)
    assert workers_needed(10_000_000 / 3600, 2324) == math.ceil(10_000_000 / 3600 / 2324)
    assert workers_needed(10_000, 470.4 / 2) == math.ceil(10_000 / (470.4 / 2))
    assert workers_needed(1, 235.2) == 1
    with pytest.raises(ValueError):
        workers_needed(100, 0)


def test_workers_for_a_mix_of_new_products_and_price_changes() -> None:
    assert scaling.workers_for_mix(1000, 0.9, 150.0, 450.0) == math.ceil(1000 * (0.1 / 150 + 0.9 / 450))  # 3
    assert scaling.workers_for_mix(1000, 0.0, 150.0, 450.0) == scaling.workers_needed(1000, 150.0)  # 7
    assert scaling.workers_for_mix(1000, 1.0, 150.0, 450.0) == scaling.workers_needed(1000, 450.0)  # 3
    assert scaling.workers_for_mix(1, 0.5, 150.0, 450.0) == 1
    with pytest.raises(ValueError, match="share"):
        scaling.workers_for_mix(1000, 1.5, 150.0, 450.0)


def test_rates_and_durations() -> None:
    assert rate_per_worker(470.4, 2) == pytest.approx(470.4 / 2)
    assert seconds_to_process(10_000_000, 2324) == pytest.approx(10_000_000 / 2324)


def test_fusion_merge_volume_and_budget() -> None:
    assert [coordinator_hits_per_leg(s, 100) for s in (1, 5, 20, 50)] == [1 * 100, 5 * 100, 20 * 100, 50 * 100]
    assert depth_for_budget(2000, 5) == 2000 // 5
    assert depth_for_budget(2000, 20) == 2000 // 20


def test_fusion_depth_is_the_searchers_default() -> None:
    from query_rewriter.search import SearchRequest

    assert SearchRequest("q").depth == scaling.FUSION_DEPTH


def test_flatten_prints_any_cluster_json_as_pairs() -> None:
    data = {"shards": 2, "replicas": 1, "dfs_ndcg_delta": 0.01, "runs": [{"p50": 3.0}], "ids": ["a", "b"]}
    assert flatten(data) == [("shards", 2), ("replicas", 1), ("dfs_ndcg_delta", 0.01), ("runs.0.p50", 3.0),
                             ("ids", ["a", "b"])]
    assert flatten(7) == [("", 7)]


def test_cluster_section_says_not_measured_without_results() -> None:
    assert "Not measured yet." in scaling.cluster_section(None)
    table = scaling.cluster_section({"shards": 2, "dfs_ndcg_delta": 0.0})
    assert "| `shards` | 2 |" in table and "Not measured yet." not in table


@pytest.mark.skipif(not all((RESULTS / f"performance-{n}.json").is_file() for n in ("scale", "encoding", "ingestion",
                                                                                     "query")),
                    reason="the performance results are not in docs/results")
def test_guide_renders_from_the_stored_results(tmp_path: Path) -> None:
    for path in RESULTS.glob("performance-*.json"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "scaling-cluster.json").write_text(json.dumps({"shards": 2, "replicas": 1}))
    doc = tmp_path / "scaling.md"
    assert scaling.main(["--results", str(tmp_path), "--doc", str(doc)]) == 0
    text = doc.read_text()
    for heading in ("## 1. Memory and disk", "## 2. Shards", "## 3. Workers to re-embed", "## 4. Ingestion workers",
                    "## 5. Where the client-side fusion", "## 6. What to set", "## Two-node cluster measurements"):
        assert heading in text
    assert "| `replicas` | 1 |" in text and "**extrapolation**" in text
    assert ("price changes/s" in text) == (RESULTS / scaling.UPDATES_RESULTS).is_file()
    (tmp_path / scaling.UPDATES_RESULTS).unlink(missing_ok=True)
    assert scaling.main(["--results", str(tmp_path), "--doc", str(doc)]) == 0
    assert "price changes/s" not in doc.read_text() and "does not count it" in doc.read_text()
    assert "{" not in text  # no f-string left unformatted: the guide holds no literal braces
    payload = json.loads((tmp_path / "scaling.json").read_text())
    assert payload["figures"]["dimension"] == D and payload["figures"]["m"] == M
    assert payload["cluster"] == {"shards": 2, "replicas": 1}
