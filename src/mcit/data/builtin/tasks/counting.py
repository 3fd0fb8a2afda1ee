"""Counting and simple arithmetic over objects (mirrors CLEVR-Math), scored by exact match."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import COLORS, PLURALS, SHAPES, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

#: The kinds of question, by the index `make` draws: the question types a score is split by.
KINDS = ("all objects", "objects of a shape", "left after a colour", "left after a shape")
#: The questions of the kinds, worded once: the instruction mix asks them too (`lookups.count_lookup`).
HOW_MANY_OBJECTS = "How many objects are there?"
HOW_MANY_OF_SHAPE = "How many {shapes} are there?"
LEFT_AFTER_COLOR = "Subtract all {color} objects. How many objects are left?"
LEFT_AFTER_SHAPE = "Subtract all {shapes}. How many objects are left?"


def make(rng: random.Random) -> Sample:
    """1–6 objects (shapes and colours may repeat) and a count or a subtraction question."""
    objects = random_scene(rng, rng.randint(1, 6), unique=False)
    kind = rng.randrange(4)
    if kind == 0:
        question, answer = HOW_MANY_OBJECTS, len(objects)
    elif kind == 1:
        shape = rng.choice([o.shape for o in objects] + list(SHAPES))
        question = HOW_MANY_OF_SHAPE.format(shapes=PLURALS[shape])
        answer = sum(o.shape == shape for o in objects)
    elif kind == 2:
        color = rng.choice([o.color for o in objects] + list(COLORS))
        question = LEFT_AFTER_COLOR.format(color=color)
        answer = sum(o.color != color for o in objects)
    else:
        shape = rng.choice([o.shape for o in objects])
        question = LEFT_AFTER_SHAPE.format(shapes=PLURALS[shape])
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
