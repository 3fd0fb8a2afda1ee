"""Reading rendered text (mirrors TextVQA / OCR-VQA), scored by ANLS."""

from __future__ import annotations

import random

from mcit.data.builtin.glyphs import WORD_LENGTH, random_word, render_word
from mcit.data.builtin.scene import COLORS
from mcit.data.builtin.spec import Sample, TaskSpec

INSTRUCTIONS = ("What is written in the image?", "Read the text in the picture.", "What word does the sign show?")


def make(rng: random.Random) -> Sample:
    """A three-letter upper-case word in a random colour; the answer is the word."""
    word = random_word(rng, WORD_LENGTH)
    image = render_word(word, rng.choice(list(COLORS)), rng)
    return Sample(image, rng.choice(INSTRUCTIONS), (word,), {"word": word})


SPEC = TaskSpec(
    name="ocr",
    metric="anls",
    mirrors="TextVQA, OCR-VQA",
    description="read a three-letter word",
    chance="about 0 (a fixed guess shares at most one letter in place, below ANLS's 0.5 threshold)",
    max_new_tokens=8,
    make=make,
)
