"""Multiple-choice questions with the options in the instruction (mirrors ScienceQA / IconQA)."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import COLORS, POSITIONS, SHAPES, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

LETTERS = "ABCD"


def _options(rng: random.Random, correct: str, pool: list[str], n: int) -> tuple[list[str], str]:
    wrong = rng.sample([p for p in pool if p != correct], n - 1)
    options = wrong + [correct]
    rng.shuffle(options)
    return options, LETTERS[options.index(correct)]


def make(rng: random.Random) -> Sample:
    """2–4 distinct objects; a question with 3 or 4 lettered options; the answer is the letter."""
    objects = random_scene(rng, rng.randint(2, 4))
    target = rng.choice(objects)
    n = rng.choice((3, 4))
    kind = rng.randrange(4)
    if kind == 0:
        question, correct, pool = f"Which shape is {target.color}?", target.shape, list(SHAPES)
    elif kind == 1:
        question, correct, pool = f"What is the color of the {target.shape}?", target.color, list(COLORS)
    elif kind == 2:
        question, correct, pool = f"Where is the {target.name}?", target.position, list(POSITIONS)
    else:
        question, correct, pool = "How many objects are in the picture?", str(len(objects)), ["1", "2", "3", "4", "5"]
    options, key = _options(rng, correct, pool, n)
    listed = " ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    instruction = f"Question: {question}\nOptions: {listed}\nAnswer with the option's letter."
    return Sample(render_scene(objects), instruction, (key,), {"objects": objects, "options": options, "correct": correct})


SPEC = TaskSpec(
    name="choice",
    metric="multiple_choice",
    mirrors="ScienceQA, IconQA",
    description="pick the lettered option that answers a question about shapes, colours, positions or counts",
    chance="about 29 (3 or 4 options, letters balanced)",
    max_new_tokens=4,
    make=make,
)
