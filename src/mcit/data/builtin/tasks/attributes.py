"""Questions about attributes and spatial relations (mirrors VQAv2 / GQA), scored by VQA accuracy."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import RELATIONS, random_scene, relation_holds, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

#: VQA-style references: ten annotators, a few of whom use a near-synonym.
SYNONYMS = {"purple": "violet", "white": "grey", "diamond": "rhombus"}
#: The kinds of question, by the index `make` draws: the question types a score is split by.
KINDS = ("colour of a shape", "shape of a colour", "colour at a position", "relation yes/no")
#: The questions of the kinds, worded once: the instruction mix asks them too (`mcit.data.builtin.lookups`).
COLOR_OF_SHAPE = "What color is the {shape}?"
SHAPE_OF_COLOR = "What shape is the {color} object?"
COLOR_IN_CELL = "Which color is the shape in the {position} cell?"
RELATION = "Is the {a} {relation} the {b}?"


def _references(answer: str, rng: random.Random) -> tuple[str, ...]:
    n_alt = rng.randint(0, 2) if answer in SYNONYMS else 0
    return tuple([answer] * (10 - n_alt) + [SYNONYMS.get(answer, answer)] * n_alt)


def make(rng: random.Random) -> Sample:
    """2–4 distinct objects and one question whose answer is read off the picture."""
    objects = random_scene(rng, rng.randint(2, 4))
    kind = rng.randrange(4)
    target = rng.choice(objects)
    if kind == 0:
        question, answer = COLOR_OF_SHAPE.format(shape=target.shape), target.color
    elif kind == 1:
        question, answer = SHAPE_OF_COLOR.format(color=target.color), target.shape
    elif kind == 2:
        question, answer = COLOR_IN_CELL.format(position=target.position), target.color
    else:
        a, b = rng.sample(objects, 2)
        relation = rng.choice(RELATIONS)
        question = RELATION.format(a=a.name, relation=relation, b=b.name)
        answer = "yes" if relation_holds(relation, a, b) else "no"
    return Sample(render_scene(objects), question, _references(answer, rng), {"objects": objects, "kind": kind},
                  question_type=KINDS[kind])


SPEC = TaskSpec(
    name="vqa",
    metric="vqa_accuracy",
    mirrors="VQAv2, GQA",
    description="colour of a named shape, shape of a named colour, colour at a position, and yes/no spatial relations",
    chance="about 30 (answering 'no' to relations and the most common colour or shape otherwise)",
    max_new_tokens=6,
    make=make,
)
