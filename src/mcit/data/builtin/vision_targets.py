"""Dense targets for pre-training the tiny models' vision encoder on its own.

LLaVA-family models start from a vision encoder that was trained before the language model
ever saw it (CLIP). The tiny models mirror this: their vision encoder is first trained to
predict, from its patch features, what is in each grid cell (shape and colour), which letter
is in each column of a word image, and which digit a digit image shows. These targets come
from the generators' own facts, so they are exact. Without this stage, a from-scratch encoder
learns shapes and digits from captions but not letters, which need a denser signal.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageFilter

from mcit.data.builtin.glyphs import LETTERS, WORD_LENGTH, digit_label
from mcit.data.builtin.pretraining import any_image
from mcit.data.builtin.scene import COLORS, GRID, SHAPES

SHAPE_CLASSES = (*SHAPES, "none")
COLOR_CLASSES = (*COLORS, "none")
LETTER_CLASSES = (*LETTERS, "none")
DIGIT_CLASSES = tuple(str(i) for i in range(10)) + ("none",)
IGNORE = -100


@dataclass
class VisionExample:
    """An image and its dense targets (IGNORE where a target does not apply to this kind of image)."""

    image: Image.Image
    cell_shapes: list[int]    # GRID*GRID cells, row-major
    cell_colors: list[int]
    letters: list[int]        # WORD_LENGTH columns
    digit: int


def vision_example(rng: random.Random) -> VisionExample:
    """A scene, word or digit image (a quarter of them slightly blurred) with its targets."""
    image, _, facts = any_image(rng)
    cells = GRID * GRID
    shapes, colors = [IGNORE] * cells, [IGNORE] * cells
    letters, digit = [IGNORE] * WORD_LENGTH, IGNORE
    if "objects" in facts:
        shapes, colors = [SHAPE_CLASSES.index("none")] * cells, [COLOR_CLASSES.index("none")] * cells
        for obj in facts["objects"]:
            shapes[obj.cell] = SHAPE_CLASSES.index(obj.shape)
            colors[obj.cell] = COLOR_CLASSES.index(obj.color)
        letters = [LETTER_CLASSES.index("none")] * WORD_LENGTH
        digit = DIGIT_CLASSES.index("none")
    elif "word" in facts:
        word = facts["word"]
        letters = [LETTER_CLASSES.index(c) for c in word] + [LETTER_CLASSES.index("none")] * (WORD_LENGTH - len(word))
        digit = DIGIT_CLASSES.index("none")
    else:
        digit = digit_label(facts["digit_index"])
        letters = [LETTER_CLASSES.index("none")] * WORD_LENGTH
    if rng.random() < 0.25:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.9)))
    return VisionExample(image, shapes, colors, letters, digit)
