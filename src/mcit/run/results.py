"""Assemble `results.json`: the accuracy matrix, the metrics computed from it, and context."""

from __future__ import annotations

from typing import Any, Sequence

from mcit import __version__
from mcit.data.schema import Benchmark
from mcit.methods.base import Method, Stage
from mcit.models.adapter import VisionLanguageModel
from mcit.run.config import ResolvedConfig
from mcit.run.environment import run_environment
from mcit.scoring import matrix_metrics


def row_labels(stages: Sequence[Stage]) -> list[str]:
    """Labels of the matrix rows: the zero-shot row, then one per stage."""
    return ["zero-shot"] + [f"after {s.name}" for s in stages]


def metrics_of(matrix: list[list[float | None]], test_sizes: list[int]) -> dict[str, Any]:
    """The METHODS.md metrics of a matrix of any number of rows.

    One row (zero-shot only) gives ACC and FAA of that row. A missing zero-shot row (evaluation
    switched off) leaves FWT undefined.
    """
    if len(matrix) == 1:
        row = matrix[0]
        if any(v is None for v in row):
            return {"ACC": None, "FAA": None}
        total = sum(test_sizes) or 1
        return {"ACC": sum(row) / len(row), "FAA": sum(v * n for v, n in zip(row, test_sizes)) / total,
                "MAA": None, "MFT": None, "BWT": None, "FWT": None, "forgetting": None, "A_t": None, "F_t": None}
    zero_shot_missing = any(v is None for v in matrix[0])
    filled = [[0.0] * len(matrix[0])] + list(matrix[1:]) if zero_shot_missing else matrix
    metrics = matrix_metrics(filled, test_sizes)
    if zero_shot_missing:
        metrics["FWT"] = None
    return metrics


def _parameters(model, timing: dict) -> dict[str, Any]:
    """The model's parameter counts; `trainable` is the most any one task trained (a prompt pool or a new
    projector per task is trained outside the network's own trainable set), with the count of each task."""
    counts = model.count_parameters()
    per_stage = [s.get("trainable_params") for s in timing.get("stages", [])]
    if per_stage and all(c is not None for c in per_stage):
        counts = {**counts, "trainable": max(per_stage), "trainable_per_task": per_stage}
    return counts


def build_results(resolved: ResolvedConfig, benchmark: Benchmark, stages: Sequence[Stage],
                  matrix: list[list[float | None]], details: list[list[dict]], timing: dict[str, Any],
                  model: VisionLanguageModel, method: Method) -> dict[str, Any]:
    """The content of `results.json`."""
    config = resolved.run
    test_sizes = [len(t.test) for t in benchmark.tasks]
    metrics = metrics_of(matrix, test_sizes)
    per_task = {}
    for j, task in enumerate(benchmark.tasks):
        per_task[task.name] = {
            "metric": task.metric,
            "test_size": len(task.test),
            "train_size": len(task.train),
            "final_score": matrix[-1][j],
            "secondary": details[-1][j].get("secondary", {}),
            "secondary_by_row": [row[j].get("secondary", {}) for row in details],
        }
        if any(row[j].get("by_type") for row in details):
            per_task[task.name]["by_type"] = details[-1][j].get("by_type", {})
            per_task[task.name]["by_type_by_row"] = [row[j].get("by_type", {}) for row in details]
        if task.metric_note:
            per_task[task.name]["metric_note"] = task.metric_note
    return {
        "mcit_version": __version__,
        "finished": True,
        "method": resolved.method_name,
        "model": config.model.name,
        "benchmark": benchmark.name,
        "seed": config.seed,
        "tasks": benchmark.task_names,
        "rows": row_labels(stages),
        "accuracy_matrix": matrix,
        "metrics": metrics,
        "per_task": per_task,
        "parameters": _parameters(model, timing),
        "method_report": method.report(),
        "method_state_bytes": method.state_size_bytes(),
        "timing": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in timing.items()},
        "environment": run_environment(str(model.device)),
    }
