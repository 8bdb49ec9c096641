"""The relevance report as Markdown, rendered from the JSON payload alone.

Rendering only reads the payload, so the report can be rebuilt from ``docs/results/*.json``
without rerunning anything. The hand-written discussion is the one part a rerun must not
erase: it lives between two markers and is carried over from the previous report.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from bench.report import header, markdown_table

TITLE = "Relevance: BM25 vs dense vs hybrid, through the real engines"
START, END = "<!-- discussion:start -->", "<!-- discussion:end -->"
PLACEHOLDER = "_Not written yet: read the tables above, then write what they mean here; reruns keep this text._"


def breadth_note(candidates: int, served: bool) -> str:
    """How wide the kNN leg searched, for a report: a breadth of the searcher's own, or one fixed for the run."""
    if served:
        return (f"{candidates} HNSW candidates per query, the searcher's breadth for an index of this size "
                "(`query_rewriter.knn_breadth`)")
    return f"{candidates} HNSW candidates per query (fixed for this run with `--candidates`)"


def kept_discussion(path: Path) -> str:
    """The discussion between the markers of an existing report, or a placeholder."""
    if path.is_file():
        match = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), path.read_text(), re.S)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return PLACEHOLDER


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(value: float, ci: Sequence[float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _signed_ci(value: float, ci: Sequence[float]) -> str:
    return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _p(value: float) -> str:
    """A p-value; a randomization test that never saw a difference as large says so, not "0"."""
    return "< 1e-4" if value == 0 else f"{value:.2g}"


def _weight(record: Mapping[str, Any]) -> str:
    weight = record["bm25_weight"]
    if record.get("weight_model"):
        return "per query"
    return "–" if weight is None else f"{weight:g} / {1 - weight:.1f}"


def learned_weights(payload: Mapping[str, Any]) -> str:
    """Each per-query weight model: its cross-validation on dev, coefficients, and the weights it gave on test."""
    learned = [r for r in payload["systems"] if r.get("weight_model")]
    parts = []
    for r in learned:
        m = r["weight_model"]
        cv = ", ".join(f"{'global weight only' if a == 'None' else f'alpha {a}'}: {v:.4f}"
                       for a, v in m["cross_validation"].items())
        chosen = "the global weight for every query" if m["alpha"] is None else f"ridge, alpha {m['alpha']:g}"
        coef = markdown_table(["feature", "mean", "sd", "coefficient (per sd)"],
                              [(f, _num(mu), _num(sd), f"{c:+.4f}")
                               for f, mu, sd, c in zip(m["features"], m["mean"], m["scale"], m["coef"])])
        spread = ", ".join(f"{w}: {n}" for w, n in m["test_weights"].items())
        parts.append(f"### {r['engine']}: {r['label']}\n\nCross-validated dev nDCG@10 ({cv}); chosen: {chosen}; "
                     f"intercept {m['intercept']:.4f}, global weight {m['global_weight']:g}, bounds "
                     f"[{m['low']:g}, {m['high']:g}], step {m['step']:g}.\n\n{coef}\nBM25 weights it gave the test "
                     f"queries (weight: queries): {spread}.\n")
    return "## Per-query blend weights (learned on dev)\n\n" + "\n".join(parts) if parts else ""


def setup(payload: Mapping[str, Any]) -> str:
    s = payload["setup"]
    models = "; ".join(f"{m['label']} (`{m['encoder']}`{'' if m['with_images'] else ', events without images'})"
                       for m in s["models"].values())
    slice_text = (f"{s['colour_slice']['queries']} test queries whose grade-2 products mostly lack the colour word "
                  f"in their titles (from `{s['colour_slice']['attributes']}`, used for this analysis only)"
                  if s["colour_slice"]["attributes"] else "not computed (no attributes file)")
    return (
        "## Setup\n\n"
        f"- Catalogue: {s['products']} products ({s['products_with_image']} with an image) from `{s['catalog']}`. "
        "Each document is the title and category (BM25) and the vector of title (+ image); "
        "`attributes.csv` never reaches an index or a model.\n"
        f"- Reported on `{s['test']['queries']}` ({s['test']['count']} queries, judgments `{s['test']['qrels']}`); "
        f"blend weights chosen on `{s['dev']['queries']}` ({s['dev']['count']} queries). Judgments restricted to "
        "the catalogued products; queries without a grade-2 product are dropped.\n"
        f"- Engines: {', '.join(s['engines'])}; models: {models}.\n"
        "- Ingestion: catalogue rows -> product events -> Redis queue -> Celery worker (concurrency 2) -> "
        "bulk writes, one index per model and engine, force-merged to one segment so kNN answers are stable.\n"
        f"- Queries: `HybridSearcher` (query rewrite, msearch), each leg's top {s['depth']}; kNN breadth: "
        f"{breadth_note(s['candidates'], s['served'])}. Hybrid rows fuse the two "
        f"legs with `query_rewriter.blend`; {s['spot_checked_hybrid_answers']} fused answers were checked equal to "
        "`HybridSearcher(mode=\"hybrid\")`. BM25 weight w (kNN 1-w) chosen from "
        f"{', '.join(f'{w:g}' for w in s['weight_grid'])} by dev nDCG@10; RRF (k=60) untuned, equal weights. "
        "Server-side rows use OpenSearch neural-search's `hybrid` query with the same method and weight.\n"
        "- Metrics (ranx): nDCG@10 with graded gains (grade 1 = right type, grade 2 = everything asked), "
        "Recall@100 and MRR@10 with grade 2 as relevant. 95% CI: percentile bootstrap over queries "
        "(10,000 resamples, fixed seed).\n"
        f"- Colour slice: {slice_text}.\n"
        f"- Wall time of the whole command: {payload['wall_s'] / 60:.1f} min.\n"
    )


def analyzers(payload: Mapping[str, Any]) -> str:
    rows = [(i["engine"], i["index"], ", ".join(f"{k}={v}" for k, v in i["analyzer"].items()))
            for i in payload["ingestion"] if i["index"] in _bm25_indices(payload)]
    return "## Analyzers\n\n" + markdown_table(["Engine", "Index", "Text analyzer"], rows)


def _bm25_indices(payload: Mapping[str, Any]) -> set[str]:
    return {r["index"] for r in payload["systems"] if r["family"] == "BM25"}


def results(payload: Mapping[str, Any]) -> str:
    slice_n = payload["setup"]["colour_slice"]["queries"]
    headers = ["Engine", "Family", "System", "BM25 / kNN weight", "nDCG@10 [95% CI]", "Recall@100", "MRR@10",
               f"Colour slice nDCG@10 (n={slice_n})", "dev nDCG@10"]
    rows = [
        (r["engine"], r["family"], r["label"], _weight(r), _ci(r["test"]["ndcg@10"], r["test"]["ndcg@10_ci95"]),
         _num(r["test"]["recall@100"]), _num(r["test"]["mrr@10"]), _num(r["test"]["colour_slice_ndcg@10"]),
         _num(r["dev_ndcg@10"]))
        for r in payload["systems"]
    ]
    return f"## Results on {payload['setup']['test']['count']} test queries\n\n" + markdown_table(headers, rows)


def comparisons(payload: Mapping[str, Any]) -> str:
    lines = ["## Best hybrid vs BM25 and vs its own dense leg (paired, test)\n",
             "The best hybrid is the client-side hybrid row with the highest **dev** nDCG@10. Baselines: BM25 with "
             "the project analyzer, and the dense model of the same index alone. Δ is the mean per-query difference "
             "in nDCG@10 with a paired bootstrap 95% CI; p-values are ranx's Fisher randomization test "
             "(10,000 permutations) and paired t-test.\n"]
    rows = [
        (c["engine"], c["best_label"], v["baseline_label"], _num(v["baseline_ndcg@10"]), _num(v["system_ndcg@10"]),
         _signed_ci(v["delta"], v["delta_ci95"]), _p(v["p_fisher"]), _p(v["p_student"]),
         f"{v['wins']} / {v['ties']} / {v['losses']}")
        for c in payload["comparisons"] for v in c["versus"]
    ]
    lines.append(markdown_table(["Engine", "Best hybrid (chosen on dev)", "Baseline", "Baseline nDCG@10",
                                 "Hybrid nDCG@10", "Δ [95% CI]", "p (randomization)", "p (paired t)",
                                 "wins / ties / losses"], rows))
    variant_rows = [
        (c["engine"], variant["label"], v["baseline_label"], _num(v["baseline_ndcg@10"]), _num(v["system_ndcg@10"]),
         _signed_ci(v["delta"], v["delta_ci95"]), _p(v["p_fisher"]), _p(v["p_student"]),
         f"{v['wins']} / {v['ties']} / {v['losses']}")
        for c in payload["comparisons"] for variant in c.get("variants", []) for v in variant["versus"]
    ]
    if variant_rows:
        lines += ["\n### Variants of the best hybrid\n",
                  "The same blend without the known-item rule (`query_rewriter.known_item`), and with a BM25 weight "
                  "per query from a ridge model over query and leg features, learned on the dev queries only "
                  "(`query_rewriter.learn_weights`; the penalty, or no model, chosen by 5-fold cross-validation on "
                  "dev), and with one leg cut to its top 50 (the other left at 100, the same weight): a leg's "
                  "sources are a third of the hybrid's engine time (`docs/performance.md`). Each against the best "
                  "hybrid and against its dense leg, on test.\n",
                  markdown_table(["Engine", "Variant", "Baseline", "Baseline nDCG@10", "Variant nDCG@10",
                                  "Δ [95% CI]", "p (randomization)", "p (paired t)", "wins / ties / losses"],
                                 variant_rows)]
    return "\n".join(lines)


def wins_losses(payload: Mapping[str, Any]) -> str:
    parts = ["## Per-query wins and losses of the best hybrid over BM25 (test nDCG@10)\n"]
    headers = ["Δ", "BM25", "Hybrid", "Query", "Kind"]
    for c in payload["comparisons"]:
        for title, items in (("largest wins", c["largest_wins"]), ("largest losses", c["largest_losses"])):
            rows = [(f"{i['delta']:+.3f}", _num(i["bm25"]), _num(i["hybrid"]), f"{i['query']} ({i['query_id']})",
                     i["kind"]) for i in items]
            parts.append(f"### {c['engine']}: {len(rows)} {title} ({c['best_label']})\n\n"
                         + (markdown_table(headers, rows) if rows else "None.\n"))
    return "\n".join(parts)


def weight_curves(payload: Mapping[str, Any]) -> str:
    tuned = [r for r in payload["systems"] if r["family"] == "Hybrid" and len(r["dev_curve"]) > 1]
    if not tuned:
        return ""
    weights = list(tuned[0]["dev_curve"])
    rows = [
        (r["engine"], r["label"], *(f"**{v:.3f}**" if float(w) == r["bm25_weight"] else f"{v:.3f}"
                                    for w, v in r["dev_curve"].items()))
        for r in tuned
    ]
    return ("## Dev nDCG@10 by BM25 weight (chosen in bold)\n\n"
            + markdown_table(["Engine", "System", *(f"w={w}" for w in weights)], rows))


def knn_breadth(payload: Mapping[str, Any]) -> str:
    """Dense nDCG@10 of each index at each kNN breadth, the searcher's in bold."""
    sweeps = payload.get("knn_breadth") or []
    if not sweeps:
        return ""
    served = payload["setup"]["candidates"] if payload["setup"]["served"] else None
    grid = sorted({r["candidates"] for r in sweeps})
    cells: dict[tuple[str, str], dict[int, str]] = {}
    for r in sweeps:
        text = f"{r['test_ndcg@10']:.3f} / {r['dev_ndcg@10']:.3f}"
        cells.setdefault((r["engine"], r["model"]), {})[r["candidates"]] = (
            f"**{text}**" if r["candidates"] == served else text)
    rows = [(engine, model, *(by.get(c, "–") for c in grid)) for (engine, model), by in cells.items()]
    return ("## kNN breadth: dense nDCG@10 by HNSW candidates (test / dev)\n\n"
            "The dense leg of each index asked again at each breadth (OpenSearch's `ef_search`, Elasticsearch's "
            "`num_candidates`; the engines' defaults for a leg of 100 are 100 and 200), the searcher's own in "
            "bold. How far the default falls below exact search depends on how the graph happened to be built.\n\n"
            + markdown_table(["Engine", "Dense model", *(f"{c} candidates" for c in grid)], rows))


def ingestion(payload: Mapping[str, Any]) -> str:
    rows = [
        (i["engine"], i["index"], i["model_version"], i["documents"], "reused" if i["reused"] else _num(i["seconds"], 0),
         _num(i["warmup_s"], 0), _num(i["steady_docs_per_s"], 0), _num(i["force_merge_s"], 0))
        for i in payload["ingestion"]
    ]
    return ("## Ingestion through the workers\n\n"
            "One Celery worker (2 pool processes, 1 torch thread each) per index. Seconds: first event queued to "
            "all products searchable. Warm-up: until the first batch was indexed (the pool processes load the "
            "model after the worker reports ready). Products/s: after the warm-up. A reused index was already "
            "current from an earlier run.\n\n"
            + markdown_table(["Engine", "Index", "Model version", "Products", "Seconds", "Warm-up s",
                              "Products/s", "Force-merge s"], rows))


def render(payload: Mapping[str, Any], discussion: str) -> str:
    sections = [
        header(TITLE, payload["command"]), setup(payload), analyzers(payload), results(payload),
        comparisons(payload), learned_weights(payload), wins_losses(payload), weight_curves(payload),
        knn_breadth(payload), ingestion(payload),
        f"## What the numbers mean, and what to try next\n\n{START}\n{discussion}\n{END}\n",
        f"## Reproduce\n\n```\n{payload['command']}\n```\n\nJSON with every number (per-query nDCG@10 "
        "included) is written next to this report under `docs/results/`.\n",
    ]
    return "\n".join(section for section in sections if section)
