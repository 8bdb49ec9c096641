"""The colour probe's parts: blinding titles, picking colour queries, its table, and its exact path (with MiniLM)."""
from __future__ import annotations

from pathlib import Path

import pytest

from acebert.encoder import ProductInput
from bench.probe_colour import blind, blind_events, image_gain_rows, names_a_colour, ndcg_rows, probe_name


@pytest.mark.parametrize("title, blinded", [
    ("Puma Deck Navy Blue Backpack", "Puma Deck Backpack"),
    ("Nike Men Off-White Sea Green Shoes", "Nike Men Shoes"),
    ("Reddy Bluestone Pen", "Reddy Bluestone Pen"),  # colour names inside words stay
    ("Black", "Black"),  # nothing else left: the title stays whole
])
def test_blind_removes_whole_colour_words_only(title, blinded):
    assert blind(title) == blinded


def test_blind_events_change_the_title_and_nothing_else():
    event = {"type": "upsert", "product_id": "1", "version": 1, "title": "Red Bag", "image": "1.jpg",
             "category": "Bags > Red"}
    assert blind_events([event]) == [{**event, "title": "Bag"}]


def test_colour_queries_are_those_that_name_a_colour():
    assert names_a_colour("women's PURPLE tops") and not names_a_colour("reddish bluetooth speaker")


def test_ndcg_rows_compare_each_system_with_the_baseline():
    qrels = {"q1": {"a": 2}, "q2": {"b": 2}}
    rankings = {"bm25": {"q1": ["a"], "q2": ["x", "b"]}, "knn": {"q1": ["a"], "q2": ["b"]}}
    rows = {row["system"]: row for row in ndcg_rows(qrels, rankings, "bm25")}
    second = 1 / 1.5849625007211563  # nDCG@10 of the one relevant product at rank 2: 1 / log2(3)
    assert rows["bm25"]["ndcg@10"] == pytest.approx((1 + second) / 2)
    assert rows["knn"]["ndcg@10"] == pytest.approx(1.0)
    assert rows["knn"]["vs_baseline"] == pytest.approx((1 - second) / 2)
    assert rows["bm25"]["ci"] == pytest.approx([0.0, 0.0])


def test_a_checkpoint_other_than_the_default_is_named_by_its_directory():
    default = Path("/ckpt/acebert-default")
    assert probe_name("acebert", str(default), default) == "acebert"
    assert probe_name("acebert-title", "/ckpt/acebert-default-title_dropout", default) == \
        "acebert-title@acebert-default-title_dropout"
    assert probe_name("minilm", None, default) == "minilm"


def test_image_gain_pairs_title_only_with_title_and_image_of_the_same_checkpoint():
    qrels = {"q1": {"a": 2}, "q2": {"b": 2}}
    second = 1 / 1.5849625007211563  # the relevant product at rank 2: 1 / log2(3)
    rankings = {
        "bm25": {"q1": ["a"], "q2": ["b"]},
        "knn acebert-title": {"q1": ["x", "a"], "q2": ["b"]},  # (second + 1) / 2
        "knn acebert": {"q1": ["a"], "q2": ["b"]},  # 1
        "knn acebert-title@other": {"q1": ["a"], "q2": ["b"]},  # no title + image row: no gain row
    }
    [row] = image_gain_rows(qrels, rankings)
    assert row["model"] == "acebert"
    assert row["title_only"] == pytest.approx((second + 1) / 2)
    assert row["gain"] == pytest.approx((1 - second) / 2)
    assert row["relative"] == pytest.approx(1 / ((second + 1) / 2) - 1)


def test_the_knn_breadth_is_the_searchers_unless_asked_and_the_report_says_which():
    from bench.probe_colour import parse_args
    from bench.relevance import breadth
    from bench.relevance_markdown import breadth_note
    from query_rewriter.knn_breadth import LARGE_INDEX_CANDIDATES, LARGE_INDEX_DOCUMENTS, SMALL_INDEX_CANDIDATES

    assert parse_args([]).candidates is None and parse_args(["--candidates", "2000"]).candidates == 2000
    assert breadth(None, 13_000) == {"candidates": SMALL_INDEX_CANDIDATES, "served": True}
    assert breadth(None, LARGE_INDEX_DOCUMENTS + 1) == {"candidates": LARGE_INDEX_CANDIDATES, "served": True}
    assert breadth(2000, 13_000) == {"candidates": 2000, "served": False}
    assert "the searcher's breadth" in breadth_note(400, served=True)
    assert breadth_note(2000, served=False).startswith("2000 HNSW candidates per query (fixed")


