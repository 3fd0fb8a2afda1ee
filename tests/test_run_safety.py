"""Runs are reproducible and stop cleanly: the same seed gives the same matrix and weights, and a
non-finite loss stops the run naming the task, the step and the last finite loss, keeping the
last good checkpoint and writing nothing half-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mcit.models.adapter import VisionLanguageModel
from mcit.run import checkpoint
from mcit.run.cli import main

TWO_TASKS = ["--model", "tiny-random", "--order", "ocr,digits", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def tensors_of(run: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every checkpoint of a run, by checkpoint, file and name."""
    out = {}
    for file in sorted((run / "checkpoints").glob("*/*.safetensors")):
        for name, value in load_file(str(file)).items():
            out[f"{file.parent.name}/{file.name}/{name}"] = value
    return out


def test_the_same_seed_gives_the_same_matrix_and_weights(tmp_path, fast_overrides):
    runs = {}
    for name, extra in (("first", []), ("second", []), ("deterministic", ["deterministic=true"])):
        assert main(["run", *TWO_TASKS, "--method", "er", "--output", str(tmp_path / name), *fast_overrides,
                     *extra]) == 0
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    reference = tensors_of(tmp_path / "first")
    assert reference
    for name in ("second", "deterministic"):  # on a CPU the deterministic switch changes nothing
        assert runs[name]["accuracy_matrix"] == runs["first"]["accuracy_matrix"]
        losses = [[s["losses"] for s in runs[n]["timing"]["stages"]] for n in (name, "first")]
        assert losses[0] == losses[1]
        other = tensors_of(tmp_path / name)
        assert other.keys() == reference.keys()
        assert all(torch.equal(reference[k], other[k]) for k in reference)
    assert not torch.are_deterministic_algorithms_enabled()  # the switch lasts for its run only


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, fast_overrides, monkeypatch,
                                                                             capsys):
    forward = VisionLanguageModel.forward
    calls = []

    def forward_with_a_nan(self, batch):
        outputs = forward(self, batch)
        calls.append(None)
        if len(calls) == 5:  # step 2 of the second task (three steps per task, one micro-batch each)
            outputs.loss = outputs.loss * float("nan")
        return outputs

    monkeypatch.setattr(VisionLanguageModel, "forward", forward_with_a_nan)
    run = tmp_path / "nan"
    # logged only at the end of a task, so the step-2 checkpoint is where the bad step is first seen
    code = main(["run", *TWO_TASKS, "--output", str(run), *fast_overrides, "train.log_every=10",
                 "train.checkpoint_every=2"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "task 'digits'" in err and "nan at step 2 of 3" in err and "last finite loss was" in err and "at step 1" in err
    kept = run / "checkpoints" / "01-ocr"
    assert str(kept) in err and checkpoint.verify(kept) is None
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["01-ocr"]
    assert not (run / "results.json").exists()
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert json.loads((run / "progress.json").read_text())["stages_done"] == 1
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "non-finite-loss" and log[-1]["task"] == "digits"


def test_an_absurd_learning_rate_is_caught_at_its_first_bad_step(tmp_path, fast_overrides, capsys):
    code = main(["run", "--model", "tiny-random", "--order", "ocr", "--quiet", "--output", str(tmp_path / "lr"),
                 *fast_overrides, "train.lr=1e30", "train.max_grad_norm=null", "train.warmup_ratio=0",
                 "train.log_every=10"])
    err = capsys.readouterr().err
    assert code == 2 and "task 'ocr'" in err and "lower train.lr" in err and "Traceback" not in err
    assert not (tmp_path / "lr" / "results.json").exists()
