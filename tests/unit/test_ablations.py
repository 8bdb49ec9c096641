"""The ablation command's bookkeeping: variant configs, kept rows, the table (no training here)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from acebert.ablations import (
    END,
    SEEDS_END,
    SEEDS_START,
    START,
    VARIANTS,
    markdown_table,
    previous_results,
    rows_it_would_drop,
    seed_mean_per_query,
    seeds_table,
    variant_config,
    write_into_doc,
)
from acebert.metrics import permutation_p_value

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
    assert variant_config(CONFIG, "adversarial").train.adversarial and not full.train.adversarial
    assert full.model.use_category and not variant_config(CONFIG, "no_category").model.use_category
    assert (full.train.hard_negatives, full.train.hard_negative_source) == (1, "grade1")
    assert variant_config(CONFIG, "no_hard_negatives").train.hard_negatives == 0
    ungraded = variant_config(CONFIG, "ungraded").train
    assert full.train.grade1_weight == 1.0 and (ungraded.grade1_weight, ungraded.hard_negatives) == (0.0, 0)
    assert full.model.product_layers is None and variant_config(CONFIG, "product_layers_3").model.product_layers == 3
    lambda_01 = variant_config(CONFIG, "lambda_0.1").train
    assert lambda_01.adversarial and lambda_01.lambda_max == 0.1


def test_variants_measured_before_the_colour_default_still_train_what_they_measured() -> None:
    def colour_settings(name: str) -> tuple:
        run = variant_config(CONFIG, name)
        return (run.model.colour_bins, run.train.image_title_weight, run.train.head_lr, run.model.raw_image_tokens,
                run.train.epochs)

    assert colour_settings("full") == (8, 0.5, 5e-3, False, 5)  # the default since 2026-12-08
    assert colour_settings("epochs_4") == (8, 0.3, 5e-3, False, 4)  # the one before it
    assert colour_settings("image_title_0.5") == (8, 0.5, 5e-3, False, 4)  # measured on top of epochs_4
    assert colour_settings("title_span_0.1") == (8, 0.3, 5e-3, False, 4)  # and so was this one
    assert colour_settings("epochs_3") == (8, 0.3, 5e-3, False, 3)  # the one before that
    assert colour_settings("colour_only") == (8, 0.3, 5e-3, False, 2)
    assert colour_settings("raw_image_tokens") == (8, 0.3, 5e-3, True, 2)  # the one before that
    assert colour_settings("raw_image_tokens_3_epochs") == (8, 0.3, 5e-3, True, 3)
    assert colour_settings("image_title_share_1") == (8, 0.3, 5e-3, True, 2)  # measured on top of raw_image_tokens
    assert colour_settings("colour_4") == (4, 0.3, 5e-3, True, 2)  # and the one before
    assert colour_settings("colour_token_image_title_1") == (4, 1.0, 5e-3, True, 2)  # measured on top of colour_4
    assert colour_settings("pixels_only") == (0, 0.0, 5e-4, True, 2)  # the default until 2026-12-06
    assert colour_settings("colour_token") == (4, 0.0, 5e-4, True, 2)  # measured on top of pixels_only
    assert colour_settings("image_title_fast_0.3") == (0, 0.3, 5e-3, True, 2)
    no_image = variant_config(CONFIG, "no_image")  # nothing for the alignment to align
    assert not no_image.model.use_image and no_image.train.image_title_weight == 0.0


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


def test_another_seed_gets_its_own_directory_and_the_configs_seed_keeps_the_plain_one() -> None:
    full = variant_config(CONFIG, "full")
    assert variant_config(CONFIG, "full", full.train.seed).train.output_path == full.train.output_path
    other = variant_config(CONFIG, "adversarial", full.train.seed + 1)
    assert other.train.seed == full.train.seed + 1 and other.train.adversarial
    assert other.train.output_path == Path(f"{full.train.output_path}-adversarial-seed{full.train.seed + 1}")


def _seeded(per_query: dict[str, float], dev: float = 0.5) -> dict:
    n = sum(per_query.values()) / len(per_query)
    split = {"all": {"ndcg@10": n}, "per_query_ndcg@10": per_query, "modality_gap": 0.3, "colour_slice": {"queries": 0}}
    return {"test": split, "dev": {"all": {"ndcg@10": dev}}}


def test_seed_table_reports_mean_sd_and_the_paired_difference_of_seed_averaged_queries() -> None:
    runs = {
        "full": {"13": _seeded({"a": 0.5, "b": 0.7}), "14": _seeded({"a": 0.7, "b": 0.7})},
        "no_image": {"13": _seeded({"a": 0.4, "b": 0.6}), "14": _seeded({"a": 0.4, "b": 0.6})},
    }
    assert seed_mean_per_query(list(runs["full"].values()), "test") == pytest.approx({"a": 0.6, "b": 0.7})
    table = seeds_table(runs)
    # full: test nDCG 0.6 and 0.7 -> mean 0.65, sample sd sqrt(2 * 0.05**2 / 1) = 0.0707
    assert "| full | 13, 14 | 0.6500 ± 0.0707 |" in table
    # no_image minus full per query: a 0.4 - 0.6 = -0.2, b 0.6 - 0.7 = -0.1 -> mean -0.15
    assert "| no_image | 13, 14 | 0.5000 ± 0.0000 |" in table and "| -0.1500 [" in table


def test_permutation_p_value_is_one_for_no_difference_and_small_for_a_consistent_one() -> None:
    assert permutation_p_value([0.0, 0.0, 0.0]) == 1.0
    consistent = [0.1] * 20  # only 2 of 2**20 sign patterns reach |mean| 0.1
    assert permutation_p_value(consistent) < 0.001
    assert permutation_p_value([0.1, -0.1, 0.2, -0.2]) > 0.5
    with pytest.raises(ValueError):
        permutation_p_value([])


def test_a_finished_checkpoint_trained_with_other_settings_is_refused_not_reused(tmp_path: Path) -> None:
    from acebert.ablations import _trained
    from acebert.config import ConfigError, load_config

    run = load_config(CONFIG, [f"train.output_dir={json.dumps(str(tmp_path))}"])
    assert _trained(run) is None  # nothing there yet
    saved = run.model_dump(mode="json")
    (tmp_path / "config.json").write_text(json.dumps({**saved, "epoch": run.train.epochs}))
    assert _trained(run)["epoch"] == run.train.epochs
    moved = {**saved["train"], "output_dir": "/elsewhere", "adversarial": not run.train.adversarial}
    (tmp_path / "config.json").write_text(json.dumps({**saved, "train": moved, "epoch": run.train.epochs}))
    with pytest.raises(ConfigError, match="train.adversarial"):
        _trained(run)


def test_a_cached_seed_report_is_reused_only_for_the_checkpoint_it_scored(tmp_path: Path) -> None:
    from acebert.ablations import report_is_current
    from acebert.checkpoint_layout import WEIGHTS, weights_version
    from acebert.config import load_config

    run = load_config(CONFIG, [f"train.output_dir={json.dumps(str(tmp_path))}"])
    (tmp_path / WEIGHTS).write_bytes(b"weights")
    report = {"checkpoint": str(tmp_path), "model_version": weights_version(tmp_path)}
    assert not report_is_current(report, run)  # not finished: no config.json
    (tmp_path / "config.json").write_text(json.dumps({**run.model_dump(mode="json"), "epoch": run.train.epochs}))
    assert report_is_current(report, run)
    (tmp_path / WEIGHTS).write_bytes(b"retrained")  # same directory, other weights: score it again
    assert not report_is_current(report, run)
    assert not report_is_current({**report, "checkpoint": "/elsewhere"}, run)


def test_the_seed_table_names_the_rows_a_rewrite_would_drop(tmp_path: Path) -> None:
    doc = tmp_path / "acebert.md"
    assert rows_it_would_drop(doc, ["full"]) == []  # no doc yet: the table is appended
    runs = {"full": {"13": _seeded({"a": 0.5})}, "no_image": {"13": _seeded({"a": 0.4})}}
    write_into_doc(doc, seeds_table(runs), SEEDS_START, SEEDS_END)
    assert rows_it_would_drop(doc, ["full", "no_image", "adversarial"]) == []
    assert rows_it_would_drop(doc, ["full", "adversarial"]) == ["no_image"]
