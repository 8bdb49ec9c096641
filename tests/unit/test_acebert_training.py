"""Tiny ACE-BERT trainings on real catalogue products (titles + photos from the shared data).

They check that training learns (loss down, recall up over the untrained network on the same
products) and that a run interrupted after an epoch and resumed ends with exactly the same
weights as an uninterrupted one (which also shows CPU training is deterministic).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from acebert.blend_choice import BLEND_FILE, WEIGHT_GRID
from acebert.checkpoint import AceBertEncoder, load_checkpoint_encoder
from acebert.checkpoint_layout import load_tokenizer, weights_version
from acebert.config import ConfigError, RunConfig, build_config
from acebert.encoder import Encoder
from acebert.evaluate import search
from acebert.metrics import evaluate_run
from acebert.minilm import base_model_path
from acebert.model import AceBert
from acebert.pairs import in_share, make_batches
from acebert.train import Trainer, load_training_data, train

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared/data/fashion"
pytestmark = pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"shared dataset not found at {DATA_DIR}")


def _run(tmp_path: Path, name: str, **train: Any) -> RunConfig:
    settings = {"data_dir": str(DATA_DIR), "output_dir": str(tmp_path / name), "eval_each_epoch": False, "seed": 7}
    return build_config({"train": settings | train})


def _train_recall(encoder: Encoder, run: RunConfig) -> float:
    """Recall@5 of the run's own training queries over its restricted catalogue."""
    data = load_training_data(run)
    product_ids = list(data.products)
    product_vectors = encoder.encode_products([data.products[p] for p in product_ids])
    query_ids = list(data.examples.queries)
    query_vectors = encoder.encode_queries([data.examples.queries[q] for q in query_ids])
    results = search(query_vectors, product_vectors, product_ids, k=5)
    qrels = {qid: {pid: 2 for pid in data.examples.positives[qid]} for qid in query_ids}
    run_results = dict(zip(query_ids, results))
    # ranx stops at the run's length, so recall@10 over a top-5 run is recall@5
    return evaluate_run(qrels, run_results)["recall@10"]


def test_tiny_training_lowers_loss_and_beats_the_untrained_network(tmp_path: Path) -> None:
    run = _run(tmp_path, "learn", epochs=3, batch_size=8, max_products=32, max_positives_per_query=4,
               lr=1e-4, head_lr=1e-3)
    out = train(run, progress=False)

    history = json.loads((out / "config.json").read_text())["history"]
    assert len(history) == 3
    assert history[-1]["train"]["match"] < 0.8 * history[0]["train"]["match"]

    torch.manual_seed(run.train.seed)
    untrained = AceBertEncoder(
        AceBert.from_backbone_path(run.model, base_model_path()), load_tokenizer(base_model_path()), "untrained"
    )
    before = _train_recall(untrained, run)
    after = _train_recall(load_checkpoint_encoder(out, device="cpu"), run)
    assert after > before + 0.05, (before, after)


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    small = {"epochs": 2, "batch_size": 8, "max_products": 16, "max_train_pairs": 16}
    straight = train(_run(tmp_path, "straight", **small), progress=False)

    resumed_run = _run(tmp_path, "resumed", **small)
    train(resumed_run, progress=False, until_epoch=1)
    assert json.loads((resumed_run.train.output_path / "config.json").read_text())["epoch"] == 1
    resumed = train(resumed_run, resume=True, progress=False)

    assert weights_version(resumed) == weights_version(straight)
    assert weights_version(resumed / "epoch-001") != weights_version(resumed)


def test_the_last_epoch_chooses_the_hybrid_blend_on_dev(tmp_path: Path) -> None:
    """The blend belongs to the final weights: none after a partial run, chosen after the last
    epoch, and written again by ``--resume`` on a finished run that lacks one (the train split
    stands in for dev here: only the mechanics are under test)."""
    small = {"epochs": 2, "batch_size": 8, "max_products": 16, "max_train_pairs": 16, "eval_each_epoch": True,
             "dev_queries": "queries_train.tsv", "dev_qrels": "qrels_train.tsv"}
    run = _run(tmp_path, "blend", **small)
    out = run.train.output_path
    train(run, progress=False, until_epoch=1)
    assert not (out / BLEND_FILE).exists()

    train(run, resume=True, progress=False)
    chosen = json.loads((out / BLEND_FILE).read_text())
    curve = {float(w): v for w, v in chosen["ndcg@10_by_bm25_weight"].items()}
    assert sorted(curve) == list(WEIGHT_GRID) and chosen["queries"] > 0
    assert chosen["weights"]["bm25"] in curve and curve[chosen["weights"]["bm25"]] == max(curve.values())

    (out / BLEND_FILE).unlink()
    train(run, resume=True, progress=False)
    assert json.loads((out / BLEND_FILE).read_text()) == chosen


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    small = {"epochs": 2, "batch_size": 8, "max_products": 16, "max_train_pairs": 16}
    train(_run(tmp_path, "run", **small), progress=False, until_epoch=1)
    with pytest.raises(ConfigError, match="batch_size"):
        train(_run(tmp_path, "run", **(small | {"batch_size": 4})), resume=True, progress=False)


