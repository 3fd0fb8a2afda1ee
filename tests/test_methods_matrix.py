"""Every registered method on the tiny model for two tasks: it trains with finite losses, and a run
interrupted after its first stage resumes to exactly the same result. Plus the invariants that the
finished runs show directly (EProj's routing, the task-similarity matrix).

New methods join the matrix by being registered; options that set sample counts (`samples`,
`similarity_samples`, `key_samples`) are made small when a method has them.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mcit.methods.registry import available
from mcit.run import killpoint
from mcit.run.cli import main
from method_options import method_overrides

METHODS = list(available())


pytestmark = pytest.mark.usefixtures("one_thread")


def run(name: str, output: Path, fast: list[str], *extra: str, resume: bool = False) -> int:
    flags = ["--resume"] if resume else []
    return main(["run", "--model", "tiny-random", "--order", "ocr,digits", "--method", name, "--output", str(output),
                 "--quiet", *flags, *fast, *method_overrides(name), *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fast_overrides):
    """`runs(name)`: the directory of a finished run of that method (run once per module)."""
    root = tmp_path_factory.mktemp("matrix")
    finished: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in finished:
            output = root / name
            assert run(name, output, fast_overrides) == 0
            finished[name] = output
        return finished[name]

    return get


def rewind(source: Path, target: Path, keep: int = 1) -> int:
    """Copy a finished run to `target` and make it look interrupted after `keep` stages (fewer when
    the run has fewer than keep + 1 stages): later checkpoints and results.json removed, progress.json
    cut back to the matrix rows, details and timings of the kept stages. Returns the stages kept."""
    shutil.copytree(source, target)
    progress = json.loads((target / "progress.json").read_text())
    stages = progress["stages"]
    keep = max(0, min(keep, len(stages) - 1))
    for index in range(keep, len(stages)):
        shutil.rmtree(target / "checkpoints" / f"{index + 1:02d}-{stages[index]}")
    (target / "results.json").unlink()
    progress["stages_done"] = keep
    progress["matrix"] = progress["matrix"][:keep + 1]
    progress["details"] = progress["details"][:keep + 1]
    progress["timing"]["stages"] = progress["timing"]["stages"][:keep]
    (target / "progress.json").write_text(json.dumps(progress))
    return keep


def read_results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def same_tensors(a: Path, b: Path) -> None:
    left, right = load_file(str(a)), load_file(str(b))
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), f"{a.name}: {name} differs"


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_with_finite_losses(name, runs):
    folder = runs(name)
    results = read_results(folder)
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    train = [entry for entry in log if entry["event"] == "train"]
    if len(results["rows"]) > 1:
        assert train, "a method with training stages logged no training step"
    assert all("loss" in entry and math.isfinite(entry["loss"]) for entry in train)
    for stage in results["timing"]["stages"]:
        assert all(math.isfinite(value) for value in stage["losses"].values())
    if len(results["rows"]) > 1:  # what each task trained is counted, also outside the network (prompts)
        per_task = results["parameters"]["trainable_per_task"]
        assert len(per_task) == len(results["timing"]["stages"]) and all(n > 0 for n in per_task)
        assert results["parameters"]["trainable"] == max(per_task)
    assert isinstance(results["method_report"], dict)
    json.dumps(results["method_report"])


@pytest.mark.parametrize("name", METHODS)
def test_resume_after_the_first_stage_gives_the_same_run(name, runs, tmp_path, fast_overrides):
    reference = runs(name)
    resumed = tmp_path / name
    rewind(reference, resumed)
    assert run(name, resumed, fast_overrides, resume=True) == 0
    expected, got = read_results(reference), read_results(resumed)
    assert got["accuracy_matrix"] == expected["accuracy_matrix"]
    assert got["method_report"] == expected["method_report"]
    for folder in sorted((reference / "checkpoints").glob("*")) if (reference / "checkpoints").exists() else []:
        twin = resumed / "checkpoints" / folder.name
        same_tensors(folder / "trainable.safetensors", twin / "trainable.safetensors")
        same_tensors(folder / "method.safetensors", twin / "method.safetensors")
        assert json.loads((folder / "method.json").read_text()) == json.loads((twin / "method.json").read_text())


class Crash(Exception):
    """Stands in for the process being killed."""


#: Methods with at least two stages, so that there is a second task to stop in the middle of.
SEQUENTIAL = [m for m in METHODS if m not in ("multitask", "zeroshot")]


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_resume_in_the_middle_of_a_task_gives_the_same_run(name, runs, tmp_path, fast_overrides, monkeypatch):
    """Stopped right after step 2 of the second task (its step checkpoint just written), the resumed
    run ends exactly as the uninterrupted one: the method's mid-task state was all in the checkpoint."""
    passes = []

    def crash_after_second_step_of_second_task(point: str) -> None:
        passes.append(point)
        if passes.count("step") == 5:  # three steps of the first task, then two
            raise Crash

    reference = runs(name)
    stopped = tmp_path / name
    monkeypatch.setattr(killpoint, "reached", crash_after_second_step_of_second_task)
    with pytest.raises(Crash):
        run(name, stopped, fast_overrides, "train.checkpoint_every=2")
    assert (stopped / "checkpoints" / "02-digits.step-000002").is_dir()
    monkeypatch.setattr(killpoint, "reached", lambda point: None)
    assert run(name, stopped, fast_overrides, "train.checkpoint_every=2", resume=True) == 0
    expected, got = read_results(reference), read_results(stopped)
    assert got["accuracy_matrix"] == expected["accuracy_matrix"]
    assert got["method_report"] == expected["method_report"]
    assert [s["losses"] for s in got["timing"]["stages"]] == [s["losses"] for s in expected["timing"]["stages"]]
    for folder in sorted((reference / "checkpoints").glob("*")):
        twin = stopped / "checkpoints" / folder.name
        same_tensors(folder / "trainable.safetensors", twin / "trainable.safetensors")
        same_tensors(folder / "method.safetensors", twin / "method.safetensors")
        assert json.loads((folder / "method.json").read_text()) == json.loads((twin / "method.json").read_text())


