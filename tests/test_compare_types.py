"""`mcit compare --by-type`: each task's score per question type, learned and final, over seeds."""

from __future__ import annotations

import csv
import io

import pytest

from fake_runs import write_run
from mcit.core.errors import UserError
from mcit.run.cli import main
from mcit.run.compare import compare
from mcit.run.compare_types import format_type_table, type_rows

TASKS = ["ocr", "count"]


def _count_types(rows: list[tuple[float, float]]) -> dict:
    """`per_task` of a run whose `count` task has two question types, one (shape, colour) pair per matrix row."""
    by_row = [{"objects of a shape": {"n": 6, "score": shape}, "left after a colour": {"n": 4, "score": colour}}
              for shape, colour in rows]
    return {"ocr": {"metric": "anls"}, "count": {"metric": "exact_match", "by_type": by_row[-1], "by_type_by_row": by_row}}


@pytest.fixture
def runs(tmp_path):
    """seqft over two seeds (count learned last), multitask over one (one joint stage)."""
    parent = tmp_path / "runs"
    for seed, (learned, final) in enumerate([((90.0, 40.0), (80.0, 30.0)), ((70.0, 60.0), (60.0, 50.0))]):
        write_run(parent / f"seqft-seed{seed}", "seqft", seed, tasks=TASKS,
                  per_task=_count_types([(0.0, 0.0), (5.0, 5.0), learned, final]))
        # rows: zero-shot, after ocr, after count; the fourth pair stands for a later evaluation
    write_run(parent / "multitask-seed0", "multitask", 0, tasks=TASKS, matrix=[[0.0, 0.0], [95.0, 88.0]],
              per_task=_count_types([(0.0, 0.0), (100.0, 75.0)]))
    return parent


def test_learned_and_final_scores_are_mean_and_sample_std_over_seeds(runs):
    rows = {(r.group.method, r.task, r.question_type): r for r in type_rows(compare([runs]))}
    assert set(rows) == {(m, "count", t) for m in ("seqft", "multitask") for t in ("objects of a shape", "left after a colour")}
    shape = rows[("seqft", "count", "objects of a shape")]
    assert shape.n == 6
    assert (shape.learned.mean, shape.learned.std) == (pytest.approx(80.0), pytest.approx(14.1421356))  # row "after count"
    assert (shape.final.mean, shape.final.std) == (pytest.approx(70.0), pytest.approx(14.1421356))
    colour = rows[("seqft", "count", "left after a colour")]
    assert colour.learned.mean == pytest.approx(50.0) and colour.final.mean == pytest.approx(40.0)
    joint = rows[("multitask", "count", "left after a colour")]
    assert joint.learned.mean is None  # no stage trained count alone
    assert joint.final.mean == pytest.approx(75.0) and joint.final.std is None


def test_a_type_one_seed_lacks_is_not_averaged_over_the_others(runs):
    write_run(runs / "seqft-seed2", "seqft", 2, tasks=TASKS, per_task={"count": {"by_type_by_row": [{}, {}, {}]}})
    shape = next(r for r in type_rows(compare([runs])) if r.group.method == "seqft" and r.question_type == "objects of a shape")
    assert shape.final.mean is None and shape.learned.mean is None and shape.final.n == 3


def test_the_four_formats(runs):
    groups = compare([runs])
    text = format_type_table(groups).splitlines()
    assert text[0].split() == ["method", "model", "benchmark", "seeds", "task", "question", "type", "n", "learned", "final"]
    line = next(row for row in text if row.startswith("seqft") and "left after a colour" in row)
    assert line.split()[-6:] == ["50.00", "±", "14.14", "40.00", "±", "14.14"]
    assert any(row.startswith("multitask") and row.split()[-4:] == ["n/a", "75.00", "±", "–"] for row in text)
    markdown = format_type_table(groups, "markdown")
    assert "| seqft | tiny-random | builtin | 2 (0, 1) | count | objects of a shape | 6 | 80.00 ± 14.14 | 70.00 ± 14.14 |" in markdown
    table = list(csv.DictReader(io.StringIO(format_type_table(groups, "csv"))))
    assert [row["method"] for row in table] == ["multitask"] * 2 + ["seqft"] * 2  # groups in folder order
    first = table[2]
    assert (first["task"], first["question_type"], first["n"], first["seeds"]) == ("count", "objects of a shape", "6", "0 1")
    assert float(first["learned_mean"]) == pytest.approx(80.0) and float(first["final_sample_std"]) == pytest.approx(14.1421356)
    latex = format_type_table(groups, "latex")
    assert r"80.00 $\pm$ 14.14" in latex and r"n/a & 75.00 $\pm$ --" in latex and latex.rstrip().endswith(r"\end{tabular}")


def test_runs_without_question_types_are_refused_with_the_fix(tmp_path, capsys):
    write_run(tmp_path / "plain", "seqft", 0)
    with pytest.raises(UserError, match="none of these runs has scores by question type"):
        type_rows(compare([tmp_path]))
    assert main(["compare", str(tmp_path), "--by-type"]) == 2
    err = capsys.readouterr().err
    assert "add one to the records" in err and "Traceback" not in err


def test_cli_writes_the_table(runs, tmp_path, capsys):
    out = tmp_path / "types.md"
    assert main(["compare", str(runs), "--by-type", "--format", "markdown", "--output", str(out)]) == 0
    assert "| multitask | tiny-random | builtin | 1 (0) | count | left after a colour | 4 | n/a | 75.00 ± – |" in out.read_text()
