"""Training ACE-BERT: ``python -m acebert.train --config configs/acebert.toml [--override k=v ...] [--resume]``.

Each epoch: a fresh draw of (train query, grade-2 product) pairs, in-batch softmax matching
loss plus the domain classifier's BCE through the gradient reversal layer (lambda warmed up
with the DANN schedule over the whole run), AdamW with linear warm-up and decay. After every
epoch a full checkpoint goes to ``<output_dir>/epoch-NNN`` (with the optimizer, scheduler and
RNG states needed to ``--resume``), and the latest model is also written to ``<output_dir>``
itself, which is what ``load_encoder`` / ``acebert.evaluate --checkpoint`` take. After the last
epoch, the BM25 weight of the hybrid this model is served with is chosen on the dev split and
written next to it (``blend.json``, :mod:`acebert.blend_choice`); ``--resume`` on a finished run
without one writes it.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from acebert.augment import augment_products
from acebert.blend_choice import BLEND_FILE, BlendChoice, choose_on_catalog
from acebert.checkpoint import AceBertEncoder, save_checkpoint
from acebert.checkpoint_layout import weights_version
from acebert.config import ConfigError, RunConfig, build_config, load_config
from acebert.data import catalog_inputs, load_catalog, load_qrels, load_queries
from acebert.encoder import ProductInput
from acebert.evaluate import encode_catalog, evaluate_split, judged_queries, search
from acebert.features import Featurizer
from acebert.losses import InBatchContrastive, domain_loss
from acebert.metrics import Qrels
from acebert.minilm import base_model_path
from acebert.model import AceBert, dann_lambda
from acebert.pairs import (
    Batch,
    TrainingExamples,
    bm25_negative_pools,
    image_title_batch,
    in_share,
    make_batches,
    title_span_batch,
)
from acebert.tensors import device_tensors

STATE_FILE = "training_state.pt"
EPOCH_DIR = "epoch-{:03d}"
# settings that may differ on --resume without changing what is trained (a run directory may be moved)
RESUME_FREE_KEYS = {"threads", "device", "eval_each_epoch", "output_dir"}


def seed_everything(seed: int, threads: int) -> None:
    """Fix every RNG and ask torch for deterministic kernels, so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # CUDA has no deterministic variant of some kernels; there we warn rather than fail
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrainingData:
    """Everything a run reads from disk, loaded once."""

    products: dict[str, ProductInput]
    examples: TrainingExamples
    catalog: pd.DataFrame  # the (possibly restricted) catalogue, for dev evaluation
    dev: tuple[pd.DataFrame, Qrels] | None
    paths: dict[str, str]


def load_training_data(run: RunConfig) -> TrainingData:
    """Catalogue, train pairs and dev split from the files the config names (benchmark layout)."""
    cfg = run.train
    dev_paths = (cfg.resolve(cfg.dev_queries), cfg.resolve(cfg.dev_qrels))
    dev = (load_queries(dev_paths[0]), load_qrels(dev_paths[1])) if cfg.eval_each_epoch else None
    paths = {
        "catalog": str(cfg.data_path),
        "train_queries": str(cfg.resolve(cfg.train_queries)),
        "train_qrels": str(cfg.resolve(cfg.train_qrels)),
        "dev_queries": str(dev_paths[0]),
        "dev_qrels": str(dev_paths[1]),
    }
    return build_training_data(run, load_catalog(cfg.data_path), load_queries(paths["train_queries"]),
                               load_qrels(paths["train_qrels"]), dev, paths)


def build_training_data(
    run: RunConfig, catalog: pd.DataFrame, train_queries: pd.DataFrame, train_qrels: Qrels,
    dev: tuple[pd.DataFrame, Qrels] | None, paths: dict[str, str],
) -> TrainingData:
    """Training data from judgments already in memory (e.g. a user's, with a held-out part removed).

    ``max_products`` keeps the first N catalogue products that are train positives; ``paths``
    says where the data came from, for the checkpoint's record.
    """
    cfg = run.train
    if cfg.max_products:
        positive = {pid for judged in train_qrels.values() for pid, g in judged.items() if g == 2}
        catalog = catalog[catalog["product_id"].isin(positive)].head(cfg.max_products).reset_index(drop=True)
    products = dict(zip(catalog["product_id"], catalog_inputs(catalog)))
    examples = TrainingExamples.build(train_queries, train_qrels, set(products))
    if cfg.hard_negatives and cfg.hard_negative_source == "bm25":
        titles = dict(zip(catalog["product_id"], catalog["title"]))
        pools = bm25_negative_pools(examples.queries, examples.positives, titles, cfg.bm25_negative_depth)
        examples = dataclasses.replace(examples, negatives=pools)
    return TrainingData(products, examples, catalog, dev, paths)


