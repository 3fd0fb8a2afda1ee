"""The instruction mix's lookups: find one object by what it is and say one fact about it.

Every question of the stream's scene tasks is a lookup (the colour of the circle, the box of the
red object, how many triangles, which option names the circle's colour). A 4-layer model does
not learn one from a 1000-record task, so `tiny-instruct` practises them before the stream, at
volume, the way InstructBLIP's held-in datasets practise VQA. The questions are worded as the
stream's tasks word them ("What shape is the red object?" as `vqa` asks, "Which shape is red?" as
`choice` asks, "Locate the red object." as `ground` asks): the tiny model does not carry a lookup
learned under one wording ("Tell me the shape of the red object.") over to another within a
stream task's budget (docs/benchmark.md measures both). The shared questions are the task
modules' own templates, so the two cannot drift apart.

The answers put the looked-up value first and then say it in a sentence ("circle, the red
object is a circle."), or for lettered options use the mix's own layout, so a stream task still
has to learn its answer format from its own data and scores nothing zero-shot. The value comes
first because the stream asks for it at the first answer token: a sentence that names the
object before the value ("The red object is a circle.") lets the model find the object from the
word it has just written, a route a one-word answer does not have, and a model taught that way
does not find an object by its colour from the question alone (docs/benchmark.md measures
both). Only words already in the tiny tokenizer's vocabulary are used, so the tokenizer and the
random model it sizes stay the same.
"""

from __future__ import annotations

import random

from mcit.data.builtin.scene import (COLORS, PLURALS, POSITIONS, RELATIONS, SHAPES, Shape, format_box,
                                     random_scene, relation_holds, render_scene)
from mcit.data.builtin.spec import Sample
from mcit.data.builtin.tasks import attributes, choice, counting, grounding

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
#: What every lookup question ends with: the answer is a sentence, not the stream's short answer.
IN_A_SENTENCE = "Answer in a sentence."


def _facts(objects: list[Shape]) -> dict:
    return {"objects": objects}


def value_first(value: object, sentence: str) -> str:
    """'circle, the red object is a circle.': the looked-up value, then the sentence that says it."""
    return f"{value}, {sentence}"


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
    """'What color is the circle? Answer in a sentence.' → 'red, the circle is red.' (or 'no, there
    is no circle in the image.')."""
    objects = random_scene(rng, rng.randint(1, 4))
    shape = rng.choice([o.shape for o in objects]) if rng.random() < 0.8 else rng.choice(SHAPES)
    found = [o for o in objects if o.shape == shape]
    answer = (value_first(found[0].color, f"the {shape} is {found[0].color}.") if found
              else value_first("no", f"there is no {shape} in the image."))
    question = attributes.COLOR_OF_SHAPE.format(shape=shape)
    return Sample(render_scene(objects), f"{question} {IN_A_SENTENCE}", (answer,), _facts(objects))


def shape_of_color(rng: random.Random) -> Sample:
    """'What shape is the red object? Answer in a sentence.' → 'circle, the red object is a
    circle.' (or none), also asked as `choice` asks it: 'Which shape is red?'."""
    objects = random_scene(rng, rng.randint(1, 4))
    color = rng.choice([o.color for o in objects]) if rng.random() < 0.8 else rng.choice(list(COLORS))
    found = [o for o in objects if o.color == color]
    answer = (value_first(found[0].shape, f"the {color} object is a {found[0].shape}.") if found
              else value_first("no", f"there is no {color} object in the image."))
    question = rng.choice((attributes.SHAPE_OF_COLOR, choice.WHICH_SHAPE_IS)).format(color=color)
    return Sample(render_scene(objects), f"{question} {IN_A_SENTENCE}", (answer,), _facts(objects))


def cell_contents(rng: random.Random) -> Sample:
    """'Which shape is in the top left cell? Answer in a sentence.' → 'The top left cell shows a red
    circle.' (or no object), also asked as `vqa` asks it: 'Which color is the shape in the top left cell?'."""
    objects = random_scene(rng, rng.randint(1, 4))
    cells = {o.cell: o for o in objects}
    cell = rng.choice(list(cells)) if rng.random() < 0.8 else rng.randrange(len(POSITIONS))
    position = POSITIONS[cell]
    asked = rng.choice(("Which shape is in the {position} cell?", attributes.COLOR_IN_CELL))
    question = asked.format(position=position)
    if cell in cells:
        held = cells[cell]
        value = held.color if asked == attributes.COLOR_IN_CELL else held.shape
        answer = value_first(value, f"the {position} cell shows a {held.name}.")
    else:
        answer = value_first("no", f"there is no object in the {position} cell.")
    return Sample(render_scene(objects), f"{question} {IN_A_SENTENCE}", (answer,), _facts(objects))


