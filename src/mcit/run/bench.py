"""`mcit bench`: what each method's training step costs, against SeqFT and a plain loop, in one run.

Every subject trains the same model on the same batches of a synthetic stream (`bench_stream`):
SeqFT and each method through the loop's own step (`bench_session`), and the plain transformers +
peft loop users write today (`bench_baseline`). Methods are timed on the stream's second task, one
task finished, so that their penalties, buffers, projections and prompts are in effect.

- `step_time_s`: the median over `repeats` rounds of the mean time of `steps` optimiser steps,
  after `warmup` steps; on a GPU the clock waits for the device.
- `peak_memory_bytes`: the most bytes tensors hold during one step (`bench_memory`).
- `state_bytes`: the method's state as a checkpoint stores it (tensors plus plain values);
  `added_parameter_bytes`: parameters the method added to the model (projectors, prompts).
- `*_ratio`: against SeqFT in the same run (SeqFT is always measured).
- growth (`growth=[1, 4, 8, 16]`): state, added parameters and step time after that many tasks.

On a CPU (with glibc) malloc is first told to keep freed memory (`pin_allocator`): by default it
returns the top of its heap to the system whenever enough is free and faults it back in on the
next step, which on the tiny model made A-GEM's two passes per step about 8% slower than their
compute. GPUs have their own caching allocator and are unaffected.

On a CPU all subjects stay in memory and every round goes through all of them, each starting
with a garbage collection and one untimed step, so a change in the machine's speed during the run
hits every subject alike and no subject pays for another's garbage. On a GPU, where a 7B model
fits once, subjects are set up, timed and released one after another (`sequential`).
"""

from __future__ import annotations

import gc
import os
import statistics
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from mcit.core.errors import UserError
from mcit.run.bench_session import BenchSetup, MethodSession, Subject

#: The method every ratio is taken against.
REFERENCE = "seqft"
#: Optimiser steps each stage's schedule is planned for (the timed stage never reaches its end).
PLANNED_STEPS = 10_000
#: LLaVA-1.5's LoRA recipe, used with the 7B shape.
SHAPE_LORA = {"rank": 128, "alpha": 256.0}
#: Text tokens per sample (instruction and answer): with a benchmark shape the issue's 128, else 48,
#: above every built-in record's length, so that the length does not depend on the stream's size.
SHAPE_TEXT_TOKENS = 128
TEXT_TOKENS = 48


@dataclass
class BenchOptions:
    """What `mcit bench` measures and how long."""

    model: str = "tiny-random"
    methods: list[str] | None = None  # None: every method that trains
    batch: int = 8
    steps: int = 3
    repeats: int = 5
    warmup: int = 2
    growth: list[int] = field(default_factory=list)
    sequential: bool | None = None  # None: interleave on a CPU, one subject at a time on a GPU
    seed: int = 0

    def validate(self) -> None:
        for name in ("batch", "steps", "repeats"):
            if getattr(self, name) < 1:
                raise UserError(f"mcit bench: --{name} must be at least 1")
        if self.warmup < 0:
            raise UserError("mcit bench: --warmup cannot be negative")
        if any(k < 1 for k in self.growth):
            raise UserError("mcit bench: --growth takes task counts of at least 1, e.g. 1,4,8,16")


def method_names(requested: list[str] | None) -> list[str]:
    """The methods to time, SeqFT first; by default every registered method with a training step."""
    from mcit.methods.registry import available, method_class

    if requested is None:
        names = [name for name, cls in available().items() if cls().stages(_probe_tasks())]
    else:
        names = [method_class(name).name for name in requested]
    return [REFERENCE] + [name for name in dict.fromkeys(names) if name != REFERENCE]


def _probe_tasks():
    from mcit.data.schema import Task

    return [Task(name="probe", metric="exact_match", train=[], test=[])]