def image_title_pool(run: RunConfig, products: Mapping[str, ProductInput]) -> dict[str, str]:
    """Product id -> title of the products the image-title loss draws from, in a fixed order.

    Those with a photo the product tower reads, in ``image_title_share``; none with the loss off.
    """
    cfg = run.train
    if not (cfg.image_title_weight and run.model.use_image):
        return {}
    return {pid: product.title for pid, product in sorted(products.items())
            if product.image is not None and in_share(pid, cfg.image_title_share)}


def steps_per_epoch(pairs: int, batch_size: int) -> int:
    """Batches :func:`acebert.pairs.make_batches` yields for ``pairs`` pairs (a lone last pair is dropped)."""
    full, rest = divmod(pairs, batch_size)
    return full + (1 if rest >= 2 else 0)


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def freeze_lower_layers(model: AceBert, layers: int) -> None:
    """Keep each backbone's embeddings and first ``layers`` transformer layers at their pretrained weights.

    Why: on a CPU the backward pass is most of a step. Frozen layers need no weight gradients,
    and the query tower, which has nothing trainable below them, no gradients through them at
    all, while the product tower still passes gradients down to its image tokens.
    """
    if layers == 0:
        return
    for bert in {id(b): b for b in (model.query_bert, model.product_bert) if b is not None}.values():
        if layers > len(bert.encoder.layer):
            raise ValueError(f"frozen_layers = {layers}, but a tower has only {len(bert.encoder.layer)} layers")
        bert.embeddings.requires_grad_(False)
        for layer in bert.encoder.layer[:layers]:
            layer.requires_grad_(False)


