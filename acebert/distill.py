"""Distil a checkpoint's product tower into a shorter one, taught by its own product vectors.

Why: the product tower is what a worker runs for every event (``docs/performance.md``: 81% of its
time), and its cost grows with its layers. A short tower trained like the default, from MiniLM's
first layers, lost 3 points of nDCG@10 (``docs/acebert.md``, "A shorter product tower"): its last
layer was never trained to land in the query tower's space. Here the student starts from
``layers`` of the teacher's own layers, its first ones and its last (``top_layers``: the layer that
wrote the teacher's vectors, so the student's output starts in their space), and learns to
reproduce the teacher's product vectors (cosine loss), with the query tower kept as it is, so
queries need no re-encoding and the student's vectors sit in the teacher's space.

No judgments are read: the targets are the teacher's vectors of the catalogue's products, so any
catalogue can be distilled. Given query texts (``--queries``, e.g. the training split's), the
student also learns how the teacher's product vectors score against those queries: search reads a
product vector only through its dot products with query vectors, so matching each product's
distribution over real queries spends the student's few layers on the directions queries look along
(a relational term, the KL divergence of the two softmaxes at the training temperature).

Products outside ``share`` (the stable hash of :func:`acebert.pairs.in_share`) are not trained on;
their cosine to the teacher says how the student does on a product added after distilling.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from acebert.blend_choice import BLEND_FILE
from acebert.checkpoint import AceBertEncoder, load_model, save_checkpoint
from acebert.checkpoint_layout import prepare_output, weights_version
from acebert.config import DEFAULT_DATA_DIR, REPO_ROOT, ModelConfig
from acebert.data import catalog_inputs, load_catalog, load_queries
from acebert.encoder import ProductInput
from acebert.features import Featurizer
from acebert.model import AceBert, keep_layers
from acebert.pairs import in_share
from acebert.tensors import host_tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distillation:
    """How a student is taught; the defaults are the run measured in ``docs/acebert.md``."""

    layers: int = 3  # level with 4 on dev when the last one is the teacher's (docs/acebert.md), and faster
    epochs: int = 4
    lr: float = 3e-4
    batch_size: int = 32
    share: float = 0.8  # of the products trained on; the rest measure the student on unseen products
    warmup_steps: int = 100
    seed: int = 13
    query_weight: float = 1.0  # of the relational term, when query vectors are given
    temperature: float = 0.05  # of its softmaxes: the default training temperature
    top_layers: int = 1  # of the student's layers that are the teacher's last ones (3 and 1 of 6: 0, 1, 5)


def student_of(teacher: AceBert, layers: int, top_layers: int = 0) -> AceBert:
    """A copy of ``teacher`` whose product tower keeps ``layers`` of its layers: the first ones, and with
    ``top_layers`` its last ones in place of as many of those (3 and 1 of 6: layers 0, 1 and 5, so the
    student's output starts from the layer that wrote the teacher's vectors). Only that tower (its BERT,
    projection and image tokens) is left trainable."""
    if teacher.product_bert is None:
        raise ValueError("a model with shared towers has no product tower of its own to shorten")
    have = len(teacher.product_bert.encoder.layer)
    if not 1 <= layers < have:
        raise ValueError(f"the teacher's product tower has {have} layers: a student keeps 1 to {have - 1}, "
                         f"not {layers}")
    if not 0 <= top_layers <= layers:
        raise ValueError(f"top_layers is 0 to the student's {layers} layers, not {top_layers}")
    student = copy.deepcopy(teacher)
    keep_layers(student.product_bert, [*range(layers - top_layers), *range(have - top_layers, have)])
    student.config = ModelConfig.model_validate({**teacher.config.model_dump(), "product_layers": layers})
    for parameter in student.parameters():
        parameter.requires_grad = False
    for parameter in product_parameters(student):
        parameter.requires_grad = True
    return student


def product_parameters(model: AceBert) -> list[torch.nn.Parameter]:
    parts = [model.product_bert, model.product_proj, model.image_tokens]
    return [parameter for part in parts if part is not None for parameter in part.parameters()]


def relational_loss(student_vectors: torch.Tensor, teacher_vectors: torch.Tensor, queries: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """KL divergence from the teacher's to the student's softmax over ``queries`` of each product, batch mean."""
    teacher_log = torch.log_softmax(teacher_vectors @ queries.T / temperature, -1)
    student_log = torch.log_softmax(student_vectors @ queries.T / temperature, -1)
    return torch.nn.functional.kl_div(student_log, teacher_log, log_target=True, reduction="batchmean")


def distil(
    student: AceBert, featurizer: Featurizer, products: Sequence[ProductInput], targets: np.ndarray,
    settings: Distillation, progress: bool = True, query_vectors: np.ndarray | None = None,
) -> list[float]:
    """Train ``student``'s product tower towards ``targets`` (unit vectors, one per product), and towards
    their scores against ``query_vectors`` when given; mean loss per epoch."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    optimiser = torch.optim.AdamW(product_parameters(student), lr=settings.lr, weight_decay=0.01)
    steps = settings.epochs * (len(products) // settings.batch_size)
    if steps < 1:
        raise ValueError(f"{len(products)} products make no batch of {settings.batch_size}")
    warmup = max(1, min(settings.warmup_steps, steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, 1 - step / steps))
    wanted = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
    queries = (None if query_vectors is None
               else torch.from_numpy(np.ascontiguousarray(query_vectors, dtype=np.float32)))
    student.train()
    losses = []
    for epoch in range(settings.epochs):
        order = rng.permutation(len(products))
        batches = [order[start:start + settings.batch_size]
                   for start in range(0, len(order) - settings.batch_size + 1, settings.batch_size)]
        epoch_losses = []
        for rows in tqdm(batches, desc=f"distil epoch {epoch + 1}/{settings.epochs}", disable=not progress):
            batch = featurizer.products([products[i] for i in rows])
            vectors = student.encode_products(*host_tensors(batch))
            loss = (1 - (vectors * wanted[rows]).sum(-1)).mean()
            if queries is not None:
                loss = loss + settings.query_weight * relational_loss(vectors, wanted[rows], queries,
                                                                      settings.temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
        log.info("epoch %d: mean loss %.4f", epoch + 1, losses[-1])
    student.eval()
    return losses


def distil_checkpoint(teacher_dir: Path, output: Path, catalog_dir: Path, settings: Distillation,
                      progress: bool = True, overwrite: bool = False,
                      queries_path: Path | None = None) -> dict[str, object]:
    """Distil ``teacher_dir`` over the catalogue's products into a new checkpoint at ``output``; its report.

    ``queries_path`` (a queries TSV; only its texts are read) adds the relational term."""
    from transformers import AutoTokenizer

    if output.resolve() == teacher_dir.resolve():
        raise ValueError(f"{output} is the teacher: a student is written to a directory of its own")
    prepare_output(output, overwrite)
    teacher, tokenizer, _ = load_model(teacher_dir)
    catalog = load_catalog(catalog_dir)
    products = catalog_inputs(catalog)
    started = time.perf_counter()
    teacher_encoder = AceBertEncoder(teacher, tokenizer, "teacher", threads=1)
    targets = teacher_encoder.encode_products(products)
    query_vectors = (None if queries_path is None
                     else teacher_encoder.encode_queries(list(load_queries(queries_path)["query"])))
    in_trained = [in_share(str(pid), settings.share) for pid in catalog["product_id"]]
    trained = [i for i, chosen in enumerate(in_trained) if chosen]
    held_out = [i for i, chosen in enumerate(in_trained) if not chosen]
    student = student_of(teacher, settings.layers, settings.top_layers)
    losses = distil(student, Featurizer(tokenizer, student.config), [products[i] for i in trained],
                    targets[trained], settings, progress, query_vectors)
    vectors = AceBertEncoder(student, tokenizer, "student", threads=1).encode_products(products)
    cosines = (vectors * targets).sum(1)

    def summary(rows: list[int]) -> dict[str, float]:
        # the 5th percentile: the tail, where the products a short tower fails (rare types) sit
        return {"products": len(rows), "mean": round(float(cosines[rows].mean()), 4),
                "p5": round(float(np.percentile(cosines[rows], 5)), 4),
                "min": round(float(cosines[rows].min()), 4)} if rows else {"products": 0}

    report: dict[str, object] = {
        "distilled_from": weights_version(teacher_dir), "settings": settings.__dict__,
        "queries": None if queries_path is None else {"path": str(queries_path), "count": len(query_vectors)},
        "epoch_losses": losses,
        "cosine_to_teacher": {"trained": summary(trained), "held_out": summary(held_out)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    hf_tokenizer = AutoTokenizer.from_pretrained(str(teacher_dir), local_files_only=True)
    save_checkpoint(output, student, hf_tokenizer, {"distillation": report})
    if (teacher_dir / BLEND_FILE).is_file():
        # The student's vectors stand in for the teacher's, so the hybrid keeps the teacher's blend
        # (chosen on judgments distilling does not read); without it the searcher would blend 50:50.
        shutil.copyfile(teacher_dir / BLEND_FILE, output / BLEND_FILE)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Distillation()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path, help="checkpoint directory of the trained model")
    parser.add_argument("--output", type=Path, required=True, help="new checkpoint directory for the student")
    parser.add_argument("--catalog", type=Path, default=REPO_ROOT / DEFAULT_DATA_DIR,
                        help="directory with products.csv (and images/): the products whose vectors it learns")
    parser.add_argument("--layers", type=int, default=defaults.layers, help="product tower layers of the student")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--share", type=float, default=defaults.share,
                        help="share of the products trained on; the rest measure unseen products")
    parser.add_argument("--queries", type=Path,
                        help="queries TSV whose texts (no judgments) the student's scores are matched on, e.g. "
                             "the training split's; without it the student learns the vectors alone")
    parser.add_argument("--query-weight", type=float, default=defaults.query_weight)
    parser.add_argument("--top-layers", type=int, default=defaults.top_layers,
                        help="how many of the student's layers are the teacher's last ones (3 and 1 of 6: "
                             "layers 0, 1, 5; 0: its first layers only)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output; an index that model filled is then refused until "
                             "re-embedded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Distillation(args.layers, args.epochs, args.lr, args.batch_size, args.share, seed=args.seed,
                            query_weight=args.query_weight, top_layers=args.top_layers)
    report = distil_checkpoint(args.teacher, args.output, args.catalog, settings, overwrite=args.overwrite,
                               queries_path=args.queries)
    print(json.dumps(report, indent=2))
    print(f"next: python -m acebert.onnx_export {args.output}, then compare it with "
          f"python -m bench.performance.encoding --encoder onnx-int8:{args.output} --variant <name>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
