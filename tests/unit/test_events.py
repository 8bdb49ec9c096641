import shutil

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


def test_a_catalogues_brand_column_reaches_the_events_where_a_row_has_one(tmp_path):
    from indexer.catalog import catalog_events

    (tmp_path / "products.csv").write_text("product_id,title,brand\np1,Men Derby Shoes,Red Tape\np2,Blue jeans,\n")
    first, second = catalog_events(tmp_path)
    assert first["brand"] == "Red Tape" and "brand" not in second


def _shop(tmp_path):
    """A catalogue directory ``shop`` with one photo, ``images/p1.jpg``, and one title-only product."""
    shop = tmp_path / "shop"
    (shop / "images").mkdir(parents=True)
    (shop / "images" / "p1.jpg").write_bytes(b"\xff\xd8")
    (shop / "products.csv").write_text("product_id,title,image\np1,Red shirt,images/p1.jpg\np2,Blue cap,\n")
    return shop


def test_catalogue_events_name_photos_relative_to_the_image_root_wherever_the_catalogue_is_read_from(
        tmp_path, monkeypatch):
    from indexer.catalog import catalog_events
    from indexer.image_files import image_path

    shop = _shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    for directory in ("shop", shop):  # a relative --catalog as well
        first, second = catalog_events(directory)  # the root defaults to the catalogue directory
        assert first["image"] == "images/p1.jpg" and "image" not in second
        assert catalog_events(directory, image_root=tmp_path)[0]["image"] == "shop/images/p1.jpg"
    # A worker resolves it against its own root, wherever that is mounted: here a copy elsewhere.
    mounted = tmp_path / "app" / "data"
    shutil.copytree(shop, mounted)
    assert image_path(catalog_events(shop)[0]["image"], mounted) == mounted.resolve() / "images" / "p1.jpg"


def test_a_catalogue_reached_through_a_symlinked_directory_is_still_under_its_root(tmp_path):
    from indexer.catalog import catalog_events

    shop = _shop(tmp_path)
    (tmp_path / "link").symlink_to(shop)
    assert catalog_events(tmp_path / "link", image_root=shop)[0]["image"] == "images/p1.jpg"


def test_a_catalogue_whose_photos_are_outside_the_image_root_is_refused_with_the_setting_to_change(tmp_path):
    from acebert.data import DataError
    from indexer.catalog import catalog_events

    shop = _shop(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(DataError, match="outside the image root .*set PRODUCT_IMAGE_ROOT to the catalogue directory"):
        catalog_events(shop, image_root=elsewhere)


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


def test_load_catalog_refuses_photos_outside_product_image_root_before_it_reaches_redis(tmp_path, monkeypatch):
    """Nothing listens at these addresses: the refusal must come before any event is queued."""
    from service.cli import main

    shop = _shop(tmp_path)
    monkeypatch.setenv("PRODUCT_IMAGE_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("SEARCH_URL", "http://127.0.0.1:9")
    for direct in ([], ["--direct"]):
        with pytest.raises(SystemExit, match="^hybrid-search load-catalog: photo .* set PRODUCT_IMAGE_ROOT"):
            main(["load-catalog", str(shop), *direct])
