"""The HTTP search service (FastAPI): search, enqueue events, and manage dead letters.

Run with ``hybrid-search serve`` (or ``uvicorn --factory service.http:app_from_env``). The
OpenAPI schema is at ``/openapi.json`` and the interactive docs at ``/docs``. A search page
(plain HTML, CSS and JS from ``service/static``) is at ``/``; the product photos it shows come
from ``/images/...``, which serves pictures from under the image root and nothing else.

The routes are thin shells over the parts of one :class:`~system.System`, which
:func:`create_app` receives: importing this module reads no settings and connects to nothing.
"""
from __future__ import annotations

import hmac
import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from redis import RedisError

from engines import EngineError
from es_mappings import MAX_PRICE
from indexer.image_files import image_path, read_image
from indexer.models import ModelMismatch
from query_rewriter.blend import Method, leg_weights
from query_rewriter.requests import Filters
from query_rewriter.search import NEW_CURSOR, Mode, SearchRequest
from query_rewriter.thresholds import Thresholds
from settings import Settings
from system import System

# Bounds on what one POST /events may carry; a producer with more sends several requests.
MAX_EVENTS_PER_REQUEST = 1000
MAX_BODY_BYTES = 8 * 1024 * 1024
# The search page: index.html, its CSS and JS (no build step).
STATIC_DIR = Path(__file__).resolve().parent / "static"
# Product photos change with a new event's image path, rarely in place: an hour in caches.
IMAGE_CACHE_CONTROL = "public, max-age=3600"

router = APIRouter()
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="Required by POST /events and the dead-letter endpoints (API_KEY).")


def create_app(system: System) -> FastAPI:
    """The API over ``system``'s searcher, producer and queue."""
    app = FastAPI(title="ACE-BERT hybrid product search", version="0.1.0")
    app.state.system = system
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.middleware("http")(_limit_body)
    return app


async def _limit_body(request: Request, call_next: Any) -> Any:
    """Refuse a body over :data:`MAX_BODY_BYTES` before it is read into memory."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes; send fewer events per request"},
                            status_code=413)
    if length is None and "transfer-encoding" in request.headers:
        return JSONResponse({"detail": "send a Content-Length header (chunked bodies are not accepted)"},
                            status_code=411)
    return await call_next(request)


def app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory``: the system from the environment."""
    return create_app(System(Settings.from_env()))


def _system(request: Request) -> System:
    return request.app.state.system


def _operator(request: Request, key: str | None = Depends(_api_key_header)) -> System:
    """The system, for a caller that sent the configured API key; 401/403 otherwise."""
    system = _system(request)
    expected = system.settings.api_key
    if not expected:
        raise HTTPException(403, "write and operator endpoints are off: set API_KEY on the server to enable them")
    if key is None:
        raise HTTPException(401, "send the API key in the X-API-Key header")
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise HTTPException(403, "wrong API key")
    return system


class HitOut(BaseModel):
    product_id: str
    score: float
    title: str | None = None
    category: str | None = None
    image: str | None = None
    leg_scores: dict[str, float] = Field(description="Raw engine score per leg (bm25, knn).")
    normalized: dict[str, float] = Field(description="Normalised (or RRF) contribution per leg.")
    ranks: dict[str, int] = Field(description="1-based rank of the product in each leg.")


class FacetOut(BaseModel):
    value: str
    count: int
    from_: float | None = Field(None, alias="from", description="Price ranges: lower bound (inclusive).")
    to: float | None = Field(None, description="Price ranges: upper bound (exclusive; none for the last).")


class SearchOut(BaseModel):
    query: str
    mode: str
    method: str
    total: int = Field(description="Products in the ranked list the pages are cut from.")
    total_is_lower_bound: bool = Field(description="A leg filled its window: a deeper page may find more.")
    hits: list[HitOut]
    facets: dict[str, list[FacetOut]] = Field(
        description="Counts per category path (ancestors included), brand and price range over the first "
                    "window's candidates (each leg's top depth after the minimum scores); the same on every page.")
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page (requests with cursor=new).")
    timings_ms: dict[str, float]
    weights: dict[str, float] = Field(default_factory=dict,
                                      description="The leg weights of the blend: the request's, else the model's.")
    removed: dict[str, int] = Field(default_factory=dict,
                                    description="Candidates each minimum score removed (bm25, knn, fused); on a "
                                                "cursor page, products deleted since the first page (gone).")


class EnqueueOut(BaseModel):
    queued: int
    parked: list[dict[str, str]]


@router.get("/health")
def health(system: System = Depends(_system)) -> dict[str, Any]:
    engine = system.engine.health(timeout="1s")
    return {"engine": engine.get("status"), "pending_events": system.queue.pending()}


def request_weights(bm25: float | None, knn: float | None) -> dict[str, float] | None:
    """The request's leg weights: None leaves them to the served model; one given, the other is 1 - it."""
    if bm25 is None:
        return None if knn is None else {"bm25": round(1.0 - knn, 6), "knn": knn}
    return leg_weights(bm25) if knn is None else {"bm25": bm25, "knn": knn}