def test_each_hybrid_row_names_the_bm25_weight_it_was_served_with():
    from bench.probe_colour import markdown

    rows = [{"system": name, "ndcg@10": 0.5, "vs_baseline": 0.0, "ci": [0.0, 0.0]}
            for name in ("bm25", "knn acebert", "hybrid acebert", "hybrid minilm")]
    payload = {"machine": {"nproc": 2, "cpu": "cpu", "memory_gib": 1}, "command": "c", "commit": "x", "date": "d",
               "engine": "opensearch", "blinded_titles": 1, "products": 2, "colour_queries": 1, "queries_file": "q",
               "candidates": 400, "served": True, "models": ["minilm", "ckpt"], "rows": rows,
               "blends": {"hybrid acebert": 0.1, "hybrid minilm": 0.5}}
    table = markdown(payload)
    assert "| hybrid acebert (BM25 0.1) | 0.500 |" in table and "| hybrid minilm (BM25 0.5) |" in table
    assert "| knn acebert | 0.500 |" in table and "| bm25 | 0.500 |" in table


def test_the_exact_path_ranks_bm25_knn_and_the_served_blend_in_process(tmp_path):
    import numpy as np

    from bench.probe_colour import exact_rankings
    from bench.relevance import encoder_for, parse_model
    from query_rewriter.blend import blend, leg_weights

    events = [{"product_id": "1", "title": "Leather Wallet", "category": "Accessories > Wallets"},
              {"product_id": "2", "title": "Running Shoes", "category": "Footwear > Shoes"},
              {"product_id": "3", "title": "Cotton Socks"},
              {"product_id": "4", "title": "Silk Saree", "category": "Apparel > Saree"}]
    queries = {"q1": "wallet", "q2": "sneakers for jogging"}
    rankings = exact_rankings([parse_model("minilm")], events, queries, {"hybrid minilm": 0.5}, tmp_path)
    assert set(rankings) == {"bm25", "knn minilm", "hybrid minilm"}
    assert rankings["bm25"] == {"q1": ["1"], "q2": []}  # only "wallet" matches a title or category word
    encoder = encoder_for("minilm")
    vectors = encoder.encode_products([ProductInput(e["title"], None, e.get("category")) for e in events])
    cosines = encoder.encode_queries(list(queries.values())) @ vectors.T
    expected = {qid: [events[i]["product_id"] for i in np.argsort(-row)] for qid, row in zip(queries, cosines)}
    assert rankings["knn minilm"] == expected and expected["q2"][0] == "2"
    knn_q1 = [(events[i]["product_id"], float(cosines[0, i])) for i in np.argsort(-cosines[0])]
    assert rankings["hybrid minilm"]["q1"] == [b.doc_id for b in blend({"bm25": [("1", 1.0)], "knn": knn_q1},
                                                                       leg_weights(0.5))]
    assert rankings["hybrid minilm"]["q2"] == expected["q2"]  # no BM25 match: the kNN leg alone


def test_photo_as_words_gives_back_the_colour_words_only_where_a_photo_could_show_them():
    from bench.probe_colour import photo_as_words

    originals = [{"product_id": "1", "title": "Red Bag", "image": "1.jpg"},
                 {"product_id": "2", "title": "Blue Cap", "image": None},
                 {"product_id": "3", "title": "Green Belt"}]
    assert photo_as_words(originals, blind_events(originals)) == [
        originals[0], {**originals[1], "title": "Cap"}, {**originals[2], "title": "Belt"}]


