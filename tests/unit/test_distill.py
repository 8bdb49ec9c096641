"""Distilling a product tower: what the student keeps, what it learns, and what it refuses."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from acebert.blend_choice import BlendChoice, read_blend
from acebert.checkpoint import AceBertEncoder, load_checkpoint_encoder, load_model, save_checkpoint
from acebert.checkpoint_layout import weights_version
from acebert.config import ModelConfig
from acebert.distill import Distillation, distil, distil_checkpoint, relational_loss, student_of
from acebert.encoder import ProductInput
from acebert.features import Featurizer
from acebert.minilm import base_model_path
from acebert.model import AceBert
from tests.unit.test_onnx_encoder import TINY_BERT, _jpeg

TITLES = ["Nike Men Red Running Shoes", "Puma Women Blue Track Pants", "Titan Men Black Watch",
          "Fastrack Unisex Sunglasses", "Lavie Women Brown Handbag", "Adidas Men White Sports Socks",
          "Jockey Men Grey Brief", "Baggit Women Green Wallet"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny saved checkpoint whose product tower has the backbone's 2 layers, with the colour token."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = AceBert.from_backbone_config(ModelConfig(dim=32, domain_hidden=8, colour_bins=4), TINY_BERT)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "ckpt", model, tokenizer, {})


def test_the_student_keeps_the_query_tower_and_the_first_product_layers(teacher: Path) -> None:
    model, _, _ = load_model(teacher)
    student = student_of(model, 1)
    assert student.config.product_layers == 1 and len(student.product_bert.encoder.layer) == 1
    assert len(student.query_bert.encoder.layer) == len(model.query_bert.encoder.layer) == 2
    kept = student.product_bert.encoder.layer[0].state_dict()
    assert all(torch.equal(t, model.product_bert.encoder.layer[0].state_dict()[k]) for k, t in kept.items())
    trainable = {name for name, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(("product_bert.", "product_proj.", "image_tokens.")) for name in trainable)


@pytest.mark.parametrize("layers", [0, 2, 3])
def test_a_student_is_shorter_than_its_teacher(teacher: Path, layers: int) -> None:
    model, _, _ = load_model(teacher)
    with pytest.raises(ValueError, match=f"keeps 1 to 1, not {layers}"):
        student_of(model, layers)


def test_shared_towers_have_nothing_to_distil() -> None:
    shared = AceBert.from_backbone_config(ModelConfig(dim=32, domain_hidden=8, shared_towers=True), TINY_BERT)
    with pytest.raises(ValueError, match="shared towers"):
        student_of(shared, 1)


def test_distilling_moves_the_student_towards_the_teachers_vectors_and_leaves_queries_alone(teacher: Path) -> None:
    model, tokenizer, _ = load_model(teacher)
    products = [ProductInput(title) for title in TITLES]
    # targets far from what the tiny random tower says, so moving towards them is measurable
    targets = np.random.default_rng(0).normal(size=(len(products), 32)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    student = student_of(model, 1)
    before = (AceBertEncoder(student, tokenizer, "s", threads=1).encode_products(products) * targets).sum(1)
    losses = distil(student, Featurizer(tokenizer, student.config), products, targets,
                    Distillation(layers=1, epochs=15, lr=3e-3, batch_size=4), progress=False)
    after = (AceBertEncoder(student, tokenizer, "s", threads=1).encode_products(products) * targets).sum(1)
    assert losses[-1] < losses[0] and after.mean() > before.mean() + 0.2
    queries = ["red shoes", "black watch"]
    assert np.array_equal(AceBertEncoder(student, tokenizer, "s", threads=1).encode_queries(queries),
                          AceBertEncoder(model, tokenizer, "t", threads=1).encode_queries(queries))


def test_with_query_vectors_the_student_learns_the_teachers_scores_against_them(teacher: Path) -> None:
    model, tokenizer, _ = load_model(teacher)
    products = [ProductInput(title) for title in TITLES]
    rng = np.random.default_rng(1)
    targets, queries = rng.normal(size=(len(products), 32)), rng.normal(size=(5, 32))
    targets, queries = (torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True)).float()
                        for x in (targets, queries))
    student = student_of(model, 1)

    def divergence() -> float:
        vectors = torch.from_numpy(AceBertEncoder(student, tokenizer, "s", threads=1).encode_products(products))
        return relational_loss(vectors, targets, queries, 0.05).item()

    before = divergence()
    distil(student, Featurizer(tokenizer, student.config), products, targets.numpy(),
           Distillation(layers=1, epochs=15, lr=3e-3, batch_size=4), progress=False, query_vectors=queries.numpy())
    assert divergence() < before / 2


def test_top_layers_start_the_student_from_the_teachers_last_layers(teacher: Path, tmp_path: Path) -> None:
    """With top_layers, the student's last layer is the teacher's last one; saved, it loads as an ordinary
    short checkpoint that encodes as it did."""
    from transformers import AutoTokenizer

    model, tokenizer, _ = load_model(teacher)
    student = student_of(model, 1, top_layers=1)
    kept, last = student.product_bert.encoder.layer[0].state_dict(), model.product_bert.encoder.layer[1].state_dict()
    assert len(student.product_bert.encoder.layer) == 1 and all(torch.equal(t, last[k]) for k, t in kept.items())
    student.eval()
    products = [ProductInput(title) for title in TITLES]
    saved = save_checkpoint(tmp_path / "student", student,
                            AutoTokenizer.from_pretrained(str(teacher), local_files_only=True), {})
    loaded, loaded_tokenizer, _ = load_model(saved)
    assert np.allclose(AceBertEncoder(loaded, loaded_tokenizer, "l", threads=1).encode_products(products),
                       AceBertEncoder(student, tokenizer, "s", threads=1).encode_products(products), atol=1e-6)
    with pytest.raises(ValueError, match="top_layers is 0 to the student's 1 layers, not 2"):
        student_of(model, 1, top_layers=2)


def test_a_distilled_checkpoint_loads_short_says_where_it_came_from_and_replaces_only_when_asked(
    teacher: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    (catalog / "images").mkdir(parents=True)
    (catalog / "images" / "red.jpg").write_bytes(_jpeg((200, 20, 20)))
    with open(catalog / "products.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "title", "category", "image"])
        for i, title in enumerate(TITLES):
            writer.writerow([str(i), title, "Apparel > Topwear", "images/red.jpg" if i % 2 else ""])
    settings = Distillation(layers=1, epochs=2, batch_size=2, share=0.5)
    teacher = Path(shutil.copytree(teacher, tmp_path / "teacher"))
    BlendChoice(0.2, {0.2: 0.9}, queries=3).write(teacher)
    report = distil_checkpoint(teacher, tmp_path / "student", catalog, settings, progress=False)
    assert read_blend(tmp_path / "student") == {"bm25": 0.2, "knn": 0.8}  # the hybrid the teacher was served with
    cosines = report["cosine_to_teacher"]
    assert report["distilled_from"] == weights_version(teacher)
    assert cosines["held_out"]["products"] + cosines["trained"]["products"] == len(TITLES)  # type: ignore[index]
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["model"]["product_layers"] == 1
    assert config["distillation"]["distilled_from"] == weights_version(teacher)
    encoder = load_checkpoint_encoder(tmp_path / "student", "cpu")
    assert len(encoder.model.product_bert.encoder.layer) == 1
    assert encoder.encode_products([ProductInput(TITLES[0])]).shape == (1, 32)
    with pytest.raises(FileExistsError, match="not empty"):
        distil_checkpoint(teacher, tmp_path / "student", catalog, settings, progress=False)
    with pytest.raises(ValueError, match="is the teacher"):
        distil_checkpoint(teacher, teacher, catalog, settings, progress=False, overwrite=True)
    (tmp_path / "student" / "stale.txt").write_text("from an earlier model")
    queries = tmp_path / "queries.tsv"
    queries.write_text("query_id\tquery\nq1\tred shoes\nq2\tblack watch\n")
    report = distil_checkpoint(teacher, tmp_path / "student", catalog, settings, progress=False, overwrite=True,
                               queries_path=queries)
    assert not (tmp_path / "student" / "stale.txt").exists()
    assert report["queries"] == {"path": str(queries), "count": 2}


def test_the_relational_term_is_the_kl_divergence_of_the_two_softmaxes_over_the_queries() -> None:
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher_vectors = torch.tensor([[1.0, 0.0]])
    student_vectors = torch.tensor([[0.6, 0.8]])
    temperature = 0.5
    p = torch.softmax(torch.tensor([1.0, 0.0]) / temperature, 0)  # the teacher's scores against the two queries
    q = torch.softmax(torch.tensor([0.6, 0.8]) / temperature, 0)
    expected = float((p * (p.log() - q.log())).sum())
    assert relational_loss(student_vectors, teacher_vectors, queries, temperature).item() == pytest.approx(expected)
    assert relational_loss(teacher_vectors, teacher_vectors, queries, temperature).item() == pytest.approx(0.0)