def make_setup(options: BenchOptions, tasks_needed: int) -> BenchSetup:
    """The shared model settings, training settings and stream for this machine."""
    from accelerate import Accelerator

    from mcit.models.config import LoraOptions, ModelConfig
    from mcit.models.shapes import SHAPES, shape_processor
    from mcit.run.bench_stream import synthetic_stream
    from mcit.run.config import TrainConfig

    gpu = torch.cuda.is_available()
    shape = options.model in SHAPES
    if shape and not gpu:
        raise UserError(f"mcit bench: '{options.model}' is a 7-billion-parameter model built with random weights "
                        "directly on a GPU, and no GPU is available here; on a CPU, benchmark the tiny model "
                        "(the default, --model tiny-random)")
    model = ModelConfig(name=options.model)
    if gpu:
        model.dtype, model.gradient_checkpointing = "bfloat16", True
    if shape:
        model.lora = LoraOptions(rank=SHAPE_LORA["rank"], alpha=SHAPE_LORA["alpha"])
    train = TrainConfig(batch_size=options.batch, max_steps=PLANNED_STEPS, mixed_precision="bf16" if gpu else "no")
    tokenizer = (shape_processor() if shape else model_processor(model)).tokenizer
    tasks = synthetic_stream(tasks_needed, records=max(32, 4 * options.batch), tokenizer=tokenizer,
                             text_tokens=SHAPE_TEXT_TOKENS if shape else TEXT_TOKENS)
    accelerator = Accelerator(cpu=not gpu, mixed_precision=train.mixed_precision)
    return BenchSetup(model=model, train=train, tasks=tasks, accelerator=accelerator, seed=options.seed)


def model_processor(config):
    """The processor of the model `config` names, without loading its weights."""
    from transformers import AutoProcessor

    from mcit.models.loading import BUILTIN_MODELS, builtin_folder

    if config.name == "tiny-random":
        from mcit.models.tiny.build import build_processor

        return build_processor()
    source = str(builtin_folder(config.name)) if config.name in BUILTIN_MODELS else config.name
    try:
        return AutoProcessor.from_pretrained(source, trust_remote_code=config.trust_remote_code, revision=config.revision)
    except (OSError, ValueError) as exc:
        raise UserError(f"mcit bench: cannot load the processor of '{config.name}': {exc}") from None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name = "CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def pin_allocator() -> bool:
    """Tell glibc's malloc to keep freed memory for the rest of the process (no trimming of the
    heap, a fixed 32 MiB mmap threshold); returns whether it applied (False without glibc)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    return bool(libc.mallopt(m_trim_threshold, 2**31 - 1)) and bool(libc.mallopt(m_mmap_threshold, 32 * 2**20))


def _time_rounds(subjects: list[Subject], options: BenchOptions) -> dict[str, list[float]]:
    """Per subject, the mean step time of each round (see the module docstring)."""
    for subject in subjects:
        for _ in range(options.warmup):
            subject.step()
    rounds: dict[str, list[float]] = {s.name: [] for s in subjects}
    for _ in range(options.repeats):
        for subject in subjects:
            if len(subjects) > 1:
                gc.collect()  # the other subjects' garbage, not this one's cost
                subject.step()  # back into the caches after the other subjects' rounds
            times = [subject.time_step() for _ in range(options.steps)]
            rounds[subject.name].append(sum(times) / len(times))
    return rounds


def _set_up(group: list[tuple[str, Callable[[], Subject]]], say: Callable[[str], None]) -> list[Subject]:
    """Build the group's subjects; method sessions are brought to their timed stage (task 2)."""
    subjects: list[Subject] = []
    for name, make in group:
        say(f"setting up {name}")
        with warnings.catch_warnings():  # libraries' deprecation notices on every model load
            warnings.simplefilter("ignore", FutureWarning)
            subject = make()
        if isinstance(subject, MethodSession):
            subject.reach(1)
        subjects.append(subject)
    return subjects


def _measure(subjects: list[Subject], options: BenchOptions) -> dict[str, dict[str, Any]]:
    """Step time, peak memory and (for methods) state of each subject."""
    rounds = _time_rounds(subjects, options)
    measured = {}
    for subject in subjects:
        entry = {"step_time_s": statistics.median(rounds[subject.name]), "round_times_s": rounds[subject.name],
                 "peak_memory_bytes": subject.peak_memory()}
        if isinstance(subject, MethodSession):
            entry.update(state_bytes=subject.state_bytes(), added_parameter_bytes=subject.added_parameter_bytes())
        measured[subject.name] = entry
    return measured


