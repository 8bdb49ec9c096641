"""The performance benchmarks' arithmetic and report plumbing, on made-up numbers (no engines).

Benchmarks are never timed tests: nothing here asserts a speed, only that statistics, ratios,
verdicts, the report sections and the measurement loops compute what they claim.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.performance import common, encoding, ingestion, lookup_reads, quantization, query, query_paths, scale
from bench.performance.doc import markers, replace_section, write_section
from bench.performance.stats import (
    latency_summary,
    median_summary,
    paired_ratios,
    ratio,
    throughput_summary,
    verdict,
)
from es_mappings import HnswGraph


# -- statistics ----------------------------------------------------------------------------
def test_latency_summary_percentiles() -> None:
    summary = latency_summary(list(range(1, 101)))
    assert summary["n"] == 100 and summary["mean"] == pytest.approx(50.5)
    assert (summary["p50"], summary["p95"], summary["p99"]) == pytest.approx((50.5, 95.05, 99.01))
    with pytest.raises(ValueError):
        latency_summary([])


def test_median_summary_takes_each_statistic_over_runs() -> None:
    runs = [{"p50": 1.0, "p99": 9.0}, {"p50": 3.0, "p99": 5.0}, {"p50": 2.0, "p99": 7.0, "extra": 1.0}]
    assert median_summary(runs) == {"p50": 2.0, "p99": 7.0}


def test_paired_ratios_are_per_run_then_median() -> None:
    candidate = [{"p50": 2.0}, {"p50": 4.0}, {"p50": 6.0}]
    baseline = [{"p50": 1.0}, {"p50": 2.0}, {"p50": 2.0}]
    assert paired_ratios(candidate, baseline, ["p50"]) == {"p50": 2.0}
    with pytest.raises(ValueError):
        paired_ratios(candidate, baseline[:2], ["p50"])


def test_ratio_throughput_and_verdict() -> None:
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ZeroDivisionError):
        ratio(1.0, 0.0)
    assert throughput_summary([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}
    assert verdict(1.2, 1.3, higher_is_better=False) == "met"
    assert verdict(1.31, 1.3, higher_is_better=False) == "not met"
    assert verdict(1.5, 1.5, higher_is_better=True) == "met"


# -- the Markdown report -------------------------------------------------------------------
def test_sections_are_replaced_in_place_and_appended_when_new(tmp_path: Path) -> None:
    text = "# Performance\n\nHand-written intro.\n"
    once = replace_section(text, "query", "query v1")
    both = replace_section(once, "scale", "scale v1")
    again = replace_section(both, "query", "query v2")
    assert again.startswith(text.rstrip()) and "query v1" not in again
    assert again.index("query v2") < again.index("scale v1")
    assert replace_section(again, "query", "query v2") == again
    start, end = markers("query")
    assert again.count(start) == again.count(end) == 1
    with pytest.raises(ValueError):
        markers("Bad Name")
    path = write_section("encoding", "table", tmp_path / "docs" / "performance.md")
    assert path.read_text() == f"{markers('encoding')[0]}\ntable\n{markers('encoding')[1]}\n"


# -- arguments and encoders ----------------------------------------------------------------
def test_tiny_runs_never_write_over_the_real_report() -> None:
    parser = common.argparse.ArgumentParser()
    common.add_common_args(parser, repeats=5)
    args = common.finish_args(parser.parse_args(["--tiny", "--encoder", "minilm"]))
    assert args.repeats == 1 and args.results == common.TINY_OUTPUT and args.doc.parent == common.TINY_OUTPUT
    assert args.queries == common.DEFAULT_CATALOG / "queries_test.tsv"


def test_encoder_variants_and_labels() -> None:
    assert common.encoder_variants("minilm") == {"MiniLM (sentence-transformers)": "minilm"}
    variants = common.encoder_variants("onnx-int8:/ckpt")
    assert variants == {"torch fp32": "/ckpt", "ONNX fp32": "onnx:/ckpt", "ONNX int8": "onnx-int8:/ckpt"}
    assert [common.variant_label(spec) for spec in ("/ckpt", "onnx:/ckpt", "onnx-int8:/ckpt/", "minilm")] == [
        "torch fp32", "ONNX fp32", "ONNX int8", "MiniLM (sentence-transformers)"]
    assert common.checkpoint_of("minilm") is None and common.checkpoint_of("onnx:/ckpt") == Path("/ckpt")


# -- target 2: choosing the configuration ----------------------------------------------------
def test_best_configuration_respects_the_quality_limit() -> None:
    ratios = {encoding.BASELINE: 1.0, "torch fp32": 1.2, "ONNX fp32": 1.6, "ONNX int8": 3.0}
    quality = [{"configuration": "torch fp32", "ndcg@10": 0.800}, {"configuration": "ONNX fp32", "ndcg@10": 0.800},
               {"configuration": "ONNX int8", "ndcg@10": 0.790}]
    assert encoding.best_configuration(ratios, quality) == {"configuration": "ONNX fp32", "ratio": 1.6, "verdict": "met"}
    quality[2]["ndcg@10"] = 0.7955
    assert encoding.best_configuration(ratios, quality)["configuration"] == "ONNX int8"


# -- target 2, --featurizer-only ----------------------------------------------------------------
def test_featurizer_configurations_give_the_same_batches_and_digests_tell_them_apart() -> None:
    from acebert.encoder import ProductInput
    from tests.unit.test_acebert import _jpeg

    products = [ProductInput(f"title {i}", _jpeg((20 * i, 0, 0)) if i % 3 else None) for i in range(10)]
    configurations = encoding.featurizer_configurations("minilm", 4, [1, 2])
    assert list(configurations) == ["1 thread", "2 threads decoding each batch's images",
                                    "2 threads featurising whole batches ahead"]
    for featurize in configurations.values():
        batches = list(featurize(products))
        assert [len(batch.has_image) for batch in batches] == [4, 4, 2]
        assert np.concatenate([batch.has_image for batch in batches]).tolist() == [bool(i % 3) for i in range(10)]
    digests = {encoding.digest(featurize(products)) for featurize in configurations.values()}
    assert len(digests) == 1
    assert encoding.digest(configurations["1 thread"](products[::-1])) not in digests


def test_featurizer_section_reports_each_configuration_against_one_thread() -> None:
    labels = ["1 thread", "2 threads featurising whole batches ahead"]
    payload = {
        "products": 3000, "with_image": 1700, "batch_size": 64, "repeats": 3, "cores": 2, "identical": True,
        "ratios": dict(zip(labels, [1.0, 1.4])),
        "throughput": {label: {"median": rate, "min": rate - 10, "max": rate + 10}
                       for label, rate in zip(labels, [2000.0, 2800.0])},
    }
    text = encoding.render_featurizer(payload, common.RunInfo.now("bench.performance.encoding", ["--featurizer-only"]))
    assert "| 2 threads featurising whole batches ahead | 2800 | 2790-2810 | 1.40x |" in text
    assert "vs 1 thread" in text and "bit-identical across configurations: yes" in text
    assert "With 2 cores little overlap is possible" in text and "not measured" in text


# -- target 1: the measurement loop -----------------------------------------------------------
class _FakeSearcher:
    """Records which queries it was asked and reports a fixed timing breakdown."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def search(self, request: Any) -> Any:
        self.asked.append((request.mode, request.query))
        timings = {"engine": 2.0, "blend": 0.5, **({"encode": 1.0} if request.mode == "hybrid" else {})}
        return type("Response", (), {"timings_ms": timings})()


