"""Versioned index names behind a read alias and a write alias.

Searches go through the read alias and writes through the write alias, so a new index version
(a new model, a new mapping) can be filled while the old one serves, and the swap is one atomic
alias update.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_VERSIONED = re.compile(r"^(?P<prefix>.+)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class IndexNames:
    """Names derived from one prefix, e.g. ``products`` -> ``products-v3``, ``products``, ``products-write``."""

    prefix: str = "products"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", self.prefix):
            raise ValueError(
                f"index prefix {self.prefix!r} must be lower-case letters, digits, '-' or '_'"
            )

    @property
    def read_alias(self) -> str:
        return self.prefix

    @property
    def write_alias(self) -> str:
        return f"{self.prefix}-write"

    def index(self, version: int) -> str:
        if version < 1:
            raise ValueError(f"index versions start at 1, got {version}")
        return f"{self.prefix}-v{version}"

    def version_of(self, index: str) -> int:
        """The version number of a concrete index name of this prefix."""
        match = _VERSIONED.match(index)
        if not match or match["prefix"] != self.prefix:
            raise ValueError(f"{index!r} is not a versioned index of prefix {self.prefix!r}")
        return int(match["version"])
