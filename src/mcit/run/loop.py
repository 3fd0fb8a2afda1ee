"""The run, top to bottom: load, evaluate zero-shot, then per stage train and evaluate everything.

    benchmark, model, method.setup
    row 0: evaluate every task with the starting model
    for each stage: before_task -> train -> after_task -> evaluate every task -> checkpoint
    results.json: the accuracy matrix, the metrics, per-task details and timing

On `--resume` the run continues after the last stage whose checkpoint is complete: the method's
state is restored, `setup` rebuilds its structure, the saved weights and random states are
loaded, and finished stages are not trained again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mcit.core.errors import UserError
from mcit.data.benchmarks import load_benchmark
from mcit.data.schema import Benchmark
from mcit.methods.base import Stage
from mcit.methods.context import Context
from mcit.models.adapter import VisionLanguageModel
from mcit.models.loading import load_model
from mcit.run import checkpoint
from mcit.run.config import ResolvedConfig
from mcit.run.console import Console, format_matrix, format_metrics
from mcit.run.evaluate import evaluate_task, prediction_rows
from mcit.run.results import build_results, row_labels
from mcit.run.rundir import RunDirectory
from mcit.run.services import make_batches, make_gradient_of
from mcit.run.train import train_stage


class JsonlLog:
    """Appends one JSON object per line to the run's log (main process only)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, entry: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"time": round(time.time(), 3), **entry}) + "\n")


def _evaluate_row(ctx: Context, method, benchmark: Benchmark, row: int, label: str, run_dir: RunDirectory,
                  resolved: ResolvedConfig, console: Console) -> tuple[list[float], list[dict]]:
    """Score every task with the current model: one row of the accuracy matrix."""
    scores, details = [], []
    total = sum(len(t.test) for t in benchmark.tasks)
    with console.bar(total, f"eval {label}", "sample") as bar:
        for task in benchmark.tasks:
            evaluation = evaluate_task(method, task, ctx, resolved.run.eval.batch_size, on_batch=bar.update)
            scores.append(evaluation.score.value)
            details.append({"secondary": evaluation.score.secondary})
            ctx.log({"event": "eval", "row": row, "after": label, "task": task.name,
                     "metric": task.metric, "score": evaluation.score.value, **evaluation.score.secondary})
            if resolved.run.eval.save_predictions:
                run_dir.write_predictions(row, task.name, prediction_rows(task, evaluation))
    return scores, details


def run_stream(resolved: ResolvedConfig, run_dir: RunDirectory, resume: bool,
               console: Console) -> tuple[dict[str, Any], VisionLanguageModel]:
    """Run (or resume) the whole stream and write `results.json`; returns the results and the model."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    config = resolved.run
    method = resolved.method
    started = time.time()
    accelerator = Accelerator(cpu=config.device == "cpu", mixed_precision=config.train.mixed_precision)
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
    log = JsonlLog(run_dir.log_file, accelerator.is_main_process)
    ctx = Context(
        accelerator=accelerator, model=model, seed=config.seed, tasks=benchmark.tasks,
        batch_size=config.train.batch_size // accelerator.num_processes, log=log.write,
        gradient_of=make_gradient_of(model, accelerator), batches=make_batches(model), stage_index=-1,
    )
    stages: list[Stage] = method.stages(benchmark.tasks)
    labels = row_labels(stages)

    progress = run_dir.read_progress() if resume else None
    done = progress["stages_done"] if progress else 0
    matrix: list[list[float]] = progress["matrix"] if progress else []
    details: list[list[dict]] = progress["details"] if progress else []
    timing: dict[str, Any] = progress["timing"] if progress else {"train_s": 0.0, "eval_s": 0.0, "stages": []}
    if done:
        folder = run_dir.checkpoint_dir(done - 1, stages[done - 1].name)
        if not checkpoint.is_complete(folder):
            raise UserError(f"{folder}: the checkpoint of stage {done} is incomplete; start the run again with --overwrite")
        method.load_state_dict(checkpoint.load_method_state(folder))
        ctx.stage_index = done - 1
        ctx.global_step = progress.get("global_step", 0)
        model = ctx.model = method.setup(model, ctx)
        trained |= checkpoint.load_weights(folder, model.network) & frozen_at_load
        checkpoint.load_random_state(folder)
        console.say(f"resuming {run_dir.path} after stage {done} of {len(stages)} ({stages[done - 1].name})")
        log.write({"event": "resume", "stages_done": done})
    else:
        model = ctx.model = method.setup(model, ctx)
        log.write({"event": "start", "method": resolved.method_name, "model": config.model.name,
                   "benchmark": benchmark.name, "tasks": benchmark.task_names, "parameters": model.count_parameters()})

    previous_seconds = timing.get("total_s", 0.0)

    def save_progress() -> None:
        timing["total_s"] = previous_seconds + time.time() - started
        run_dir.write_progress({"stages_done": done, "stages": [s.name for s in stages], "matrix": matrix,
                                "details": details, "timing": timing, "global_step": ctx.global_step})

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

    for index in range(done, len(stages)):
        stage = stages[index]
        task = stage.task
        ctx.stage_index, ctx.step = index, 0
        tic = time.time()
        model = ctx.model = method.before_task(model, task, ctx)
        trained |= {n for n, _ in model.trainable_named_parameters()} & frozen_at_load
        description = f"task {index + 1}/{len(stages)} {stage.name}"
        with console.bar(0, description, "step") as bar:
            def on_step(step: int, steps: int, loss: float | None, lr: float) -> None:
                if bar.total != steps:
                    bar.reset(total=steps)
                bar.update(step - bar.n)
                if loss is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}", refresh=False)

            losses = train_stage(method, task, ctx, config.train, on_step=on_step)
        method.after_task(model, task, ctx)
        train_seconds = time.time() - tic
        tic = time.time()
        row, row_details = _evaluate_row(ctx, method, benchmark, index + 1, labels[index + 1], run_dir, resolved, console)
        eval_seconds = time.time() - tic
        matrix.append(row)
        details.append(row_details)
        timing["train_s"] += train_seconds
        timing["eval_s"] += eval_seconds
        timing["stages"].append({"name": stage.name, "train_s": round(train_seconds, 3),
                                 "eval_s": round(eval_seconds, 3), "losses": losses})
        if accelerator.is_main_process:
            names = checkpoint.saved_parameter_names(model.network, frozen_at_load, trained)
            checkpoint.save_checkpoint(run_dir.checkpoint_dir(index, stage.name), model.network, names, method)
        accelerator.wait_for_everyone()
        done = index + 1
        save_progress()
        console.say(f"{description}: trained in {train_seconds:.1f}s, evaluated in {eval_seconds:.1f}s; "
                    + ", ".join(f"{t.name} {v:.1f}" for t, v in zip(benchmark.tasks, row)))

    timing["total_s"] = previous_seconds + time.time() - started
    results = build_results(resolved, benchmark, stages, matrix, details, timing, model, method)
    run_dir.write_results(results)
    console.result(f"\n{resolved.method_name} on {benchmark.name} with {config.model.name}, seed {config.seed}\n")
    console.result(format_matrix(benchmark.task_names, labels, matrix))
    console.result("\n" + format_metrics(results["metrics"]))
    console.result(f"\nresults: {run_dir.results_file}")
    return results, model