def test_bm25_hard_negatives_come_from_the_catalogue_titles(tmp_path: Path) -> None:
    run = _run(tmp_path, "bm25", max_products=200, hard_negatives=2, hard_negative_source="bm25",
               bm25_negative_depth=5)
    data = load_training_data(run)
    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", text.lower()))

    pools = data.examples.negatives
    assert set(pools) == set(data.examples.queries) and any(pools.values())
    for qid, pool in pools.items():
        assert len(pool) <= 5 and not set(pool) & set(data.examples.positives[qid])
        query = words(data.examples.queries[qid])
        assert all(query & words(data.products[pid].title) for pid in pool), (qid, pool)


def test_the_image_title_loss_trains_on_its_share_of_products_with_images(tmp_path: Path) -> None:
    run = _run(tmp_path, "align", epochs=2, batch_size=8, max_products=48, max_train_pairs=16,
               image_title_weight=1.0, image_title_share=0.5, image_title_epochs=1)
    data = load_training_data(run)
    trainer = Trainer(run, data, progress=False)
    pool = trainer.image_title_pool
    assert pool and all(in_share(pid, 0.5) and data.products[pid].image for pid in pool)
    assert {pid for pid, product in data.products.items() if product.image and in_share(pid, 0.5)} == set(pool)

    trainer.model.zero_grad()
    loss = trainer.image_title_loss()
    loss.backward()
    # the photo-side vectors come from the image tokens, so they receive the loss's gradient
    assert loss.item() > 0 and trainer.model.image_tokens.patch_proj.weight.grad.abs().sum() > 0

    out = train(run, progress=False)
    history = json.loads((out / "config.json").read_text())["history"]
    assert history[0]["train"]["align"] > 0 and history[1]["train"]["align"] == 0  # image_title_epochs = 1


def test_without_the_image_title_weight_nothing_is_drawn_for_it(tmp_path: Path) -> None:
    run = _run(tmp_path, "off", max_products=48, image_title_share=0.5)
    assert Trainer(run, load_training_data(run), progress=False).image_title_pool == {}


def test_the_title_span_loss_matches_words_of_catalogue_titles_to_their_products(tmp_path: Path) -> None:
    run = _run(tmp_path, "spans", epochs=1, batch_size=8, max_products=48, max_train_pairs=16, title_span_weight=1.0)
    data = load_training_data(run)
    trainer = Trainer(run, data, progress=False)
    assert set(trainer.span_titles) == set(data.products)  # every catalogue product the run trains on

    trainer.model.zero_grad()
    loss = trainer.title_span_loss()
    loss.backward()
    # spans go through the query tower, whole products through the product tower: both get its gradient
    assert loss.item() > 0
    assert trainer.model.query_bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert trainer.model.product_bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0

    out = train(run, progress=False)
    assert json.loads((out / "config.json").read_text())["history"][0]["train"]["spans"] > 0


def test_without_the_title_span_weight_nothing_is_drawn_for_it(tmp_path: Path) -> None:
    run = _run(tmp_path, "no-spans", max_products=48)
    trainer = Trainer(run, load_training_data(run), progress=False)
    assert trainer.span_titles == {}
    examples = trainer.data.examples
    batch = make_batches(examples, examples.epoch_pairs(trainer.rng, 8, 16), 8, 0, trainer.rng)[0]
    state = trainer.rng.getstate()
    assert trainer.train_step(batch)["spans"] == 0
    assert trainer.rng.getstate() == state  # the step drew nothing: a run without spans repeats as before


def test_frozen_layers_keep_their_pretrained_weights_and_the_rest_still_learns(tmp_path: Path) -> None:
    run = _run(tmp_path, "frozen", batch_size=8, max_products=32, max_train_pairs=8, frozen_layers=2)
    trainer = Trainer(run, load_training_data(run), progress=False)
    towers = {"query": trainer.model.query_bert, "product": trainer.model.product_bert}
    before = {name: {key: value.clone() for key, value in bert.state_dict().items()} for name, bert in towers.items()}
    trainer.train_epoch()
    for name, bert in towers.items():
        after = bert.state_dict()
        changed = {key for key in after if not torch.equal(after[key], before[name][key])}
        assert not any(key.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1.")) for key in changed), name
        assert any(key.startswith("encoder.layer.5.") for key in changed), name
    with pytest.raises(ValueError, match="only 6 layers"):
        Trainer(_run(tmp_path, "too-many", max_products=32, frozen_layers=7), load_training_data(run), progress=False)
