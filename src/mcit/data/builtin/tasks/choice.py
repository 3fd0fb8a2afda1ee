"""Multiple-choice questions with the options in the instruction (mirrors IconQA / ScienceQA).

The answer is the text of the correct option, as in IconQA's multi-text-choice questions, not its
letter: binding an answer to its letter is a skill of its own that the 2.5M-parameter start models
do not learn within the stream's budget (`mcit.data.builtin.probes` measures it), and a task that
stays at chance shows no forgetting. The multiple-choice scorer reads a letter or an option's text.
"""

from __future__ import annotations

import random

from mcit.data.builtin.scene import COLORS, POSITIONS, SHAPES, Shape, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

LETTERS = "ABCD"


#: The kinds of question, by the index `make` draws.
KINDS = ("shape of a colour", "colour of a shape", "position of an object", "number of objects")
COUNT_POOL = ["1", "2", "3", "4", "5"]
#: Two questions worded once: the instruction mix asks them too (`mcit.data.builtin.lookups`).
WHICH_SHAPE_IS = "Which shape is {color}?"
WHERE_IS = "Where is the {name}?"


def question(kind: int, target: Shape, objects: list[Shape]) -> tuple[str, str, list[str]]:
    """Question `kind` about `target` in the scene: the question, its answer, and the pool of answers
    of that kind (every shape, colour, position or count) that options are drawn from."""
    if kind == 0:
        return WHICH_SHAPE_IS.format(color=target.color), target.shape, list(SHAPES)
    if kind == 1:
        return f"What is the color of the {target.shape}?", target.color, list(COLORS)
    if kind == 2:
        return WHERE_IS.format(name=target.name), target.position, list(POSITIONS)
    return "How many objects are in the picture?", str(len(objects)), list(COUNT_POOL)


def lettered(rng: random.Random, correct: str, wrong: list[str], n: int) -> list[str]:
    """`n` options, the correct one among `n - 1` of `wrong`, shuffled."""
    options = rng.sample(wrong, n - 1) + [correct]
    rng.shuffle(options)
    return options


def instruction(question_text: str, options: list[str], answer_with: str = "letter") -> str:
    """The task's instruction: the question, the options inline as '(A) ...', what to answer with."""
    listed = " ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return f"Question: {question_text}\nOptions: {listed}\nAnswer with the option's {answer_with}."


def record(objects: list[Shape], asked: str, options: list[str], correct: str, answer_with: str = "letter",
           question_type: str = "") -> Sample:
    """The sample of a question about the scene `objects` with its `options`, answered with the
    correct option's `text` or its `letter`."""
    answer = correct if answer_with == "text" else LETTERS[options.index(correct)]
    return Sample(render_scene(objects), instruction(asked, options, answer_with), (answer,),
                  {"objects": objects, "options": options, "correct": correct}, question_type=question_type)


def make_answered(rng: random.Random, answer_with: str) -> Sample:
    """2–4 distinct objects and a question about one of them with 3 or 4 lettered options,
    answered with the correct option's `text` or its `letter`."""
    objects = random_scene(rng, rng.randint(2, 4))
    target = rng.choice(objects)
    n = rng.choice((3, 4))
    kind = rng.randrange(len(KINDS))
    asked, correct, pool = question(kind, target, objects)
    options = lettered(rng, correct, [p for p in pool if p != correct], n)
    return record(objects, asked, options, correct, answer_with, KINDS[kind])


def make(rng: random.Random) -> Sample:
    """The stream's form: answered with the correct option's text."""
    return make_answered(rng, "text")


SPEC = TaskSpec(
    name="choice",
    metric="multiple_choice",
    mirrors="IconQA, ScienceQA",
    description="pick the option that answers a question about shapes, colours, positions or counts; "
                "answer with its text",
    chance="about 31 (3 or 4 options; a fixed letter or text)",
    max_new_tokens=4,
    make=make,
)
