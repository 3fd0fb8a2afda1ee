"""A run killed anywhere (while training, while writing a checkpoint, while evaluating) and
continued with --resume ends exactly as the run that was never interrupted; a damaged checkpoint
is detected by its checksum and the run falls back to an older one.

The runs are real processes killed with SIGKILL at named points (`mcit.run.killpoint`), so no
handler or `finally` block runs, as after a power cut.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from mcit.run.killpoint import VARIABLE

ARGS = ["--model", "tiny-random", "--order", "ocr,digits,count", "--method", "ewc", "--quiet"]


def mcit_run(output: Path, overrides: list[str], kill: str | None = None, resume: bool = False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop(VARIABLE, None)
    if kill:
        env[VARIABLE] = kill
    command = [sys.executable, "-m", "mcit", "run", *ARGS, "--output", str(output),
               *(["--resume"] if resume else []), *overrides]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def folders(run: Path) -> list[str]:
    """The checkpoint folders (not the temporary ones)."""
    return sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))


def temporaries(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_killed_anywhere_the_resumed_run_ends_as_the_uninterrupted_one(tmp_path, fast_overrides):
    fast = [*fast_overrides, "method.samples=4"]
    reference = tmp_path / "reference"
    assert mcit_run(reference, fast).returncode == 0

    run = tmp_path / "killed"
    every = [*fast, "train.checkpoint_every=2"]  # three steps per task: a step checkpoint after step 2

    # killed after the last step of task 2: its step-2 checkpoint is there, step 3 is lost
    killed = mcit_run(run, every, kill="step:6")
    assert killed.returncode == -signal.SIGKILL
    assert folders(run) == ["01-ocr", "02-digits.step-000002"]

    # killed half-way through writing task 2's trained checkpoint: only a temporary folder is left
    killed = mcit_run(run, every, kill="checkpoint:1", resume=True)
    assert killed.returncode == -signal.SIGKILL
    assert folders(run) == ["01-ocr", "02-digits.step-000002"]
    assert [p.name.startswith(".02-digits.trained.") for p in temporaries(run)] == [True]

    # killed while evaluating after task 2: the trained checkpoint is complete, the row is not
    killed = mcit_run(run, every, kill="eval:2", resume=True)
    assert killed.returncode == -signal.SIGKILL
    assert folders(run) == ["01-ocr", "02-digits.trained"] and not temporaries(run)
    assert json.loads((run / "progress.json").read_text())["stages_done"] == 1

    # the trained checkpoint is damaged on disk: its checksum gives it away and the run falls back
    weights = run / "checkpoints" / "02-digits.trained" / "trainable.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    finished = mcit_run(run, every, resume=True)
    assert finished.returncode == 0, finished.stderr
    assert "02-digits.trained" in finished.stderr and "SHA-256" in finished.stderr
    assert "Traceback" not in finished.stderr

    expected = json.loads((reference / "results.json").read_text())
    got = json.loads((run / "results.json").read_text())
    assert got["accuracy_matrix"] == expected["accuracy_matrix"]
    assert [s["losses"] for s in got["timing"]["stages"]] == [s["losses"] for s in expected["timing"]["stages"]]
    assert folders(run) == folders(reference) == ["01-ocr", "02-digits", "03-count"]
    for name in folders(reference):
        for file in ("trainable.safetensors", "method.safetensors"):
            left = load_file(str(reference / "checkpoints" / name / file))
            right = load_file(str(run / "checkpoints" / name / file))
            assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left), (name, file)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["checkpoint"] for e in log if e["event"] == "resume"] == [
        "02-digits.step-000002", "02-digits.step-000002", "01-ocr"]
    assert [e["checkpoint"] for e in log if e["event"] == "checkpoint-unusable"] == ["02-digits.trained"]
