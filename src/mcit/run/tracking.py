"""Experiment trackers (TensorBoard, Weights & Biases, MLflow) fed from the run's log.

Every number a run produces already passes through its JSON-lines log (`log.jsonl`): training
losses and learning rates, each task's score after each stage, and methods' own events. `Tracking`
forwards those entries, and the final matrix and metrics, to trackers built with accelerate's
tracking API (`accelerate.tracking`), so the run directory stays the single record and a tracker
is a view of it:

    tracking = Tracking(select_trackers("tensorboard"), run_dir.path, run_name)
    tracking.start(resolved.to_dict())           # hyper-parameters: the flattened config
    write = tracking.wrap(log.write)             # each log entry goes to the file, then to trackers
    ...
    tracking.log_results(results)                # matrix, metrics, A_t and F_t
    tracking.finish()

`Tracking.replay(run_dir)` feeds a finished run's log and results to the trackers after the fact.

What goes where: training entries become `train/loss`, `train/lr` (and other numbers of the entry)
at the run's global optimiser step; evaluations become `eval/TASK` (and `eval/TASK/SECONDARY`) at
the matrix row (0 = zero-shot); the final results give `metrics/NAME`, the curves `metrics/A_t`
and `metrics/F_t` over the stream, and `matrix/TASK` per row; other events (e.g. a method's
`dgg` counts) become `EVENT/KEY`. TensorBoard writes into `RUN/tensorboard/`; W&B and MLflow
use their usual settings (WANDB_*, MLFLOW_TRACKING_URI, ...) with the project/experiment `mcit`
and the run directory's name as the run name.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from mcit.core.errors import UserError
from mcit.run.rundir import TRACKER_DIR as TENSORBOARD_DIR

#: tracker name -> (Python module it needs, pip package to install)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}
PROJECT = "mcit"
#: entry keys that locate an entry rather than measure something
_POSITION_KEYS = {"event", "time", "task", "stage", "step", "steps", "row", "after", "metric"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def select_trackers(text: str | Sequence[str] | None) -> list[str]:
    """The trackers to use from `--trackers`: names separated by commas, `none`, or None for the default.

    The default is TensorBoard when the `tensorboard` package is installed, else no tracker.
    Raises a `UserError` for an unknown name or a tracker whose package is missing.
    """
    if text is None:
        return ["tensorboard"] if _installed("tensorboard") else []
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names == ["none"]:
        return []
    chosen: list[str] = []
    for name in names:
        if name not in TRACKERS:
            raise UserError(f"--trackers: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}, or none")
        module, package = TRACKERS[name]
        if not _installed(module):
            raise UserError(f"--trackers {name}: the {package} package is not installed; "
                            f"pip install {package} (or pip install 'mcit[track]'), or leave {name} out of --trackers")
        if name not in chosen:
            chosen.append(name)
    return chosen


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as dotted keys with scalar values (lists and None as text), as trackers take them."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_config(value, name))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def _numbers(entry: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in entry.items()
            if k not in _POSITION_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracking:
    """Forwards log entries and results of one run to accelerate trackers.

    Args:
        names: tracker names from `select_trackers`.
        run_dir: the run directory (TensorBoard writes into its `tensorboard/` folder).
        run_name: the run's name in W&B and MLflow (default: the run directory's name).
        enabled: False on processes other than the main one; nothing is tracked there.
    """

    def __init__(self, names: Sequence[str], run_dir: str | Path, run_name: str | None = None, enabled: bool = True):
        self.names = list(names)
        self.run_dir = Path(run_dir)
        self.run_name = run_name or self.run_dir.name
        self.enabled = enabled and bool(self.names)
        self.trackers: list[Any] = []
        self._stage_offsets: dict[int, int] = {}
        self._stage_steps: dict[int, int] = {}
        self._step = 0

    # accelerate trackers
    def _build(self) -> list[Any]:
        from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

        trackers = []
        for name in self.names:
            if name == "tensorboard":
                trackers.append(TensorBoardTracker(TENSORBOARD_DIR, self.run_dir))
            elif name == "wandb":
                trackers.append(WandBTracker(PROJECT, name=self.run_name, dir=str(self.run_dir)))
            elif name == "mlflow":
                trackers.append(MLflowTracker(experiment_name=PROJECT, run_name=self.run_name))
        return trackers

    def start(self, config: dict[str, Any] | None = None, previous_log: str | Path | None = None) -> None:
        """Open the trackers and store the flattened config as hyper-parameters.

        `previous_log`: on a resumed run, the existing log file; its training entries restore the
        global step count so that new points continue where the interrupted run stopped.
        """
        if not self.enabled:
            return
        if previous_log is not None and Path(previous_log).exists():
            for entry in _read_log(Path(previous_log)):
                if entry.get("event") == "train":
                    self._train_step(entry)
        self.trackers = self._build()
        for tracker in self.trackers:
            tracker.start()
        if config:
            flat = flatten_config(config)
            for tracker in self.trackers:
                tracker.store_init_configuration(flat)

    def _send(self, values: dict[str, Any], step: int | None) -> None:
        if not values:
            return
        for tracker in self.trackers:
            if tracker.name == "mlflow":  # MLflow takes numbers only
                numbers = {k: v for k, v in values.items() if isinstance(v, (int, float))}
                if numbers:
                    tracker.log(numbers, step=step)
            else:
                tracker.log(values, step=step)

    # the run's log
    def _train_step(self, entry: dict[str, Any]) -> int:
        """The run's global optimiser step of a training entry (stage offsets from earlier stages' lengths)."""
        stage = int(entry.get("stage", 1))
        if stage not in self._stage_offsets:
            self._stage_offsets[stage] = sum(self._stage_steps.get(s, 0) for s in range(1, stage))
        self._stage_steps[stage] = int(entry.get("steps", entry.get("step", 0)))
        self._step = self._stage_offsets[stage] + int(entry.get("step", 0))
        return self._step

    def log(self, entry: dict[str, Any]) -> None:
        """Forward one log entry (see the module docstring for the names)."""
        if not self.enabled:
            return
        event = entry.get("event")
        if event == "train":
            step = self._train_step(entry)
            self._send({f"train/{k}": v for k, v in _numbers(entry).items()}, step)
        elif event == "eval":
            task = entry.get("task", "task")
            values = {f"eval/{task}": entry["score"]} if isinstance(entry.get("score"), (int, float)) else {}
            values.update({f"eval/{task}/{k}": v for k, v in _numbers(entry).items() if k != "score"})
            self._send(values, int(entry.get("row", 0)))
        elif event in ("start", "resume"):
            return
        elif isinstance(event, str):
            self._send({f"{event}/{k}": v for k, v in _numbers(entry).items()}, self._step)

    def wrap(self, write: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """A log writer that calls `write` (the JSON-lines file) and then forwards the entry."""
        def write_and_track(entry: dict[str, Any]) -> None:
            write(entry)
            self.log(entry)

        return write_and_track

    def log_results(self, results: dict[str, Any]) -> None:
        """The final metrics, the A_t and F_t curves, the matrix per row, and the matrix as text."""
        if not self.enabled:
            return
        metrics = results.get("metrics") or {}
        scalars = {f"metrics/{k}": v for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        trainable = (results.get("parameters") or {}).get("trainable")
        if isinstance(trainable, int):
            scalars["parameters/trainable"] = trainable
        self._send(scalars, len(results.get("accuracy_matrix") or []) - 1)
        for t, value in enumerate(metrics.get("A_t") or [], start=1):
            self._send({"metrics/A_t": value}, t)
        for t, value in enumerate(metrics.get("F_t") or [], start=2):
            self._send({"metrics/F_t": value}, t)
        tasks = results.get("tasks") or []
        for row, scores in enumerate(results.get("accuracy_matrix") or []):
            self._send({f"matrix/{task}": v for task, v in zip(tasks, scores) if v is not None}, row)
        from mcit.run.console import format_matrix

        text = format_matrix(tasks, results.get("rows") or [], results.get("accuracy_matrix") or [])
        table = "    " + text.replace("\n", "\n    ")  # indented: a code block in TensorBoard's Markdown
        for tracker in self.trackers:
            if tracker.name in ("tensorboard", "wandb"):
                tracker.log({"results/accuracy_matrix": table}, step=0)

    def finish(self) -> None:
        """Flush and close every tracker."""
        for tracker in self.trackers:
            tracker.finish()
        self.trackers = []

    def replay(self, config: dict[str, Any] | None = None) -> None:
        """Feed a finished run's `log.jsonl` and `results.json` to the trackers, then close them.

        TensorBoard's folder is written anew, so replaying twice does not duplicate points.
        """
        if not self.enabled:
            return
        from mcit.core.files import read_json

        if "tensorboard" in self.names:
            shutil.rmtree(self.run_dir / TENSORBOARD_DIR, ignore_errors=True)
        self._stage_offsets, self._stage_steps, self._step = {}, {}, 0
        self.start(config)
        try:
            for entry in _read_log(self.run_dir / "log.jsonl"):
                self.log(entry)
            results_file = self.run_dir / "results.json"
            if results_file.exists():
                self.log_results(read_json(results_file))
        finally:
            self.finish()


def _read_log(path: Path) -> Iterable[dict[str, Any]]:
    """The entries of a JSON-lines log; a torn last line (a killed run) is skipped."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