def test_headroom_is_the_photo_as_words_gain_and_the_image_gets_its_share_of_it():
    from bench.probe_colour import headroom_rows

    qrels = {"q1": {"a": 2}, "q2": {"b": 2}}
    second = 1 / 1.5849625007211563  # the relevant product at rank 2: 1 / log2(3)
    rankings = {
        "knn acebert-title": {"q1": ["x", "a"], "q2": ["x", "b"]},  # blind: second
        "knn acebert-title [photo as colour words]": {"q1": ["a"], "q2": ["b"]},  # 1
        "knn acebert-title [titles intact]": {"q1": ["a"], "q2": ["x", "b"]},  # (1 + second) / 2
        "knn acebert": {"q1": ["a"], "q2": ["x", "b"]},  # (1 + second) / 2
        "knn minilm": {"q1": ["a"], "q2": []},  # no views for it: no row
    }
    [row] = headroom_rows(qrels, rankings)
    assert row["model"] == "acebert-title"
    assert row["blind"] == pytest.approx(second) and row["photo_as_words"] == pytest.approx(1.0)
    assert row["intact"] == pytest.approx((1 + second) / 2)
    assert row["most"] == pytest.approx(1 - second) and row["relative"] == pytest.approx(1 / second - 1)
    assert row["title_image"] == pytest.approx((1 + second) / 2)
    assert row["share"] == pytest.approx(((1 + second) / 2 - second) / (1 - second))  # one half


def test_several_checkpoints_of_one_kind_are_one_run_and_a_repeated_one_is_refused(tmp_path, capsys):
    """Rows (and engine indices) carry the checkpoint directory: a variant's seeds are compared side by side."""
    from bench.probe_colour import parse_args

    for name in ("a", "a-seed14"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    a, b = tmp_path / "a", tmp_path / "a-seed14"
    models = parse_args(["--models", f"minilm,acebert:{a},acebert:{b},acebert-title:{a}"]).models
    assert [(spec.name, spec.encoder) for spec in models] == [
        ("minilm", "minilm"), ("acebert", str(a)), ("acebert", str(b)), ("acebert-title", str(a))]
    with pytest.raises(SystemExit):
        parse_args(["--models", f"acebert:{a},acebert:{a}"])
    assert "acebert@a given twice" in capsys.readouterr().err


def test_headroom_needs_exact_search():
    from bench.probe_colour import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--headroom"])
    assert parse_args(["--exact", "--headroom"]).headroom


def test_headroom_rankings_rank_each_view_with_each_title_only_model(tmp_path):
    from bench.probe_colour import exact_rankings, headroom_rankings
    from bench.relevance import parse_model

    events = [{"product_id": "1", "title": "Red Wallet", "image": "1.jpg"},
              {"product_id": "2", "title": "Blue Wallet", "image": "2.jpg"}]
    queries = {"q1": "blue wallet"}
    views = {"titles intact": events, "blind": blind_events(events)}
    rankings = headroom_rankings([parse_model("minilm")], views, queries, tmp_path)
    assert set(rankings) == {"knn minilm [titles intact]", "knn minilm [blind]"}
    assert rankings["knn minilm [titles intact]"]["q1"][0] == "2"  # the colour word decides
    assert rankings["knn minilm [blind]"] == exact_rankings([parse_model("minilm")], blind_events(events), queries,
                                                              {"hybrid minilm": 0.5}, tmp_path)["knn minilm"]


def test_exact_search_reads_each_photo_under_the_catalogue_as_a_worker_does(tmp_path):
    """Catalogue events name photos relative to the catalogue (``indexer.catalog``); the in-process
    encoder must get the same files, and none for a title-only row or a title-only model."""
    import numpy as np

    from bench.probe_colour import exact_dense

    class Recording:
        dimension = 2

        def __init__(self):
            self.products = []

        def encode_products(self, products, batch_size=64):
            self.products += products
            return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(products), 1))

        def encode_queries(self, texts, batch_size=64):
            return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)

    events = [{"product_id": "1", "title": "Red Wallet", "image": "images/1.jpg", "category": "Wallets"},
              {"product_id": "2", "title": "Blue Wallet"}]
    for with_images, photos in ((True, [str(tmp_path / "images" / "1.jpg"), None]), (False, [None, None])):
        encoder = Recording()
        dense = exact_dense(encoder, with_images, events, {"q": "wallet"}, "recording", tmp_path)
        assert [product.image for product in encoder.products] == photos
        assert [product.category for product in encoder.products] == ["Wallets", None]
        assert set(dense["q"]) == {"1", "2"}


