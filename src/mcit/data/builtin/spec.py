"""What a built-in task is: a generator of samples plus the facts a benchmark needs about it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from PIL import Image


@dataclass
class Sample:
    """One generated sample before it is written to disk.

    `facts` records what the answer was derived from (the objects drawn, the word written, the
    digit's label) so that tests can check the answer against the image's content.
    `question_type` names the kind of question in a task that asks several kinds ("" in one that
    asks one), so a score can be split by it.
    """

    image: Image.Image
    instruction: str
    answers: tuple[str, ...]
    facts: dict[str, Any] = field(default_factory=dict)
    question_type: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """A built-in task: its name, metric, generator and documentation.

    Attributes:
        name: the task's name in the stream.
        metric: the scorer (see `mcit.data.schema.METRICS`).
        mirrors: the public benchmark tasks it stands in for.
        description: one line on what is asked.
        chance: the score of the best answer that ignores the image, and how it is reached.
        max_new_tokens: generation length when evaluating.
        make: draws one sample from a random stream.
    """

    name: str
    metric: str
    mirrors: str
    description: str
    chance: str
    max_new_tokens: int
    make: Callable[[random.Random], Sample]


def pick(rng: random.Random, templates: tuple[str, ...], **values: Any) -> str:
    """One of a task's instruction wordings, filled in."""
    return rng.choice(templates).format(**values)
