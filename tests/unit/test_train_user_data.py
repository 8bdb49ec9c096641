"""``hybrid-search train``'s inputs: click logs into grades, the held-out split, the run config,
and errors that name the file, the line and the column to fix."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from acebert.config import REPO_ROOT, ConfigError, load_config
from acebert.data import DataError, load_catalog, load_qrels, load_queries
from acebert.encoder import ProductInput
from acebert.pairs import in_share
from acebert.train_user_data import (
    USER_DEFAULTS,
    Judgments,
    click_grade,
    fit_to_catalog,
    judgments_from_clicks,
    load_judgments,
    query_id_of,
    split_judgments,
    user_run_config,
)
from service.cli import main as cli_main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- click logs ---------------------------------------------------------------------------------

def test_click_rule() -> None:
    assert click_grade(clicks=0, purchases=1) == 2  # a purchase is a full match
    assert click_grade(clicks=3, purchases=0) == 2  # so are repeated clicks
    assert click_grade(clicks=2, purchases=0) == 1
    assert click_grade(clicks=0, purchases=0) == 0  # shown, never clicked
    assert click_grade(clicks=2, purchases=0, strong_clicks=2) == 2


def test_click_log_is_merged_per_query_and_product_and_graded(tmp_path: Path) -> None:
    log = _write(tmp_path / "clicks.csv", "query,product_id,clicks,purchases\n"
                 "Red Dress,10,1,0\n"
                 "red  dress,10,1,0\n"   # same query after normalisation: 2 clicks in all, still grade 1
                 "red dress,11,0,1\n"
                 "red dress,12,5,\n"     # an empty purchases cell counts as 0
                 "blue jeans,10,0,0\n")
    judgments = judgments_from_clicks(log)
    red, blue = query_id_of("red dress"), query_id_of("blue jeans")
    assert judgments.qrels == {red: {"10": 1, "11": 2, "12": 2}, blue: {"10": 0}}
    assert dict(zip(judgments.queries["query_id"], judgments.queries["query"])) == {red: "red dress",
                                                                                     blue: "blue jeans"}
    assert judgments_from_clicks(log).qrels == judgments.qrels  # ids depend on the text alone


def test_click_log_without_purchases_column(tmp_path: Path) -> None:
    log = _write(tmp_path / "clicks.csv", "query,product_id,clicks\nwatch,1,4\nwatch,2,1\n")
    assert judgments_from_clicks(log).qrels == {query_id_of("watch"): {"1": 2, "2": 1}}


@pytest.mark.parametrize(("text", "message"), [
    ("query,product_id\nwatch,1\n", "missing columns ['clicks']; .* optional purchases"),
    ("query,product_id,clicks\nwatch,1,4\nwatch,2,many\n", "clicks.csv:3: clicks 'many' is not a whole number"),
    ("query,product_id,clicks,purchases\nwatch,1,4,-1\n", "clicks.csv:2: purchases '-1'"),
    ("query,product_id,clicks\n  ,1,4\n", "clicks.csv:2: empty query"),
    ("query,product_id,clicks\nwatch,1,4\nwatch,2\n", "clicks.csv:3: 2 fields, expected 3"),
    ("query,product_id,clicks\n", "no rows after the header"),
])
def test_click_log_errors_name_the_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        judgments_from_clicks(_write(tmp_path / "clicks.csv", text))


# -- graded judgments and the catalogue ------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("query_id\tproduct_id\tgrade\nq1\t1\t2\nq1\t2\t3\n", r"qrels.tsv:3: grade '3' is not 0, 1 or 2"),
    ("query_id\tproduct_id\tgrade\nq1\t1\thigh\n", r"qrels.tsv:2: grade 'high'"),
    ("query_id\tproduct_id\tgrade\nq1\t\t2\n", r"qrels.tsv:2: empty product_id"),
    ("query_id\tproduct\tgrade\n", r"missing columns \['product_id'\]; .*tab-separated"),
])
def test_qrels_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_qrels(_write(tmp_path / "qrels.tsv", text))


def test_query_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"queries.tsv:3: query_id 'q1' already on line 2"):
        load_queries(_write(tmp_path / "queries.tsv", "query_id\tquery\nq1\tred\nq1\tblue\n"))
    with pytest.raises(DataError, match=r"queries.tsv:2: empty query"):
        load_queries(_write(tmp_path / "queries.tsv", "query_id\tquery\nq1\t\n"))


def test_judgments_for_unknown_queries_are_refused(tmp_path: Path) -> None:
    queries = _write(tmp_path / "queries.tsv", "query_id\tquery\nq1\tred dress\n")
    qrels = _write(tmp_path / "qrels.tsv", "query_id\tproduct_id\tgrade\nq1\t1\t2\nq9\t1\t2\n")
    with pytest.raises(DataError, match=r"1 query id\(s\) not in .*queries.tsv, e.g. \['q9'\]"):
        load_judgments(queries, qrels)


def test_catalogue_errors_and_a_text_only_catalogue(tmp_path: Path) -> None:
    _write(tmp_path / "products.csv", "product_id,title\n1,Red dress\n2,Blue jeans\n")
    catalog = load_catalog(tmp_path, check_images=True)  # no image column: title-only products
    assert list(catalog["image"]) == [None, None] and list(catalog["category"]) == ["", ""]
    _write(tmp_path / "products.csv", "product_id,name\n1,Red dress\n")
    with pytest.raises(DataError, match=r"missing columns \['title'\]; .*optional category, brand, image"):
        load_catalog(tmp_path)
    _write(tmp_path / "products.csv", "product_id,title\n1,Red dress\n1,Blue jeans\n")
    with pytest.raises(DataError, match=r"products.csv:3: product_id '1' already on line 2"):
        load_catalog(tmp_path)
    _write(tmp_path / "products.csv", "product_id,title,image\n1,Red dress,\n2,Blue jeans,images/2.jpg\n")
    assert load_catalog(tmp_path)["image"][1].endswith("images/2.jpg")  # unchecked: the encoder reports it later
    with pytest.raises(DataError, match=r"products.csv:3: image 'images/2.jpg' not found"):
        load_catalog(tmp_path, check_images=True)


# -- the held-out split --------------------------------------------------------------------------

def _judgments(count: int) -> Judgments:
    ids = [f"q{i:03d}" for i in range(count)]
    queries = pd.DataFrame({"query_id": ids, "query": [f"query {i}" for i in range(count)]})
    return Judgments(queries, {qid: {"p1": 2, "p2": 1} for qid in ids})


def test_split_holds_out_a_seeded_fifth_of_the_usable_queries() -> None:
    judgments = _judgments(100)
    judgments.qrels["q000"] = {"p1": 1}  # no grade-2 product: neither trained on nor scored
    judgments.qrels["q001"] = {"elsewhere": 2}  # its grade-2 product is not in the catalogue
    train, heldout = split_judgments(judgments, {"p1", "p2"}, 0.2, seed=13)
    train_ids, heldout_ids = set(train.queries["query_id"]), set(heldout.queries["query_id"])
    assert len(heldout_ids) == round(0.2 * 98) and len(train_ids) == 98 - len(heldout_ids)
    assert not train_ids & heldout_ids and not {"q000", "q001"} & (train_ids | heldout_ids)
    assert set(heldout.qrels) == heldout_ids and set(train.qrels) == train_ids

    shuffled = Judgments(judgments.queries.sample(frac=1, random_state=1), judgments.qrels)
    assert set(split_judgments(shuffled, {"p1", "p2"}, 0.2, seed=13)[1].queries["query_id"]) == heldout_ids
    assert set(split_judgments(judgments, {"p1", "p2"}, 0.2, seed=14)[1].queries["query_id"]) != heldout_ids


def test_split_needs_usable_queries() -> None:
    with pytest.raises(DataError, match="Do the judgments' product ids match products.csv"):
        split_judgments(_judgments(10), {"other"})
    train, heldout = split_judgments(_judgments(2), {"p1"}, 0.2)
    assert (len(train.queries), len(heldout.queries)) == (1, 1)


def test_sample_judgments_are_train_split_only() -> None:
    """The shipped judgments are the shared train split's (make_sample.py); their ids are train ids."""
    judgments = load_judgments(SAMPLE / "queries.tsv", SAMPLE / "qrels.tsv")
    products = set(load_catalog(SAMPLE)["product_id"])
    assert {pid for judged in judgments.qrels.values() for pid in judged} <= products
    shared = SAMPLE.parents[2].parent / "shared" / "data" / "fashion"
    if shared.is_dir():
        train_ids = set(load_queries(shared / "queries_train.tsv")["query_id"])
        assert set(judgments.queries["query_id"]) <= train_ids


