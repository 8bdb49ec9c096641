"""Product events: the typed edge of the write path.

An event carries the product's full state (upsert) or its removal (delete), and a monotonically
increasing ``version`` chosen by the source of truth (e.g. the catalogue's updated-at in ms).
The engine's external versioning turns that number into idempotent, order-independent writes.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from es_mappings import MAX_PRICE

# Every field is bounded, so that one producer cannot blow up the index mapping (attribute keys
# become fields of the ``attributes`` object) or a worker's memory.
MAX_ATTRIBUTES = 50
AttributeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ -]{0,63}$")]
AttributeValue = Union[Annotated[str, StringConstraints(max_length=1000)], int, Annotated[float, Field(allow_inf_nan=False)], bool]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^/#?\s]+$")]
    version: Annotated[int, Field(ge=1, lt=2**63)]


class ProductUpsert(_Event):
    """Create or replace a product. Only ``title`` is required; every other field is optional."""

    type: Literal["upsert"] = "upsert"
    title: Annotated[str, Field(min_length=1, max_length=2000)]
    description: Annotated[str, Field(max_length=20_000)] | None = None
    category: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description='A path such as "Apparel > Topwear".')
    brand: Annotated[str, Field(max_length=200)] | None = None
    attributes: Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=dict, description=f"At most {MAX_ATTRIBUTES} keys of letters, digits, _ - and space.")
    price: Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)] | None = None
    image: Annotated[str, Field(max_length=1000)] | None = Field(
        default=None, description="A file path under PRODUCT_IMAGE_ROOT (relative to it, or absolute inside it).")


class ProductDelete(_Event):
    type: Literal["delete"] = "delete"


ProductEvent = Annotated[Union[ProductUpsert, ProductDelete], Field(discriminator="type")]
_ADAPTER: TypeAdapter[ProductUpsert | ProductDelete] = TypeAdapter(ProductEvent)


class InvalidEvent(ValueError):
    """An event that does not match the schema; the message names each offending field."""

    def __init__(self, message: str, raw: Any) -> None:
        super().__init__(message)
        self.raw = raw


def parse_event(raw: Any) -> ProductUpsert | ProductDelete:
    """Validate a raw (decoded JSON) event, or raise :class:`InvalidEvent` naming the fields."""
    if isinstance(raw, (ProductUpsert, ProductDelete)):
        return raw
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<event>'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidEvent(f"invalid product event: {problems}", raw) from None
