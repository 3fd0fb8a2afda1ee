"""`mcit run` end to end on the tiny model: results, run directory rules, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mcit.run.cli import main
from mcit.run.results import metrics_of

TWO_TASKS = ["--model", "tiny-random", "--order", "ocr,digits"]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fast_overrides):
    out = tmp_path_factory.mktemp("runs") / "seqft"
    code = main(["run", *TWO_TASKS, "--output", str(out), "--quiet", *fast_overrides])
    assert code == 0
    return out


def test_run_writes_matrix_metrics_and_checkpoints(finished_run):
    results = json.loads((finished_run / "results.json").read_text())
    assert results["method"] == "seqft" and results["model"] == "tiny-random" and results["seed"] == 0
    assert results["tasks"] == ["ocr", "digits"]
    assert results["rows"] == ["zero-shot", "after ocr", "after digits"]
    matrix = results["accuracy_matrix"]
    assert len(matrix) == 3 and all(len(row) == 2 for row in matrix)
    assert results["metrics"] == metrics_of(matrix, [8, 8])
    for key in ("ACC", "FAA", "MAA", "MFT", "BWT", "FWT", "forgetting"):
        assert key in results["metrics"]
    assert results["per_task"]["ocr"]["metric"] == "anls"
    assert results["per_task"]["digits"]["test_size"] == 8
    assert results["timing"]["total_s"] > 0
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert config["method"]["name"] == "seqft" and config["train"]["max_steps"] == 3
    for stage in ("01-ocr", "02-digits"):
        assert (finished_run / "checkpoints" / stage / "trainable.safetensors").exists()
        assert (finished_run / "checkpoints" / stage / "method.json").exists()
    log = [json.loads(line) for line in (finished_run / "log.jsonl").read_text().splitlines()]
    assert {entry["event"] for entry in log} >= {"start", "train", "eval"}
    assert all("loss" in e and "lr" in e for e in log if e["event"] == "train")
    predictions = (finished_run / "predictions" / "02" / "digits.jsonl").read_text().splitlines()
    assert len(predictions) == 8 and "prediction" in json.loads(predictions[0])


def test_a_finished_run_is_not_overwritten(finished_run, capsys, fast_overrides):
    before = (finished_run / "results.json").read_text()
    code, out, err = run_cli(["run", *TWO_TASKS, "--output", str(finished_run), *fast_overrides], capsys)
    assert code == 2
    assert "already holds a finished run" in err and "--overwrite" in err
    assert "Traceback" not in err
    assert (finished_run / "results.json").read_text() == before


def test_resume_with_other_settings_is_refused(finished_run, capsys, fast_overrides):
    code, _, err = run_cli(["run", *TWO_TASKS, "--output", str(finished_run), "--resume", *fast_overrides,
                            "train.lr=0.5"], capsys)
    assert code == 2 and "different configuration" in err and "train.lr" in err


def test_output_that_is_a_file_is_refused(tmp_path, capsys, fast_overrides):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = run_cli(["run", *TWO_TASKS, "--output", str(target), *fast_overrides], capsys)
    assert code == 2 and "is a file" in err


def test_zeroshot_and_multitask_matrices(tmp_path, capsys, fast_overrides):
    code, out, _ = run_cli(["run", *TWO_TASKS, "--method", "zeroshot", "--output", str(tmp_path / "z"),
                            "--quiet", *fast_overrides], capsys)
    assert code == 0
    zero = json.loads((tmp_path / "z" / "results.json").read_text())
    assert len(zero["accuracy_matrix"]) == 1 and zero["metrics"]["BWT"] is None
    assert "ACC" in out
    code, _, _ = run_cli(["run", *TWO_TASKS, "--method", "multitask", "--output", str(tmp_path / "m"),
                          "--quiet", *fast_overrides], capsys)
    assert code == 0
    joint = json.loads((tmp_path / "m" / "results.json").read_text())
    assert joint["rows"] == ["zero-shot", "after joint"]
    assert joint["metrics"]["BWT"] is None and joint["metrics"]["ACC"] is not None
    assert joint["accuracy_matrix"][0] == zero["accuracy_matrix"][0]


def test_scores_by_question_type_are_kept_per_row_and_compared(tmp_path, capsys, fast_overrides):
    from mcit.data.builtin.streams import TASKS, generate

    out = tmp_path / "typed"
    code, _, _ = run_cli(["run", "--model", "tiny-random", "--order", "count,ocr", "--output", str(out), "--quiet",
                          *fast_overrides], capsys)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    count = results["per_task"]["count"]
    kinds = [s.question_type for s in generate(TASKS["count"], 0, "test", 8)]
    assert {k: v["n"] for k, v in count["by_type"].items()} == {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    assert len(count["by_type_by_row"]) == 3 and count["by_type_by_row"][-1] == count["by_type"]
    for row, by_type in zip(results["accuracy_matrix"], count["by_type_by_row"]):
        assert row[0] == pytest.approx(sum(v["n"] * v["score"] for v in by_type.values()) / 8)
    assert "by_type" not in results["per_task"]["ocr"]
    rows = [json.loads(line) for line in (out / "predictions" / "02" / "count.jsonl").read_text().splitlines()]
    assert [r["question_type"] for r in rows] == kinds
    code, table, _ = run_cli(["compare", str(out), "--by-type"], capsys)
    assert code == 0 and sum(" count " in line for line in table.splitlines()) == len(set(kinds))


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "mcit", "run", *args]


def test_killed_between_tasks_resumes_to_the_same_matrix(tmp_path, fast_overrides):
    """SIGKILL after the first task's checkpoint; --resume finishes with the uninterrupted matrix."""
    args = ["--model", "tiny-random", "--order", "ocr,digits,count", "--quiet", *fast_overrides]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # tiny models run fastest on one thread
    reference = tmp_path / "reference"
    subprocess.run(_cli([*args, "--output", str(reference)]), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli([*args, "--output", str(killed)]), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = killed / "progress.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if marker.exists() and json.loads(marker.read_text())["stages_done"] >= 1:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "results.json").exists()

    again = subprocess.run(_cli([*args, "--output", str(killed)]), env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr

    resumed = subprocess.run(_cli([*args, "--output", str(killed), "--resume"]), env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads((killed / "results.json").read_text())
    expected = json.loads((reference / "results.json").read_text())
    assert final["accuracy_matrix"] == expected["accuracy_matrix"]
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert any(entry["event"] == "resume" for entry in log)
    trained_tasks = [e["task"] for e in log if e["event"] == "train"]
    # ocr was trained once, before the kill; it is not trained again after resuming
    resume_at = next(i for i, e in enumerate(log) if e["event"] == "resume")
    assert "ocr" not in [e["task"] for e in log[resume_at:] if e["event"] == "train"]
    assert "count" in trained_tasks


def test_listings(capsys):
    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0
    for name in ("seqft", "multitask", "zeroshot"):
        assert name in out
    code, out, _ = run_cli(["benchmarks"], capsys)
    assert code == 0 and "builtin" in out
    for task in ("caption", "vqa", "count", "ocr", "digits", "ground", "choice", "unanswerable"):
        assert task in out


def test_unknown_method_is_one_line_without_traceback(capsys):
    code, _, err = run_cli(["run", "--method", "nosuch"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown method 'nosuch'" in err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "mcit", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mcit ")


@pytest.mark.parametrize("command", [["methods"], ["benchmarks"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(command):
    """`mcit methods | head`: the pipe closes before mcit writes; no traceback, SIGPIPE's status."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen([sys.executable, "-m", "mcit", *command], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    os.close(read_end)  # before the child has finished importing, so its first write finds no reader
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141
    assert b"Traceback" not in err and b"Exception ignored" not in err, err.decode()
