"""The run directory: what a run leaves on disk, and the rules for reusing one.

    RUN/
      config.yaml          the resolved configuration
      progress.json        stages finished so far and the accuracy matrix up to them
      results.json         the final results (its presence marks a finished run)
      log.jsonl            one JSON object per line: losses, learning rates, evaluations
      checkpoints/         NN-NAME/ after stage NN and its evaluation; while stage NN runs also
                           NN-NAME.step-SSSSSS/ (the newest step checkpoint) and NN-NAME.trained/
                           (before its evaluation); see `mcit.run.checkpoint`
      predictions/NN/      every answer generated after stage NN, one JSON-lines file per task

A finished run is never overwritten unless the user asks (`--overwrite`); an unfinished one
continues only with `--resume`. A run that stops on a user error before it has evaluated anything
removes what it wrote (`discard_unstarted`), so fixing the mistake and running again just works.
"""

from __future__ import annotations

import contextlib
import glob
import json
import shutil
from pathlib import Path
from typing import Any

from mcit.core.configs import load_yaml
from mcit.core.errors import UserError
from mcit.core.files import read_json, write_json, write_yaml


#: Folder of a run's TensorBoard event files.
TRACKER_DIR = "tensorboard"


class RunDirectory:
    """Paths and reads/writes of one run directory (writes happen on the main process only)."""

    def __init__(self, path: str | Path, is_main: bool | None = None):
        from mcit.run.distributed import is_main_process

        self.path = Path(path)
        self.is_main = is_main_process() if is_main is None else is_main

    # paths
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def progress_file(self) -> Path:
        return self.path / "progress.json"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def log_file(self) -> Path:
        return self.path / "log.jsonl"

    def checkpoint_dir(self, stage_index: int, name: str) -> Path:
        """The checkpoint after stage `stage_index` (0-based) and its evaluation."""
        return self.path / "checkpoints" / f"{stage_index + 1:02d}-{name}"

    def trained_checkpoint_dir(self, stage_index: int, name: str) -> Path:
        """The checkpoint after stage `stage_index`'s training and `after_task`, before its evaluation."""
        base = self.checkpoint_dir(stage_index, name)
        return base.with_name(base.name + ".trained")

    def step_checkpoint_dir(self, stage_index: int, name: str, step: int) -> Path:
        """The checkpoint of stage `stage_index` after `step` optimiser steps."""
        base = self.checkpoint_dir(stage_index, name)
        return base.with_name(f"{base.name}.step-{step:06d}")

    def step_checkpoints(self, stage_index: int, name: str) -> dict[int, Path]:
        """The step checkpoints of a stage on disk, by step."""
        base = self.checkpoint_dir(stage_index, name)
        prefix = base.name + ".step-"
        found = {}
        for path in base.parent.glob(glob.escape(prefix) + "*"):
            suffix = path.name[len(prefix):]
            if suffix.isdigit() and path.is_dir():
                found[int(suffix)] = path
        return found

    def remove_checkpoints(self, folders) -> None:
        """Delete checkpoint folders that a newer checkpoint has made useless (main process only)."""
        if not self.is_main:
            return
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def predictions_dir(self, row: int) -> Path:
        return self.path / "predictions" / f"{row:02d}"

    # state of the folder
    @property
    def finished(self) -> bool:
        return self.results_file.exists()

    @property
    def started(self) -> bool:
        return self.config_file.exists()

    def prepare(self, config: dict[str, Any], resume: bool, overwrite: bool) -> None:
        """Create, reuse or refuse the folder according to `resume` and `overwrite`.

        Raises a `UserError` for a finished run without `--overwrite`, for an unfinished run
        without `--resume`, and for `--resume` with a configuration other than the stored one.
        In a multi-process launch every process checks the folder as it was, then the main
        process alone replaces or creates it (`mcit.run.distributed`), so all reach the same verdict.
        """
        from mcit.run.distributed import wait_for_everyone

        self._check(config, resume, overwrite)
        device = str(config.get("device", "auto"))
        wait_for_everyone(device)
        failure = None
        if self.is_main:
            if overwrite and self.path.exists():
                shutil.rmtree(self.path)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                failure = UserError(f"{self.path}: cannot create the run directory ({exc.strerror}); "
                                    "choose a writable --output")
            else:
                write_yaml(self.config_file, config)
        wait_for_everyone(device)  # the other processes stop too when the main one could not write
        if failure is not None:
            raise failure
        if not self.config_file.exists():
            raise UserError(f"{self.path}: the main process could not create the run directory; "
                            "choose a writable --output that every process can see")

    def _check(self, config: dict[str, Any], resume: bool, overwrite: bool) -> None:
        """The refusals of `prepare`, reading the folder only."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: the output path is a file, not a folder; choose another --output")
        if overwrite and self.path.exists():
            if not self.started and any(self.path.iterdir()):
                raise UserError(f"{self.path}: not a run directory (no config.yaml), refusing to overwrite it; "
                                "choose another --output")
        elif self.started and not resume:
            if self.finished:
                raise UserError(f"{self.path} already holds a finished run; pass --overwrite to replace it, "
                                "or choose another --output")
            raise UserError(f"{self.path} holds an unfinished run; pass --resume to continue it, "
                            "--overwrite to start again, or choose another --output")
        elif resume and self.started:
            stored = load_yaml(self.config_file)
            difference = _first_difference(stored, config)
            if difference:
                raise UserError(f"{self.path} was started with a different configuration ({difference}); "
                                "resume with the same settings, or start a new run with another --output")

    def discard_unstarted(self) -> None:
        """Remove what a fresh run wrote before it failed, if it had not evaluated anything yet.

        Only the run's own files go (config, log, zero-shot predictions, leftovers of crashes), and
        the folder itself if that leaves it empty; anything else in it stays.
        """
        if not self.is_main or not self.path.is_dir() or self.progress_file.exists() or self.finished:
            return
        from mcit.core.files import remove_temporaries

        remove_temporaries(self.path)
        for name in ("config.yaml", "log.jsonl"):
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / TRACKER_DIR, ignore_errors=True)
        zero_shot = self.predictions_dir(0)
        if zero_shot.is_dir():
            for file in zero_shot.glob("*.jsonl"):
                file.unlink()
        for folder in (zero_shot, zero_shot.parent, self.path / "checkpoints", self.path):
            with contextlib.suppress(OSError):  # a folder that is not empty holds the user's own files
                folder.rmdir()

    # progress and results
    def read_progress(self) -> dict[str, Any] | None:
        if not self.progress_file.exists():
            return None
        return read_json(self.progress_file)

    def write_progress(self, progress: dict[str, Any]) -> None:
        if self.is_main:
            write_json(self.progress_file, progress)

    def write_results(self, results: dict[str, Any]) -> None:
        if self.is_main:
            write_json(self.results_file, results)

    def write_predictions(self, row: int, task: str, rows: list[dict[str, Any]]) -> None:
        if not self.is_main:
            return
        from mcit.core.files import write_text

        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        write_text(self.predictions_dir(row) / f"{task}.jsonl", lines)


def _first_difference(stored: Any, new: Any, path: str = "") -> str | None:
    """The first key whose value differs between two config mappings, ignoring `output`."""
    if isinstance(stored, dict) and isinstance(new, dict):
        for key in sorted(set(stored) | set(new)):
            if not path and key == "output":
                continue
            where = f"{path}.{key}" if path else key
            if key not in stored or key not in new:
                return f"key '{where}' present in only one of them"
            found = _first_difference(stored[key], new[key], where)
            if found:
                return found
        return None
    if stored != new:
        return f"'{path}': {stored!r} before, {new!r} now"
    return None
