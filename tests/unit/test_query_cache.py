"""The query-vector cache in front of an encoder: pure logic, a counting fake encoder."""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
import pytest

from acebert.encoder import CachedQueryEncoder


class CountingEncoder:
    model_version = "fake-v1"
    dimension = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(text), 1.0] for text in texts], dtype=np.float32)

    def encode_products(self, products: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        return np.ones((len(products), 2), dtype=np.float32)


def test_each_text_is_encoded_once_and_alone_in_input_order() -> None:
    inner = CountingEncoder()
    cached = CachedQueryEncoder(inner)
    first = cached.encode_queries(["red shoes", "tops"])
    again = cached.encode_queries(["tops", "red shoes"])
    assert inner.calls == [["red shoes"], ["tops"]]
    np.testing.assert_array_equal(first[::-1], again)
    assert cached.model_version == "fake-v1" and cached.dimension == 2
    assert cached.encode_queries([]).shape == (0, 2)


def test_least_recently_used_text_is_evicted_first() -> None:
    inner = CountingEncoder()
    cached = CachedQueryEncoder(inner, max_entries=2)
    cached.encode_queries(["a", "b"])
    cached.encode_queries(["a"])       # "a" is now the most recent, so "b" goes next
    cached.encode_queries(["c"])       # evicts "b"
    cached.encode_queries(["a", "c"])  # both still cached
    assert inner.calls == [["a"], ["b"], ["c"]]
    cached.encode_queries(["b"])
    assert inner.calls[-1] == ["b"]


def test_products_are_not_cached_and_bad_sizes_are_refused() -> None:
    inner = CountingEncoder()
    assert CachedQueryEncoder(inner).encode_products(["x", "y"]).shape == (2, 2)
    with pytest.raises(ValueError, match="max_entries"):
        CachedQueryEncoder(inner, max_entries=0)


def test_concurrent_callers_get_the_right_vectors() -> None:
    cached = CachedQueryEncoder(CountingEncoder(), max_entries=8)
    texts = [f"q{i}" * (i + 1) for i in range(20)]
    errors: list[str] = []

    def ask(offset: int) -> None:
        for step in range(200):
            text = texts[(offset + step) % len(texts)]
            if cached.encode_queries([text])[0][0] != len(text):
                errors.append(text)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(cached._vectors) <= 8