def test_query_measure_asks_every_query_in_every_mode_each_round() -> None:
    searcher = _FakeSearcher()
    modes = [query.Mode(query.BM25, searcher, "bm25"), query.Mode("hybrid, fake", searcher, "hybrid")]  # type: ignore[arg-type]
    queries = [f"q{i}" for i in range(7)]
    result = query.measure(modes, queries, rounds=2)
    measured = searcher.asked[len(modes) * len(queries):]  # after the warm-up
    for mode in ("bm25", "hybrid"):
        assert sorted(q for m, q in measured if m == mode) == sorted(queries * 2)
    assert [summary["n"] for summary in result["rounds"][query.BM25]] == [7, 7]
    assert result["breakdown"]["hybrid, fake"] == {"engine": 2.0, "blend": 0.5, "encode": 1.0}


def test_query_paths_ask_every_query_on_every_path_and_blend_like_the_searcher() -> None:
    asked: dict[str, list[str]] = {"a": [], "b": []}
    paths = [query_paths.QueryPath(label, lambda q, label=label: asked[label].append(q)) for label in asked]
    queries = [f"q{i}" for i in range(5)]
    rounds = query.measure(paths, queries, rounds=3)["rounds"]
    for label in asked:
        assert sorted(asked[label][len(queries):]) == sorted(queries * 3)  # after the warm-up
        assert [summary["n"] for summary in rounds[label]] == [5, 5, 5]
    bm25 = {"hits": {"hits": [{"_id": "x", "_score": 9.0}, {"_id": "y", "_score": 1.0}]}}
    knn = {"hits": {"hits": [{"_id": "y", "_score": 0.9}, {"_id": "z", "_score": 0.8}]}}
    assert query_paths._blend(bm25, knn) == ["y", "x", "z"]


