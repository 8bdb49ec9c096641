"""Design experiments for target 1: other ways to run a hybrid query, timed against the shipped one.

``python -m bench.performance.query_paths [--engine opensearch] [--repeats 3] [--tiny]``

:class:`~query_rewriter.search.HybridSearcher` encodes the query, then sends both legs in one
``_msearch`` with each leg's sources. Each alternative here changes one of those choices and
keeps everything else (rewrite-free text, the same bodies, the same min-max blend of the same
100-candidate legs), so a faster one could replace the shipped path without changing a ranking
(except the rows with a leg of 50, which narrow the candidate window: ``python -m bench.relevance``
scores that narrowing, these rows time it against the same two legs at 100). Paths are
interleaved query by query, as in :mod:`bench.performance.query`.

The peer comparison (issue #14, part 3) runs in the same rounds: our client-side hybrid against
OpenSearch's own server-side ``hybrid`` query (neural-search, the same min-max normalisation and
weights over the same two 100-candidate legs), both given the same query vector from a
:class:`~acebert.encoder.CachedQueryEncoder` filled before timing, so neither pays for the query
tower. The server-side query blends with a stored search pipeline, as a neural-search deployment
with one fixed blend runs it, and is timed twice: returning the whole blended window with its
sources, as the searcher's ``server_hybrid`` mode asks for it (facets and cursors need them), and
returning only the page of 10, which is all a bare results page needs. The searcher's own
``server_hybrid`` mode, which sends its pipeline with each request (any blend, no cluster state),
gets a row of its own.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from acebert.encoder import CachedQueryEncoder, Encoder
from bench.performance.common import (
    RunInfo,
    add_common_args,
    catalogue_events,
    catalogue_vectors,
    documents,
    finish_args,
    load_inputs,
    prepare_encoder,
    section_header,
    variant_label,
    write_outputs,
)
from bench.performance.engine_index import bulk_load, engine_stack
from bench.performance.query import measure
from bench.performance.stats import median_summary, paired_ratios
from bench.relevance_runs import NARROW_DEPTH
from bench.report import markdown_table
from engines import SearchEngine
from es_mappings import PRODUCT_FIELDS, UNSHOWN_FIELDS
from query_rewriter.blend import blend
from query_rewriter.knn_breadth import candidates_for
from query_rewriter.requests import bm25_body, knn_body
from query_rewriter.search import DEFAULT_WEIGHTS, HybridSearcher, SearchRequest, server_hybrid_query

INDEX_PREFIX = "perf-query-paths"
DEPTH, PAGE = 100, 10
SHIPPED = "shipped: encode, then one _msearch (both legs with sources)"
BM25_MODE = "BM25 mode of the searcher (the target's baseline)"
OURS = "peer: our client-side hybrid, query vector supplied"
SERVER = "peer: OpenSearch server-side hybrid, query vector supplied, window of 100 with sources"
SERVER_PAGE = "peer: OpenSearch server-side hybrid, query vector supplied, page of 10 with sources"
SERVER_INLINE = "searcher's server_hybrid mode: the same, pipeline sent with each request"
NO_TOTALS = {"track_total_hits": False}
"""The searcher never reads a leg's hit total; counting it may keep the engine from skipping blocks."""
PIPELINE = "perf-query-paths-blend"
"""The stored pipeline both peer rows name: min-max, the searcher's default weights."""
SHOWN = [f.name for f in PRODUCT_FIELDS if f.name not in UNSHOWN_FIELDS]
"""The same sources the legs return, named by includes instead of excludes (a design experiment)."""
LEGS = "both legs in one _msearch, query vector supplied, no searcher around them"
NARROWED = {leg: f"the same with a {leg} leg of {NARROW_DEPTH} (changes the window)" for leg in ("kNN", "BM25")}
"""A leg cut to its top ``NARROW_DEPTH``, timed against :data:`LEGS` (both at ``DEPTH``) in the same rounds."""
PEER_TARGETS = {"p50 vs server-side": 0.8, "p50 vs BM25": 1.3, "p99 vs BM25": 1.5}
Ask = Callable[[str], Any]


@dataclass(frozen=True)
class QueryPath:
    """One way of answering a query, timed end to end by :func:`bench.performance.query.measure`."""

    label: str
    answer: Ask

    def ask(self, query: str) -> tuple[float, dict[str, float]]:
        started = time.perf_counter()
        self.answer(query)
        return (time.perf_counter() - started) * 1000, {}


