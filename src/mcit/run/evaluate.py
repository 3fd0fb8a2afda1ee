"""Evaluation: generate an answer for every test record and score it by the task's metric.

Test records are split across processes (record i goes to process i mod N), answered with greedy
decoding, gathered back into their original order and scored once; every process gets the same
score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from mcit.data.schema import Task
from mcit.methods.base import Method
from mcit.methods.context import Context
from mcit.scoring import TaskScore, score_task, scores_by_type


@dataclass
class Evaluation:
    """A task's score, its answers, and the score per question type (empty for a task of one type)."""

    score: TaskScore
    predictions: list[str]
    by_type: dict[str, dict] = field(default_factory=dict)


def evaluate_task(method: Method, task: Task, ctx: Context, batch_size: int,
                  on_batch: Callable[[int], None] | None = None) -> Evaluation:
    """Answer and score every test record of `task` with the current model."""
    accelerator = ctx.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    ctx.phase, ctx.task = "eval", task
    model = method.eval_setup(ctx.model, task, ctx)
    was_training = model.network.training
    model.network.eval()
    indices = list(range(rank, len(task.test), world))
    answered: list[tuple[int, str]] = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch = model.to_device(model.generation_batch([task.test[i] for i in chunk]))
            batch = method.before_forward(batch, ctx)
            answered += zip(chunk, model.generate(batch, task.generation_length))
            if on_batch:
                on_batch(len(chunk) * world)
    if world > 1:
        from accelerate.utils import gather_object

        answered = gather_object(answered)
    predictions = [text for _, text in sorted(answered)]
    method.after_eval(model, task, ctx)
    if was_training:
        model.network.train()
    references, instructions = [r.answers for r in task.test], [r.instruction for r in task.test]
    score = score_task(task.metric, predictions, references, instructions)
    by_type = scores_by_type(task.metric, predictions, references, instructions, [r.question_type for r in task.test])
    return Evaluation(score, predictions, by_type)


def prediction_rows(task: Task, evaluation: Evaluation) -> list[dict[str, Any]]:
    """One JSON-able row per test record: id, prediction, references, per-sample score, and the
    question type where the record has one."""
    return [{"id": r.id, "prediction": p, "answers": list(r.answers), "score": s,
             **({"question_type": r.question_type} if r.question_type is not None else {})}
            for r, p, s in zip(task.test, evaluation.predictions, evaluation.score.per_sample)]
