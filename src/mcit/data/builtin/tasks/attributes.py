"""Questions about attributes and spatial relations (mirrors VQAv2 / GQA), scored by VQA accuracy."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import RELATIONS, random_scene, relation_holds, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

#: VQA-style references: ten annotators, a few of whom use a near-synonym.
SYNONYMS = {"purple": "violet", "white": "grey", "diamond": "rhombus"}
#: The kinds of question, by the index `make` draws: the question types a score is split by.
KINDS = ("colour of a shape", "shape of a colour", "colour at a position", "relation yes/no")


def _references(answer: str, rng: random.Random) -> tuple[str, ...]:
    n_alt = rng.randint(0, 2) if answer in SYNONYMS else 0
    return tuple([answer] * (10 - n_alt) + [SYNONYMS.get(answer, answer)] * n_alt)


def make(rng: random.Random) -> Sample:
    """2–4 distinct objects and one question whose answer is read off the picture."""
    objects = random_scene(rng, rng.randint(2, 4))
    kind = rng.randrange(4)
    target = rng.choice(objects)
    if kind == 0:
        question, answer = f"What color is the {target.shape}?", target.color
    elif kind == 1:
        question, answer = f"What shape is the {target.color} object?", target.shape
    elif kind == 2:
        question, answer = f"Which color is the shape in the {target.position} cell?", target.color
    else:
        a, b = rng.sample(objects, 2)
        relation = rng.choice(RELATIONS)
        question, answer = f"Is the {a.name} {relation} the {b.name}?", "yes" if relation_holds(relation, a, b) else "no"
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
