"""``hybrid-search train``, then ``rollout``, then ``rollback``, through the command line on a real engine.

The catalogue is a text-only slice of the sample (so training, featurising and the ONNX export
run without a single photo), judged by the sample's shipped train-split judgments. The training
is tiny (one epoch of three batches, a title-only model through ``--override``, which also
spares the export its image graph): this checks the path, not the model's quality, so the
rollout is forced. OpenSearch only: the encoder and the index switch are engine-independent, and
``test_acebert_ingestion`` already switches models on both sides of a live worker.
"""
from __future__ import annotations

import csv
import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from acebert.blend_choice import WEIGHT_GRID, read_blend
from acebert.data import load_catalog
from indexer.models import MODEL_META
from query_rewriter.search import DEFAULT_WEIGHTS, SearchRequest
from service.cli import main as cli_main
from system import System
from tests.integration.conftest import SAMPLE, Stack

PRODUCTS = 80


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first sample products, without their image column."""
    directory = tmp_path_factory.mktemp("text-only-catalog")
    with open(SAMPLE / "products.csv", newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))[:PRODUCTS]
    with open(directory / "products.csv", "w", newline="", encoding="utf-8") as target:
        writer = csv.DictWriter(target, fieldnames=["product_id", "title", "category"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return directory


def test_train_then_rollout_then_rollback(stack: Stack, catalog: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    if stack.kind != "opensearch":
        pytest.skip("the model and the switch are engine-independent; run once")
    settings = replace(stack.system.settings, index_prefix="itest-train", queue_prefix="itest-train",
                       encoder="minilm", image_root=catalog)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)  # the CLI reads its settings from the environment, as in production
    system = System(settings)
    engine, names = system.engine, system.names

    cli_main(["load-catalog", str(catalog), "--direct"])
    engine.refresh(names.read_alias)
    first = engine.indices_of_alias(names.read_alias)
    assert len(first) == 1 and engine.count(names.read_alias) == PRODUCTS

    output = tmp_path / "model"
    cli_main(["train", "--catalog", str(catalog), "--queries", str(SAMPLE / "queries.tsv"),
              "--qrels", str(SAMPLE / "qrels.tsv"), "--output", str(output),
              "--epochs", "1", "--batch-size", "8", "--max-train-pairs", "24", "--override", "model.use_image=false"])
    printed = capsys.readouterr().out
    report = json.loads((output / "evaluation.json").read_text())
    assert (output / "evaluation.md").is_file()
    assert json.loads((output / "onnx" / "manifest.json").read_text())["graphs"] == ["product_text", "query"]
    assert report["counts"]["products"] == PRODUCTS and report["counts"]["with_image"] == 0
    assert report["counts"]["image_title"] == 0  # a text-only catalogue: the default alignment turned itself off
    assert report["image_title_dropped"]
    assert "fewer than 2 products with a photo" in (output / "evaluation.md").read_text()
    assert report["counts"]["heldout_queries"] >= 1 and report["counts"]["pairs_per_epoch"] == 24
    ndcg = report["ndcg@10"]
    assert ndcg["served"] == "all-MiniLM-L6-v2" and ndcg["candidate"].endswith("-onnx-int8-w7")
    assert 0 < ndcg["served_value"] <= 1 and 0 < ndcg["candidate_value"] <= 1
    with open(report["heldout"]["queries"], encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle, delimiter="\t"))) == report["counts"]["heldout_queries"]
    assert f"next: {report['next']}" in printed
    weights = report["blend"]["weights"]  # the hybrid's BM25 weight, chosen on the held-out queries
    assert read_blend(output) == weights and weights["bm25"] in WEIGHT_GRID
    assert weights["bm25"] + weights["knn"] == pytest.approx(1.0)

    command = shlex.split(report["next"])
    assert command[:2] == ["hybrid-search", "rollout"]
    cli_main([*command[1:], "--force"])  # a 3-batch model may score below MiniLM; the switch is under test
    second = engine.indices_of_alias(names.read_alias)
    assert second != first and engine.indices_of_alias(names.write_alias) == second
    assert engine.mapping_meta(second[0])[MODEL_META]["encoder"] == f"onnx-int8:{output}"
    engine.refresh(second[0])
    assert engine.count(second[0]) == PRODUCTS
    title = load_catalog(catalog)["title"][0]
    searcher = System(settings).searcher  # a new process's view: follows the alias to the trained model
    hits = searcher.search(SearchRequest(title, mode="knn", size=5)).hits
    assert hits and {h.source.get("model_version") for h in hits} == {ndcg["candidate"]}
    assert searcher.search(SearchRequest(title, size=5)).weights == weights  # the hybrid blends with the model's

    cli_main(["rollback"])
    assert engine.indices_of_alias(names.read_alias) == first == engine.indices_of_alias(names.write_alias)
    assert "now use" in capsys.readouterr().out
    after = System(settings).searcher  # back on MiniLM, which stores no weights: the default blend
    assert after.search(SearchRequest(title, size=5)).weights == DEFAULT_WEIGHTS
    system.close()
