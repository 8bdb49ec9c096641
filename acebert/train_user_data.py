"""Training ACE-BERT on a user's own catalogue and judgments: what ``hybrid-search train`` runs.

Inputs are a catalogue directory (``products.csv``: ``product_id, title`` and optionally
``category, image``; a text-only catalogue needs no image column) and judgments, either graded
ones (``queries.tsv`` + ``qrels.tsv``, the benchmark format) or a click log turned into grades by
:func:`judgments_from_clicks`.

A seeded, deterministic part of the queries is held out (:func:`split_judgments`): the model
trains on the rest (:func:`acebert.train.train`, the same loop as the benchmark runs), is exported
to int8 ONNX (:func:`acebert.onnx_export.export_checkpoint`), and is then compared with the model
being served on the held-out queries only (:func:`indexer.rollout.shadow_evaluate`: nDCG@10 of
each with a paired bootstrap interval). The comparison is written next to the checkpoint as
``evaluation.json`` and ``evaluation.md``, with the held-out judgments in ``heldout/`` for the
``hybrid-search rollout`` command it suggests. The same held-out queries choose the BM25 weight the
model's hybrid is served with (:mod:`acebert.blend_choice`, written as ``blend.json``).
"""
from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from acebert.blend_choice import BLEND_FILE, BlendChoice, choose_on_catalog
from acebert.checkpoint_layout import prepare_output
from acebert.config import ConfigError, RunConfig, apply_overrides, build_config, load_config
from acebert.data import DataError, load_catalog, load_qrels, load_queries, read_rows, require_value
from acebert.encoder import Encoder, ProductInput
from acebert.metrics import Qrels

if TYPE_CHECKING:  # acebert does not import the indexing side at run time; only the report holds its type
    from indexer.rollout import ShadowReport

# Sized for a CPU run of a few minutes (about 30 pairs/s with photos on 2 cores): 3 epochs of
# at most 1,500 (query, grade-2 product) pairs, so that the demo, which runs it, stays under 2 minutes (the
# fashion config's fourth and fifth epochs won there over 3 seeds, but each would add about 20 s here). On a GPU,
# raise epochs and max_train_pairs.
USER_DEFAULTS: dict[str, dict[str, Any]] = {
    # use_category: read only where products.csv has a category column; colour_bins: the colour token,
    # which is all the tower reads of a photo without raw_image_tokens
    "model": {"use_category": True, "colour_bins": 8, "raw_image_tokens": False},
    # grade1_weight: the graded loss (grade 2 > grade 1 > rest); hard_negatives: one grade-1 product
    # per query in each batch (none where the judgments have no grade 1); image_title_*: the image-title
    # alignment, off by itself for a catalogue without photos (:func:`fit_to_catalog`); configs/acebert.toml
    # says why each won
    "train": {"epochs": 3, "batch_size": 32, "max_positives_per_query": 4, "max_train_pairs": 1500,
              "eval_each_epoch": False, "grade1_weight": 1.0, "hard_negatives": 1, "head_lr": 5e-3,
              "image_title_weight": 0.5, "image_title_share": 0.5},
}
DEFAULT_OUTPUT = Path("~/.cache/acebert-search/checkpoints/my-acebert")
HOLDOUT_FRACTION = 0.2
# Click-log rule: a purchase, or at least this many clicks of one product for one query, makes it
# a full match (grade 2); fewer clicks a partial one (grade 1); shown but never clicked, grade 0.
STRONG_CLICKS = 3
CLICK_COLUMNS = ("query", "product_id", "clicks")
EVALUATION_JSON, EVALUATION_MD, HELDOUT_DIR = "evaluation.json", "evaluation.md", "heldout"


@dataclass(frozen=True)
class Judgments:
    """Judged queries (``query_id, query``) and their graded products."""

    queries: pd.DataFrame
    qrels: Qrels

    def subset(self, query_ids: set[str]) -> "Judgments":
        kept = self.queries[self.queries["query_id"].isin(query_ids)].reset_index(drop=True)
        return Judgments(kept, {qid: self.qrels[qid] for qid in kept["query_id"] if qid in self.qrels})

    def write(self, directory: Path) -> tuple[Path, Path]:
        """``queries.tsv`` and ``qrels.tsv`` in ``directory`` (the format :func:`load_judgments` reads)."""
        directory.mkdir(parents=True, exist_ok=True)
        queries, qrels = directory / "queries.tsv", directory / "qrels.tsv"
        self.queries[["query_id", "query"]].to_csv(queries, sep="\t", index=False)
        rows = [(qid, pid, grade) for qid, judged in self.qrels.items() for pid, grade in judged.items()]
        pd.DataFrame(rows, columns=["query_id", "product_id", "grade"]).to_csv(qrels, sep="\t", index=False)
        return queries, qrels


