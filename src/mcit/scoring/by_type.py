"""A task's score split by question type, as VQAv2 reports accuracy per question and answer type.

A task that asks several kinds of question ("how many circles", "subtract all red objects")
can pass on one and fail on another with the same overall score; splitting the score by the
records' `question_type` shows which. Each type is scored by the task's own metric on its own
records, so a mean-of-samples metric gives the mean over the type's records and CIDEr-D is
computed on the type's captions as a corpus of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcit.scoring.task import score_task

#: The type of records that carry none, in a task where other records carry one.
UNTYPED = "(no type)"


def scores_by_type(metric: str, predictions: list[str], references: list[Sequence[str]],
                   instructions: list[str], question_types: Sequence[str | None]) -> dict[str, dict]:
    """`{question type: {"n": records, "score": value}}` in order of first appearance.

    Empty when no record has a question type: a task of one kind has nothing to split.
    """
    if len(question_types) != len(predictions):
        raise ValueError(f"{len(question_types)} question types for {len(predictions)} predictions")
    if all(t is None for t in question_types):
        return {}
    members: dict[str, list[int]] = {}
    for index, kind in enumerate(question_types):
        members.setdefault(UNTYPED if kind is None else kind, []).append(index)
    split = {}
    for kind, indices in members.items():
        score = score_task(metric, [predictions[i] for i in indices], [references[i] for i in indices],
                           [instructions[i] for i in indices])
        split[kind] = {"n": len(indices), "score": score.value}
    return split