def test_the_peer_verdict_pairs_our_hybrid_with_the_server_side_one_and_bm25_within_rounds() -> None:
    def rounds(*p50s: float) -> list[dict[str, float]]:
        return [{"p50": p50, "p99": 2 * p50} for p50 in p50s]

    measured = {query_paths.OURS: rounds(4.0, 8.0), query_paths.SERVER: rounds(5.0, 8.0),
                query_paths.SERVER_PAGE: rounds(4.0, 4.0), query_paths.SERVER_INLINE: rounds(6.0, 8.0),
                query_paths.BM25_MODE: rounds(2.0, 8.0)}
    peer = query_paths.peer_ratios(measured)
    assert peer[query_paths.SERVER]["p50"] == pytest.approx((4 / 5 + 8 / 8) / 2)  # median of two per-round ratios
    assert peer[query_paths.BM25_MODE]["p99"] == pytest.approx((8 / 4 + 16 / 16) / 2)
    verdict = query_paths.peer_verdict(peer)
    assert "p50 vs server-side 0.90x (target <= 0.8x): not met" in verdict
    assert "p99 vs BM25 1.50x (target <= 1.5x): met" in verdict


# -- target 3: summary -----------------------------------------------------------------------
def _ingestion_results(lost: int) -> dict[str, Any]:
    return {
        "sustained": [{"events_per_s": 90.0}, {"events_per_s": 100.0}, {"events_per_s": 110.0}],
        "ceiling": [{"events_per_s": 400.0}, {"events_per_s": 500.0}, {"events_per_s": 450.0}],
        "offered_load": {"events": 10, "offered_per_s": 50.0, "searchable": 10 - lost, "lost": lost,
                         "delay_s": latency_summary([0.5, 0.7, 0.9, 1.1, 1.2]), "max_delay_s": 1.2},
        "dead_letters": 0, "model_version": "m",
    }


def test_ingestion_summary_ratio_and_verdict() -> None:
    summary = ingestion.summarize(_ingestion_results(lost=0))
    assert summary["ratio_to_ceiling"] == pytest.approx(100.0 / 450.0)
    assert summary["p95_verdict"] == "met"
    assert ingestion.summarize(_ingestion_results(lost=1))["p95_verdict"] == "not met"
    assert summary["sustained_updates_per_s"] is None and summary["updates_ratio_to_ceiling"] is None


