"""Experiment trackers: choosing them, and what a run's log and results become in TensorBoard."""

from __future__ import annotations

import importlib.util
import json

import pytest

from mcit.core.errors import UserError
from mcit.run import tracking
from mcit.run.tracking import Tracking, flatten_config, select_trackers

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None

TRAIN = [{"event": "train", "task": "ocr", "stage": 1, "step": s, "steps": 3, "loss": 3.0 - s, "lr": 0.1}
         for s in (1, 2, 3)]
TRAIN += [{"event": "train", "task": "digits", "stage": 2, "step": s, "steps": 2, "loss": 1.0 / s, "lr": 0.05}
          for s in (1, 2)]
EVAL = [{"event": "eval", "row": row, "after": "x", "task": task, "metric": "exact", "score": float(10 * row + j),
         "bleu": 0.5} for row in (0, 1, 2) for j, task in enumerate(("ocr", "digits"))]
RESULTS = {"tasks": ["ocr", "digits"], "rows": ["zero-shot", "after ocr", "after digits"],
           "accuracy_matrix": [[0.0, 1.0], [10.0, 11.0], [20.0, 21.0]],
           "metrics": {"ACC": 20.5, "BWT": 10.0, "FWT": None, "A_t": [10.0, 20.5], "F_t": [0.0]},
           "parameters": {"total": 100, "trainable": 10}}


def test_choosing_trackers(monkeypatch):
    assert select_trackers("none") == []
    with pytest.raises(UserError, match="unknown tracker 'comet'"):
        select_trackers("tensorboard,comet")
    monkeypatch.setattr(tracking, "_installed", lambda module: False)
    assert select_trackers(None) == []  # the default needs tensorboard installed
    for name in ("wandb", "mlflow", "tensorboard"):
        with pytest.raises(UserError, match=f"the {name} package is not installed; pip install {name}"):
            select_trackers(name)
    monkeypatch.setattr(tracking, "_installed", lambda module: True)
    assert select_trackers(None) == ["tensorboard"]
    assert select_trackers("wandb, MLflow,wandb") == ["wandb", "mlflow"]


def test_missing_tracker_package_is_a_one_line_cli_error(monkeypatch, capsys):
    from mcit.run.cli import main

    monkeypatch.setattr(tracking, "_installed", lambda module: module != "mlflow")
    assert main(["run", "--trackers", "mlflow"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install mlflow" in err


def test_config_is_flattened_to_scalars():
    flat = flatten_config({"train": {"lr": 0.1, "max_steps": None}, "benchmark": {"order": ["a", "b"]}, "seed": 0})
    assert flat == {"train.lr": 0.1, "train.max_steps": "null", "benchmark.order": '["a", "b"]', "seed": 0}


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed (pip install 'mcit[track]')")
def test_log_and_results_become_tensorboard_scalars(tmp_path):
    written = []
    tracker = Tracking(["tensorboard"], tmp_path)
    tracker.start({"method": {"name": "seqft"}, "train": {"lr": 0.1}})
    write = tracker.wrap(written.append)
    for entry in [{"event": "start"}, *TRAIN, *EVAL, {"event": "dgg", "task": "digits", "injected": 4}]:
        write(entry)
    tracker.log_results(RESULTS)
    tracker.finish()
    assert len(written) == 1 + len(TRAIN) + len(EVAL) + 1  # the log itself still gets every entry
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    scalars = _scalars(tmp_path / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5]  # global steps across tasks
    assert scalars["train/loss"][3][1] == pytest.approx(1.0) and scalars["train/lr"][4][1] == pytest.approx(0.05)
    assert scalars["eval/digits"] == [(0, 1.0), (1, 11.0), (2, 21.0)]
    assert [step for step, _ in scalars["eval/ocr/bleu"]] == [0, 1, 2]
    assert scalars["dgg/injected"] == [(5, 4.0)]
    assert scalars["metrics/ACC"] == [(2, 20.5)] and "metrics/FWT" not in scalars
    assert scalars["metrics/A_t"] == [(1, 10.0), (2, 20.5)]
    assert scalars["matrix/ocr"] == [(0, 0.0), (1, 10.0), (2, 20.0)]
    assert scalars["parameters/trainable"] == [(2, 10.0)]


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed (pip install 'mcit[track]')")
def test_replay_and_resume_continue_the_step_count(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in TRAIN[:3]) + '{"event": "tra')  # torn last line
    resumed = Tracking(["tensorboard"], tmp_path / "resumed")
    resumed.start(previous_log=log)
    resumed.log(TRAIN[3])
    resumed.finish()
    assert [s for s, _ in _scalars(tmp_path / "resumed" / "tensorboard")["train/loss"]] == [4]

    log.write_text("".join(json.dumps(e) + "\n" for e in [*TRAIN, *EVAL]))
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    for _ in range(2):  # replaying twice rewrites the folder instead of duplicating points
        Tracking(["tensorboard"], tmp_path).replay({"seed": 0})
    scalars = _scalars(tmp_path / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5] and scalars["metrics/ACC"] == [(2, 20.5)]
