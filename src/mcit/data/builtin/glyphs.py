"""Images that are not shape scenes: rendered words and real handwritten digits.

Words are drawn with Pillow's bundled font (no system fonts needed). Digits are the 1,797 real
8×8 handwritten digits shipped with scikit-learn (Alpaydin & Kaynak, UCI "Optical Recognition of
Handwritten Digits"), scaled up to the stream's image size. Digit images are split by index
parity: even indices feed the benchmark's classification task, odd indices the start models'
pre-training mix, so no image is seen both in pre-training and in the benchmark.
"""

from __future__ import annotations

import functools
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mcit.data.builtin.scene import BACKGROUND, COLORS, IMAGE_SIZE

#: Letters used in rendered words: consonant-heavy upper case, chosen so that no pair is easily
#: confused at this size (no I/J/L, no O/Q).
LETTERS = "ABCDEFGHKMNPRSTUVWXYZ"
#: Letters per word: one per column of the image.
WORD_LENGTH = 3


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def random_word(rng: random.Random, length: int) -> str:
    """An upper-case pseudo-word of `length` letters."""
    return "".join(rng.choice(LETTERS) for _ in range(length))


def render_word(word: str, color: str, rng: random.Random) -> Image.Image:
    """`word` in `color` on the dark background, one letter per column of a 3-column grid.

    Each letter is centred in its own third of the image width (two patch columns of the tiny
    model's vision encoder), with the whole word shifted up or down at random, so reading is
    about recognising glyphs rather than segmenting a run of text at 48 pixels.
    """
    if len(word) > WORD_LENGTH:
        raise ValueError(f"words have at most {WORD_LENGTH} letters, got {word!r}")
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(17)
    column = IMAGE_SIZE // WORD_LENGTH
    top = rng.randint(4, IMAGE_SIZE - 22)
    for i, letter in enumerate(word):
        x1, y1, x2, y2 = draw.textbbox((0, 0), letter, font=font)
        x = i * column + (column - (x2 - x1)) // 2 - x1 + rng.randint(-1, 1)
        draw.text((x, top - y1), letter, fill=COLORS[color], font=font)
    return image


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32), data.target.astype(np.int64)


def digit_pool(part: str) -> list[int]:
    """Indices of the digits reserved for `part`: 'benchmark' (even) or 'pretraining' (odd)."""
    images, _ = _digits()
    start = {"benchmark": 0, "pretraining": 1}[part]
    return list(range(start, len(images), 2))


def digit_label(index: int) -> int:
    """The true class (0–9) of digit image `index`."""
    return int(_digits()[1][index])


def render_digit(index: int) -> Image.Image:
    """Digit image `index`, white on the dark background, scaled from 8×8 to the image size."""
    pixels = _digits()[0][index] / 16.0
    bg = np.array(BACKGROUND, dtype=np.float32)
    fg = np.array((235, 235, 235), dtype=np.float32)
    rgb = bg[None, None, :] * (1 - pixels[..., None]) + fg[None, None, :] * pixels[..., None]
    small = Image.fromarray(rgb.round().astype(np.uint8), "RGB")
    return small.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
