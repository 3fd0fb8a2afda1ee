"""The record, task and benchmark types every loader produces and the loop consumes.

A record is one (image, instruction, answer) sample. A task is a named pair of train/test record
lists with the metric that scores it. A benchmark is an ordered list of tasks. Loaders of public
formats and the built-in generators all produce these, so the rest of mcit never sees a file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The per-task metrics mcit can score (see `mcit.scoring`).
METRICS = ("exact_match", "vqa_accuracy", "multiple_choice", "cider", "anls", "grounding")

#: Generation length used when a task does not set one, per metric.
DEFAULT_MAX_NEW_TOKENS = {
    "exact_match": 16,
    "vqa_accuracy": 16,
    "multiple_choice": 8,
    "cider": 48,
    "anls": 24,
    "grounding": 24,
}


@dataclass(frozen=True)
class Record:
    """One sample.

    Attributes:
        id: unique within its task and split.
        image: absolute path of the image file, or None for a text-only record.
        instruction: the user's instruction, without any image marker.
        answers: the reference answers; `answers[0]` is the training target, all of them are
            references when scoring (VQA has several, captions have several).
        source: where the record came from ("file:index"), for error messages.
        question_type: the kind of question it asks (VQAv2's `question_type`, "how many" or
            "what color is the"), or None; a task's score is also reported per question type.
    """

    id: str
    image: Path | None
    instruction: str
    answers: tuple[str, ...]
    source: str = ""
    question_type: str | None = None

    @property
    def target(self) -> str:
        """The answer the model is trained to produce."""
        return self.answers[0]


@dataclass
class Task:
    """A named task of a stream: train and test records and the metric that scores answers."""

    name: str
    metric: str
    train: list[Record]
    test: list[Record]
    max_new_tokens: int | None = None
    description: str = ""
    #: Set when the metric was not declared and mcit chose a default; the run reports it.
    metric_note: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name!r}: unknown metric {self.metric!r}; known: {', '.join(METRICS)}")

    @property
    def generation_length(self) -> int:
        """How many new tokens to generate when evaluating this task."""
        return self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[self.metric]


@dataclass
class Benchmark:
    """An ordered stream of tasks."""

    name: str
    tasks: list[Task]
    root: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)