def test_price_updates_are_held_against_the_ceiling_of_bulk_writing_the_same_updates() -> None:
    results = _ingestion_results(lost=0)
    results["sustained_updates"] = [{"events_per_s": r} for r in (300.0, 360.0, 330.0)]
    for row, rate in zip(results["ceiling"], (380.0, 420.0, 400.0)):
        row["updates"] = {"events_per_s": rate}
    summary = ingestion.summarize(results)
    assert summary["sustained_updates_per_s"]["median"] == 330.0
    assert summary["updates_ceiling_per_s"]["median"] == 400.0
    assert summary["updates_ratio_to_ceiling"] == pytest.approx(330.0 / 400.0)
    assert summary["ratio_to_ceiling"] == pytest.approx(100.0 / 450.0)  # new products keep their own ceiling


# -- target 4: synthetic points --------------------------------------------------------------
def test_synthetic_vectors_are_unit_distinct_and_near_their_source() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(50, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    vectors = scale.synthetic_vectors(base, 120)
    assert vectors.shape == (120, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    to_source = (vectors * base[np.arange(120) % 50]).sum(1)
    assert to_source.min() > 0.85 and not np.allclose(vectors[0], vectors[50])
    assert np.array_equal(vectors, scale.synthetic_vectors(base, 120))
    docs = list(scale.synthetic_documents([{"product_id": "a", "title": "A"}, {"product_id": "b", "title": "B"}],
                                          vectors[:3]))
    assert [(d["product_id"], d["title"]) for d in docs] == [("syn-0", "A"), ("syn-1", "B"), ("syn-2", "A")]


def test_exact_top_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    queries = rng.normal(size=(70, 16)).astype(np.float32)
    expected = [set(np.argsort(-(vectors @ q))[:10]) for q in queries]
    assert scale.exact_top(queries, vectors, 10) == expected


def test_scale_sizes_and_extrapolation() -> None:
    assert scale.real_sizes(["1000", "5000", "full"], 3000) == [1000, 3000]
    previous = {"documents": 100_000, "bulk_s": 100.0, "merge_s": 20.0}
    minutes = scale.predicted_minutes(previous, 1_000_000)
    assert minutes == pytest.approx(120 * 10 * np.log(1e6) / np.log(1e5) / 60)


def test_a_search_reads_the_graph_and_the_vectors_it_scores() -> None:
    files = {"vex": 100, "vec": 1536, "veq": 400, "tim": 9999}
    assert scale.searched_bytes(files, quantized=False) == 100 + 1536
    assert scale.searched_bytes(files, quantized=True) == 100 + 400
    assert scale.searched_bytes({}, quantized=True) == 0


def test_the_chosen_breadth_is_the_narrowest_that_reaches_the_target_recall() -> None:
    curve = [{"candidates": c, "recall_at_10": r} for c, r in [(100, 0.83), (200, 0.91), (400, 0.96), (800, 0.99)]]
    assert scale.chosen_breadth({"curve": curve})["candidates"] == 400
    assert scale.chosen_breadth({"curve": curve[:2]}) is None


def test_quantised_vectors_are_measured_only_up_to_their_limit() -> None:
    import argparse

    small, big = HnswGraph(), HnswGraph(32, 256)
    args = argparse.Namespace(vectors=["float", "int8"], graphs=[small, big], quantized_up_to=100_000)
    assert scale.storages(args, 100_000) == [("float", small), ("float", big), ("int8", small), ("int8", big)]
    assert scale.storages(args, 100_001) == [("float", small), ("float", big)]
    assert scale.storages(argparse.Namespace(vectors=["int8"], graphs=[small], quantized_up_to=None), 10**6) == [
        ("int8", small)]


def test_graphs_are_parsed_from_the_command_line_and_bad_ones_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale._parse_args(["--graphs", "16:128,32:256"]).graphs == [HnswGraph(16, 128), HnswGraph(32, 256)]
    assert scale._parse_args([]).graphs == [HnswGraph()]
    with pytest.raises(SystemExit):
        scale._parse_args(["--graphs", "32"])
    assert "--graphs: an HNSW graph is written M:EF_CONSTRUCTION" in capsys.readouterr().err


def test_a_variant_gets_its_own_json_and_section_next_to_the_target(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    write_section("encoding", "## Target 2: encoding throughput\n\ndefault rows", doc)
    parser = argparse.ArgumentParser()
    common.add_common_args(parser, repeats=1)
    args = common.finish_args(parser.parse_args(["--results", str(tmp_path), "--doc", str(doc),
                                                 "--variant", "title-only"]))
    path = common.write_outputs(args, "encoding", {"rate": 1}, "## Target 2: encoding throughput\n\ntitle-only rows")
    assert path == tmp_path / "performance-encoding-title-only.json"
    text = doc.read_text()
    start, end = markers("encoding-title-only")
    assert "default rows" in text and "<!-- bench:encoding:end -->" in text
    assert f"{start}\n## Target 2: encoding throughput (title-only)\n\ntitle-only rows\n{end}" in text


# -- target 4: quantised vectors -------------------------------------------------------------
def test_quantization_asks_the_default_the_searchers_breadth_and_that_breadth_rescored() -> None:
    assert quantization.settings(400) == [(None, None), (400, None), (400, 2.0), (400, 3.0)]
    assert quantization.recall_at_10(list("abcdefghij") + ["z"], list("abcdefghxy")) == 0.8


def test_the_quantization_report_has_a_row_per_vector_kind_and_setting() -> None:
    rows = [{"vectors": kind, "candidates": c, "oversample": o, "recall@10": 0.9, "ndcg@10": 0.9, "knn_ms_p50": 5.0}
            for kind in quantization.VECTOR_KINDS for c, o in quantization.settings(400)]
    payload = {"engine": "opensearch", "documents": 3, "model_version": "m", "queries": 2, "exact_ndcg@10": 0.91,
               "searcher_candidates": 400, "rows": rows}
    info = common.RunInfo.now("bench.performance.quantization", [])
    text = quantization.render(payload, info)
    assert "| int8 | 400 | 2x | 0.900 | 0.9000 | 5.00 |" in text
    assert "| float | engine default | – |" in text and "nDCG@10 of exact search: 0.9100" in text


def test_ingestion_writes_into_the_one_graph_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert ingestion._parse_args(["--graph", "32:256"]).graph == HnswGraph(32, 256)
    assert ingestion._parse_args([]).graph == HnswGraph()
    for bad in ("32", "16:128,32:256"):
        with pytest.raises(SystemExit):
            ingestion._parse_args(["--graph", bad])
    err = capsys.readouterr().err
    assert "--graph: an HNSW graph is written M:EF_CONSTRUCTION" in err and "--graph takes one M:EF_CONSTRUCTION" in err


def test_lookup_reads_take_turns_per_batch_and_are_compared_batch_by_batch() -> None:
    order: list[tuple[str, tuple[str, ...]]] = []
    reads = {label: (lambda batch, label=label: order.append((label, tuple(batch)))) for label in ("whole", "filtered")}
    seconds = lookup_reads.timed_rounds(reads, [["1"], ["2"]], repeats=2)
    assert order == [("whole", ("1",)), ("filtered", ("1",)), ("whole", ("2",)), ("filtered", ("2",))] * 2
    assert [len(times) for times in seconds.values()] == [4, 4]
    summary = lookup_reads.summarize({"whole": [1.0, 2.0, 4.0], "filtered": [3.0, 2.0, 2.0]}, "whole")
    assert summary["filtered"] == {"ms_per_batch": 2.0 * 1000, "vs_baseline": statistics.median([3 / 1, 2 / 2, 2 / 4])}
    assert summary["whole"]["vs_baseline"] == 1.0
