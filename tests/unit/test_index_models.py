"""IndexModels refuses an encoder that no longer loads the model an index was filled with."""
from __future__ import annotations

from typing import Any

import pytest

from es_mappings import IndexNames
from indexer.models import IndexModels, ModelMismatch, model_meta


class Encoder:
    dimension = 2

    def __init__(self, model_version: str) -> None:
        self.model_version = model_version


class Engine:
    """Two index versions behind the aliases of prefix ``p``, each with the ``_meta`` it was created with."""

    def __init__(self, metas: dict[str, dict[str, Any]], read: str, write: str) -> None:
        self.metas, self.aliases = metas, {"p": [read], "p-write": [write]}

    def index_exists(self, index: str) -> bool:
        return index in self.metas

    def mapping_meta(self, index: str) -> dict[str, Any]:
        return self.metas[index]

    def indices_of_alias(self, alias: str) -> list[str]:
        return self.aliases.get(alias, [])


def models_over(engine: Engine, loads: dict[str, str]) -> IndexModels:
    """IndexModels whose spec ``s`` loads an encoder of version ``loads[s]``."""
    return IndexModels(engine, IndexNames("p"), lambda spec: Encoder(loads[spec]), "default")  # type: ignore[arg-type]


def test_the_encoder_of_the_recorded_model_is_served() -> None:
    engine = Engine({"p-v1": model_meta("ckpt", "acebert-aaa"), "p-v2": model_meta("new", "acebert-bbb")},
                    read="p-v1", write="p-v2")
    models = models_over(engine, {"ckpt": "acebert-aaa", "new": "acebert-bbb"})
    assert (models.for_reads().index, models.for_reads().encoder.model_version) == ("p-v1", "acebert-aaa")
    assert (models.for_writes().index, models.for_writes().encoder.model_version) == ("p-v2", "acebert-bbb")
    assert models.model_version_of("p-v1") == "acebert-aaa"


def test_a_checkpoint_changed_in_place_is_refused_for_reads_and_writes() -> None:
    engine = Engine({"p-v1": model_meta("ckpt", "acebert-aaa")}, read="p-v1", write="p-v1")
    models = models_over(engine, {"ckpt": "acebert-bbb"})  # retrained or re-exported into the same directory
    for bound in (models.for_reads, models.for_writes):
        with pytest.raises(ModelMismatch, match="p-v1 holds vectors of model acebert-aaa, but its encoder now "
                                                "loads acebert-bbb") as error:
            bound()
        assert "hybrid-search reembed --encoder" in str(error.value)
    assert models.index_for_reads() == "p-v1"  # what a BM25 search needs still resolves
    # a re-embed encodes with the spec itself, and its new index records what the spec loads now
    assert models.encoder("ckpt").model_version == "acebert-bbb"


def test_an_index_that_recorded_no_model_version_is_served_with_its_spec() -> None:
    old = Engine({"p-v1": {"model": {"encoder": "ckpt"}}, "p-v0": {}}, read="p-v0", write="p-v1")
    models = models_over(old, {"ckpt": "acebert-bbb", "default": "minilm"})
    assert models.for_writes().encoder.model_version == "acebert-bbb"
    assert models.for_reads().encoder.model_version == "minilm"  # recorded nothing: the settings' encoder
