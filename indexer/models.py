"""Which model made an index's vectors, and the encoder that goes with it.

Vectors of two models do not share a space, so a query must be encoded by the model that
encoded the index it searches, and a write must be encoded by the model of the index it lands
in. Each index version therefore records its model in its mapping's ``_meta`` when it is
created (:func:`model_meta`), and every process asks :class:`IndexModels` which index is behind
an alias and which encoder belongs to it:

- a worker encodes each batch with the model of the index behind the write alias;
- a search encodes its query with the model of the index behind the read alias, and searches
  that very index, so the query vector and the index always match.

A re-embed or a rollback (:mod:`indexer.reembed`) therefore needs no restart: when an alias
moves, each process follows within ``ttl_s``. The settings' encoder is only the model of a new
first index, and of an index created before indices recorded their model.

The recorded spec names a path, and a checkpoint retrained or re-exported in place changes what
that path loads. The index also records the ``model_version`` it was filled with, so such an
encoder is refused (:class:`ModelMismatch`) instead of mixing two models' vectors in one index
or searching old vectors with a new query tower.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from acebert.encoder import Encoder
from engines import SearchEngine
from es_mappings import FLOAT_VECTORS, VECTORS_META, IndexNames

MODEL_META = "model"
# How long a process keeps its answer to "which index is behind this alias": the delay before it
# follows a moved alias, and what a switch waits before it reads the old index (indexer.reembed).
ALIAS_TTL_S = 2.0


class ModelMismatch(RuntimeError):
    """An index's encoder spec now loads another model than the one that filled the index."""


def model_meta(spec: str, model_version: str) -> dict[str, Any]:
    """The ``_meta`` of an index whose vectors the encoder ``spec`` makes (``model_version``)."""
    return {MODEL_META: {"encoder": spec, "model_version": model_version}}


@dataclass(frozen=True)
class Bound:
    """A concrete index and the encoder of the model that made its vectors."""

    index: str
    encoder: Encoder


class IndexModels:
    """Resolves an alias to the index behind it and that index's encoder (thread-safe).

    Encoders are loaded on first use by ``load(spec)`` and the ``keep`` most recently used stay
    loaded: two cover a switch between models, when old and new serve side by side. ``blend(spec)``
    gives the hybrid weights stored with a model (None: the searcher's default), so the weights
    follow the model of the index a search reads, through a switch and a rollback.
    """

    def __init__(
        self,
        engine: SearchEngine,
        names: IndexNames,
        load: Callable[[str], Encoder],
        default_spec: str,
        ttl_s: float = ALIAS_TTL_S,
        keep: int = 2,
        blend: Callable[[str], Mapping[str, float] | None] = lambda spec: None,
    ) -> None:
        self.engine = engine
        self.names = names
        self.default_spec = default_spec
        self.ttl_s = ttl_s
        self._load = load
        self._keep = keep
        self._blend = blend
        self._blends: dict[str, Mapping[str, float] | None] = {}  # spec -> its weights; a model's never change
        self._encoders: OrderedDict[str, Encoder] = OrderedDict()
        self._metas: dict[str, Mapping[str, Any]] = {}  # index -> its mapping's _meta, which never changes
        self._aliases: dict[str, tuple[float, str]] = {}  # alias -> (resolved at, index)
        self._lock = threading.RLock()

    def for_reads(self) -> Bound:
        return self.bound(self.names.read_alias)

    def index_for_reads(self) -> str:
        """The index behind the read alias, without its encoder: a BM25 search needs none."""
        return self._index_behind(self.names.read_alias)

    def for_writes(self) -> Bound:
        return self.bound(self.names.write_alias)

    def bound(self, alias: str) -> Bound:
        """The index behind ``alias`` (the alias itself when none is yet) and its encoder."""
        index = self._index_behind(alias)
        return Bound(index, self.encoder_of(index))

    def encoder_of(self, index: str) -> Encoder:
        """The encoder of ``index``'s model; :class:`ModelMismatch` if its spec now loads another model."""
        encoder = self.encoder(self.spec_of(index))
        recorded = self._meta_of(index).get(MODEL_META, {}).get("model_version")
        if recorded and recorded != encoder.model_version:
            raise ModelMismatch(
                f"index {index} holds vectors of model {recorded}, but its encoder now loads {encoder.model_version} "
                "(its checkpoint was retrained or re-exported in place). Put that checkpoint back, or move to the "
                "new model with `hybrid-search reembed --encoder <spec>`; a new model in a directory of its own "
                "keeps the old one servable until the switch."
            )
        return encoder

    def spec_of(self, index: str) -> str:
        """The encoder spec recorded by ``index``; the default for an index that recorded none."""
        return str(self._meta_of(index).get(MODEL_META, {}).get("encoder") or self.default_spec)

    def vectors_of(self, index: str) -> str:
        """How ``index`` stores its vectors (``float`` or ``int8``); ``float`` for an index that recorded none."""
        return str(self._meta_of(index).get(VECTORS_META) or FLOAT_VECTORS)

    def _meta_of(self, index: str) -> Mapping[str, Any]:
        with self._lock:
            if index not in self._metas:
                self._metas[index] = self.engine.mapping_meta(index) if self.engine.index_exists(index) else {}
            return self._metas[index]

    def model_version_of(self, index: str) -> str:
        """The ``model_version`` of the vectors ``index`` holds (its encoder's)."""
        return self.encoder_of(index).model_version

    def weights_of(self, index: str) -> Mapping[str, float] | None:
        """The hybrid weights stored with the model of ``index``; None when it has none."""
        spec = self.spec_of(index)
        with self._lock:
            if spec not in self._blends:
                self._blends[spec] = self._blend(spec)
            return self._blends[spec]

    def encoder(self, spec: str) -> Encoder:
        with self._lock:
            if spec in self._encoders:
                self._encoders.move_to_end(spec)
                return self._encoders[spec]
            encoder = self._load(spec)
            self._encoders[spec] = encoder
            while len(self._encoders) > self._keep:
                self._encoders.popitem(last=False)
            return encoder

    def _index_behind(self, alias: str) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._aliases.get(alias)
            if cached and now - cached[0] < self.ttl_s:
                return cached[1]
        indices = self.engine.indices_of_alias(alias)
        index = indices[0] if indices else alias
        with self._lock:
            self._aliases[alias] = (now, index)
        return index