def load_judgments(queries: str | Path, qrels: str | Path) -> Judgments:
    """Graded judgments from ``queries.tsv`` (query_id, query) and ``qrels.tsv`` (query_id, product_id, grade)."""
    frame, graded = load_queries(queries), load_qrels(qrels)
    unknown = sorted(set(graded) - set(frame["query_id"]))
    if unknown:
        raise DataError(f"{qrels}: {len(unknown)} query id(s) not in {queries}, e.g. {unknown[:3]}; add them "
                        "there or drop their judgments")
    return Judgments(frame, graded)


def click_grade(clicks: int, purchases: int, strong_clicks: int = STRONG_CLICKS) -> int:
    """The grade of one product for one query from its clicks and purchases (see ``STRONG_CLICKS``)."""
    if purchases > 0 or clicks >= strong_clicks:
        return 2
    return 1 if clicks > 0 else 0


def normalise_query(text: str) -> str:
    """The form under which click-log rows of one query are merged: lower case, single spaces."""
    return " ".join(text.lower().split())


def query_id_of(query: str) -> str:
    """A query id derived from the normalised text alone, so the same log always gives the same ids."""
    return "q-" + hashlib.sha1(query.encode("utf-8")).hexdigest()[:12]


def _count(path: Path, line: int, row: dict[str, str], column: str) -> int:
    value = row.get(column) or "0"
    if not value.isdigit():
        raise DataError(f"{path}:{line}: {column} {value!r} is not a whole number >= 0")
    return int(value)


def judgments_from_clicks(path: str | Path, strong_clicks: int = STRONG_CLICKS) -> Judgments:
    """Graded judgments from a click log (CSV: ``query, product_id, clicks`` and optional ``purchases``).

    Rows of the same query (after :func:`normalise_query`) and product are summed first (a log may
    hold one row per day), then graded by :func:`click_grade`. Query ids come from the text
    (:func:`query_id_of`).
    """
    path = Path(path)
    _, rows = read_rows(path, CLICK_COLUMNS, ",", optional=("purchases",))
    totals: dict[tuple[str, str], list[int]] = {}
    for line, row in rows:
        query = normalise_query(require_value(path, line, row, "query"))
        product_id = require_value(path, line, row, "product_id")
        counts = totals.setdefault((query, product_id), [0, 0])
        counts[0] += _count(path, line, row, "clicks")
        counts[1] += _count(path, line, row, "purchases")
    if not totals:
        raise DataError(f"{path}: no rows after the header")
    qrels: Qrels = {}
    texts: dict[str, str] = {}
    for (query, product_id), (clicks, purchases) in totals.items():
        query_id = query_id_of(query)
        texts[query_id] = query
        qrels.setdefault(query_id, {})[product_id] = click_grade(clicks, purchases, strong_clicks)
    queries = pd.DataFrame(sorted(texts.items()), columns=["query_id", "query"])
    return Judgments(queries, qrels)


def _holdout_rank(seed: int, query_id: str) -> str:
    return hashlib.sha256(f"{seed}:{query_id}".encode("utf-8")).hexdigest()