class Trainer:
    """Holds the model, optimiser and RNG for one run; :meth:`fit` runs (or resumes) it."""

    def __init__(self, run: RunConfig, data: TrainingData, progress: bool = True) -> None:
        from transformers import AutoTokenizer

        cfg = run.train
        self.run = run
        self.data = data
        self.progress = progress
        self.device = pick_device(cfg.device)
        # the Hugging Face tokenizer writes the checkpoint's tokenizer files; its fast backend featurises
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
        self.model = AceBert.from_backbone_path(run.model, base_model_path()).to(self.device)
        self.featurizer = Featurizer(self.tokenizer.backend_tokenizer, run.model)
        self.matching = InBatchContrastive(cfg.temperature, cfg.learn_temperature, cfg.grade1_weight)
        self.matching.to(self.device)
        freeze_lower_layers(self.model, cfg.frozen_layers)
        new_modules = [m for m in (self.model.image_tokens, self.model.query_proj, self.model.product_proj) if m is not None]
        new_params = [p for m in new_modules for p in m.parameters()] + list(self.model.domain_classifier.parameters())
        new_ids = {id(p) for p in new_params}
        bert_params = [p for p in self.model.parameters() if id(p) not in new_ids and p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": bert_params, "lr": cfg.lr},
                {"params": new_params, "lr": cfg.head_lr},
                # no weight decay: it would drag a learned temperature towards 1
                {"params": [self.matching.log_scale], "lr": cfg.head_lr, "weight_decay": 0.0},
            ],
            weight_decay=cfg.weight_decay,
        )
        pairs = data.examples.pairs_per_epoch(cfg.max_positives_per_query, cfg.max_train_pairs)
        self.steps_per_epoch = steps_per_epoch(pairs, cfg.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"no training batches: {pairs} pairs for batch size {cfg.batch_size}")
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(self.total_steps, int(cfg.warmup_ratio * self.total_steps))
        )
        self.rng = random.Random(cfg.seed)
        self.image_title_pool = image_title_pool(run, data.products)
        if cfg.image_title_weight and len(self.image_title_pool) < 2:
            raise ValueError(f"image_title_weight is set but only {len(self.image_title_pool)} products with an image "
                             f"are in image_title_share {cfg.image_title_share}: set image_title_weight = 0")
        self.span_titles = ({pid: product.title for pid, product in data.products.items() if product.title.split()}
                            if cfg.title_span_weight else {})
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.blend: BlendChoice | None = None  # chosen after the last epoch (needs dev judgments)

    # -- one step -------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, float]:
        cfg = self.run.train
        queries = self.featurizer.queries([self.data.examples.queries[q] for q in batch.query_ids])
        inputs = augment_products([self.data.products[p] for p in batch.product_ids], self.rng,
                                  cfg.title_word_dropout, cfg.title_dropout, self.featurizer.uses_image)
        products = self.featurizer.products(inputs)
        q = self.model.encode_queries(*device_tensors(queries, self.device))
        p = self.model.encode_products(*device_tensors(products, self.device))
        match = self.matching(q, p, batch.excluded.to(self.device), batch.partial.to(self.device))
        reversal = dann_lambda(self.step / self.total_steps, cfg.lambda_max) if cfg.adversarial else 0.0
        # the adversary sees each pair's own product only, so both domains weigh the same
        domain, accuracy = domain_loss(self.model, q, p[: len(q)], reversal)
        aligning = cfg.image_title_weight and (cfg.image_title_epochs is None or self.epoch < cfg.image_title_epochs)
        align = self.image_title_loss() if aligning else match.new_zeros(())
        spans = self.title_span_loss() if cfg.title_span_weight else match.new_zeros(())
        loss = match + cfg.domain_loss_weight * domain + cfg.image_title_weight * align + cfg.title_span_weight * spans
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": loss.item(), "match": match.item(), "domain": domain.item(), "domain_acc": accuracy,
                "lambda": reversal, "align": align.item(), "spans": spans.item()}

    def image_title_loss(self) -> torch.Tensor:
        """In-batch softmax of each drawn product's title (query tower) against the same products
        without their titles (product tower: image and category), titles as rows."""
        batch = image_title_batch(self.image_title_pool, self.run.train.batch_size, self.rng)
        products = [self.data.products[pid] for pid in batch.product_ids]
        return self.texts_to_products([product.title for product in products],
                                      [dataclasses.replace(product, title="") for product in products], batch.excluded)

    def title_span_loss(self) -> torch.Tensor:
        """In-batch softmax of a few words of each drawn catalogue title (query tower) against the whole products
        (product tower), spans as rows."""
        cfg = self.run.train
        batch = title_span_batch(self.span_titles, cfg.batch_size, cfg.title_span_words, self.rng)
        return self.texts_to_products(batch.spans, [self.data.products[pid] for pid in batch.product_ids],
                                      batch.excluded)

    def texts_to_products(self, texts: list[str], products: list[ProductInput], excluded: torch.Tensor
                          ) -> torch.Tensor:
        """In-batch softmax of catalogue-derived texts (query tower) against products (product tower), row ``i``
        matching column ``i``, ``excluded`` masked, no grade 1: the shape of both catalogue losses above."""
        t = self.model.encode_queries(*device_tensors(self.featurizer.queries(texts), self.device))
        p = self.model.encode_products(*device_tensors(self.featurizer.products(products), self.device))
        excluded = excluded.to(self.device)
        return self.matching(t, p, excluded, torch.zeros_like(excluded))

    def train_epoch(self) -> dict[str, float]:
        cfg = self.run.train
        self.model.train()
        pairs = self.data.examples.epoch_pairs(self.rng, cfg.max_positives_per_query, cfg.max_train_pairs)
        batches = make_batches(self.data.examples, pairs, cfg.batch_size, cfg.hard_negatives, self.rng)
        sums: dict[str, float] = {}
        started = time.perf_counter()
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="batch", disable=not self.progress)
        for batch in bar:
            stats = self.train_step(batch)
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{stats['loss']:.3f}", match=f"{stats['match']:.3f}", dom_acc=f"{stats['domain_acc']:.2f}")
        seconds = time.perf_counter() - started
        means = {key: value / len(batches) for key, value in sums.items()}
        return {**means, "pairs": len(pairs), "batches": len(batches), "seconds": round(seconds, 1),
                "pairs_per_second": round(len(pairs) / seconds, 2), "temperature": self.matching.temperature}

    def evaluate_dev(self) -> dict[str, Any] | None:
        """Dev metrics of the model as it is; after the last epoch, also the hybrid blend it is served
        with, chosen on the same catalogue vectors (:meth:`choose_blend`)."""
        if self.data.dev is None:
            return None
        queries, qrels = self.data.dev
        encoder = AceBertEncoder(self.model, self.tokenizer.backend_tokenizer, "in-training", self.device)
        vectors = encode_catalog(encoder, self.data.catalog, progress=self.progress)
        if self.epoch >= self.run.train.epochs:
            self.blend = self.choose_blend(encoder, vectors, queries, qrels)
        return evaluate_split(encoder, self.data.catalog, vectors, queries, qrels)

    def choose_blend(
        self, encoder: AceBertEncoder, vectors: np.ndarray, queries: pd.DataFrame, qrels: Qrels
    ) -> BlendChoice | None:
        """The BM25 weight for this model's hybrid, on the dev queries: its exact top 100 against an
        in-process BM25 (:func:`acebert.blend_choice.choose_on_catalog`); None when no dev query has
        a relevant product in the catalogue.

        Why: the best weight depends on the model (0.1 for a trained ACE-BERT on the fashion dev
        split, where the searcher's fixed 0.5 loses 0.05 nDCG@10), and dev is what training may look at.
        """
        product_ids = list(self.data.catalog["product_id"])
        queries, qrels = judged_queries(queries, qrels, product_ids)
        if not qrels:
            return None
        texts = dict(zip(queries["query_id"], queries["query"]))
        hits = search(encoder.encode_queries(list(texts.values())), vectors, product_ids)
        dense = {qid: list(ranked.items()) for qid, ranked in zip(texts, hits)}
        return choose_on_catalog(self.data.catalog, texts, qrels, dense)

    def write_blend(self) -> None:
        """Write the chosen blend next to the latest weights, or remove one left from other weights."""
        path = self.run.train.output_path / BLEND_FILE
        if self.blend is not None:
            self.blend.write(self.run.train.output_path)
        elif path.is_file():
            path.unlink()

    # -- checkpoints ------------------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        return {
            "train": self.run.train.model_dump(mode="json"),
            "data": self.data.paths,
            "epoch": self.epoch,
            "steps": self.step,
            "device": str(self.device),
            "metrics": self.history[-1] if self.history else None,
            "history": self.history,
        }

    def save(self) -> Path:
        """Write ``epoch-NNN`` (with resume state) and refresh the top-level checkpoint."""
        out = self.run.train.output_path
        epoch_dir = save_checkpoint(out / EPOCH_DIR.format(self.epoch), self.model, self.tokenizer, self._info())
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "matching": self.matching.state_dict(),
            "python_rng": self.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "run": self.run.model_dump(mode="json"),
            "history": self.history,
        }
        torch.save(state, epoch_dir / STATE_FILE)
        for older in sorted(out.glob("epoch-*/" + STATE_FILE)):
            if older.parent != epoch_dir:
                older.unlink()  # only the latest epoch is resumed from; optimizer state is large
        save_checkpoint(out, self.model, self.tokenizer, self._info())
        self.write_blend()
        return epoch_dir

    def resume(self) -> bool:
        """Load the latest ``epoch-NNN`` state; False when there is none to resume from."""
        from safetensors.torch import load_file

        states = sorted(self.run.train.output_path.glob("epoch-*/" + STATE_FILE))
        if not states:
            return False
        state = torch.load(states[-1], map_location="cpu", weights_only=True)
        check_same_run(state["run"], self.run.model_dump(mode="json"))
        self.model.load_state_dict(load_file(str(states[-1].parent / "model.safetensors")))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.matching.load_state_dict(state["matching"])
        self.rng.setstate(_as_rng_state(state["python_rng"]))
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        return True

    def fit(self, until_epoch: int | None = None) -> Path:
        """Train the remaining epochs (or up to ``until_epoch``); returns the checkpoint directory.

        Stopping early leaves a resumable run, so a long CPU training can be split across
        sessions and continued with ``--resume`` exactly as if it had not stopped.
        """
        cfg = self.run.train
        last = min(cfg.epochs, until_epoch or cfg.epochs)
        while self.epoch < last:
            train_stats = self.train_epoch()
            self.epoch += 1
            record = {"epoch": self.epoch, "train": train_stats, "dev": self.evaluate_dev()}
            self.history.append(record)
            self.save()
            tqdm.write(_summary(record), file=sys.stderr)
        return cfg.output_path