def _blend(bm25: dict[str, Any], knn: dict[str, Any]) -> list[str]:
    legs = {name: [(h["_id"], float(h["_score"])) for h in response["hits"]["hits"]]
            for name, response in (("bm25", bm25), ("knn", knn))}
    return [b.doc_id for b in blend(legs, {"bm25": 0.5, "knn": 0.5})[:PAGE]]


def build_paths(
    engine: SearchEngine, index: str, encoder: Encoder, pool: ThreadPoolExecutor, queries: Sequence[str],
) -> list[QueryPath]:
    """Every path, the shipped one and its baselines included, each answering one query its way."""
    if not engine.supports_server_hybrid:
        raise SystemExit(f"{engine.kind} here has no server-side hybrid query (the neural-search plugin)")
    candidates = candidates_for(engine.count(index))  # the searcher's breadth, on every path
    searcher = HybridSearcher.over(engine, encoder, index, candidates)
    supplied = CachedQueryEncoder(encoder, max_entries=None)
    supplied.encode_queries(list(queries))
    peer = HybridSearcher.over(engine, supplied, index, candidates)
    no_source = {"_source": False}

    def vector(query: str) -> list[float]:
        return encoder.encode_queries([query])[0].tolist()

    def overlapped(query: str) -> list[str]:
        bm25 = pool.submit(engine.search, index, bm25_body(query, [], DEPTH))
        knn = engine.search(index, knn_body(engine, vector(query), [], DEPTH, candidates))
        return _blend(bm25.result(), knn)

    def page_sources_after(fetch: Callable[[list[str]], Any]) -> Ask:
        def ask(query: str) -> list[str]:
            bm25, knn = engine.msearch(index, [{**bm25_body(query, [], DEPTH), **no_source},
                                               {**knn_body(engine, vector(query), [], DEPTH, candidates), **no_source}])
            page = _blend(bm25, knn)
            fetch(page)
            return page
        return ask

    def mget(ids: list[str]) -> Any:
        return engine.mget(index, ids, source_excludes=UNSHOWN_FIELDS)

    def ids_query(ids: list[str]) -> Any:
        return engine.search(index, {"size": len(ids), "query": {"ids": {"values": ids}},
                                     "_source": {"excludes": list(UNSHOWN_FIELDS)}})

    def legs(extra: dict[str, Any], bm25_depth: int = DEPTH, knn_depth: int = DEPTH) -> Ask:
        """Both legs in one ``_msearch`` with the supplied vector and the min-max blend, nothing else:
        the searcher's round trip alone, so that ``extra`` (a body setting) or a leg's depth is all
        that differs."""
        def ask(query: str) -> list[str]:
            vector = supplied.encode_queries([query])[0].tolist()
            bm25, knn = engine.msearch(index, [{**bm25_body(query, [], bm25_depth), **extra},
                                               {**knn_body(engine, vector, [], knn_depth, candidates), **extra}])
            return _blend(bm25, knn)
        return ask

    engine.put_hybrid_pipeline(PIPELINE, "min_max", [DEFAULT_WEIGHTS["bm25"], DEFAULT_WEIGHTS["knn"]])

    def server(size: int) -> Ask:
        def ask(query: str) -> Any:
            window = server_hybrid_query(SearchRequest(query=query, mode="server_hybrid", rewrite=False), query, [],
                                         supplied.encode_queries([query])[0].tolist(), DEPTH, peer.breadth(index))
            return engine.server_hybrid_search(index, replace(window, size=size), pipeline=PIPELINE)
        return ask

    answers: dict[str, Ask] = {
        BM25_MODE: lambda q: searcher.search(
            SearchRequest(query=q, mode="bm25", rewrite=False)),
        "bare BM25, 10 hits (what a shop may run today)": lambda q: engine.search(index, bm25_body(q, [], PAGE)),
        "bare BM25, 10 hits, without hit totals": lambda q: engine.search(index, {**bm25_body(q, [], PAGE),
                                                                                  **NO_TOTALS}),
        SHIPPED: lambda q: searcher.search(SearchRequest(query=q, mode="hybrid", rewrite=False)),
        "BM25 leg on a thread while encoding, then the kNN leg": overlapped,
        "legs without sources, then _mget of the page": page_sources_after(mget),
        "legs without sources, then an ids query for the page": page_sources_after(ids_query),
        LEGS: legs({}),
        "the same without hit totals (track_total_hits false)": legs(NO_TOTALS),
        "the same with sources named by includes, not excludes": legs({"_source": {"includes": SHOWN}}),
        NARROWED["kNN"]: legs({}, knn_depth=NARROW_DEPTH),
        NARROWED["BM25"]: legs({}, bm25_depth=NARROW_DEPTH),
        OURS: lambda q: peer.search(SearchRequest(query=q, mode="hybrid", rewrite=False)),
        SERVER: server(DEPTH),
        SERVER_PAGE: server(PAGE),
        SERVER_INLINE: lambda q: peer.search(SearchRequest(query=q, mode="server_hybrid", rewrite=False)),
    }
    return [QueryPath(label, answer) for label, answer in answers.items()]


