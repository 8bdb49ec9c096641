"""The ablation command's bookkeeping: variant configs, kept rows, the table (no training here)."""
from __future__ import annotations

import json
from pathlib import Path

from acebert.ablations import END, START, VARIANTS, markdown_table, previous_results, variant_config, write_into_doc

CONFIG = Path(__file__).resolve().parents[2] / "configs/acebert.toml"


def _report(ndcg: float) -> dict:
    split = {"queries": 2, "all": {"ndcg@10": ndcg, "recall@10": 0.5, "recall@100": 0.9, "mrr@10": 0.7},
             "colour_slice": {"queries": 1, "ndcg@10": 0.4, "recall@10": 0.3}, "modality_gap": 0.2}
    return {"test": split}


def test_each_variant_changes_one_thing_and_gets_its_own_directory() -> None:
    full = variant_config(CONFIG, "full")
    bm25 = variant_config(CONFIG, "bm25_negatives")
    assert (bm25.train.hard_negatives, bm25.train.hard_negative_source) == (1, "bm25")
    assert bm25.train.output_path == Path(str(full.train.output_path) + "-bm25_negatives")
    assert not variant_config(CONFIG, "no_image").model.use_image
    assert variant_config(CONFIG, "shared_towers").model.shared_towers
    assert not variant_config(CONFIG, "no_adversarial").train.adversarial


def test_a_subset_run_keeps_the_other_variants_rows(tmp_path: Path) -> None:
    saved = tmp_path / "ablations.json"
    assert previous_results(saved, ["full"]) == {}
    saved.write_text(json.dumps({"minilm": _report(0.6), "full": _report(0.8), "no_image": _report(0.7)}))
    kept = previous_results(saved, ["no_image"])
    assert set(kept) == {"full"}  # minilm is always re-evaluated, no_image is being redone
    assert set(VARIANTS) >= set(kept)


def test_table_goes_between_the_markers_and_keeps_the_prose(tmp_path: Path) -> None:
    doc = tmp_path / "acebert.md"
    doc.write_text(f"# Model\n\nintro\n\n{START}\nold table\n{END}\n\nreading\n")
    write_into_doc(doc, markdown_table({"minilm": _report(0.6), "full": _report(0.8)}, ["test"]))
    text = doc.read_text()
    assert "old table" not in text and text.startswith("# Model\n\nintro") and text.endswith("reading\n")
    assert "| full | test (2 q, 1 colour) | 0.8000 |" in text
