"""Training-time title dropout, so that the product tower has to learn from the image (issue #11).

A fashion title usually names the product ("Nike Men Blue T20 Cricket Jersey"), so a tower that
reads the title can match most queries without looking at the photo, and the image tokens learn
little. Hiding title words, or now and then the whole title of a product that has an image,
leaves examples that only the image can match.

Only the trainer calls this module, on each batch before featurisation; the featurizer that
serving shares with training (:mod:`acebert.features`) never sees it, so encoding a product is
unchanged. Draws come from the RNG passed in (the trainer's seeded one), so a run repeats exactly,
and nothing is drawn while both probabilities are 0, so a run without augmentation draws its
batches exactly as before.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Callable, Sequence

from acebert.encoder import ProductInput


def drop_title_words(title: str, p: float, rng: random.Random) -> str:
    """``title`` with each whitespace-separated word dropped with probability ``p``.

    ``p = 0`` returns ``title`` untouched (spacing included) and draws nothing.
    """
    if p == 0:
        return title
    return " ".join(word for word in title.split() if rng.random() >= p)


def augment_products(
    products: Sequence[ProductInput],
    rng: random.Random,
    word_dropout: float,
    title_dropout: float,
    uses_image: Callable[[ProductInput], bool],
) -> list[ProductInput]:
    """New product inputs with title dropout applied; the inputs are left unchanged.

    With probability ``title_dropout`` a product's whole title becomes ``""``, but only when
    ``uses_image`` says the tower sees its image: an image-less product would be left with
    nothing to match. A product that keeps its title loses each word with probability
    ``word_dropout``. Images and categories are kept as they are.
    """
    augmented = []
    for product in products:
        if title_dropout and uses_image(product) and rng.random() < title_dropout:
            title = ""
        else:
            title = drop_title_words(product.title, word_dropout, rng)
        augmented.append(dataclasses.replace(product, title=title))
    return augmented


def title_span(title: str, max_words: int, rng: random.Random) -> str:
    """A run of 1 to ``max_words`` consecutive whitespace-separated words of ``title`` (length, then start,
    uniform): the few words a shopper copies from a listing, for the title-span matching loss."""
    words = title.split()
    if not words:
        return title
    length = rng.randint(1, min(max_words, len(words)))
    start = rng.randint(0, len(words) - length)
    return " ".join(words[start : start + length])
