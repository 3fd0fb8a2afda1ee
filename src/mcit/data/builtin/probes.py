"""Probes of the `choice` task: which of its skills a start model can learn.

`choice` asks a question about a scene with 3 or 4 lettered options and is answered with the
correct option's text. Answered with the letter instead, as ScienceQA is, it takes two skills at
once: looking up the answer in the image and binding that answer to its letter in the
instruction. The probes separate them:

    choice-letter   `choice` answered with the letter: both skills
    choice-copy     the question names the option ("Which option is the word blue?"): binding alone,
                    from the text, the image playing no part
    choice-present  `choice`'s questions, but the wrong options are never in the image, so
                    recognising what is there is enough to find the option; binding still needed

They form the `probe-choice` stream, which is not a continual stream: each probe is meant to be
trained alone (`mcit run --benchmark probe-choice --order choice-letter eval.zero_shot=false`).
"""

from __future__ import annotations

import random

from mcit.data.builtin.scene import COLORS, random_scene
from mcit.data.builtin.spec import Sample, TaskSpec
from mcit.data.builtin.tasks import choice


def make_copy(rng: random.Random) -> Sample:
    """A scene as in `choice`, and the question which option is a named colour."""
    objects = random_scene(rng, rng.randint(2, 4))
    colors = list(COLORS)
    named = rng.choice(colors)
    options = choice.lettered(rng, named, [c for c in colors if c != named], rng.choice((3, 4)))
    return choice.record(objects, f"Which option is the word {named}?", options, named)


def make_present(rng: random.Random) -> Sample:
    """A question of `choice` whose wrong options are absent from the scene.

    Only the first three kinds of question (a shape, a colour, a position) can have absent wrong
    options; a shape question draws one or two objects, so at least two of the four shapes are absent.
    """
    kind = rng.randrange(3)
    objects = random_scene(rng, rng.randint(1, 2) if kind == 0 else rng.randint(2, 4))
    target = rng.choice(objects)
    asked, correct, pool = choice.question(kind, target, objects)
    seen = {(o.shape, o.color, o.position)[kind] for o in objects}  # what a kind-`kind` question answers
    absent = [p for p in pool if p not in seen]
    n = min(rng.choice((3, 4)), len(absent) + 1)
    return choice.record(objects, asked, choice.lettered(rng, correct, absent, n), correct)


def make_letter(rng: random.Random) -> Sample:
    """A `choice` record answered with the correct option's letter."""
    return choice.make_answered(rng, "letter")


PROBE_TASKS: dict[str, TaskSpec] = {
    "choice-letter": TaskSpec(
        name="choice-letter", metric="multiple_choice", mirrors="none (a probe of choice); ScienceQA's letter answers",
        description="choice answered with the option's letter",
        chance="30 (a fixed C, on seed 0's 400 test records)", max_new_tokens=4, make=make_letter),
    "choice-copy": TaskSpec(
        name="choice-copy", metric="multiple_choice", mirrors="none (a probe of choice)",
        description="pick the lettered option the question names; the image plays no part",
        chance="36 (a fixed C, on seed 0's 400 test records; 29 expected)", max_new_tokens=4, make=make_copy),
    "choice-present": TaskSpec(
        name="choice-present", metric="multiple_choice", mirrors="none (a probe of choice)",
        description="choice's questions with every wrong option absent from the image",
        chance="34 (a fixed B, on seed 0's 400 test records)", max_new_tokens=4, make=make_present),
}
