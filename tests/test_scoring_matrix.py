"""Continual-learning metrics over hand-computed accuracy matrices."""

from __future__ import annotations

import pytest

from mcit.scoring import matrix_metrics

KEYS = {"ACC", "FAA", "MAA", "MFT", "BWT", "FWT", "forgetting", "A_t", "F_t"}


def test_single_task() -> None:
    # T = 1: row 0 zero-shot 40, row 1 after task 1 75.
    metrics = matrix_metrics([[40.0], [75.0]])
    assert set(metrics) == KEYS
    assert metrics["ACC"] == pytest.approx(75.0)
    assert metrics["FAA"] == pytest.approx(75.0)
    assert metrics["A_t"] == pytest.approx([75.0])
    assert metrics["MAA"] == pytest.approx(75.0)
    assert metrics["MFT"] == pytest.approx(75.0)
    assert metrics["BWT"] is None
    assert metrics["FWT"] is None
    assert metrics["forgetting"] is None
    assert metrics["F_t"] == []


def test_two_tasks() -> None:
    R = [[10, 20],   # zero-shot
         [80, 30],   # after task 1
         [60, 90]]   # after task 2
    metrics = matrix_metrics(R)
    assert metrics["ACC"] == pytest.approx(75.0)           # (60 + 90) / 2
    assert metrics["FAA"] == pytest.approx(75.0)           # equal weights
    assert metrics["A_t"] == pytest.approx([80.0, 75.0])   # A_1 = 80, A_2 = (60 + 90) / 2
    assert metrics["MAA"] == pytest.approx(77.5)           # (80 + 75) / 2
    assert metrics["MFT"] == pytest.approx(85.0)           # (R[1][1] + R[2][2]) / 2 = (80 + 90) / 2
    assert metrics["BWT"] == pytest.approx(-20.0)          # R[2][1] − R[1][1] = 60 − 80
    assert metrics["F_t"] == pytest.approx([20.0])         # F_2 = R[1][1] − R[2][1] = 80 − 60
    assert metrics["forgetting"] == pytest.approx(20.0)
    assert metrics["FWT"] == pytest.approx(10.0)           # R[1][2] − R[0][2] = 30 − 20


# 1-based rows/tasks in the comments: R[t][j] = score on task j after task t.
THREE = [[10, 20, 30],   # R[0]: zero-shot
         [80, 25, 35],   # R[1]: after task 1
         [85, 90, 40],   # R[2]: after task 2 (task 1 improved: negative forgetting at t = 2)
         [50, 70, 96]]   # R[3]: after task 3


def test_three_tasks_every_metric() -> None:
    metrics = matrix_metrics(THREE)
    # ACC = (50 + 70 + 96) / 3 = 216 / 3 = 72
    assert metrics["ACC"] == pytest.approx(72.0)
    # A_1 = 80; A_2 = (85 + 90) / 2 = 87.5; A_3 = 72
    assert metrics["A_t"] == pytest.approx([80.0, 87.5, 72.0])
    # MAA = (80 + 87.5 + 72) / 3 = 239.5 / 3
    assert metrics["MAA"] == pytest.approx(239.5 / 3)
    # MFT = (R[1][1] + R[2][2] + R[3][3]) / 3 = (80 + 90 + 96) / 3 = 266 / 3
    assert metrics["MFT"] == pytest.approx(266 / 3)
    # BWT = ((R[3][1] − R[1][1]) + (R[3][2] − R[2][2])) / 2 = ((50 − 80) + (70 − 90)) / 2 = −25
    assert metrics["BWT"] == pytest.approx(-25.0)
    # F_2 = max_{l∈[1,1]} (R[l][1] − R[2][1]) = 80 − 85 = −5
    # F_3 = ½ [ max(R[1][1] − R[3][1], R[2][1] − R[3][1]) + (R[2][2] − R[3][2]) ]
    #     = ½ [ max(80 − 50, 85 − 50) + (90 − 70) ] = ½ (35 + 20) = 27.5
    assert metrics["F_t"] == pytest.approx([-5.0, 27.5])
    assert metrics["forgetting"] == pytest.approx(27.5)
    # FWT = ((R[1][2] − R[0][2]) + (R[2][3] − R[0][3])) / 2 = ((25 − 20) + (40 − 30)) / 2 = 7.5
    assert metrics["FWT"] == pytest.approx(7.5)
    # FAA with equal weights equals ACC
    assert metrics["FAA"] == pytest.approx(72.0)


def test_faa_weights_by_test_size() -> None:
    # FAA = (50·100 + 70·100 + 96·200) / 400 = (5000 + 7000 + 19200) / 400 = 78
    metrics = matrix_metrics(THREE, test_sizes=[100, 100, 200])
    assert metrics["FAA"] == pytest.approx(78.0)
    assert metrics["ACC"] == pytest.approx(72.0)


def test_values_are_plain_floats() -> None:
    metrics = matrix_metrics(THREE)
    for key in ("ACC", "FAA", "MAA", "MFT", "BWT", "FWT", "forgetting"):
        assert type(metrics[key]) is float
    assert all(type(v) is float for v in metrics["A_t"] + metrics["F_t"])


def test_joint_matrix() -> None:
    # One multitask training stage: row 0 zero-shot (not evaluated here), row 1 after training.
    # ACC = (70 + 80 + 90) / 3 = 80; FAA with sizes 1, 1, 2 = (70 + 80 + 180) / 4 = 82.5
    metrics = matrix_metrics([[None, None, None], [70, 80, 90]], test_sizes=[1, 1, 2])
    assert set(metrics) == KEYS
    assert metrics["ACC"] == pytest.approx(80.0)
    assert metrics["FAA"] == pytest.approx(82.5)
    for key in ("MAA", "MFT", "BWT", "FWT", "forgetting", "A_t", "F_t"):
        assert metrics[key] is None


def test_unneeded_cells_may_be_none() -> None:
    # R[0][1] (zero-shot on task 1) and R[1][3] (task 3 after task 1) enter no metric.
    R = [row[:] for row in THREE]
    R[0][0] = None
    R[1][2] = None
    assert matrix_metrics(R) == matrix_metrics(THREE)


def test_needed_none_cell_is_named() -> None:
    R = [row[:] for row in THREE]
    R[2][0] = None  # task 1 after task 2: needed by A_2 and F_3
    with pytest.raises(ValueError, match=r"matrix\[2\]\[0\] \(after task 2, scored on task 1\)"):
        matrix_metrics(R)
    R = [row[:] for row in THREE]
    R[0][2] = None  # zero-shot on task 3: needed by FWT
    with pytest.raises(ValueError, match=r"matrix\[0\]\[2\]"):
        matrix_metrics(R)


@pytest.mark.parametrize("matrix, message", [
    ([], "0 rows"),
    ([[1.0]], "1 rows"),
    ([[], []], "no columns"),
    ([[1, 2], [3, 4], [5]], "row 2 has 1 cells"),
    ([[1, 2], [3, 4], [5, 6], [7, 8]], "expected 3 rows"),
    ([[1], [2], [3]], "expected 2 rows"),
])
def test_shape_errors(matrix: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        matrix_metrics(matrix)


def test_bad_test_sizes_and_cells() -> None:
    with pytest.raises(ValueError, match="2 test sizes for 3 tasks"):
        matrix_metrics(THREE, test_sizes=[1, 2])
    with pytest.raises(ValueError, match="positive sum"):
        matrix_metrics(THREE, test_sizes=[0, 0, 0])
    with pytest.raises(ValueError, match="not a finite number"):
        matrix_metrics([[1.0], [float("nan")]])