# -- the run config and the command line ------------------------------------------------------

def test_user_defaults_train_the_model_the_fashion_config_trains() -> None:
    # the two hold the winning settings twice (the installed package cannot read configs/): a
    # default switched in one must be switched in the other; only sizes (epochs, pairs) differ
    fashion = load_config(REPO_ROOT / "configs" / "acebert.toml")
    run = user_run_config(output=Path("/tmp/unused"))
    assert run.model == fashion.model
    same = ("grade1_weight", "adversarial", "hard_negatives", "head_lr", "image_title_weight", "image_title_share")
    assert {key: getattr(run.train, key) for key in same} == {key: getattr(fashion.train, key) for key in same}


def test_the_image_title_alignment_turns_itself_off_without_photos_to_align() -> None:
    run = user_run_config(output=Path("/tmp/unused"))
    share = run.train.image_title_share
    ids = [str(n) for n in range(40)]
    inside = [pid for pid in ids if in_share(pid, share)]
    assert len(inside) >= 2 and len(inside) < len(ids)  # the hash splits these ids both ways
    photos = {pid: ProductInput(f"shirt {pid}", f"{pid}.jpg") for pid in ids}
    assert fit_to_catalog(run, photos) == run
    text_only = {pid: ProductInput(f"shirt {pid}") for pid in ids}
    assert fit_to_catalog(run, text_only).train.image_title_weight == 0.0
    one_in_share = {pid: ProductInput(f"shirt {pid}", f"{pid}.jpg" if pid == inside[0] or pid not in inside else None)
                    for pid in ids}  # photos outside the share do not count
    assert fit_to_catalog(run, one_in_share).train.image_title_weight == 0.0
    no_image = user_run_config(None, ["model.use_image=false"], output=Path("/tmp/unused"))
    assert fit_to_catalog(no_image, photos).train.image_title_weight == 0.0


