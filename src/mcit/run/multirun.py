"""Several runs from one command: `mcit run --methods a,b --seeds 0,1,2`.

Every (method, seed) pair is one ordinary run: its configuration is resolved on its own (the
YAML file, the flags, the overrides, then its method and seed), it gets its own run directory,
and it goes through the single-run path (`RunDirectory.prepare`, then `run_stream`), one after
another in this process.

Where the runs go: with `--output PARENT` (or `output:` in the config) each run writes
`PARENT/METHOD-seedN/`; without it each run takes its usual default,
`runs/BENCHMARK/METHOD-MODEL-seedN/`.

Method options: `method.X=V` applies to every listed method (a method without option X refuses
it, before anything runs); `NAME.X=V` applies to method NAME only (e.g. `ewc.lam=50`). Method
options in the YAML file apply when its method is the one being run.

Every configuration is resolved before the first run starts, so a typo stops the command at once.
A run that then fails is reported and the others still run; the command ends with a summary and
exits with status 1 if any run failed. `--resume` and `--overwrite` apply to each run.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mcit.core.configs import load_yaml, parse_override
from mcit.core.errors import UserError
from mcit.run.config import ResolvedConfig, load_config


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` (or a range `0-4`, both ends included) as a list of seeds."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        span = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if span and int(span[1]) <= int(span[2]):
            seeds.extend(range(int(span[1]), int(span[2]) + 1))
        elif re.fullmatch(r"-?\d+", part):
            seeds.append(int(part))
        else:
            raise UserError(f"--seeds: cannot read {part!r}; write integers separated by commas, e.g. --seeds 0,1,2, "
                            "or a range such as 0-4")
    if not seeds:
        raise UserError("--seeds: no seed given; write integers separated by commas, e.g. --seeds 0,1,2")
    return seeds


def parse_methods(text: str) -> list[str]:
    """`ewc,seqft` as a list of method names (checked when each configuration is resolved)."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise UserError("--methods: no method given; write names separated by commas, e.g. --methods seqft,ewc")
    return methods


@dataclass
class PlannedRun:
    """One run of a multi-run command, with its resolved configuration."""

    method: str
    seed: int
    resolved: ResolvedConfig

    @property
    def path(self) -> Path:
        return self.resolved.output_dir


@dataclass
class Outcome:
    """How one run ended."""

    run: PlannedRun
    ok: bool
    message: str = ""
    acc: float | None = None
    seconds: float = 0.0


