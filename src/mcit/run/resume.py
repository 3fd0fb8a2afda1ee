"""Where a resumed run continues: the newest checkpoint that verifies, past any damaged one.

Checkpoints are ordered by where in the run they were taken: by stage, and within a stage its
step checkpoints by step, then its trained checkpoint (before the evaluation), then its evaluated
one. `--resume` continues from the newest checkpoint that passes `checkpoint.verify` and whose
matrix rows `progress.json` holds. Every newer checkpoint is damaged or incomplete by
construction: each is reported (on stderr and in the log) and removed, since the run writes it
again when it gets there. With no usable checkpoint the run starts its first stage again.
Older step and trained checkpoints that a crash kept from being removed are removed then too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from mcit.methods.base import Stage
from mcit.run import checkpoint
from mcit.run.rundir import RunDirectory

KINDS = ("step", "trained", "evaluated")


@dataclass(frozen=True)
class Point:
    """A checkpoint and the place in the run it was taken at."""

    stage: int
    kind: str
    step: int
    folder: Path

    @property
    def order(self) -> tuple[int, int, int]:
        return self.stage, KINDS.index(self.kind), self.step

    @property
    def rows(self) -> int:
        """Rows of the accuracy matrix (zero-shot included) that exist at this point."""
        return self.stage + (2 if self.kind == "evaluated" else 1)

    def describe(self) -> str:
        where = {"step": f"after step {self.step} of", "trained": "after training", "evaluated": "after"}[self.kind]
        return f"{where} stage {self.stage + 1}"


def checkpoints(run_dir: RunDirectory, stages: Sequence[Stage]) -> list[Point]:
    """Every checkpoint folder of the run's stages, newest first."""
    points = []
    for index, stage in enumerate(stages):
        evaluated = run_dir.checkpoint_dir(index, stage.name)
        if evaluated.is_dir():
            points.append(Point(index, "evaluated", 0, evaluated))
        trained = run_dir.trained_checkpoint_dir(index, stage.name)
        if trained.is_dir():
            points.append(Point(index, "trained", 0, trained))
        steps = run_dir.step_checkpoints(index, stage.name)
        points += [Point(index, "step", step, folder) for step, folder in steps.items()]
    return sorted(points, key=lambda p: p.order, reverse=True)


def newest_usable(run_dir: RunDirectory, stages: Sequence[Stage], rows: int,
                  report: Callable[[Point, str], None]) -> Point | None:
    """The newest checkpoint to continue from, given the `rows` of the matrix progress.json holds.

    `report(point, why)` is told about each newer checkpoint that cannot be used, which is then
    removed. Older step and trained checkpoints, which the chosen one supersedes (a crash can come
    before the run removes them), are removed too; evaluated checkpoints stay, one per stage.
    """
    found = checkpoints(run_dir, stages)
    for index, point in enumerate(found):
        problem = checkpoint.verify(point.folder)
        if problem is None and point.rows > rows:
            problem = f"progress.json holds {rows} row(s) of the accuracy matrix, the checkpoint needs {point.rows}"
        if problem is None:
            run_dir.remove_checkpoints([p.folder for p in found[index + 1:] if p.kind != "evaluated"])
            return point
        report(point, problem)
        run_dir.remove_checkpoints([point.folder])
    return None
