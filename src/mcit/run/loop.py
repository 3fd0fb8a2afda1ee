"""The run, top to bottom: load, evaluate zero-shot, then per stage train and evaluate everything.

    benchmark, model, method.setup
    row 0: evaluate every task with the starting model
    for each stage: before_task -> train (a step checkpoint every train.checkpoint_every steps)
                    -> after_task -> trained checkpoint -> evaluate every task -> progress.json
                    -> evaluated checkpoint (the stage's step and trained checkpoints are then removed)
    results.json: the accuracy matrix, the metrics, per-task details and timing

On `--resume` the run continues from its newest usable checkpoint (`mcit.run.resume`, which
falls back past damaged ones): the method's state is restored, `setup` rebuilds its structure and
the saved weights are loaded; then after an evaluated checkpoint the next stage starts, after a
trained one the stage's evaluation runs again, and after a step checkpoint `resume_task` stands in
for `before_task` and training continues at the next step with the saved optimiser, schedule,
loss sums and random states. Given the seed everything is deterministic, and evaluation leaves
the random states as it found them, so a run killed anywhere and resumed ends with the accuracy
matrix of the run that was never interrupted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from mcit.core.errors import UserError
from mcit.core.files import append_line, remove_temporaries, repair_torn_tail
from mcit.data.benchmarks import load_benchmark
from mcit.data.schema import Benchmark
from mcit.methods.base import Stage
from mcit.methods.context import Context
from mcit.models.adapter import VisionLanguageModel
from mcit.models.loading import load_model
from mcit.run import checkpoint, killpoint
from mcit.run.config import ResolvedConfig
from mcit.run.console import Console, format_matrix, format_metrics
from mcit.run.determinism import deterministic_kernels
from mcit.run.distributed import check_setup, configure_deepspeed, on_cpu
from mcit.run.evaluate import evaluate_task, prediction_rows
from mcit.run.results import build_results, row_labels
from mcit.run.resume import Point, newest_usable
from mcit.run.rundir import RunDirectory
from mcit.run.services import make_batches, make_gradient_of
from mcit.run.train import NonFiniteLoss, TrainPosition, train_stage


class JsonlLog:
    """Appends one JSON object per line to the run's log (main process only).

    A line torn by a crash is cut off when the log is opened again, so appending never glues a
    new entry onto half an old one.
    """

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled:
            repair_torn_tail(path)

    def write(self, entry: dict[str, Any]) -> None:
        if self.enabled:
            append_line(self.path, json.dumps({"time": round(time.time(), 3), **entry}))


def _evaluate_row(ctx: Context, method, benchmark: Benchmark, row: int, label: str, run_dir: RunDirectory,
                  resolved: ResolvedConfig, console: Console) -> tuple[list[float], list[dict]]:
    """Score every task with the current model: one row of the accuracy matrix.

    The random states are put back afterwards, so training continues the same whether or not
    this evaluation ran in the same process (a resumed run skips evaluations already done).
    """
    random_state = checkpoint.capture_random_state()
    scores, details = [], []
    total = sum(len(t.test) for t in benchmark.tasks)
    try:
        with console.bar(total, f"eval {label}", "sample") as bar:
            for task in benchmark.tasks:
                evaluation = evaluate_task(method, task, ctx, resolved.run.eval.batch_size, on_batch=bar.update)
                scores.append(evaluation.score.value)
                details.append({"secondary": evaluation.score.secondary, "by_type": evaluation.by_type})
                ctx.log({"event": "eval", "row": row, "after": label, "task": task.name,
                         "metric": task.metric, "score": evaluation.score.value, **evaluation.score.secondary})
                if resolved.run.eval.save_predictions:
                    run_dir.write_predictions(row, task.name, prediction_rows(task, evaluation))
                killpoint.reached("eval")
    finally:
        checkpoint.restore_random_state(*random_state)
    return scores, details


def run_stream(resolved: ResolvedConfig, run_dir: RunDirectory, resume: bool, console: Console,
               trackers: Sequence[str] = ()) -> tuple[dict[str, Any], VisionLanguageModel]:
    """Run (or resume) the whole stream and write `results.json`; returns the results and the model.

    `trackers` (see `mcit.run.tracking`) receive every log entry as it is written, then the
    matrix and metrics. A fresh run stopped by a user error before its zero-shot row was saved
    leaves nothing behind.
    """
    try:
        with deterministic_kernels(resolved.run.deterministic):
            return _run_stream(resolved, run_dir, resume, console, trackers)
    except UserError:
        if not resume:
            run_dir.discard_unstarted()
        raise


def _run_stream(resolved: ResolvedConfig, run_dir: RunDirectory, resume: bool, console: Console,
                trackers: Sequence[str]) -> tuple[dict[str, Any], VisionLanguageModel]:
    from mcit.run.tracking import Tracking

    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed

    config = resolved.run
    method = resolved.method
    started = time.time()
    accelerator = Accelerator(cpu=on_cpu(config.device), mixed_precision=config.train.mixed_precision)
    check_setup(accelerator, method, resolved.method_name, config.train.grad_accumulation)
    configure_deepspeed(accelerator, config.train.batch_size // accelerator.num_processes)
    run_dir.is_main = accelerator.is_main_process
    console.enabled = console.enabled and accelerator.is_main_process
    console.show_results = console.show_results and accelerator.is_main_process
    set_seed(config.seed)

    benchmark = load_benchmark(config.benchmark)
    for task in benchmark.tasks:
        if task.metric_note:
            console.say(f"note: {task.metric_note}")
    model = load_model(config.model, seed=config.seed)
    model.network.to(accelerator.device)
    frozen_at_load = {n for n, p in model.network.named_parameters() if not p.requires_grad}
    trained: set[str] = set()
    if resume and accelerator.is_main_process:
        remove_temporaries(run_dir.path)
    accelerator.wait_for_everyone()
    tracking = Tracking(trackers, run_dir.path, enabled=accelerator.is_main_process)
    tracking.start(resolved.to_dict(), previous_log=run_dir.log_file if resume else None)
    write_log = tracking.wrap(JsonlLog(run_dir.log_file, accelerator.is_main_process).write)
    ctx = Context(
        accelerator=accelerator, model=model, seed=config.seed, tasks=benchmark.tasks,
        batch_size=config.train.batch_size // accelerator.num_processes, log=write_log,
        gradient_of=make_gradient_of(model, accelerator), batches=make_batches(model), stage_index=-1,
    )
    stages: list[Stage] = method.stages(benchmark.tasks)
    labels = row_labels(stages)

    progress = run_dir.read_progress() if resume else None
    matrix: list[list[float]] = progress["matrix"] if progress else []
    details: list[list[dict]] = progress["details"] if progress else []
    timing: dict[str, Any] = progress["timing"] if progress else {"train_s": 0.0, "eval_s": 0.0, "stages": []}

    def unusable(point: Point, why: str) -> None:
        console.warn(f"checkpoint {point.folder} ({point.describe()}) cannot be used: {why}; "
                     "it is removed and the run continues from an older checkpoint")
        write_log({"event": "checkpoint-unusable", "checkpoint": point.folder.name, "reason": why})

    point = newest_usable(run_dir, stages, len(matrix), unusable) if resume else None
    accelerator.wait_for_everyone()
    rows = point.rows if point is not None else min(len(matrix), 1)
    del matrix[rows:], details[rows:], timing["stages"][max(0, rows - 1):]
    saved_loop: dict[str, Any] = {}
    saved_random = None
    newest: Path | None = None  # the newest good checkpoint, named when the run stops on a bad loss
    if point is not None:
        saved_loop = checkpoint.load_loop_state(point.folder)
        method.load_state_dict(checkpoint.load_method_state(point.folder))
        ctx.stage_index = point.stage
        ctx.global_step = int(saved_loop["global_step"])
        model = ctx.model = method.setup(model, ctx)
        trained |= checkpoint.load_weights(point.folder, model.network) & frozen_at_load
        saved_random = checkpoint.load_random_state(point.folder)
        if point.kind != "step":  # a step checkpoint's states are restored right before its next step
            checkpoint.restore_random_state(*saved_random)
        newest = point.folder
        console.say(f"resuming {run_dir.path} {point.describe()} of {len(stages)} ({stages[point.stage].name})")
        write_log({"event": "resume", "stages_done": rows - 1, "checkpoint": point.folder.name})
    else:
        model = ctx.model = method.setup(model, ctx)
        if resume and progress:
            console.say(f"resuming {run_dir.path} from the start of its first stage")
            write_log({"event": "resume", "stages_done": 0, "checkpoint": None})
        else:
            write_log({"event": "start", "method": resolved.method_name, "model": config.model.name,
                       "benchmark": benchmark.name, "tasks": benchmark.task_names,
                       "parameters": model.count_parameters()})

    previous_seconds = timing.get("total_s", 0.0)

    def save_progress() -> None:
        timing["total_s"] = previous_seconds + time.time() - started
        run_dir.write_progress({"stages_done": len(matrix) - 1, "stages": [s.name for s in stages], "matrix": matrix,
                                "details": details, "timing": timing, "global_step": ctx.global_step})

    def save_checkpoint(folder: Path, loop: dict[str, Any], position: TrainPosition | None = None) -> None:
        nonlocal newest
        if accelerator.is_main_process:
            names = checkpoint.saved_parameter_names(ctx.model.network, frozen_at_load, trained)
            checkpoint.write_checkpoint(
                folder, ctx.model.network, names, method,
                {"stage": ctx.stage_index, "stage_name": stages[ctx.stage_index].name,
                 "global_step": ctx.global_step, **loop},
                optimizer=position.tensors() if position is not None else None,
                random_state=position.random if position is not None else None)
        accelerator.wait_for_everyone()
        newest = folder

    if not matrix:
        tic = time.time()
        if config.eval.zero_shot:
            row, row_details = _evaluate_row(ctx, method, benchmark, 0, labels[0], run_dir, resolved, console)
        else:
            row, row_details = [None] * len(benchmark.tasks), [{} for _ in benchmark.tasks]
        matrix.append(row)
        details.append(row_details)
        timing["eval_s"] += time.time() - tic
        save_progress()

    every = config.train.checkpoint_every
    # A sharded optimiser's state is spread over the processes: no step checkpoints then.
    step_checkpoints = every and accelerator.distributed_type not in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    first = 0 if point is None else point.stage + (1 if point.kind == "evaluated" else 0)
    for index in range(first, len(stages)):
        stage = stages[index]
        task = stage.task
        ctx.stage_index, ctx.step = index, 0
        here = point if point is not None and point.stage == index and point.kind != "evaluated" else None
        description = f"task {index + 1}/{len(stages)} {stage.name}"
        if here is not None and here.kind == "trained":
            losses, train_seconds = saved_loop["losses"], float(saved_loop["train_s"])
            trainable = saved_loop.get("trainable")
        else:
            tic = time.time()
            start, earlier_seconds = None, 0.0
            if here is not None:  # a step checkpoint: the method's state is already the mid-task state
                model = ctx.model = method.resume_task(model, task, ctx)
                start = TrainPosition.from_parts(saved_loop["train"], checkpoint.load_optimizer_state(here.folder),
                                                 saved_random)
                earlier_seconds = float(saved_loop["train_s"])
            else:
                model = ctx.model = method.before_task(model, task, ctx)
            trained |= {n for n, _ in model.trainable_named_parameters()} & frozen_at_load
            # what this task trains, which for prompt and expansion methods is not the network's trainable set
            trainable = sum(p.numel() for group in method.trainable_parameters(model, task) for p in group["params"])

            def save_step(position: TrainPosition) -> None:
                older = run_dir.step_checkpoints(index, stage.name).values()
                save_checkpoint(run_dir.step_checkpoint_dir(index, stage.name, position.step),
                                {"kind": "step", "train": position.plain(),
                                 "train_s": earlier_seconds + time.time() - tic}, position)
                run_dir.remove_checkpoints([p for p in older if p != newest])

            with console.bar(0, description, "step") as bar:
                def on_step(step: int, steps: int, loss: float | None, lr: float) -> None:
                    if bar.total != steps:
                        bar.reset(total=steps)
                    bar.update(step - bar.n)
                    if loss is not None:
                        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}", refresh=False)

                try:
                    losses = train_stage(method, task, ctx, config.train, on_step=on_step, start=start,
                                         on_checkpoint=save_step if step_checkpoints else None)
                except NonFiniteLoss as error:
                    write_log({"event": "non-finite-loss", "task": task.name, "stage": index + 1,
                               "message": str(error)})
                    kept = f"its last good checkpoint is kept: {newest}" if newest else "it has no checkpoint yet"
                    raise NonFiniteLoss(f"{error}; {kept}") from None
            method.after_task(model, task, ctx)
            train_seconds = earlier_seconds + time.time() - tic
            if every:
                save_checkpoint(run_dir.trained_checkpoint_dir(index, stage.name),
                                {"kind": "trained", "losses": losses, "train_s": train_seconds, "trainable": trainable})
                run_dir.remove_checkpoints(run_dir.step_checkpoints(index, stage.name).values())
        tic = time.time()
        row, row_details = _evaluate_row(ctx, method, benchmark, index + 1, labels[index + 1], run_dir, resolved, console)
        eval_seconds = time.time() - tic
        matrix.append(row)
        details.append(row_details)
        timing["train_s"] += train_seconds
        timing["eval_s"] += eval_seconds
        timing["stages"].append({"name": stage.name, "train_s": round(train_seconds, 3),
                                 "eval_s": round(eval_seconds, 3), "losses": losses, "trainable_params": trainable})
        save_progress()  # before the checkpoint: an evaluated checkpoint always has its row in progress.json
        save_checkpoint(run_dir.checkpoint_dir(index, stage.name),
                        {"kind": "evaluated", "losses": losses, "train_s": train_seconds})
        run_dir.remove_checkpoints([run_dir.trained_checkpoint_dir(index, stage.name),
                                    *run_dir.step_checkpoints(index, stage.name).values()])
        console.say(f"{description}: trained in {train_seconds:.1f}s, evaluated in {eval_seconds:.1f}s; "
                    + ", ".join(f"{t.name} {v:.1f}" for t, v in zip(benchmark.tasks, row)))

    timing["total_s"] = previous_seconds + time.time() - started
    results = build_results(resolved, benchmark, stages, matrix, details, timing, model, method)
    run_dir.write_results(results)
    tracking.log_results(results)
    tracking.finish()
    console.result(f"\n{resolved.method_name} on {benchmark.name} with {config.model.name}, seed {config.seed}\n")
    console.result(format_matrix(benchmark.task_names, labels, matrix))
    console.result("\n" + format_metrics(results["metrics"]))
    console.result(f"\nresults: {run_dir.results_file}")
    return results, model