@router.get("/search", response_model=SearchOut)
def search(
    system: System = Depends(_system),
    q: str = Query("", max_length=500, description="The query; required unless cursor continues a search."),
    mode: Mode = "hybrid",
    method: Method = "min_max",
    bm25_weight: float | None = Query(None, ge=0, le=1, description=(
        "BM25 leg weight; without it (and without knn_weight) the weights stored with the served model "
        "(`hybrid-search train` chooses them on held-out queries), else 0.5 / 0.5. One given: the other is 1 - it.")),
    knn_weight: float | None = Query(None, ge=0, le=1, description="kNN leg weight (see bm25_weight)."),
    category: str | None = None,
    brand: str | None = None,
    price_min: float | None = Query(None, ge=0, le=MAX_PRICE),
    price_max: float | None = Query(None, ge=0, le=MAX_PRICE),
    page: int = Query(1, ge=1),
    size: int = Query(10, ge=1, le=100),
    depth: int = Query(100, ge=1, le=1000),
    dfs: bool = Query(False, description="dfs_query_then_fetch: index-wide BM25 statistics on a sharded index."),
    min_bm25: float | None = Query(None, ge=0, le=1e6, description="Minimum raw BM25 score of a candidate."),
    min_knn: float | None = Query(None, ge=0, le=1, description="Minimum kNN similarity of a candidate."),
    min_score: float | None = Query(None, ge=0, le=1e6, description="Minimum fused score of a hit."),
    known_item: bool = Query(True, description=(
        "hybrid: a product BM25 singles out by every word of the query (a brand and model name) stays first.")),
    brand_first: bool = Query(True, description=(
        "hybrid: a query that names a brand (a word the titles lead with, e.g. 'puma shoes') keeps that brand's "
        "products first.")),
    cursor: str | None = Query(None, max_length=100, description=(
        "new: keep this result list for 10 minutes and answer with next_cursor, so the next pages neither "
        "repeat nor skip a product while the index changes. A next_cursor: the page after the previous one "
        "(the query and its parameters come from the cursor; size may change).")),
) -> SearchOut:
    if not q.strip() and cursor in (None, NEW_CURSOR):
        raise HTTPException(status_code=400, detail="send a query in q (or a next_cursor in cursor)")
    try:
        request = SearchRequest(
            query=q, mode=mode, method=method, weights=request_weights(bm25_weight, knn_weight),
            filters=Filters(category, brand, price_min, price_max), page=page, size=size, depth=depth, dfs=dfs,
            thresholds=Thresholds(min_bm25, min_knn, min_score), known_item=known_item, brand_first=brand_first,
            cursor=cursor,
        )
        response = system.searcher.search(request)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    except ModelMismatch as exc:
        raise HTTPException(status_code=503, detail=f"{exc} Meanwhile mode=bm25 still answers.") from exc
    except EngineError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    except RedisError as exc:  # its text may hold the Redis URL: not echoed
        raise HTTPException(status_code=503, detail="the cursor store (Redis) is unavailable: retry, or page "
                                                    "without a cursor") from exc
    return SearchOut(
        query=response.query, mode=mode, method=method, total=response.total,
        total_is_lower_bound=response.total_is_lower_bound, next_cursor=response.next_cursor,
        facets={name: [FacetOut(**value.as_dict()) for value in values] for name, values in response.facets.items()},
        timings_ms=response.timings_ms, removed=response.removed, weights=response.weights,
        hits=[
            HitOut(product_id=h.product_id, score=h.score, title=h.source.get("title"),
                   category=h.source.get("category"), image=h.source.get("image"),
                   leg_scores=h.leg_scores, normalized=h.normalized, ranks=h.ranks)
            for h in response.hits
        ],
    )


@router.post("/events", response_model=EnqueueOut, status_code=202)
def post_events(
    events: Annotated[list[dict[str, Any]], Body(max_length=MAX_EVENTS_PER_REQUEST)],
    system: System = Depends(_operator),
) -> EnqueueOut:
    """Queue product events; malformed ones are parked (and listed here) instead of queued."""
    result = system.producer.enqueue(events)
    return EnqueueOut(queued=result.queued, parked=[{"id": i, "error": e} for i, e in result.parked])


@router.get("/dead-letters")
def dead_letters(system: System = Depends(_operator)) -> list[dict[str, Any]]:
    return [letter.__dict__ for letter in system.queue.dead_letters()]


@router.post("/dead-letters/{letter_id}/replay")
def replay_dead_letter(
    letter_id: str, corrected: dict[str, Any] | None = None, system: System = Depends(_operator)
) -> dict[str, int]:
    try:
        return {"replayed": system.producer.replay([letter_id], corrected)}
    except KeyError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


@router.get("/", include_in_schema=False)
def search_page() -> FileResponse:
    """The search page: BM25, kNN and hybrid results side by side, from three ``/search`` calls."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/images/{image:path}", response_class=Response,
            responses={200: {"content": {"image/*": {}}, "description": "The picture."},
                       404: {"description": "No picture at that path under the image root."}})
def product_image(image: str, system: System = Depends(_system)) -> Response:
    """A product photo, by the hit's ``image`` path (relative to the image root, PRODUCT_IMAGE_ROOT).

    Only a regular file under the root that decodes as a picture is served (the same checks as
    ingestion); anything else, a path out of the root or a symlink out of it included, is a 404
    that does not say why, so nothing about files outside the root can be learnt here.
    """
    try:
        data = read_image(image_path(image, system.settings.image_root))
        with Image.open(io.BytesIO(data)) as picture:  # read_image decoded it already: the header is enough
            media_type = Image.MIME.get(picture.format or "", "application/octet-stream")
    except (ValueError, OSError) as exc:  # ImageError is a ValueError; so is a NUL byte in the path
        raise HTTPException(404, "no such image") from exc
    return Response(data, media_type=media_type,
                    headers={"Cache-Control": IMAGE_CACHE_CONTROL, "X-Content-Type-Options": "nosniff"})
