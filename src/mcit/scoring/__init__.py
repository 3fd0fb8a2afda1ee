"""Scoring: per-task metrics for generated answers and continual-learning metrics over the matrix.

`score_task` scores one task's predictions with one of `METRIC_NAMES`; `matrix_metrics` turns the
accuracy matrix (zero-shot row plus one row per task) into ACC, FAA, MAA, MFT, BWT, FWT and
forgetting; `scores_by_type` splits a task's score by its records' question types. Standard
library only; nothing here needs torch.
"""

from mcit.scoring.by_type import scores_by_type
from mcit.scoring.grounding import box_iou, parse_box
from mcit.scoring.matrix import matrix_metrics
from mcit.scoring.task import METRIC_NAMES, TaskScore, score_task

__all__ = ["METRIC_NAMES", "TaskScore", "box_iou", "matrix_metrics", "parse_box", "score_task", "scores_by_type"]