def _measure_growth(subjects: list[Subject], stream_length: int, points: list[int], options: BenchOptions,
                    say: Callable[[str], None]) -> dict[str, list[dict[str, Any]]]:
    """Step time, state and added parameters after each number of finished tasks, for the methods
    with one stage per task (MultiTask's single joint stage has no stream to grow with)."""
    sessions = [s for s in subjects if isinstance(s, MethodSession) and len(s.stages) == stream_length]
    rows: dict[str, list[dict[str, Any]]] = {s.name: [] for s in sessions}
    for tasks in points:
        say(f"growth: {tasks} task(s) finished")
        for session in sessions:
            session.reach(tasks)
        rounds = _time_rounds(sessions, options)
        for session in sessions:
            rows[session.name].append({
                "tasks": session.finished_tasks, "step_time_s": statistics.median(rounds[session.name]),
                "state_bytes": session.state_bytes(), "added_parameter_bytes": session.added_parameter_bytes()})
    return rows


def _release(subjects: list[Subject], setup: BenchSetup) -> None:
    """Let the subjects' models, optimisers and states go before the next group is built."""
    for subject in subjects:
        subject.close()
    subjects.clear()
    setup.accelerator.free_memory()  # accelerate keeps references to what it prepared
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_bench(options: BenchOptions, say: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Measure every subject; returns the results (see the module docstring and `bench_report`)."""
    from mcit.run.bench_baseline import PlainLoop

    options.validate()
    names = method_names(options.methods)
    growth = sorted(set(options.growth))
    setup = make_setup(options, tasks_needed=max([1, *growth]) + 1)
    pinned = setup.device.type == "cpu" and pin_allocator()
    timed_task = setup.tasks[1]
    factories: list[tuple[str, Callable[[], Subject]]] = [(PlainLoop.name, lambda: PlainLoop(setup, timed_task))]
    factories += [(name, lambda name=name: MethodSession(name, setup)) for name in names]
    sequential = options.sequential if options.sequential is not None else setup.device.type == "cuda"
    groups = [[f] for f in factories] if sequential else [factories]
    measured: dict[str, dict[str, Any]] = {}
    growth_rows: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        subjects = _set_up(group, say)
        try:
            say("timing " + ", ".join(s.name for s in subjects))
            measured.update(_measure(subjects, options))
            if growth:
                growth_rows.update(_measure_growth(subjects, len(setup.tasks), growth, options, say))
        finally:
            _release(subjects, setup)
    return _results(options, setup, names, measured, growth_rows, pinned)


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def _results(options: BenchOptions, setup: BenchSetup, names: list[str], measured: dict[str, dict[str, Any]],
             growth: dict[str, list[dict[str, Any]]], pinned: bool) -> dict[str, Any]:
    from mcit.run.bench_baseline import PlainLoop

    reference = measured[REFERENCE]

    def with_ratios(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "step_time_ratio": _ratio(entry["step_time_s"], reference["step_time_s"]),
                "peak_memory_ratio": _ratio(entry["peak_memory_bytes"], reference["peak_memory_bytes"])}

    reference_growth = {row["tasks"]: row["step_time_s"] for row in growth.get(REFERENCE, [])}
    for rows in growth.values():
        for row in rows:
            row["step_time_ratio"] = _ratio(row["step_time_s"], reference_growth.get(row["tasks"], 0.0))
    return {
        "device": describe_device(setup.device),
        "model": options.model,
        "batch": options.batch,
        "settings": {"steps": options.steps, "repeats": options.repeats, "warmup": options.warmup,
                     "timed_task": 2, "lora_rank": setup.model.lora.rank, "weights_dtype": setup.model.dtype,
                     "mixed_precision": setup.train.mixed_precision,
                     "gradient_checkpointing": setup.model.gradient_checkpointing,
                     "memory": "torch.cuda.max_memory_allocated" if setup.device.type == "cuda"
                     else "resident tensors + profiler-measured transient peak (see docs/performance.md)",
                     "torch_threads": torch.get_num_threads(), "malloc_pinned": pinned},
        "baseline": {"name": "plain transformers + peft loop", **with_ratios(measured[PlainLoop.name])},
        "methods": {name: with_ratios(measured[name]) for name in names},
        "growth": growth,
    }
