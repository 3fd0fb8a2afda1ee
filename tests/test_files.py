"""Crash-safe files and checkpoints: atomic writes, the JSON-lines log, checksums, optimiser state."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from mcit.core.errors import UserError
from mcit.core.files import (append_line, atomic_folder, read_jsonl, remove_temporaries, repair_torn_tail,
                             write_json)
from mcit.methods.base import Method, Stage
from mcit.methods.components.state import join_state, split_state
from mcit.run import checkpoint
from mcit.run.optimizer_state import by_name, by_position, parameter_names
from mcit.run.resume import newest_usable
from mcit.run.rundir import RunDirectory


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_json(target, {"old": 1})

    def full(*_args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError, match="results.json: writing failed \\(No space left on device\\)"):
        write_json(target, {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1} and no_temporaries(tmp_path)


def test_a_folder_appears_complete_or_not_at_all(tmp_path):
    target = tmp_path / "checkpoints" / "01-a"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("killed half-way")
    assert not target.exists() and no_temporaries(tmp_path)
    for content in (b"first", b"second"):  # a second write replaces the folder
        with atomic_folder(target) as tmp:
            (tmp / "file.bin").write_bytes(content)
    assert [p.name for p in target.iterdir()] == ["file.bin"] and (target / "file.bin").read_bytes() == b"second"


def test_leftovers_of_a_killed_process_are_removed(tmp_path):
    (tmp_path / "checkpoints" / ".01-a.x1.tmp").mkdir(parents=True)
    (tmp_path / "checkpoints" / ".01-a.x1.tmp" / "trainable.safetensors").write_bytes(b"half")
    (tmp_path / ".progress.json.x2.tmp").write_text("{")
    (tmp_path / "keep.tmp").write_text("not ours: no leading dot")
    assert len(remove_temporaries(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checkpoints", "keep.tmp"]


def test_the_log_skips_a_torn_last_line_and_repairs_it_before_appending(tmp_path):
    log = tmp_path / "log.jsonl"
    append_line(log, json.dumps({"event": "start"}))
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"event": "tra')  # the process died in the middle of this line
    assert read_jsonl(log) == [{"event": "start"}]
    assert repair_torn_tail(log) and not repair_torn_tail(log)
    append_line(log, json.dumps({"event": "resume"}))
    assert read_jsonl(log) == [{"event": "start"}, {"event": "resume"}]
    log.write_text('{"a": 1}\n{broken\n{"b": 2}\n')
    with pytest.raises(UserError, match="line 2"):
        read_jsonl(log)


class Counter(Method):
    def __init__(self):
        super().__init__()
        self.seen = torch.arange(4.0)

    def state_dict(self):
        return {"seen": self.seen, "tasks": ["a"]}


def write_checkpoint(folder: Path) -> None:
    network = torch.nn.Linear(3, 2)
    checkpoint.write_checkpoint(folder, network, ["weight", "bias"], Counter(), {"kind": "evaluated", "global_step": 3})


def test_a_checkpoint_verifies_until_a_byte_changes(tmp_path):
    folder = tmp_path / "01-a"
    write_checkpoint(folder)
    assert checkpoint.verify(folder) is None
    assert json.loads((folder / "manifest.json").read_text())["files"].keys() == {
        "trainable.safetensors", "method.safetensors", "method.json", "random.safetensors", "random.json", "loop.json"}
    assert checkpoint.load_method_state(folder)["tasks"] == ["a"]
    weights = folder / "trainable.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert "trainable.safetensors does not match its SHA-256 checksum" == checkpoint.verify(folder)
    weights.write_bytes(bytes(data[:-5]))
    assert "bytes" in checkpoint.verify(folder)
    (folder / "manifest.json").unlink()
    assert "incomplete" in checkpoint.verify(folder)


def test_optimizer_state_round_trips_by_name_without_pickle():
    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    groups = [{"params": list(network[0].parameters())}, {"params": list(network[1].parameters()), "lr": 0.1}]
    optimizer = torch.optim.AdamW(groups, lr=0.01)
    network(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    names = parameter_names(optimizer, network)
    skeleton, tensors = split_state(by_name(optimizer.state_dict(), names))
    saved = join_state(json.loads(json.dumps(skeleton)), tensors)  # through JSON, as on disk

    fresh = torch.optim.AdamW([{"params": list(network[0].parameters())},
                               {"params": list(network[1].parameters()), "lr": 0.1}], lr=0.01)
    fresh.load_state_dict(by_position(saved, fresh, names, "test"))
    before, after = optimizer.state_dict(), fresh.state_dict()
    assert before["param_groups"] == after["param_groups"]
    for index, values in before["state"].items():
        assert all(torch.equal(values[k], after["state"][index][k]) for k in values)

    other = torch.optim.AdamW(network[0].parameters(), lr=0.01)
    with pytest.raises(UserError, match="other parameters"):
        by_position(saved, other, parameter_names(other, network), "test")


def test_resume_takes_the_newest_good_checkpoint_and_clears_what_it_supersedes(tmp_path):
    run_dir = RunDirectory(tmp_path)
    stages = [Stage("a", ()), Stage("b", ())]
    for folder in (run_dir.checkpoint_dir(0, "a"), run_dir.step_checkpoint_dir(1, "b", 2),
                   run_dir.step_checkpoint_dir(1, "b", 4), run_dir.trained_checkpoint_dir(1, "b")):
        write_checkpoint(folder)
    (run_dir.trained_checkpoint_dir(1, "b") / "manifest.json").unlink()  # killed before its manifest
    reports = []
    point = newest_usable(run_dir, stages, 2, lambda p, why: reports.append((p.folder.name, why)))
    assert (point.stage, point.kind, point.step, point.rows) == (1, "step", 4, 2)
    assert reports == [("02-b.trained", "incomplete (no manifest.json)")]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["01-a", "02-b.step-000004"]
    # an evaluated checkpoint whose matrix row progress.json lacks cannot be used either
    reports.clear()
    assert newest_usable(run_dir, stages[:1], 1, lambda p, why: reports.append(why)) is None
    assert "needs 2" in reports[0]