def position_of_object(rng: random.Random) -> Sample:
    """'Where is the red object? Answer in a sentence.' → 'top left, the red object is at the top
    left.', the object named by its colour and shape, its shape or its colour (as `ground` names
    it), asked as `choice` asks for a position."""
    objects = random_scene(rng, rng.randint(1, 4))
    target = rng.choice(objects)
    name = rng.choice(grounding.names_of(target))
    answer = value_first(target.position, f"the {name} is at the {target.position}.")
    return Sample(render_scene(objects), f"{choice.WHERE_IS.format(name=name)} {IN_A_SENTENCE}", (answer,),
                  _facts(objects))


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
    instruction = f"{attributes.RELATION.format(a=a.name, relation=relation, b=b.name)} {IN_A_SENTENCE}"
    return Sample(render_scene(objects), instruction, (answer,), _facts(objects))


def _how_many(n: int, singular: str, plural: str) -> str:
    """'no circles', '1 circle', '3 circles': a count said in digits, as the count lookups say it."""
    return f"{'no' if n == 0 else n} {singular if n == 1 else plural}"


def count_lookup(rng: random.Random) -> Sample:
    """The counts `count` asks for, asked bare as `count` asks them and answered with the number,
    then a sentence, in digits: 'How many circles are there?' → '2, I see 2 circles.', 'How many
    red objects are there?', and for a subtraction the steps that reach the number: 'Subtract all
    red objects. How many objects are left?' → '3, I see 5 objects and 2 red objects, 3 left.'
    (shapes and colours may repeat).

    Bare, not with the mix's "Answer in a sentence.": a start model taught the counts only with
    that suffix answered `count`'s own bare questions with the right number at most one time in
    ten, and the stream did not carry the skill over (see docs/benchmark.md). Digits, not number
    words: 'five' and 'six' are not words of the tiny vocabulary, which must stay as the shipped
    models were built with it."""
    objects = random_scene(rng, rng.randint(1, 6), unique=False)
    kind = rng.randrange(4)
    if kind == 0:
        key = rng.choice([o.shape for o in objects] + list(SHAPES))
        n = sum(o.shape == key for o in objects)
        sentence = f"I see {_how_many(n, key, PLURALS[key])}."
        question = counting.HOW_MANY_OF_SHAPE.format(shapes=PLURALS[key])
    elif kind == 1:
        key = rng.choice([o.color for o in objects] + list(COLORS))
        n = sum(o.color == key for o in objects)
        sentence = f"I see {_how_many(n, f'{key} object', f'{key} objects')}."
        question = f"How many {key} objects are there?"
    else:
        if kind == 2:
            key = rng.choice([o.color for o in objects] + list(COLORS))
            n = sum(o.color != key for o in objects)
            question = counting.LEFT_AFTER_COLOR.format(color=key)
            taken_nouns = (f"{key} object", f"{key} objects")
        else:
            key = rng.choice([o.shape for o in objects])
            n = sum(o.shape != key for o in objects)
            question = counting.LEFT_AFTER_SHAPE.format(shapes=PLURALS[key])
            taken_nouns = (key, PLURALS[key])
        total, taken = _how_many(len(objects), "object", "objects"), _how_many(len(objects) - n, *taken_nouns)
        sentence = f"I see {total} and {taken}, {n} left."
    return Sample(render_scene(objects), question, (value_first(n, sentence),), _facts(objects))


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
    """'Locate the red object. Answer in a sentence.' → '[3, 4, 14, 15], the red object is at
    [3, 4, 14, 15].', asked as `ground` asks it.

    Half the requests name the object by its colour alone, the rest by colour and shape or by
    shape: finding a box by colour is the hardest of the three, and with them drawn evenly it
    stays the weakest kind of `ground` (see docs/benchmark.md)."""
    objects = random_scene(rng, rng.randint(1, 4))
    target = rng.choice(objects)
    names = grounding.names_of(target)
    name = rng.choice((*names, names[2]))  # the colour-only name twice: half the draws
    question = rng.choice((grounding.BOX_OF, grounding.LOCATE)).format(name=name)
    box = format_box(target.box)
    return Sample(render_scene(objects), f"{question} {IN_A_SENTENCE}",
                  (value_first(box, f"the {name} is at {box}."),), _facts(objects))


#: The lookups and their weights in the instruction mix (see `pretraining.make_instruction`).
LOOKUPS = ((color_of_shape, 2), (shape_of_color, 2), (cell_contents, 2), (position_of_object, 1),
           (relation_check, 2), (count_lookup, 6), (option_of_attribute, 2), (box_of_object, 2))
