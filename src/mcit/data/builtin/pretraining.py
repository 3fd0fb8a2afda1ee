"""The pre-training mixes of the two start models, kept apart from the benchmark's tasks.

He et al. (arXiv 2311.16206) found that a model instruction-tuned on a mix of tasks before the
stream (InstructBLIP) forgets less than one only caption-pretrained (BLIP-2). The built-in start
models mirror the two:

- `tiny-base` learns only dense captions of every kind of image the stream shows (scenes,
  words, digits), like BLIP-2's image-text pre-training;
- `tiny-instruct` continues from `tiny-base` on a mix of instruction tasks that are *not* the
  stream's tasks, like InstructBLIP's held-in datasets: existence yes/no, positions, spelling,
  digit parity, counting in words, lettered options about which objects appear, and sentences
  about one object found by its shape or its colour, about how many of a shape there are and
  about where one named object lies relative to another; and, most of the mix, the lookups of
  `mcit.data.builtin.lookups` (the colour of a named shape, the shape of a named colour, what a
  cell holds, where a named object is, whether a relation holds, how many of a shape or colour
  and how many are left after subtracting one, an object's box, the option that names a
  looked-up attribute), asked in the stream's own wordings but answered in a sentence. They
  teach the skills the stream's questions need without the stream's short answer formats, so a
  stream task still has to be learned and can then be forgotten.

The images come from other random streams than the benchmark's (and the odd half of the
handwritten digits), so no benchmark image is seen before the stream starts.
"""

from __future__ import annotations

import random

from mcit.data.builtin.glyphs import WORD_LENGTH, digit_label, digit_pool, random_word, render_digit, render_word
from mcit.data.builtin.lookups import LOOKUPS, NUMBER_WORDS, lettered_options
from mcit.data.builtin.scene import (COLORS, PLURALS, RELATIONS, SHAPES, Shape, format_box, random_scene,
                                     relation_holds, render_scene)
from mcit.data.builtin.spec import Sample, TaskSpec


def _dense_caption(objects: list[Shape]) -> str:
    return ", ".join(f"{o.name} at the {o.position}" for o in objects)


def _caption_by_shape(objects: list[Shape]) -> str:
    """Every object, the shapes in a fixed order: writing each colour means finding the object by its shape."""
    ordered = sorted(objects, key=lambda o: (SHAPES.index(o.shape), o.cell))
    return ", ".join(f"the {o.shape} is {o.color} at the {o.position}" for o in ordered)


def _caption_by_color(objects: list[Shape]) -> str:
    """Every object, the colours in a fixed order: writing each shape means finding the object by its colour."""
    colors = list(COLORS)
    ordered = sorted(objects, key=lambda o: (colors.index(o.color), o.cell))
    return ", ".join(f"the {o.color} object is a {o.shape} at the {o.position}" for o in ordered)


def _caption_with_boxes(objects: list[Shape]) -> str:
    """Every object in reading order with its pixel box, so coordinates are words the model has written."""
    return ", ".join(f"{o.name} at {format_box(o.box)}" for o in objects)


#: How a scene's dense caption is worded: the cells in reading order, or ordered by shape or by
#: colour so that captioning asks for objects by what they are, or with pixel boxes.
SCENE_CAPTIONS = {"cells": _dense_caption, "shapes": _caption_by_shape, "colors": _caption_by_color,
                  "boxes": _caption_with_boxes}
SCENE_CAPTION_WEIGHTS = {"cells": 2, "shapes": 3, "colors": 2, "boxes": 2}


def any_image(rng: random.Random) -> tuple[object, str, dict]:
    """A scene, a word or a digit, with its dense caption."""
    kind = rng.choices(("scene", "word", "digit"), weights=(6, 2, 2))[0]
    if kind == "scene":
        n = rng.randint(1, 6)
        objects = random_scene(rng, n, unique=n <= len(SHAPES) and rng.random() < 0.5)
        return render_scene(objects), _dense_caption(objects), {"objects": objects}
    if kind == "word":
        word, color = random_word(rng, rng.randint(2, WORD_LENGTH)), rng.choice(list(COLORS))
        return render_word(word, color, rng), f"the word {word} written in {color}", {"word": word, "color": color}
    index = rng.choice(digit_pool("pretraining"))
    return render_digit(index), f"a handwritten digit {digit_label(index)}", {"digit_index": index}


def make_caption(rng: random.Random) -> Sample:
    """A dense caption of any kind of image: every object with its position, the word, the digit."""
    image, text, facts = any_image(rng)
    if "objects" in facts:
        style = rng.choices(list(SCENE_CAPTION_WEIGHTS), weights=list(SCENE_CAPTION_WEIGHTS.values()))[0]
        text = SCENE_CAPTIONS[style](facts["objects"])
    return Sample(image, "Describe the image.", (text,), facts)


