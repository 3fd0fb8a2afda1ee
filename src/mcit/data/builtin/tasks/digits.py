"""Classifying real handwritten digits (mirrors ImageNet classification), scored by exact match."""

from __future__ import annotations

import random

from mcit.data.builtin.glyphs import digit_label, digit_pool, render_digit
from mcit.data.builtin.spec import Sample, TaskSpec

INSTRUCTIONS = ("Which digit is this? Answer with the numeral.", "Classify the handwritten digit.")


def make(rng: random.Random) -> Sample:
    """One of scikit-learn's handwritten digits from the benchmark half; the answer is its class."""
    index = rng.choice(digit_pool("benchmark"))
    label = digit_label(index)
    return Sample(render_digit(index), rng.choice(INSTRUCTIONS), (str(label),), {"digit_index": index, "label": label})


SPEC = TaskSpec(
    name="digits",
    metric="exact_match",
    mirrors="ImageNet",
    description="classify a real handwritten digit (scikit-learn's digits, 8×8 scaled up)",
    chance="10 (ten balanced classes)",
    max_new_tokens=4,
    make=make,
)