def run(args: argparse.Namespace) -> dict[str, Any]:
    catalog, queries_frame = load_inputs(args)
    encoder = prepare_encoder(args.encoder)
    vectors = catalogue_vectors(encoder, catalog)
    docs = documents(catalogue_events(args.catalog, catalog), vectors, encoder.model_version, args.catalog)
    queries = list(queries_frame["query"])
    with engine_stack(args.engine) as (engine, _), ThreadPoolExecutor(1) as pool:
        bulk_load(engine, INDEX_PREFIX, docs, encoder.dimension)
        rounds = measure(build_paths(engine, INDEX_PREFIX, encoder, pool, queries), queries, args.repeats)["rounds"]
    shipped = rounds[SHIPPED]
    return {"engine": args.engine, "query_encoder": variant_label(args.encoder), "queries": len(queries),
            "rounds": rounds, "medians": {label: median_summary(r) for label, r in rounds.items()},
            "vs_shipped": {label: paired_ratios(r, shipped, ["p50", "p99"]) for label, r in rounds.items()},
            "peer": peer_ratios(rounds),
            "narrowed": {label: paired_ratios(rounds[label], rounds[LEGS], ["p50", "p99"])
                         for label in NARROWED.values()}}


def peer_ratios(rounds: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Our hybrid (vector supplied) against each server-side variant and the BM25 mode, paired within rounds."""
    return {label: paired_ratios(rounds[OURS], rounds[label], ["p50", "p99"])
            for label in (SERVER, SERVER_PAGE, SERVER_INLINE, BM25_MODE)}


def peer_verdict(peer: dict[str, dict[str, float]]) -> str:
    """The three part-3 targets, each with its measured ratio."""
    measured = {"p50 vs server-side": peer[SERVER]["p50"], "p50 vs BM25": peer[BM25_MODE]["p50"],
                "p99 vs BM25": peer[BM25_MODE]["p99"]}
    return "; ".join(f"{name} {measured[name]:.2f}x (target <= {target}x): "
                     f"{'met' if measured[name] <= target else 'not met'}" for name, target in PEER_TARGETS.items())


def render(result: dict[str, Any], info: RunInfo) -> str:
    rows = [[label, f"{m['p50']:.2f}", f"{m['p99']:.2f}", f"{result['vs_shipped'][label]['p50']:.2f}x",
             f"{result['vs_shipped'][label]['p99']:.2f}x"] for label, m in result["medians"].items()]
    return "\n".join([
        section_header("Target 1, design experiments: other hybrid query paths", info),
        f"{result['engine']}, full catalogue, {result['queries']} test queries x {len(result['rounds'][SHIPPED])} "
        f"rounds, {result['query_encoder']} query tower, min-max blend of two {DEPTH}-candidate legs, page of "
        f"{PAGE}. Ratios are to the shipped hybrid path within each round (below 1.00x is faster).\n",
        markdown_table(["path", "p50 ms", "p99 ms", "p50 vs shipped", "p99 vs shipped"], rows),
        "",
        "Against the peer, our client-side hybrid with the query vector supplied (paired within rounds): "
        + ", ".join(f"{ratios['p50']:.2f}x p50 and {ratios['p99']:.2f}x p99 of *{label}*"
                    for label, ratios in result["peer"].items()) + ".",
        "",
        f"A leg of {NARROW_DEPTH} against the same two legs of {DEPTH} (paired within rounds): "
        + ", ".join(f"*{label}* {ratios['p50']:.2f}x p50 and {ratios['p99']:.2f}x p99"
                    for label, ratios in result["narrowed"].items()) + ".",
        "",
        f"Issue #14 part 3, with the query vector supplied (the BM25 targets with the query tower in the loop are "
        f"judged in the target 1 table): {peer_verdict(result['peer'])}.",
    ])


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.performance.query_paths", description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument("--engine", default="opensearch", choices=["opensearch", "elasticsearch"])
    return finish_args(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    info = RunInfo.now("bench.performance.query_paths", argv)
    result = run(args)
    write_outputs(args, "query-paths", {**info.as_dict(), **result}, render(result, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