def test_run_config_layers_defaults_file_and_flags(tmp_path: Path) -> None:
    run = user_run_config(output=tmp_path / "out", catalog=SAMPLE)
    assert run.train.epochs == USER_DEFAULTS["train"]["epochs"] and not run.train.eval_each_epoch
    assert run.train.output_path == tmp_path / "out" and run.train.data_path == SAMPLE
    assert run.model.use_category  # the default since it won over 3 seeds, not ModelConfig's
    assert run.train.grade1_weight == 1.0  # likewise the graded loss, not TrainConfig's 0
    assert run.train.hard_negatives == 1  # and one grade-1 hard negative per query
    config = _write(tmp_path / "run.toml", "[model]\nuse_image = false\n[train]\nepochs = 5\nbatch_size = 8\n")
    run = user_run_config(config, ["train.epochs=1"], output=tmp_path / "out")
    assert (run.model.use_image, run.model.use_category, run.train.epochs, run.train.batch_size) == (False, True, 1, 8)
    assert run.train.max_train_pairs == USER_DEFAULTS["train"]["max_train_pairs"]
    off = user_run_config(_write(tmp_path / "off.toml", "[model]\nuse_category = false\n"), output=tmp_path / "out")
    assert not off.model.use_category
    with pytest.raises(ConfigError, match="unknown key 'train.epoch'"):
        user_run_config(_write(tmp_path / "bad.toml", "[train]\nepoch = 5\n"))


def test_cli_train_reports_bad_input_without_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _write(tmp_path / "clicks.csv", "query,product_id,clicks\nwatch,1,4\nwatch,2,x\n")
    with pytest.raises(SystemExit, match=r"hybrid-search train: .*clicks.csv:3: clicks 'x'"):
        cli_main(["train", "--catalog", str(SAMPLE), "--clicks", str(log), "--output", str(tmp_path / "m")])
    with pytest.raises(SystemExit, match="give judgments: --queries queries.tsv --qrels qrels.tsv, or --clicks"):
        cli_main(["train", "--catalog", str(SAMPLE), "--output", str(tmp_path / "m")])
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="not empty .*--overwrite"):
        cli_main(["train", "--catalog", str(SAMPLE), "--queries", str(SAMPLE / "queries.tsv"),
                  "--qrels", str(SAMPLE / "qrels.tsv"), "--output", str(occupied), "--baseline", "minilm"])
    for typo in (f"acebert:{occupied}", f"onnx-int8:{tmp_path / 'nowhere'}", str(tmp_path / "nowhere")):
        with pytest.raises(SystemExit, match="baseline model .* cannot be loaded .*minilm, onnx-int8:CHECKPOINT"):
            cli_main(["train", "--catalog", str(SAMPLE), "--queries", str(SAMPLE / "queries.tsv"),
                      "--qrels", str(SAMPLE / "qrels.tsv"), "--output", str(tmp_path / "m"), "--baseline", typo])
    assert not (tmp_path / "m").exists()


def test_an_empty_result_list_scores_zero_and_a_missing_one_is_an_error() -> None:
    """The demo scores engine answers, and a BM25 search can come back empty."""
    from acebert.metrics import per_query

    qrels = {"a": {"p1": 2}, "b": {"p2": 2}}
    assert per_query(qrels, {"a": {"p1": 1.0, "p3": 0.5}, "b": {}}) == {"a": 1.0, "b": 0.0}
    with pytest.raises(ValueError, match=r"queries without results: \['b'\]"):
        per_query(qrels, {"a": {"p1": 1.0}})
