"""Counting and simple arithmetic over objects (mirrors CLEVR-Math), scored by exact match."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import COLORS, PLURALS, SHAPES, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

#: The kinds of question, by the index `make` draws: the question types a score is split by.
KINDS = ("all objects", "objects of a shape", "left after a colour", "left after a shape")


def make(rng: random.Random) -> Sample:
    """1–6 objects (shapes and colours may repeat) and a count or a subtraction question."""
    objects = random_scene(rng, rng.randint(1, 6), unique=False)
    kind = rng.randrange(4)
    if kind == 0:
        question, answer = "How many objects are there?", len(objects)
    elif kind == 1:
        shape = rng.choice([o.shape for o in objects] + list(SHAPES))
        question = f"How many {PLURALS[shape]} are there?"
        answer = sum(o.shape == shape for o in objects)
    elif kind == 2:
        color = rng.choice([o.color for o in objects] + list(COLORS))
        question = f"Subtract all {color} objects. How many objects are left?"
        answer = sum(o.color != color for o in objects)
    else:
        shape = rng.choice([o.shape for o in objects])
        question = f"Subtract all {PLURALS[shape]}. How many objects are left?"
        answer = sum(o.shape != shape for o in objects)
    return Sample(render_scene(objects), question, (str(answer),), {"objects": objects, "kind": kind},
                  question_type=KINDS[kind])


SPEC = TaskSpec(
    name="count",
    metric="exact_match",
    mirrors="CLEVR-Math",
    description="how many objects, how many of a shape, and how many are left after subtracting a colour or shape",
    chance="about 20 (always answering the most common count)",
    max_new_tokens=4,
    make=make,
)