def _split_method_overrides(overrides: Sequence[str], methods: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Shared overrides, and `NAME.X=V` overrides turned into `method.X=V` per listed method NAME."""
    from mcit.methods.registry import available

    known = set(available())
    shared: list[str] = []
    specific: dict[str, list[str]] = {m: [] for m in methods}
    for text in overrides:
        path, value = parse_override(text)
        head = path[0]
        if head == "method" and (len(path) == 1 or path[1] == "name") and len(methods) > 1:
            raise UserError(f"override {text!r}: --methods chooses the methods of this command; drop the override")
        if head in specific and len(path) > 1:
            specific[head].append("method." + ".".join(path[1:]) + "=" + value)
        elif head in known and len(path) > 1:
            raise UserError(f"override {text!r} is for method '{head}', which is not in --methods "
                            f"({', '.join(methods)}); add it there or drop the override")
        else:
            shared.append(text)
    return shared, specific


def plan_runs(config_path: str | None, flags: dict[str, Any], overrides: Sequence[str],
              methods: Sequence[str] | None, seeds: Sequence[int] | None) -> list[PlannedRun]:
    """Resolve the configuration of every (method, seed) run; refuse two runs sharing a folder.

    `flags` are the single-run command's flags (`method.name`, `seed`, `output`, ...); a method
    or seed list replaces `method.name` or `seed`, and `output` becomes the parent folder.
    """
    flags = dict(flags)
    if methods is not None and flags.get("method.name") is not None:
        raise UserError("give --method or --methods, not both")
    if seeds is not None and flags.get("seed") is not None:
        raise UserError("give --seed or --seeds, not both")
    parent = flags.pop("output", None)
    yaml_method = (load_yaml(config_path) if config_path else {}).get("method")
    if isinstance(yaml_method, str):
        yaml_method = {"name": yaml_method}
    method_list: list[str | None] = list(methods) if methods is not None else [None]
    if methods is None:  # one method: the overrides are read as in a single run
        shared, specific = list(overrides), {}
    else:
        shared, specific = _split_method_overrides(overrides, methods)
    planned: list[PlannedRun] = []
    for method in method_list:
        for seed in (list(seeds) if seeds is not None else [None]):
            run_flags = dict(flags)
            if method is not None:
                run_flags.pop("method.name", None)
                options = dict(yaml_method) if isinstance(yaml_method, dict) and yaml_method.get("name") == method else {}
                run_flags["method"] = {**options, "name": method}
            if seed is not None:
                run_flags["seed"] = seed
            resolved = load_config(config_path, run_flags, [*shared, *specific.get(method or "", [])])
            base = parent or resolved.run.output
            if base:
                resolved.run.output = str(Path(base).expanduser() / f"{resolved.method_name}-seed{resolved.run.seed}")
            planned.append(PlannedRun(resolved.method_name, resolved.run.seed, resolved))
    folders: dict[Path, PlannedRun] = {}
    for run in planned:
        key = run.path.resolve()
        if key in folders:
            raise UserError(f"{run.path}: two runs of this command would share this folder "
                            f"({run.method} seed {run.seed}); list each method and seed once")
        folders[key] = run
    return planned


def execute(run: PlannedRun, resume: bool, overwrite: bool, quiet: bool, trackers: Sequence[str]) -> dict[str, Any]:
    """One run through the single-run path; returns its results."""
    from mcit.run.console import Console
    from mcit.run.loop import run_stream
    from mcit.run.rundir import RunDirectory

    run_dir = RunDirectory(run.path)
    run_dir.prepare(run.resolved.to_dict(), resume=resume, overwrite=overwrite)
    results, _model = run_stream(run.resolved, run_dir, resume=resume, console=Console(quiet=quiet),
                                 trackers=trackers)
    return results


def main_process() -> bool:
    """False in the other processes of a multi-process launch (`accelerate launch` sets RANK), which
    run the same runs but leave the messages to the main one."""
    return os.environ.get("RANK", "0") == "0"


def run_many(planned: Sequence[PlannedRun], resume: bool, overwrite: bool, quiet: bool,
             trackers: Sequence[str]) -> list[Outcome]:
    """Run every planned run in turn; a failure is reported and the next run starts."""
    outcomes: list[Outcome] = []
    speak = main_process()
    for index, run in enumerate(planned, start=1):
        if speak and not quiet:
            print(f"[{index}/{len(planned)}] {run.method}, seed {run.seed}: {run.path}", file=sys.stderr, flush=True)
        started = time.time()
        try:
            results = execute(run, resume, overwrite, quiet, trackers)
        except UserError as error:
            outcomes.append(Outcome(run, False, str(error), seconds=time.time() - started))
            if speak:
                print(f"mcit: run {index}/{len(planned)} ({run.path}) failed: {error}", file=sys.stderr, flush=True)
        except Exception as error:  # a bug in one run: show it, keep the other runs going
            traceback.print_exc(file=sys.stderr)
            outcomes.append(Outcome(run, False, f"{type(error).__name__}: {error}", seconds=time.time() - started))
            print(f"mcit: run {index}/{len(planned)} ({run.path}) failed with the error above", file=sys.stderr,
                  flush=True)
        else:
            acc = (results.get("metrics") or {}).get("ACC")
            outcomes.append(Outcome(run, True, acc=acc, seconds=time.time() - started))
    return outcomes


def format_summary(outcomes: Sequence[Outcome]) -> str:
    """Which runs finished and which failed, with their ACC, time and folder."""
    failed = sum(not o.ok for o in outcomes)
    rows = [("status", "method", "seed", "ACC", "time (s)", "run directory")]
    for o in outcomes:
        acc = "n/a" if o.acc is None else f"{o.acc:.2f}"
        where = str(o.run.path) + ("" if o.ok else f": {o.message}")
        rows.append(("finished" if o.ok else "FAILED", o.run.method, str(o.run.seed), acc if o.ok else "-",
                     f"{o.seconds:.1f}", where))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"\n{len(outcomes) - failed} of {len(outcomes)} run(s) finished" + (f", {failed} failed" if failed else "")]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    parents = sorted({str(o.run.path.parent) for o in outcomes if o.ok})
    if parents:
        lines.append(f"compare them: mcit compare {' '.join(shlex.quote(p) for p in parents)}")
    if failed:
        lines.append("fix the cause, then repeat the command with --resume to continue the unfinished runs")
    return "\n".join(lines)
