"""The HTTP search service (FastAPI): search, enqueue events, and manage dead letters.

Run with ``hybrid-search serve`` or ``uvicorn service.http:app``. The OpenAPI schema is at
``/openapi.json`` and the interactive docs at ``/docs``.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from engines import EngineError
from query_rewriter.requests import Filters
from query_rewriter.search import SearchRequest
from service.runtime import Runtime
from settings import Settings
from workers.producer import enqueue, replay

app = FastAPI(title="ACE-BERT hybrid product search", version="0.1.0")
_runtime = Runtime(Settings.from_env())


class HitOut(BaseModel):
    product_id: str
    score: float
    title: str | None = None
    category: str | None = None
    image: str | None = None
    leg_scores: dict[str, float] = Field(description="Raw engine score per leg (bm25, knn).")
    normalized: dict[str, float] = Field(description="Normalised (or RRF) contribution per leg.")
    ranks: dict[str, int] = Field(description="1-based rank of the product in each leg.")


class SearchOut(BaseModel):
    query: str
    mode: str
    method: str
    candidates: int
    hits: list[HitOut]
    timings_ms: dict[str, float]


class EnqueueOut(BaseModel):
    queued: int
    parked: list[dict[str, str]]


@app.get("/health")
def health() -> dict[str, Any]:
    engine = _runtime.engine.health(timeout="1s")
    return {"engine": engine.get("status"), "pending_events": _runtime.queue.pending()}


@app.get("/search", response_model=SearchOut)
def search(
    q: str = Query(min_length=1, max_length=500),
    mode: Literal["bm25", "knn", "hybrid", "server_hybrid"] = "hybrid",
    method: Literal["min_max", "z_score", "rrf"] = "min_max",
    bm25_weight: float = Query(0.5, ge=0),
    knn_weight: float = Query(0.5, ge=0),
    category: str | None = None,
    brand: str | None = None,
    price_min: float | None = Query(None, ge=0),
    price_max: float | None = Query(None, ge=0),
    page: int = Query(1, ge=1),
    size: int = Query(10, ge=1, le=100),
    depth: int = Query(100, ge=1, le=1000),
) -> SearchOut:
    try:
        request = SearchRequest(
            query=q, mode=mode, method=method, weights={"bm25": bm25_weight, "knn": knn_weight},
            filters=Filters(category, brand, price_min, price_max), page=page, size=size, depth=depth,
        )
        response = _runtime.searcher.search(request)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except EngineError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return SearchOut(
        query=response.query, mode=mode, method=method, candidates=response.candidates,
        timings_ms=response.timings_ms,
        hits=[
            HitOut(product_id=h.product_id, score=h.score, title=h.source.get("title"),
                   category=h.source.get("category"), image=h.source.get("image"),
                   leg_scores=h.leg_scores, normalized=h.normalized, ranks=h.ranks)
            for h in response.hits
        ],
    )


@app.post("/events", response_model=EnqueueOut, status_code=202)
def post_events(events: list[dict[str, Any]]) -> EnqueueOut:
    """Queue product events; malformed ones are parked (and listed here) instead of queued."""
    result = enqueue(events, _runtime.queue, _runtime.settings.batch_size)
    return EnqueueOut(queued=result.queued, parked=[{"id": i, "error": e} for i, e in result.parked])


@app.get("/dead-letters")
def dead_letters() -> list[dict[str, Any]]:
    return [letter.__dict__ for letter in _runtime.queue.dead_letters()]


@app.post("/dead-letters/{letter_id}/replay")
def replay_dead_letter(letter_id: str, corrected: dict[str, Any] | None = None) -> dict[str, int]:
    try:
        return {"replayed": replay(_runtime.queue, [letter_id], corrected, _runtime.settings.batch_size)}
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
