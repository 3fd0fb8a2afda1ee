"""`mcit compare`: grouping, mean ± sample std against hand-computed values, the four formats."""

from __future__ import annotations

import csv
import io
import math

import pytest

from fake_runs import write_run
from mcit.core.errors import UserError
from mcit.run.cli import main
from mcit.run.compare import COLUMNS, compare, format_table

COLUMN = {c.key: c for c in COLUMNS}


def _metrics(acc: float, bwt: float | None, faa: float, fwt: float | None = None) -> dict:
    return {"ACC": acc, "FAA": faa, "MAA": acc + 5, "MFT": 90.0, "BWT": bwt, "FWT": fwt, "forgetting": -bwt if bwt else None,
            "A_t": [90.0, acc], "F_t": [0.0]}


@pytest.fixture
def runs(tmp_path):
    """seqft over three seeds, ewc-tir with one seed, multitask with two (no BWT)."""
    parent = tmp_path / "runs"
    for seed, (acc, bwt, faa, train_s, total_s) in enumerate([(60, -10, 50, 10, 20), (70, -20, 50, 12, 30),
                                                              (80, -30, 53, 14, 40)]):
        write_run(parent / f"seqft-seed{seed}", "seqft", seed, metrics=_metrics(acc, bwt, faa),
                  train_s=train_s, total_s=total_s)
    write_run(parent / "ewc_tir-seed0", "ewc_tir", 0, metrics=_metrics(75.5, -4.25, 75.0, fwt=1.5), trainable=2500)
    for seed, acc in enumerate([90.0, 91.0]):
        write_run(parent / f"multitask-seed{seed}", "multitask", seed, matrix=[[10.0] * 3, [acc] * 3],
                  metrics={"ACC": acc, "FAA": acc, "MAA": None, "MFT": None, "BWT": None, "FWT": None,
                           "forgetting": None, "A_t": None, "F_t": None})
    (parent / "unfinished").mkdir()
    (parent / "unfinished" / "config.yaml").write_text("seed: 0\n")
    return parent


def _group(groups, method):
    return next(g for g in groups if g.method == method)


def test_mean_and_sample_standard_deviation(runs):
    groups = compare([runs])
    seqft = _group(groups, "seqft")
    assert seqft.seeds == [0, 1, 2]
    acc = seqft.stat(COLUMN["ACC"])
    assert acc.mean == pytest.approx(70.0) and acc.std == pytest.approx(10.0) and acc.n == 3  # n-1, not 8.165
    faa = seqft.stat(COLUMN["FAA"])
    assert faa.mean == pytest.approx(51.0) and faa.std == pytest.approx(math.sqrt(3.0))
    bwt = seqft.stat(COLUMN["BWT"])
    assert bwt.mean == pytest.approx(-20.0) and bwt.std == pytest.approx(10.0)
    assert seqft.stat(COLUMN["train_s"]).std == pytest.approx(2.0)
    assert seqft.stat(COLUMN["total_s"]).mean == pytest.approx(30.0)
    assert seqft.stat(COLUMN["FWT"]).mean is None  # None in every run: n/a
    text = format_table(groups)
    line = next(row for row in text.splitlines() if row.startswith("seqft"))
    assert "3 (0, 1, 2)" in line and "70.00 ± 10.00" in line and "51.00 ± 1.73" in line and "-20.00 ± 10.00" in line
    assert "12.0 ± 2.0" in line and "30.0 ± 10.0" in line and "n/a" in line
    assert "sample standard deviation (n−1" in text


def test_one_seed_shows_a_dash_and_undefined_metrics_show_na(runs):
    groups = compare([runs])
    text = format_table(groups)
    ewc = next(row for row in text.splitlines() if row.startswith("ewc_tir"))
    assert "75.50 ± –" in ewc and "-4.25 ± –" in ewc and "2,500" in ewc
    multitask = next(row for row in text.splitlines() if row.startswith("multitask"))
    assert "90.50 ± 0.71" in multitask and multitask.count("n/a") == 5  # BWT FWT MFT MAA forgetting


