"""Continual-learning metrics over the accuracy matrix.

The matrix R has T + 1 rows and T columns: row 0 scores the model before any training (zero-shot),
row t the model after training on task t, and column j task j. In the formulas below tasks and
rows are 1-based (R[t][j] = score on task j after task t, R[0][j] = zero-shot score on task j);
the code reads row t, column j − 1.

| metric | definition |
|---|---|
| ACC | (1/T) Σ_j R[T][j], the average final score |
| FAA | Σ_j w_j R[T][j] with w_j ∝ the number of test samples of task j (equal weights if unknown) |
| A_t | (1/t) Σ_{j≤t} R[t][j], the average over the tasks seen so far, for t = 1..T |
| MAA | (1/T) Σ_t A_t, the mean of A_t over the stream |
| MFT | (1/T) Σ_j R[j][j], the score on each task just after learning it (plasticity) |
| BWT | (1/(T−1)) Σ_{j<T} (R[T][j] − R[j][j]), backward transfer (Lopez-Paz and Ranzato, NeurIPS 2017) |
| F_t | (1/(t−1)) Σ_{j<t} max_{l∈[j,t−1]} (R[l][j] − R[t][j]) for t = 2..T (Chaudhry et al., ECCV 2018) |
| forgetting | F_T |
| FWT | (1/(T−1)) Σ_{j≥2} (R[j−1][j] − R[0][j]), forward transfer against the zero-shot score |

With T = 1, BWT, FWT and forgetting are None and F_t is empty. A "joint" matrix of two rows and
T > 1 columns comes from multitask training in one stage (row 0 zero-shot, row 1 after training on
all tasks at once); only ACC and FAA are defined for it, every metric that needs a row per task
(MAA, MFT, BWT, FWT, forgetting, A_t, F_t) is None.

Cells may be None where a run did not evaluate (for example the zero-shot row of a joint run, or
future tasks); a None in a cell that a metric needs raises ValueError naming the cell.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

MatrixRows = Sequence[Sequence[float | None]]


def _check_shape(matrix: MatrixRows) -> tuple[int, bool]:
    """(T, joint) for a valid matrix; ValueError describing the problem otherwise."""
    if len(matrix) < 2:
        raise ValueError(f"accuracy matrix has {len(matrix)} rows; it needs the zero-shot row and one row per task")
    tasks = len(matrix[0])
    if tasks == 0:
        raise ValueError("accuracy matrix has no columns; it needs one column per task")
    for index, row in enumerate(matrix):
        if len(row) != tasks:
            raise ValueError(f"accuracy matrix row {index} has {len(row)} cells but row 0 has {tasks}")
    joint = len(matrix) == 2 and tasks > 1
    if not joint and len(matrix) != tasks + 1:
        raise ValueError(
            f"accuracy matrix has {len(matrix)} rows and {tasks} columns; expected {tasks + 1} rows "
            f"(zero-shot plus one per task) or 2 rows for a joint run"
        )
    return tasks, joint


def _cell(matrix: MatrixRows, row: int, task: int) -> float:
    """R[row][task] with `task` 1-based; ValueError if the cell is missing or not a number."""
    value = matrix[row][task - 1]
    where = f"matrix[{row}][{task - 1}] (after {'no task' if row == 0 else f'task {row}'}, scored on task {task})"
    if value is None:
        raise ValueError(f"accuracy matrix cell {where} is None but is needed")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"accuracy matrix cell {where} is {value!r}, not a finite number")
    return float(value)


def _final_averages(matrix: MatrixRows, tasks: int, test_sizes: Sequence[int] | None) -> tuple[float, float]:
    """(ACC, FAA) from the last row."""
    final = [_cell(matrix, len(matrix) - 1, j) for j in range(1, tasks + 1)]
    acc = sum(final) / tasks
    if test_sizes is None:
        return acc, acc
    if len(test_sizes) != tasks:
        raise ValueError(f"{len(test_sizes)} test sizes for {tasks} tasks")
    if any(size < 0 for size in test_sizes) or sum(test_sizes) <= 0:
        raise ValueError(f"test sizes must be non-negative with a positive sum, got {list(test_sizes)}")
    total = sum(test_sizes)
    return acc, sum(size * score for size, score in zip(test_sizes, final)) / total


def matrix_metrics(matrix: MatrixRows, test_sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """All metrics of the module docstring as a dict of plain floats (None where undefined).

    Keys: ACC, FAA, MAA, MFT, BWT, FWT, forgetting (= F_T), A_t (T values, t = 1..T) and F_t
    (T − 1 values, t = 2..T). `test_sizes` (one per task) weights FAA. Nothing is rounded.
    """
    tasks, joint = _check_shape(matrix)
    acc, faa = _final_averages(matrix, tasks, test_sizes)
    result: dict[str, Any] = {"ACC": acc, "FAA": faa}
    if joint:
        result.update(MAA=None, MFT=None, BWT=None, FWT=None, forgetting=None, A_t=None, F_t=None)
        return result

    def R(row: int, task: int) -> float:
        return _cell(matrix, row, task)

    T = tasks
    a_t = [sum(R(t, j) for j in range(1, t + 1)) / t for t in range(1, T + 1)]
    f_t = [
        sum(max(R(l, j) - R(t, j) for l in range(j, t)) for j in range(1, t)) / (t - 1)
        for t in range(2, T + 1)
    ]
    result["MAA"] = sum(a_t) / T
    result["MFT"] = sum(R(j, j) for j in range(1, T + 1)) / T
    if T > 1:
        result["BWT"] = sum(R(T, j) - R(j, j) for j in range(1, T)) / (T - 1)
        result["FWT"] = sum(R(j - 1, j) - R(0, j) for j in range(2, T + 1)) / (T - 1)
        result["forgetting"] = f_t[-1]
    else:
        result["BWT"] = result["FWT"] = result["forgetting"] = None
    result["A_t"] = a_t
    result["F_t"] = f_t
    return result
