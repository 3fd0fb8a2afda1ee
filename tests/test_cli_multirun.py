"""`mcit run --seeds / --methods`: one run directory per (method, seed), planned before any run starts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from mcit.core.errors import UserError
from mcit.run.cli import main
from mcit.run.compare import compare
from mcit.run.multirun import parse_seeds, plan_runs

torch.set_num_threads(1)

ONE_TASK = ["--model", "tiny-random", "--order", "digits", "--quiet"]
FLAGS = {"method.name": None, "model.name": "tiny-random", "benchmark.name": None, "benchmark.order": ["digits"],
         "benchmark.images": None, "seed": None, "output": None}


def test_seed_lists():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("0-2, 7") == [0, 1, 2, 7]
    with pytest.raises(UserError, match="--seeds: cannot read 'x'"):
        parse_seeds("0,x")


def test_plan_names_folders_and_routes_method_options(tmp_path):
    planned = plan_runs(None, {**FLAGS, "output": str(tmp_path)}, ["ewc.lam=50", "train.lr=0.01"],
                        ["seqft", "ewc"], [0, 1])
    assert [(p.method, p.seed, p.path.name) for p in planned] == [
        ("seqft", 0, "seqft-seed0"), ("seqft", 1, "seqft-seed1"), ("ewc", 0, "ewc-seed0"), ("ewc", 1, "ewc-seed1")]
    assert all(p.path.parent == tmp_path and p.resolved.run.train.lr == 0.01 for p in planned)
    assert planned[2].resolved.to_dict()["method"]["lam"] == 50
    # without --output every run takes its usual default folder
    default = plan_runs(None, FLAGS, [], None, [3])
    assert default[0].path == Path("runs") / "builtin" / "seqft-tiny-random-seed3"


def test_plan_refuses_mistakes_before_any_run(tmp_path):
    with pytest.raises(UserError, match="--method or --methods"):
        plan_runs(None, {**FLAGS, "method.name": "ewc"}, [], ["seqft"], None)
    with pytest.raises(UserError, match="--seed or --seeds"):
        plan_runs(None, {**FLAGS, "seed": 1}, [], None, [0, 1])
    with pytest.raises(UserError, match="'ewc', which is not in --methods"):
        plan_runs(None, FLAGS, ["ewc.lam=5"], ["seqft", "si"], None)
    with pytest.raises(UserError, match="lam"):  # method.X goes to every method; seqft has no option lam
        plan_runs(None, FLAGS, ["method.lam=5"], ["ewc", "seqft"], None)
    with pytest.raises(UserError, match="share this folder"):
        plan_runs(None, {**FLAGS, "output": str(tmp_path)}, [], None, [0, 0])


def test_two_seeds_of_one_method(tmp_path, fast_overrides, capsys):
    parent = tmp_path / "seeds"
    assert main(["run", *ONE_TASK, "--seeds", "0,1", "--output", str(parent), *fast_overrides]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 run(s) finished" in out and "mcit compare" in out
    assert sorted(p.name for p in parent.iterdir()) == ["seqft-seed0", "seqft-seed1"]
    for seed in (0, 1):
        folder = parent / f"seqft-seed{seed}"
        results = json.loads((folder / "results.json").read_text())
        config = yaml.safe_load((folder / "config.yaml").read_text())
        assert results["seed"] == seed and config["seed"] == seed and config["output"] == str(folder)
        if importlib.util.find_spec("tensorboard"):  # the default tracker when it is installed
            assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    groups = compare([parent])
    assert len(groups) == 1 and groups[0].seeds == [0, 1]


def test_two_methods_then_a_failing_repeat(tmp_path, fast_overrides, capsys):
    parent = tmp_path / "methods"
    args = ["run", *ONE_TASK, "--methods", "seqft,zeroshot", "--seeds", "0", "--output", str(parent),
            "--trackers", "none", *fast_overrides]
    assert main(args) == 0
    assert sorted(p.name for p in parent.iterdir()) == ["seqft-seed0", "zeroshot-seed0"]
    assert json.loads((parent / "zeroshot-seed0" / "results.json").read_text())["method"] == "zeroshot"
    assert not (parent / "seqft-seed0" / "tensorboard").exists()
    capsys.readouterr()
    # finished runs are not overwritten: each run fails on its own, the command reports both, exit status 1
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "0 of 2 run(s) finished, 2 failed" in captured.out and captured.out.count("FAILED") == 2
    assert "already holds a finished run" in captured.err
