"""Finished run directories with chosen numbers, for tests of `mcit compare` and `mcit report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mcit.run.results import metrics_of

TASKS = ["ocr", "digits", "count"]


def write_run(folder: Path, method: str = "seqft", seed: int = 0, *, model: str = "tiny-random",
              benchmark: str = "builtin", tasks: list[str] | None = None,
              matrix: list[list[float | None]] | None = None, metrics: dict[str, Any] | None = None,
              trainable: int = 1000, train_s: float = 10.0, total_s: float = 20.0,
              method_report: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
              environment: dict[str, Any] | None = None, per_task: dict[str, Any] | None = None) -> Path:
    """Write `results.json` and `config.yaml` of a finished run into `folder`; returns `folder`."""
    tasks = list(tasks or TASKS)
    if matrix is None:
        matrix = [[10.0] * len(tasks)] + [[50.0 + i + j for j in range(len(tasks))] for i in range(len(tasks))]
    if metrics is None:
        metrics = metrics_of(matrix, [8] * len(tasks))
    rows = ["zero-shot"] + (["after joint"] if len(matrix) == 2 and len(tasks) > 1
                            else [f"after {t}" for t in tasks][: len(matrix) - 1])
    results = {
        "finished": True, "method": method, "model": model, "benchmark": benchmark, "seed": seed, "tasks": tasks,
        "rows": rows, "accuracy_matrix": matrix, "metrics": metrics,
        "parameters": {"total": 10 * trainable, "trainable": trainable},
        "method_report": method_report or {},
        "timing": {"total_s": total_s, "train_s": train_s, "eval_s": total_s - train_s, "stages": []},
    }
    if environment is not None:
        results["environment"] = environment
    if per_task is not None:
        results["per_task"] = per_task
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    stored = config or {"method": {"name": method}, "model": {"name": model},
                        "benchmark": {"name": benchmark, "order": tasks}, "train": {"lr": 0.002}}
    stored = {**stored, "seed": seed, "output": str(folder)}
    (folder / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False), encoding="utf-8")
    return folder
