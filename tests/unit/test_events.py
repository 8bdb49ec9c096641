import pytest

from indexer.documents import build_document, category_path
from indexer.events import InvalidEvent, ProductDelete, ProductUpsert, parse_event


def test_upsert_and_delete_parse():
    up = parse_event({"type": "upsert", "product_id": "p1", "version": 3, "title": "Red shoe"})
    assert isinstance(up, ProductUpsert) and up.attributes == {}
    assert isinstance(parse_event({"type": "delete", "product_id": "p1", "version": 4}), ProductDelete)


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"type": "upsert", "product_id": "p1", "version": 1}, "title"),
        ({"type": "upsert", "product_id": "p1", "version": 0, "title": "x"}, "version"),
        ({"type": "upsert", "product_id": "a b", "version": 1, "title": "x"}, "product_id"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "colour": "red"}, "colour"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "price": -2}, "price"),
        ({"type": "rename", "product_id": "p", "version": 1}, "type"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "price": float("inf")}, "price"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "price": float("nan")}, "price"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "description": "d" * 20_001}, "description"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "brand": "b" * 201}, "brand"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "category": "c" * 501}, "category"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x",
          "attributes": {f"k{i}": i for i in range(51)}}, "attributes"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "attributes": {"a.b": 1}}, "attributes"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "attributes": {"k": "v" * 1001}},
         "attributes"),
        ({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "attributes": {"k": float("inf")}},
         "attributes"),
    ],
)
def test_errors_name_the_field(raw, field):
    with pytest.raises(InvalidEvent, match=field):
        parse_event(raw)


def test_bounded_fields_accept_their_limits():
    event = parse_event({"type": "upsert", "product_id": "p", "version": 1, "title": "x", "brand": "b" * 200,
                         "attributes": {f"key_{i}": "v" * 1000 for i in range(50)}, "price": 0})
    assert len(event.attributes) == 50


def test_non_object_event_is_invalid():
    with pytest.raises(InvalidEvent):
        parse_event(["not", "an", "event"])


def test_category_path_lists_ancestors():
    assert category_path("Apparel > Topwear > Shirts") == ["Apparel", "Apparel > Topwear", "Apparel > Topwear > Shirts"]
    assert category_path(None) == []


def test_document_drops_absent_optional_fields():
    doc = build_document(parse_event({"type": "upsert", "product_id": "p", "version": 7, "title": "Cap"}),
                         model_version="m1", has_image=False, encoded_input="d1")
    assert doc["event_version"] == 7 and doc["model_version"] == "m1" and doc["encoded_input"] == "d1"
    assert "price" not in doc and "brand" not in doc


def test_a_text_only_catalogue_needs_no_image_column(tmp_path):
    from indexer.catalog import catalog_events

    (tmp_path / "products.csv").write_text("product_id,title\np1,Red shirt\np2,Blue jeans\n")
    assert catalog_events(tmp_path) == [
        {"type": "upsert", "product_id": "p1", "version": 1, "title": "Red shirt"},
        {"type": "upsert", "product_id": "p2", "version": 1, "title": "Blue jeans"},
    ]


def test_a_catalogue_given_by_a_relative_path_yields_image_paths_a_worker_elsewhere_can_read(tmp_path, monkeypatch):
    from indexer.catalog import catalog_events
    from indexer.image_files import image_path

    shop = tmp_path / "shop"
    (shop / "images").mkdir(parents=True)
    (shop / "images" / "p1.jpg").write_bytes(b"\xff\xd8")
    (shop / "products.csv").write_text("product_id,title,image\np1,Red shirt,images/p1.jpg\n")
    monkeypatch.chdir(tmp_path)
    [event] = catalog_events("shop")
    assert event["image"] == str(shop / "images" / "p1.jpg")
    # The worker resolves it against its image root, whatever its own working directory.
    assert image_path(event["image"], shop) == shop.resolve() / "images" / "p1.jpg"


def test_a_catalogue_without_titles_names_the_missing_column(tmp_path):
    from acebert.data import load_catalog

    (tmp_path / "products.csv").write_text("product_id,name\np1,Red shirt\n")
    with pytest.raises(ValueError, match=r"missing columns \['title'\]"):
        load_catalog(tmp_path)


def test_the_input_digest_follows_what_the_tower_reads_and_nothing_else():
    from acebert.encoder import ProductInput
    from indexer.documents import input_digest

    shirt = ProductInput(title="Red shirt", image=b"\xff\xd8photo", category="Apparel > Topwear")
    assert input_digest(shirt) == input_digest(ProductInput("Red shirt", b"\xff\xd8photo", "Apparel > Topwear"))
    changed = [ProductInput("Red shirts", shirt.image, shirt.category),
               ProductInput(shirt.title, b"\xff\xd8other photo", shirt.category),  # a photo replaced in place
               ProductInput(shirt.title, None, shirt.category),
               ProductInput(shirt.title, shirt.image, None)]
    assert len({input_digest(p) for p in [shirt, *changed]}) == 5
    # Parts are length-prefixed: moving a character between title and category changes the digest.
    assert input_digest(ProductInput("ab", None, "c")) != input_digest(ProductInput("a", None, "bc"))
    with pytest.raises(TypeError, match="bytes"):
        input_digest(ProductInput("Red shirt", "photos/1.jpg"))
