"""Grounding a referring expression with a box (mirrors RefCOCO), scored by IoU ≥ 0.5."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import Shape, format_box, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

#: The two requests, worded once: the instruction mix makes them too (`lookups.box_of_object`).
BOX_OF = "Give the bounding box of the {name}."
LOCATE = "Locate the {name}."
INSTRUCTIONS = (BOX_OF, LOCATE + " Answer with a box [x1, y1, x2, y2].")
#: The ways the object is named: the question types a score is split by.
KINDS = ("by colour and shape", "by shape", "by colour")


def names_of(target: Shape) -> tuple[str, str, str]:
    """The ways a request names `target`, in the order of KINDS: 'red circle', 'circle', 'red object'."""
    return (target.name, target.shape, f"{target.color} object")


def make(rng: random.Random) -> Sample:
    """2–4 distinct objects; the answer is the pixel box of the one named."""
    objects = random_scene(rng, rng.randint(2, 4))
    target = rng.choice(objects)
    names = names_of(target)
    name = rng.choice(names)
    instruction = rng.choice(INSTRUCTIONS).format(name=name)
    return Sample(render_scene(objects), instruction, (format_box(target.box),), {"objects": objects, "target": target},
                  question_type=KINDS[names.index(name)])


SPEC = TaskSpec(
    name="ground",
    metric="grounding",
    mirrors="RefCOCO, RefCOCO+, RefCOCOg",
    description="answer with the pixel box [x1, y1, x2, y2] of the named object in a 48×48 image",
    chance="about 11 (the box of one fixed grid cell)",
    max_new_tokens=12,
    make=make,
)