def test_each_query_set_and_option_writes_its_own_report(tmp_path, monkeypatch):
    import bench.probe_colour as probe

    payload = {"rows": []}
    monkeypatch.setattr(probe, "run", lambda args: payload)
    monkeypatch.setattr(probe, "markdown", lambda p: "table")
    names = []
    for argv in ([], ["--exact", "--headroom", "--held-out-share", "0.5"],
                 ["--exact", "--queries", "/d/queries_dev.tsv", "--qrels", "/d/qrels_dev.tsv"]):
        probe.main([*argv, "--results", str(tmp_path)])
        names.append(sorted(p.name for p in tmp_path.iterdir()))
    assert names[0] == ["probe-colour.json", "probe-colour.md"]
    assert "probe-colour-exact-held-out-headroom.md" in names[1]
    assert "probe-colour-exact-dev.json" in names[2] and "probe-colour-exact-dev.md" in names[2]
    probe.main(["--exact", "--photo-leg", "0.2", "--queries", "/d/queries_dev.tsv", "--qrels", "/d/qrels_dev.tsv",
                "--results", str(tmp_path)])
    assert "probe-colour-exact-photo-leg-dev.md" in {p.name for p in tmp_path.iterdir()}


def test_the_photo_leg_takes_weights_between_0_and_1_and_exact_search_only():
    from bench.probe_colour import parse_args

    assert parse_args(["--exact", "--photo-leg", "0.1,0.3"]).photo_leg == (0.1, 0.3)
    assert parse_args([]).photo_leg == ()
    for argv in (["--photo-leg", "0.1"], ["--exact", "--photo-leg", "1"], ["--exact", "--photo-leg", "0"],
                 ["--exact", "--photo-leg", "x"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_photo_events_are_the_products_with_a_photo_without_their_titles():
    from bench.probe_colour import photo_events

    events = [{"product_id": "1", "title": "Red Bag", "image": "images/1.jpg", "category": "Bags"},
              {"product_id": "2", "title": "Blue Cap", "image": None},
              {"product_id": "3", "title": "Green Belt"}]
    assert photo_events(events) == [{"product_id": "1", "title": "", "image": "images/1.jpg", "category": "Bags"}]


def test_the_photo_leg_is_a_min_max_blend_of_the_two_legs_at_its_weight():
    from bench.probe_colour import with_photo_leg

    dense = {"q": {"a": 0.9, "b": 0.8, "c": 0.5}}
    photo = {"q": {"c": 0.7, "b": 0.4}}  # "a" has no photo
    # min-max: dense a 1, b (0.8 - 0.5) / 0.4 = 0.75, c floor 0.001; photo c 1, b floor 0.001
    w = 0.3
    a, b, c = (1 - w) * 1.0, (1 - w) * 0.75 + w * 0.001, (1 - w) * 0.001 + w * 1.0
    assert (a, b, c) == pytest.approx((0.7, 0.5253, 0.3007))
    assert with_photo_leg(dense, photo, w) == {"q": ["a", "b", "c"]}
    w = 0.5  # now c: 0.5005 against b: 0.3755 and a: 0.5
    assert with_photo_leg(dense, photo, w) == {"q": ["c", "a", "b"]}


def test_image_gain_has_a_row_for_each_photo_leg_of_the_same_checkpoint():
    qrels = {"q1": {"a": 2}}
    rankings = {"knn acebert-title": {"q1": ["x", "a"]}, "knn acebert": {"q1": ["x", "a"]},
                "knn acebert + photo leg 0.2": {"q1": ["a"]},
                "knn acebert@other + photo leg 0.2": {"q1": ["a"]}}  # another checkpoint: not paired here
    rows = image_gain_rows(qrels, rankings)
    assert [row["model"] for row in rows] == ["acebert", "acebert + photo leg 0.2"]
    second = 1 / 1.5849625007211563
    assert rows[1]["gain"] == pytest.approx(1 - second) and rows[1]["relative"] == pytest.approx(1 / second - 1)