# ---- invariants the finished runs show ---------------------------------------------------------


@pytest.mark.parametrize("name", [m for m in ("eproj", "eproj-tir") if m in METHODS])
def test_eproj_routes_seen_tasks_to_their_own_projector(name, runs):
    report = read_results(runs(name))["method_report"]
    assert report["projectors"] == 2 and report["task_projector"] == {"ocr": 0, "digits": 1}
    assert report["routing_accuracy"]["after ocr"] == {"ocr": 1.0}
    assert report["routing_accuracy"]["after digits"] == {"ocr": 1.0, "digits": 1.0}
    assert report["final_routing_accuracy"] == 1.0


@pytest.mark.parametrize("name", [m for m in ("ewc-tir", "mas-tir", "si-tir", "eproj-tir") if m in METHODS])
def test_task_similarity_matrix_is_symmetric_with_unit_diagonal(name, runs):
    similarity = read_results(runs(name))["method_report"]["task_similarity"]
    assert similarity["tasks"] == ["ocr", "digits"]
    matrix = similarity["matrix"]
    assert [matrix[0][0], matrix[1][1]] == [1.0, 1.0]
    assert matrix[0][1] == matrix[1][0] and -1.0 <= matrix[0][1] < 1.0


def test_replay_buffers_hold_one_percent_of_each_task(runs):
    for name in ("er", "agem"):
        assert read_results(runs(name))["method_report"]["buffer"] == {"ocr": 1, "digits": 1}


def test_eproj_tir_reuses_a_similar_tasks_projector(tmp_path, fast_overrides):
    """With a threshold every pair passes, the second task keeps training the first one's projector."""
    assert run("eproj-tir", tmp_path / "reuse", fast_overrides, "method.threshold=-1") == 0
    report = read_results(tmp_path / "reuse")["method_report"]
    assert report["projectors"] == 1 and report["reused"] == {"digits": "ocr"}
    assert report["task_projector"] == {"ocr": 0, "digits": 0}
    assert report["final_routing_accuracy"] == 1.0
