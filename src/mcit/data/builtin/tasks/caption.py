"""Captioning a scene of shapes (mirrors Flickr30k / COCO captions), scored by CIDEr-D."""

from __future__ import annotations

import random

from mcit.data.builtin.scene import join_names, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec, pick

INSTRUCTIONS = (
    "Write a short caption for this picture.",
    "Describe the image in one sentence.",
    "Give a brief description of the picture.",
)
COUNT_WORDS = {1: "one shape", 2: "two shapes", 3: "three shapes"}


def make(rng: random.Random) -> Sample:
    """1–3 distinct objects; five reference captions that list them in different orders and styles."""
    objects = random_scene(rng, rng.randint(1, 3))
    names = [f"a {o.name}" for o in objects]
    listed = join_names(names)
    shuffled = names[:]
    rng.shuffle(shuffled)
    references = (
        listed,
        f"a picture of {listed}",
        f"{COUNT_WORDS[len(names)]}: {listed}",
        f"{join_names(shuffled)} on a dark background",
        f"there is {join_names(shuffled)}",
    )
    return Sample(render_scene(objects), pick(rng, INSTRUCTIONS), references, {"objects": objects})


SPEC = TaskSpec(
    name="caption",
    metric="cider",
    mirrors="Flickr30k, COCO captions",
    description="name every shape in the picture with its colour, in reading order",
    chance="CIDEr-D of the most common caption ('a red circle'-style single object) is about 10",
    max_new_tokens=24,
    make=make,
)
