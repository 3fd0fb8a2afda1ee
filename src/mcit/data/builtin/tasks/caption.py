"""Captioning a scene of shapes (mirrors Flickr30k / COCO captions), scored by CIDEr-D.

Like the five human captions of Flickr30k, the five references of an image say the same thing
in different words: shapes and colours are paraphrased ("a purple circle", "a violet disk"),
objects are listed in different orders, joined differently, and framed by different openings and
endings. The first reference is the training target, so the model learns one annotator's
caption per image, as it would on a real captioning set. A caption that names every object
correctly in one of these styles scores a CIDEr-D of about 200 (×100 scale), BLEU-4 about 46 and
ROUGE-L about 65 against the references, in the range of strong captioners on COCO, rather than
the near-1000 an exact template match would give; the average over tasks is not then dominated
by the captioning score.
"""

from __future__ import annotations

import random

from mcit.data.builtin.scene import Shape, join_names, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec, pick

INSTRUCTIONS = (
    "Write a short caption for this picture.",
    "Describe the image in one sentence.",
    "Give a brief description of the picture.",
)
SHAPE_WORDS = {
    "circle": ("circle", "round shape", "disk", "dot", "ball"),
    "square": ("square", "box", "block", "square shape"),
    "triangle": ("triangle", "triangle shape", "pyramid", "wedge"),
    "diamond": ("diamond", "rhombus", "diamond shape", "kite"),
}
COLOR_WORDS = {"red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
               "purple": ("purple", "violet"), "white": ("white", "light grey")}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
OPENINGS = ("", "", "there is ", "a dark picture with ", "the image shows ", "we see ")
ENDINGS = ("", "", " on a dark background", " in the dark", " on black", " against a grey backdrop")
PAIR_JOINERS = ("and", "and", "next to", "plus", "with")


def _caption(objects: list[Shape], rng: random.Random) -> str:
    """One annotator's caption: paraphrased names, an order, a joiner, an opening and an ending."""
    ordered = objects[:]
    if rng.random() < 0.6:
        rng.shuffle(ordered)
    names = []
    for obj in ordered:
        color = rng.choice(COLOR_WORDS[obj.color])
        names.append(f"a {color} {rng.choice(SHAPE_WORDS[obj.shape])}")
    if len(names) == 2:
        body = f"{names[0]} {rng.choice(PAIR_JOINERS)} {names[1]}"
    else:
        body = join_names(names)
    opening = rng.choice(OPENINGS)
    if rng.random() < 0.15 and len(names) > 1:
        opening = f"{COUNT_WORDS[len(names)]} shapes: "
    return (opening + body + rng.choice(ENDINGS)).strip()


def make(rng: random.Random) -> Sample:
    """1–3 distinct objects; five paraphrased reference captions naming all of them."""
    objects = random_scene(rng, rng.randint(1, 3))
    references = tuple(_caption(objects, rng) for _ in range(5))
    return Sample(render_scene(objects), pick(rng, INSTRUCTIONS), references, {"objects": objects})


SPEC = TaskSpec(
    name="caption",
    metric="cider",
    mirrors="Flickr30k, COCO captions",
    description="name every shape in the picture with its colour (five paraphrased reference captions)",
    chance="CIDEr-D about 73 (one fixed caption naming three common objects); a correct caption scores about 200",
    max_new_tokens=24,
    make=make,
)
