"""The `mcit` command.

    mcit run [CONFIG.yaml] [--method NAME] [--model NAME|PATH] [--benchmark NAME|PATH]
             [--order a,b,c] [--seed N] [--output DIR] [--resume] [--overwrite] [key=value ...]
             [--seeds 0,1,2] [--methods a,b] [--trackers tensorboard,wandb,mlflow|none]
    mcit compare RUN... [--format text|markdown|csv|latex] [--output FILE] [--by-type]
    mcit report RUN... [--html FILE] [--figures DIR]
    mcit methods
    mcit benchmarks
    mcit data check PATH [--images DIR]
    mcit data show TASK [--benchmark NAME|PATH] [-n N] [--sheet FILE.png]
    mcit pretrain --model tiny-base|tiny-instruct [--output DIR]
    mcit bench [--model NAME|PATH] [--methods a,b] [--batch N] [--steps N] [--repeats N]
               [--growth 1,4,8,16] [--output FILE] [--sequential]

Mistakes a user can fix end in one line on stderr and exit status 2, without a traceback
(`--debug` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from mcit.core.errors import UserError


def _add_run_parser(commands) -> None:
    run = commands.add_parser("run", help="train a model on a stream of tasks and evaluate after every task",
                              description="Train on each task of a stream in turn, evaluate every task after "
                                          "every task, and write the accuracy matrix and metrics.")
    run.add_argument("items", nargs="*", metavar="CONFIG.yaml | key=value",
                     help="an optional YAML config file, then overrides such as train.lr=0.001")
    run.add_argument("--method", help="continual-learning method (see `mcit methods`)")
    run.add_argument("--model", help="built-in model name, hub id or model folder")
    run.add_argument("--benchmark", help="built-in stream name, benchmark YAML or CoIN/UCIT-layout folder")
    run.add_argument("--order", help="comma-separated task names: which tasks, in which order")
    run.add_argument("--images", help="extra folder to look for benchmark images in")
    run.add_argument("--seed", type=int, help="run seed")
    run.add_argument("--output", help="run directory")
    run.add_argument("--resume", action="store_true", help="continue an unfinished run in the run directory")
    run.add_argument("--overwrite", action="store_true", help="replace whatever the run directory holds")
    run.add_argument("--quiet", action="store_true", help="no progress bars, only the final tables")
    run.add_argument("--seeds", help="several runs, one per seed: 0,1,2 or 0-4 (--output is then their parent folder)")
    run.add_argument("--methods", help="several runs, one per method: seqft,ewc (--output is then their parent "
                                       "folder; NAME.key=value sets an option of method NAME only)")
    run.add_argument("--trackers", help="experiment trackers: tensorboard, wandb, mlflow, comma-separated, or none "
                                        "(default: tensorboard when installed)")


def _add_results_parsers(commands) -> None:
    compare = commands.add_parser("compare", help="table of finished runs: mean ± std over seeds per method",
                                  description="Group finished runs by method, model and benchmark (and any other "
                                              "setting but the seed) and show mean ± sample std over seeds.")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders searched for finished runs")
    compare.add_argument("--format", choices=("text", "markdown", "csv", "latex"), default="text")
    compare.add_argument("--output", help="write the table to this file instead of printing it")
    compare.add_argument("--by-type", action="store_true",
                         help="one row per task and question type: its score right after the task was learned "
                              "and at the end, for tasks whose records carry a question_type")
    report = commands.add_parser("report", help="HTML page (and SVG/PNG figures) of finished runs",
                                 description="One self-contained HTML page with the comparison table and, per run, "
                                             "the accuracy-matrix heatmap, A_t, forgetting, task similarity and config.")
    report.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or folders searched for finished runs")
    report.add_argument("--html", help="write the report page to this file")
    report.add_argument("--figures", help="write every figure as SVG and PNG into this folder")


def _add_bench_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="time every method's training step and memory against SeqFT and a plain transformers+peft loop",
        description="Time the training step of SeqFT, of every method (on a later task of a synthetic stream) and "
                    "of a plain transformers + peft loop on the same model and batches; report peak memory, each "
                    "method's state and, with --growth, how state and step time change with the number of tasks.")
    bench.add_argument("--model", default="tiny-random",
                       help="built-in model, folder or hub id, or llava-7b-shape (random weights, GPU only); "
                            "default tiny-random")
    bench.add_argument("--methods", help="comma-separated methods (default: every method that trains); seqft is "
                                         "always timed, as every ratio is against it")
    bench.add_argument("--batch", type=int, default=8, help="samples per step (default 8)")
    bench.add_argument("--steps", type=int, default=3, help="timed steps per round (default 3)")
    bench.add_argument("--repeats", type=int, default=5, help="rounds; the step time is their median (default 5)")
    bench.add_argument("--warmup", type=int, default=2, help="untimed steps before the first round (default 2)")
    bench.add_argument("--growth", help="also measure state and step time after these numbers of finished tasks, "
                                        "e.g. 1,4,8,16")
    bench.add_argument("--output", help="write the results as JSON to this file")
    bench.add_argument("--sequential", action="store_true", default=None,
                       help="set up, time and release one subject at a time (the default on a GPU) instead of "
                            "keeping all in memory and interleaving their rounds (the default on a CPU)")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcit", description="Multimodal continual instruction tuning.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    parser.add_argument("--version", action="version", version=f"mcit {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run_parser(commands)
    _add_results_parsers(commands)
    _add_bench_parser(commands)
    commands.add_parser("methods", help="list the methods and their options")
    commands.add_parser("benchmarks", help="list the built-in streams and their tasks")
    data = commands.add_parser("data", help="check or look at benchmark data")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION")
    check = data_commands.add_parser("check", help="validate a benchmark YAML or CoIN/UCIT-layout folder")
    check.add_argument("path")
    check.add_argument("--images", help="extra folder to look for images in")
    show = data_commands.add_parser("show", help="print samples of a task and optionally draw a contact sheet")
    show.add_argument("task")
    show.add_argument("--benchmark", default="builtin", help="built-in stream, YAML or folder (default: builtin)")
    show.add_argument("--images", help="extra folder to look for images in")
    show.add_argument("-n", type=int, default=6, help="number of samples")
    show.add_argument("--split", choices=("train", "test"), default="test")
    show.add_argument("--sheet", help="write a contact-sheet PNG of the samples here")
    pretrain = commands.add_parser("pretrain", help="rebuild a built-in start model (tiny-base, tiny-instruct)")
    pretrain.add_argument("--model", required=True, choices=("tiny-base", "tiny-instruct"))
    pretrain.add_argument("--output", help="folder to write the model to (default: the package's weights folder)")
    pretrain.add_argument("--steps", type=int, help="optimiser steps (default: the documented recipe)")
    pretrain.add_argument("--quiet", action="store_true")
    pretrain.add_argument("overrides", nargs="*", metavar="key=value",
                          help="settings of the language stage's run, e.g. benchmark.test_size=50")
    return parser


def _version() -> str:
    from mcit import __version__

    return __version__


def _split_items(items: Sequence[str]) -> tuple[str | None, list[str]]:
    config, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif not item.lower().endswith((".yaml", ".yml")) and not os.path.exists(item):
            raise UserError(f"cannot read {item!r}: not a config file (no such .yaml file) and not a key=value "
                            "override; write overrides as key=value, e.g. train.lr=0.001")
        elif config is None and not overrides:
            config = item
        else:
            raise UserError(f"cannot read {item!r}: give at most one config file, before any key=value overrides")
    return config, overrides


def command_run(args: argparse.Namespace) -> int:
    from mcit.run.config import load_config
    from mcit.run.console import Console
    from mcit.run.loop import run_stream
    from mcit.run.rundir import RunDirectory

    config_path, overrides = _split_items(args.items)
    order = [t.strip() for t in args.order.split(",") if t.strip()] if args.order else None
    flags = {"method.name": args.method, "model.name": args.model, "benchmark.name": args.benchmark,
             "benchmark.order": order, "benchmark.images": args.images, "seed": args.seed, "output": args.output}
    from mcit.run.tracking import select_trackers

    trackers = select_trackers(args.trackers)
    if args.seeds is not None or args.methods is not None:
        return _run_several(args, config_path, flags, overrides, trackers)
    resolved = load_config(config_path, flags, overrides)
    run_dir = RunDirectory(resolved.output_dir)
    run_dir.prepare(resolved.to_dict(), resume=args.resume, overwrite=args.overwrite)
    run_stream(resolved, run_dir, resume=args.resume, console=Console(quiet=args.quiet), trackers=trackers)
    return 0


def _run_several(args: argparse.Namespace, config_path: str | None, flags: dict, overrides: list[str],
                 trackers: list[str]) -> int:
    """`mcit run --seeds ... / --methods ...`: one run per (method, seed), a summary, status 1 if any failed."""
    from mcit.run.multirun import format_summary, main_process, parse_methods, parse_seeds, plan_runs, run_many

    methods = parse_methods(args.methods) if args.methods is not None else None
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    planned = plan_runs(config_path, flags, overrides, methods, seeds)
    outcomes = run_many(planned, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet, trackers=trackers)
    if main_process():
        print(format_summary(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


def command_compare(args: argparse.Namespace) -> int:
    from mcit.core.files import write_text
    from mcit.run.compare import compare, format_table
    from mcit.run.compare_environment import environment_notes
    from mcit.run.compare_types import format_type_table

    groups = compare(args.runs)
    text = (format_type_table if args.by_type else format_table)(groups, args.format)
    if args.format in ("csv", "latex"):  # the table stays machine-readable; the notes go beside it
        for note in environment_notes(groups):
            print(note, file=sys.stderr)
    if args.output:
        write_text(args.output, text)
        print(f"comparison table: {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def command_report(args: argparse.Namespace) -> int:
    from mcit.run.report_html import write_report

    written = write_report(args.runs, html_file=args.html, figures_dir=args.figures)
    if written.html:
        print(f"report: {written.html}")
    if args.figures:
        print(f"figures: {len(written.figures)} files in {args.figures}")
    return 0


def command_methods(_args: argparse.Namespace) -> int:
    from mcit.core.configs import describe_fields
    from mcit.methods.registry import available

    for name, cls in available().items():
        print(f"{name:<12} {cls.summary}")
        for field, type_name, default, help_text in describe_fields(cls.Options):
            print(f"    {field} ({type_name}, default {default!r}): {help_text}")
    return 0


def command_benchmarks(_args: argparse.Namespace) -> int:
    from mcit.data.builtin.streams import ALL_TASKS, STREAMS

    for stream in STREAMS.values():
        print(f"{stream.name}: {stream.description}")
        print(f"  {len(stream.order)} task(s), {stream.train_size} train / {stream.test_size} test samples each by default")
        for name in stream.order:
            spec = ALL_TASKS[name]
            print(f"  {name:<17} {spec.metric:<16} mirrors {spec.mirrors}: {spec.description}")
        print()
    print("Public benchmarks: pass --benchmark with a benchmark YAML or a CoIN/UCIT-layout folder.")
    return 0


def command_data(args: argparse.Namespace) -> int:
    if args.data_command == "check":
        from pathlib import Path

        from mcit.data.check import check_benchmark_path

        report = check_benchmark_path(Path(args.path), images=Path(args.images) if args.images else None)
        print(report.format())
        return 0 if report.ok else 1
    if args.data_command == "show":
        from mcit.data.show import show_task

        show_task(args.task, args.benchmark, args.images, args.n, args.split, args.sheet)
        return 0
    raise UserError("mcit data: choose an action, `check` or `show`")


def command_pretrain(args: argparse.Namespace) -> int:
    from mcit.run.pretrain import pretrain

    pretrain(args.model, output=args.output, steps=args.steps, quiet=args.quiet, overrides=args.overrides)
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag}: expected comma-separated whole numbers, e.g. 1,4,8,16; got {text!r}") from None


def command_bench(args: argparse.Namespace) -> int:
    from mcit.core.files import write_json
    from mcit.run.bench import BenchOptions, run_bench
    from mcit.run.bench_report import format_growth, format_table

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    options = BenchOptions(model=args.model, methods=methods, batch=args.batch, steps=args.steps,
                           repeats=args.repeats, warmup=args.warmup,
                           growth=_int_list(args.growth, "--growth") if args.growth else [],
                           sequential=args.sequential)
    say = (lambda text: None) if args.quiet else (lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    results = run_bench(options, say=say)
    print(format_table(results))
    growth = format_growth(results)
    if growth:
        print(growth)
    if args.output:
        write_json(args.output, results)
        print(f"results: {args.output}", file=sys.stderr)
    return 0


COMMANDS = {"run": command_run, "methods": command_methods, "benchmarks": command_benchmarks,
            "data": command_data, "pretrain": command_pretrain, "compare": command_compare,
            "report": command_report, "bench": command_bench}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # inside the try, so a reader that went away is met here
        return code
    except UserError as error:
        if args.debug:
            raise
        print(f"mcit: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mcit methods | head`): stop quietly, as other command-line tools do.
        # Pointing stdout at /dev/null keeps the interpreter's final flush from failing once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