def test_markdown_csv_and_latex(runs):
    groups = compare([runs])
    markdown = format_table(groups, "markdown")
    lines = markdown.splitlines()
    assert lines[0].startswith("| method | model | benchmark | seeds | ACC |")
    assert lines[1].startswith("|---|---|---|---|---:|")
    assert any(line.startswith("| seqft | tiny-random | builtin | 3 (0, 1, 2) | 70.00 ± 10.00 |") for line in lines)
    assert "sample standard deviation" in markdown

    rows = list(csv.DictReader(io.StringIO(format_table(groups, "csv"))))
    seqft = next(r for r in rows if r["method"] == "seqft")
    assert float(seqft["ACC_mean"]) == pytest.approx(70.0) and float(seqft["ACC_sample_std"]) == pytest.approx(10.0)
    assert seqft["FWT_mean"] == "" and seqft["n"] == "3" and seqft["seeds"] == "0 1 2"
    ewc = next(r for r in rows if r["method"] == "ewc_tir")
    assert ewc["ACC_sample_std"] == "" and float(ewc["FWT_mean"]) == 1.5

    latex = format_table(groups, "latex")
    assert "\\begin{tabular}" in latex and "\\toprule" in latex and "\\end{tabular}" in latex
    assert "70.00 $\\pm$ 10.00" in latex and "ewc\\_tir" in latex and "75.50 $\\pm$ --" in latex
    assert "sample standard deviation" in latex
    body = [line for line in latex.splitlines() if line.endswith("\\\\") and "&" in line]
    assert all(line.count("&") == 13 for line in body)  # 14 columns in every row


def test_parents_are_searched_in_the_order_given_and_runs_counted_once(runs, tmp_path):
    other = tmp_path / "other" / "nested" / "er-seed3"
    write_run(other, "er", 3)
    groups = compare([tmp_path / "other", runs, runs / "seqft-seed0", runs / "seqft-seed1" / "results.json"])
    assert [g.method for g in groups] == ["er", "ewc_tir", "multitask", "seqft"]
    assert _group(groups, "seqft").seeds == [0, 1, 2]


def test_a_folder_of_links_to_runs_is_searched_and_a_loop_ends(runs, tmp_path):
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "a").symlink_to(runs / "seqft-seed0", target_is_directory=True)
    (chosen / "b").symlink_to(runs / "seqft-seed2", target_is_directory=True)
    (chosen / "loop").symlink_to(chosen, target_is_directory=True)
    groups = compare([chosen])
    assert [g.method for g in groups] == ["seqft"]
    assert _group(groups, "seqft").seeds == [0, 2]
    waiting = tmp_path / "waiting"
    waiting.mkdir()
    (waiting / "u").symlink_to(runs / "unfinished", target_is_directory=True)
    (runs / "unfinished" / "progress.json").write_text("{}")
    with pytest.raises(UserError, match="--resume"):
        compare([waiting])


def test_settings_other_than_the_seed_make_separate_groups(tmp_path):
    for lam in (50, 100):
        for seed in (0, 1):
            write_run(tmp_path / f"lam{lam}" / f"ewc-seed{seed}", "ewc", seed,
                      config={"method": {"name": "ewc", "lam": lam}, "train": {"lr": 0.002}})
    groups = compare([tmp_path])
    assert [g.label for g in groups] == ["ewc (method.lam=100)", "ewc (method.lam=50)"]
    assert all(len(g.runs) == 2 for g in groups)


def test_folders_without_finished_runs_are_clear_errors(tmp_path, runs):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no finished runs"):
        compare([empty])
    with pytest.raises(UserError, match="--resume"):
        compare([runs / "unfinished"])
    with pytest.raises(UserError, match="no such file or folder"):
        compare([tmp_path / "missing"])
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.json").write_text('{"accuracy": 1}')
    with pytest.raises(UserError, match="not an mcit results file"):
        compare([tmp_path / "foreign"])


def test_compare_command(runs, tmp_path, capsys):
    assert main(["compare", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "70.00 ± 10.00" in out
    target = tmp_path / "tables" / "table.tex"
    assert main(["compare", str(runs), "--format", "latex", "--output", str(target)]) == 0
    assert "\\toprule" in target.read_text()
    assert main(["compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing: no such file or folder" in err and "Traceback" not in err