def split_judgments(
    judgments: Judgments, product_ids: set[str], fraction: float = HOLDOUT_FRACTION, seed: int = 13,
) -> tuple[Judgments, Judgments]:
    """``(train, held out)``: a seeded ``fraction`` of the usable queries is held out for evaluation.

    Usable queries have a grade-2 product in the catalogue (the others can neither be trained on
    nor scored). Which query is held out depends only on its id and the seed, not on file order, so
    the same data always gives the same split.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    usable = sorted(qid for qid, judged in judgments.qrels.items()
                    if any(g == 2 and pid in product_ids for pid, g in judged.items()))
    if len(usable) < 2:
        raise DataError(f"{len(usable)} judged queries have a grade-2 product in the catalogue; training and "
                        "its evaluation need at least 2 (more than 50 for a meaningful comparison). Do the "
                        "judgments' product ids match products.csv?")
    count = min(len(usable) - 1, max(1, round(fraction * len(usable))))
    held_out = set(sorted(usable, key=lambda qid: _holdout_rank(seed, qid))[:count])
    return judgments.subset(set(usable) - held_out), judgments.subset(held_out)


def user_run_config(config: str | Path | None = None, overrides: Sequence[str] = (),
                    output: str | Path = DEFAULT_OUTPUT, catalog: str | Path | None = None) -> RunConfig:
    """The run: ``USER_DEFAULTS``, then the optional TOML/YAML file, then ``section.key=value`` overrides.

    ``output`` and ``catalog`` are recorded as the run's ``output_dir`` and ``data_dir``.
    """
    raw: dict[str, Any] = {section: dict(values) for section, values in USER_DEFAULTS.items()}
    source = "defaults of hybrid-search train"
    if config is not None:
        loaded = load_config(config)  # validates the file on its own, naming its bad keys
        raw = {section: {**values, **getattr(loaded, section).model_dump(exclude_unset=True)}
               for section, values in raw.items()}
        source = str(config)
    paths = [f"train.output_dir={json.dumps(str(Path(output).expanduser().resolve()))}"]
    if catalog is not None:
        paths.append(f"train.data_dir={json.dumps(str(Path(catalog).expanduser().resolve()))}")
    return build_config(apply_overrides(raw, [*overrides, *paths]), source)


def fit_to_catalog(run: RunConfig, products: Mapping[str, ProductInput]) -> RunConfig:
    """``run`` with the image-title alignment off when fewer than two of ``products`` can feed it.

    The alignment is a default, so a text-only catalogue (or one with a photo or two) trains as it
    would without it instead of failing on a setting its owner never chose; the report says so.
    ``python -m acebert.train`` keeps refusing such a config, where the setting is the user's own.
    """
    from acebert.train import image_title_pool

    if not run.train.image_title_weight or len(image_title_pool(run, products)) >= 2:
        return run
    return run.model_copy(update={"train": run.train.model_copy(update={"image_title_weight": 0.0})})


@dataclass(frozen=True)
class TrainingReport:
    """What one ``hybrid-search train`` run produced and how the new model compares."""

    checkpoint: Path
    onnx_dir: Path
    catalog: Path
    heldout_queries: Path
    heldout_qrels: Path
    comparison: "ShadowReport"
    blend: BlendChoice
    counts: dict[str, int]
    seconds: dict[str, float]
    alignment_dropped: bool = False  # the image-title alignment was asked for, but too few photos could feed it

    @property
    def candidate_spec(self) -> str:
        """The encoder spec to serve the new model by (its int8 ONNX export: no torch needed)."""
        return f"onnx-int8:{self.checkpoint}"

    def rollout_command(self) -> str:
        """The command that rolls the new model out, quoted for a shell."""
        return shlex.join(["hybrid-search", "rollout", self.candidate_spec, "--catalog", str(self.catalog),
                           "--queries", str(self.heldout_queries), "--qrels", str(self.heldout_qrels)])

    def as_json(self) -> dict[str, Any]:
        comparison = self.comparison
        return {
            "checkpoint": str(self.checkpoint), "onnx": str(self.onnx_dir), "catalog": str(self.catalog),
            "heldout": {"queries": str(self.heldout_queries), "qrels": str(self.heldout_qrels)},
            "counts": self.counts, "seconds": self.seconds, "image_title_dropped": self.alignment_dropped,
            "ndcg@10": {"served": comparison.current_model, "served_value": comparison.current,
                        "candidate": comparison.candidate_model, "candidate_value": comparison.candidate,
                        "difference": comparison.difference, "difference_ci95": list(comparison.difference_ci),
                        "queries": comparison.queries, "products": comparison.products},
            "blend": self.blend.as_json(),
            "next": self.rollout_command(),
        }

    def alignment_sentence(self) -> str:
        """Whether the image-title alignment ran, and if not, whether it was off by setting or for lack of photos."""
        if self.counts.get("image_title"):
            return f"Image-title alignment on {self.counts['image_title']} products with a photo."
        if self.alignment_dropped:
            return "Image-title alignment off: fewer than 2 products with a photo in its share."
        return "Image-title alignment off."

    def markdown(self) -> str:
        c = self.comparison
        low, high = c.difference_ci
        counts = self.counts
        return "\n".join([
            "# ACE-BERT trained on your data", "",
            f"Catalogue `{self.catalog}`: {counts['products']} products ({counts['with_image']} with a photo). "
            f"Judged queries with a grade-2 product in it: {counts['train_queries']} trained on, "
            f"{counts['heldout_queries']} held out. Training: {counts['pairs_per_epoch']} pairs per epoch, "
            f"{self.seconds['train']:.0f} s; ONNX export {self.seconds['export']:.0f} s. {self.alignment_sentence()}",
            "",
            f"nDCG@10 on the {c.queries} held-out queries (exact cosine search over {c.products} products):", "",
            "| model | nDCG@10 |", "|---|---|",
            f"| served: `{c.current_model}` | {c.current:.4f} |",
            f"| new: `{c.candidate_model}` (int8 ONNX) | {c.candidate:.4f} |", "",
            f"Difference {c.difference:+.4f}, paired 95% bootstrap interval {low:+.4f} to {high:+.4f}.", "",
            f"Hybrid blend served with this model (`{BLEND_FILE}`): BM25 weight {self.blend.bm25_weight}, kNN "
            f"{self.blend.weights['knn']}, the best min-max blend on the same {self.blend.queries} held-out queries "
            "(nDCG@10 by BM25 weight: " + ", ".join(f"{w} {v:.4f}" for w, v in self.blend.ndcg_by_weight.items())
            + "). A request's own weights still win.", "",
            "Next (shadow-evaluates again on the live catalogue, then re-embeds without downtime):", "",
            f"    {self.rollout_command()}", "",
        ])

    def write(self) -> tuple[Path, Path]:
        json_path, md_path = self.checkpoint / EVALUATION_JSON, self.checkpoint / EVALUATION_MD
        json_path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path


def _baseline_encoder(spec: str, threads: int | None) -> Encoder:
    """The served model the new one is compared with, loaded before training: a mistyped spec fails in
    a second instead of after minutes of training, and loading it before ``--overwrite`` empties the
    output keeps a baseline that lives there."""
    from acebert.loading import SPEC_FORMS, load_encoder

    try:
        return load_encoder(spec, threads=threads)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"the baseline model {spec!r} cannot be loaded ({error}); name the served model as "
                          f"{SPEC_FORMS}") from None


def train_on_user_data(
    run: RunConfig, catalog_dir: str | Path, judgments: Judgments, baseline_spec: str,
    holdout_fraction: float = HOLDOUT_FRACTION, progress: bool = True, overwrite: bool = False,
) -> TrainingReport:
    """Split, train, export and compare (see the module docstring); writes the report files too."""
    from acebert.loading import load_encoder
    from acebert.onnx_export import export_checkpoint
    from acebert.train import build_training_data, image_title_pool, train
    from indexer.rollout import shadow_evaluate

    catalog_dir = Path(catalog_dir).expanduser().resolve()
    checkpoint = run.train.output_path
    baseline = _baseline_encoder(baseline_spec, run.train.threads)
    prepare_output(checkpoint, overwrite)
    catalog = load_catalog(catalog_dir, check_images=True)
    train_part, heldout = split_judgments(judgments, set(catalog["product_id"]), holdout_fraction, run.train.seed)
    paths = {"catalog": str(catalog_dir), "judgments": "in memory: the user's judgments minus the held-out queries"}
    data = build_training_data(run, catalog, train_part.queries, train_part.qrels, None, paths)
    fitted = fit_to_catalog(run, data.products)
    alignment_dropped, run = fitted is not run, fitted

    started = time.perf_counter()
    train(run, progress=progress, data=data)
    trained = time.perf_counter()
    onnx_dir = export_checkpoint(checkpoint)
    exported = time.perf_counter()
    heldout_queries, heldout_qrels = heldout.write(checkpoint / HELDOUT_DIR)
    comparison = shadow_evaluate(baseline, load_encoder(f"onnx-int8:{checkpoint}", threads=run.train.threads),
                                 data.catalog, heldout.queries, heldout.qrels, progress=progress)
    texts = dict(zip(heldout.queries["query_id"], heldout.queries["query"]))
    blend = choose_on_catalog(data.catalog, texts, heldout.qrels, comparison.candidate_legs)
    blend.write(checkpoint)
    report = TrainingReport(
        checkpoint=checkpoint, onnx_dir=onnx_dir, catalog=catalog_dir, heldout_queries=heldout_queries,
        heldout_qrels=heldout_qrels, comparison=comparison, blend=blend,
        counts={"products": len(data.catalog), "with_image": int(data.catalog["image"].notna().sum()),
                "image_title": len(image_title_pool(run, data.products)),
                "train_queries": len(data.examples.queries), "heldout_queries": len(heldout.queries),
                "pairs_per_epoch": data.examples.pairs_per_epoch(run.train.max_positives_per_query,
                                                                 run.train.max_train_pairs)},
        seconds={"train": round(trained - started, 1), "export": round(exported - trained, 1),
                 "evaluate": round(time.perf_counter() - exported, 1)},
        alignment_dropped=alignment_dropped,
    )
    report.write()
    return report
