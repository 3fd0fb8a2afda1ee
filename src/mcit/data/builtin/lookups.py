"""The instruction mix's lookups: find one object by what it is and say one fact about it.

Every question of the stream's scene tasks is a lookup (the colour of the circle, the box of the
red object, how many triangles, which option names the circle's colour). A 4-layer model does
not learn one from a 1000-record task, so `tiny-instruct` practises them before the stream, at
volume, the way InstructBLIP's held-in datasets practise VQA. The questions are worded much as
the stream's are ("What shape is the red object?"): the tiny model does not carry a lookup
learned under one wording ("Tell me the shape of the red object.") over to another within a
stream task's budget (docs/benchmark.md measures both). The answers are sentences ("The red
object is a circle."), or for lettered options the mix's own layout, so a stream task still
has to learn its answer format from its own data and scores nothing zero-shot. Only words
already in the tiny tokenizer's vocabulary are used, so the tokenizer and the random model it
sizes stay the same.
"""

from __future__ import annotations

import random

from mcit.data.builtin.scene import (COLORS, POSITIONS, RELATIONS, SHAPES, Shape, format_box, random_scene,
                                     relation_holds, render_scene)
from mcit.data.builtin.spec import Sample

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
#: What every lookup question ends with: the answer is a sentence, not the stream's short answer.
IN_A_SENTENCE = "Answer in a sentence."


def _facts(objects: list[Shape]) -> dict:
    return {"objects": objects}


def lettered_options(rng: random.Random, image, question: str, correct: str, wrong: list[str],
                     objects: list[Shape]) -> Sample:
    """The mix's layout of a lettered question: the correct option and three of `wrong`, shuffled,
    one per line as 'A. ...', answered with the letter."""
    letters = "ABCD"
    options = rng.sample(wrong, 3) + [correct]
    rng.shuffle(options)
    listed = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(options))
    return Sample(image, f"{question}\n{listed}\nReply with A, B, C or D.", (letters[options.index(correct)],),
                  {"objects": objects, "options": options})


def color_of_shape(rng: random.Random) -> Sample:
    """'What color is the circle? Answer in a sentence.' → 'The circle is red.' (or that there is none)."""
    objects = random_scene(rng, rng.randint(1, 4))
    shape = rng.choice([o.shape for o in objects]) if rng.random() < 0.8 else rng.choice(SHAPES)
    found = [o for o in objects if o.shape == shape]
    answer = f"The {shape} is {found[0].color}." if found else f"There is no {shape} in the image."
    return Sample(render_scene(objects), f"What color is the {shape}? {IN_A_SENTENCE}", (answer,), _facts(objects))


def shape_of_color(rng: random.Random) -> Sample:
    """'What shape is the red object? Answer in a sentence.' → 'The red object is a circle.' (or none)."""
    objects = random_scene(rng, rng.randint(1, 4))
    color = rng.choice([o.color for o in objects]) if rng.random() < 0.8 else rng.choice(list(COLORS))
    found = [o for o in objects if o.color == color]
    answer = f"The {color} object is a {found[0].shape}." if found else f"There is no {color} object in the image."
    return Sample(render_scene(objects), f"What shape is the {color} object? {IN_A_SENTENCE}", (answer,), _facts(objects))


def cell_contents(rng: random.Random) -> Sample:
    """'Which shape is in the top left cell? Answer in a sentence.' → 'The top left cell shows a red
    circle.' (or no object)."""
    objects = random_scene(rng, rng.randint(1, 4))
    cells = {o.cell: o for o in objects}
    cell = rng.choice(list(cells)) if rng.random() < 0.8 else rng.randrange(len(POSITIONS))
    position = POSITIONS[cell]
    answer = (f"The {position} cell shows a {cells[cell].name}." if cell in cells
              else f"There is no object in the {position} cell.")
    return Sample(render_scene(objects), f"Which shape is in the {position} cell? {IN_A_SENTENCE}", (answer,), _facts(objects))


def relation_check(rng: random.Random) -> Sample:
    """'Is the red circle above the blue square? Answer in a sentence.' → 'yes, the red circle is
    above the blue square.' or 'no, ...' with the relations that do hold."""
    objects = random_scene(rng, rng.randint(2, 4))
    a, b = rng.sample(objects, 2)
    relation = rng.choice(RELATIONS)
    if relation_holds(relation, a, b):
        answer = f"yes, the {a.name} is {relation} the {b.name}."
    else:
        true = [r for r in RELATIONS if relation_holds(r, a, b)]
        answer = f"no, the {a.name} is {' and '.join(true)} the {b.name}."
    instruction = f"Is the {a.name} {relation} the {b.name}? {IN_A_SENTENCE}"
    return Sample(render_scene(objects), instruction, (answer,), _facts(objects))


def count_of_color(rng: random.Random) -> Sample:
    """'How many red objects are there? Answer in a sentence.' → 'I see two red objects.' (colours
    may repeat)."""
    objects = random_scene(rng, rng.randint(1, 6), unique=False)
    color = rng.choice([o.color for o in objects] + list(COLORS))
    n = sum(o.color == color for o in objects)
    noun = "object" if n == 1 else "objects"
    answer = f"I see no {color} objects." if n == 0 else f"I see {NUMBER_WORDS[n]} {color} {noun}."
    return Sample(render_scene(objects), f"How many {color} objects are there? {IN_A_SENTENCE}", (answer,), _facts(objects))


def option_of_attribute(rng: random.Random) -> Sample:
    """Lettered options for a looked-up attribute (the circle's colour, the red object's shape, the
    top left cell's object), in the mix's layout; the answer is the letter."""
    objects = random_scene(rng, rng.randint(2, 4))
    target = rng.choice(objects)
    kind = rng.randrange(3)
    if kind == 0:
        question, correct, pool = f"Which option is the color of the {target.shape}?", target.color, list(COLORS)
    elif kind == 1:
        question, correct, pool = f"Which option is the shape of the {target.color} object?", target.shape, list(SHAPES)
    else:
        question, correct, pool = f"Which option is in the {target.position} cell?", target.name, [
            f"{c} {s}" for c in COLORS for s in SHAPES]
    return lettered_options(rng, render_scene(objects), question, correct, [p for p in pool if p != correct], objects)


def box_of_object(rng: random.Random) -> Sample:
    """'Where is the red object? Answer in a sentence.' → 'The red object is at [3, 4, 14, 15].', the
    object named by its colour and shape, its shape or its colour."""
    objects = random_scene(rng, rng.randint(1, 4))
    target = rng.choice(objects)
    name = rng.choice((target.name, target.shape, f"{target.color} object"))
    return Sample(render_scene(objects), f"Where is the {name}? {IN_A_SENTENCE}",
                  (f"The {name} is at {format_box(target.box)}.",), _facts(objects))


#: The lookups and their weights in the instruction mix (see `pretraining.make_instruction`).
LOOKUPS = ((color_of_shape, 2), (shape_of_color, 2), (cell_contents, 2), (relation_check, 2),
           (count_of_color, 1), (option_of_attribute, 2), (box_of_object, 2))