def _as_rng_state(saved: Any) -> tuple:  # type: ignore[type-arg]
    """``random.Random.setstate`` wants nested tuples; serialisation may hand back lists."""
    return tuple(_as_rng_state(x) for x in saved) if isinstance(saved, (list, tuple)) else saved


def check_same_run(saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume or reuse a run whose settings changed (it would silently mix two experiments).

    Keys added to the config since the run was saved take their defaults, which keep the old behaviour.
    """
    saved = build_config(saved, "the saved run").model_dump(mode="json")
    changed = [
        f"{section}.{key}: {saved[section].get(key)!r} -> {value!r}"
        for section in ("model", "train")
        for key, value in current[section].items()
        if key not in RESUME_FREE_KEYS and saved[section].get(key) != value
    ]
    if changed:
        raise ConfigError("the saved run was trained with other settings (move its directory away to train "
                          "anew):\n  " + "\n  ".join(changed))


def _summary(record: dict[str, Any]) -> str:
    train = record["train"]
    line = f"epoch {record['epoch']}: loss {train['loss']:.4f} match {train['match']:.4f} " \
           f"domain acc {train['domain_acc']:.3f} ({train['seconds']} s, {train['pairs_per_second']} pairs/s)"
    dev = record["dev"]
    if dev:
        line += " | dev " + " ".join(f"{k} {v:.4f}" for k, v in dev["all"].items())
    return line


def _blend_summary(blend: BlendChoice | None) -> str:
    if blend is None:
        return "no blend chosen"
    return (f"hybrid blend chosen on {blend.queries} dev queries ({BLEND_FILE}): BM25 weight {blend.bm25_weight}, "
            f"dev nDCG@10 {blend.ndcg_by_weight[blend.bm25_weight]:.4f}")


def train(
    run: RunConfig, resume: bool = False, progress: bool = True, until_epoch: int | None = None,
    data: TrainingData | None = None,
) -> Path:
    """Run (or ``resume``) a training described by ``run``; returns the checkpoint directory.

    ``until_epoch`` stops after that epoch, leaving the run resumable. ``data`` is training data
    built by the caller (:func:`build_training_data`); by default the files the config names are read.
    """
    seed_everything(run.train.seed, run.train.threads)
    data = data if data is not None else load_training_data(run)
    trainer = Trainer(run, data, progress)
    if resume and not trainer.resume():
        tqdm.write(f"nothing to resume in {run.train.output_path}; starting from scratch", file=sys.stderr)
    if trainer.epoch >= run.train.epochs:
        tqdm.write(f"all {run.train.epochs} epochs already trained in {run.train.output_path}", file=sys.stderr)
        if data.dev is not None and not (run.train.output_path / BLEND_FILE).is_file():
            trainer.evaluate_dev()  # a run trained before blends were chosen: choose one now
            trainer.write_blend()
            tqdm.write(_blend_summary(trainer.blend), file=sys.stderr)
        return run.train.output_path
    started = time.perf_counter()
    out = trainer.fit(until_epoch)
    tqdm.write(f"trained in {time.perf_counter() - started:.0f} s -> {out} ({weights_version(out)})", file=sys.stderr)
    if trainer.blend is not None:
        tqdm.write(_blend_summary(trainer.blend), file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acebert.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="TOML or YAML run config")
    parser.add_argument("--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one setting, e.g. train.epochs=2 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint")
    parser.add_argument("--until-epoch", type=int, help="stop after this epoch (resume later with --resume)")
    args = parser.parse_args(argv)
    try:
        run = load_config(args.config, args.override)
    except ConfigError as error:
        parser.error(str(error))
    train(run, resume=args.resume, until_epoch=args.until_epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
