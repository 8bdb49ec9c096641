import pytest

from query_rewriter.rewrite import normalize, rewrite


def test_normalize_keeps_apostrophes_and_collapses_space():
    assert normalize("  Women’s   PURPLE Tops!! ") == "women's purple tops"


@pytest.mark.parametrize(
    "query, text, low, high",
    [
        ("red dress under 50", "red dress", None, 50.0),
        ("shoes above $30 below 80", "shoes", 30.0, 80.0),
        ("watch less than rs 999", "watch", None, 999.0),
        ("jeans", "jeans", None, None),
    ],
)
def test_price_phrases_become_bounds(query, text, low, high):
    out = rewrite(query)
    assert (out.text, out.price_min, out.price_max) == (text, low, high)


def test_a_query_that_is_only_a_price_keeps_its_text():
    assert rewrite("under 50").text == "under 50"


def test_an_amount_beyond_any_price_stays_in_the_text():
    rewritten = rewrite("bag under 99999999999999999999")
    assert rewritten.price_max is None and rewritten.text == "bag under 99999999999999999999"
