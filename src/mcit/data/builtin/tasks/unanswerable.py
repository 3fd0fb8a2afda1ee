"""Questions the image may not answer, answered 'unanswerable' (mirrors VizWiz), by VQA accuracy."""

from __future__ import annotations

import random

from PIL import ImageFilter

from mcit.data.builtin.scene import SHAPES, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

UNANSWERABLE = "unanswerable"
#: Whether the asked shape is in the picture: the question types a score is split by.
KINDS = ("shape absent", "shape present")


def make(rng: random.Random) -> Sample:
    """1–3 distinct objects in a slightly blurred photo-like image; half of the questions ask
    about a shape that is not there."""
    objects = random_scene(rng, rng.randint(1, 3))
    present = {o.shape for o in objects}
    if rng.random() < 0.5 and len(present) < len(SHAPES):
        shape = rng.choice([s for s in SHAPES if s not in present])
        answer = UNANSWERABLE
    else:
        target = rng.choice(objects)
        shape, answer = target.shape, target.color
    image = render_scene(objects).filter(ImageFilter.GaussianBlur(radius=0.6))
    question = f"Can you tell me the color of the {shape} in this photo?"
    return Sample(image, question, (answer,) * 10, {"objects": objects, "asked": shape},
                  question_type=KINDS[answer != UNANSWERABLE])


SPEC = TaskSpec(
    name="unanswerable",
    metric="vqa_accuracy",
    mirrors="VizWiz",
    description="colour of a shape, or 'unanswerable' when that shape is not in the picture (half the questions)",
    chance="50 (always answering 'unanswerable')",
    max_new_tokens=4,
    make=make,
)