def _describe_one(rng: random.Random) -> Sample:
    """A sentence about the object of a given shape or colour, or that there is none."""
    objects = random_scene(rng, rng.randint(1, 4))
    by_shape = rng.random() < 0.5
    key = rng.choice(SHAPES) if by_shape else rng.choice(list(COLORS))
    found = [o for o in objects if (o.shape if by_shape else o.color) == key]
    subject = f"the {key}" if by_shape else f"the {key} object"
    if not found:
        answer = f"There is no {key} in the image." if by_shape else f"There is no {key} object in the image."
    elif by_shape:
        answer = f"The {key} is {found[0].color} and it is at the {found[0].position}."
    else:
        answer = f"The {key} object is a {found[0].shape} and it is at the {found[0].position}."
    return Sample(render_scene(objects), f"Tell me about {subject}.", (answer,), {"objects": objects})


def _count_in_sentence(rng: random.Random) -> Sample:
    """How many objects of one shape there are, said in a sentence with the number as a word."""
    objects = random_scene(rng, rng.randint(1, 6), unique=False)
    shape = rng.choice(SHAPES)
    n = sum(o.shape == shape for o in objects)
    seen = f"I see no {PLURALS[shape]}." if n == 0 else f"I see {NUMBER_WORDS[n]} {shape if n == 1 else PLURALS[shape]}."
    return Sample(render_scene(objects), f"Tell me how many {PLURALS[shape]} you see.", (seen,), {"objects": objects})


def _relate_two(rng: random.Random) -> Sample:
    """Where one named object lies relative to another, in a sentence: above or below, left or right of."""
    objects = random_scene(rng, rng.randint(2, 4))
    a, b = rng.sample(objects, 2)
    relations = [r for r in RELATIONS if relation_holds(r, a, b)]
    answer = f"The {a.name} is {' and '.join(relations)} the {b.name}."
    return Sample(render_scene(objects), f"Tell me about the {a.name} and the {b.name}.", (answer,),
                  {"objects": objects})


def _scene_question(rng: random.Random, kind: str) -> Sample:
    """Existence yes/no, the part of the image an object is in, the number of objects in a word,
    or which lettered object appears."""
    objects = random_scene(rng, rng.randint(1, 4))
    image = render_scene(objects)
    target = rng.choice(objects)
    if kind == "exists":
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        present = any(o.shape == shape and o.color == color for o in objects)
        if rng.random() < 0.5:
            shape, color, present = target.shape, target.color, True
        return Sample(image, f"Is there a {color} {shape} in the image? Answer yes or no.",
                      ("yes" if present else "no",), {"objects": objects})
    if kind == "part":
        return Sample(image, f"In which part of the image is the {target.name}?",
                      (target.position,), {"objects": objects})
    if kind == "count":
        return Sample(image, "Count the objects and answer with a word.",
                      (NUMBER_WORDS[len(objects)],), {"objects": objects})
    absent = [f"{c} {s}" for c in COLORS for s in SHAPES if all(o.name != f"{c} {s}" for o in objects)]
    return lettered_options(rng, image, "Which object appears in the image?", target.name, absent, objects)


def _spell(rng: random.Random) -> Sample:
    word = random_word(rng, rng.randint(2, WORD_LENGTH))
    image = render_word(word, rng.choice(list(COLORS)), rng)
    return Sample(image, "Spell the word in the image letter by letter.", (" ".join(word),), {"word": word})


def _parity(rng: random.Random) -> Sample:
    index = rng.choice(digit_pool("pretraining"))
    label = digit_label(index)
    return Sample(render_digit(index), "Is this digit even or odd?", ("even" if label % 2 == 0 else "odd",),
                  {"digit_index": index})


#: Every kind of the instruction mix with its weight: the skills of the whole image (captions,
#: spelling, parity, counting all objects) and, most of the mix, lookups of one object.
INSTRUCTION_KINDS = (
    (make_caption, 1), (lambda rng: _scene_question(rng, "exists"), 1), (lambda rng: _scene_question(rng, "part"), 1),
    (lambda rng: _scene_question(rng, "count"), 1), (lambda rng: _scene_question(rng, "options"), 1),
    (_spell, 1), (_parity, 1), (_describe_one, 2), (_count_in_sentence, 1), (_relate_two, 1),
) + LOOKUPS


def make_instruction(rng: random.Random) -> Sample:
    """One of the instruction-mix kinds, drawn by its weight."""
    makers, weights = zip(*INSTRUCTION_KINDS)
    return rng.choices(makers, weights=weights)[0](rng)


PRETRAINING_TASKS: dict[str, TaskSpec] = {
    "pretrain-caption": TaskSpec(
        name="pretrain-caption", metric="cider", mirrors="image-text pre-training (BLIP-2)",
        description="dense captions of scenes, words and digits", chance="-", max_new_tokens=40,
        make=make_caption),
    "pretrain-instruct": TaskSpec(
        name="pretrain-instruct", metric="exact_match", mirrors="joint instruction tuning (InstructBLIP)",
        description="captions, existence, positions, counting in words, spelling, digit parity, lettered options, "
                    "sentences about one object, one shape's count or two objects' relative places, and "
                    "lookups of one object's colour, shape, cell, place, relation, count or box answered in a sentence",
        chance="-", max_new_tokens=40, make=make_instruction),
}
