"""The run's configuration: model, benchmark, method, training and evaluation settings.

Resolution order: the dataclass defaults, then a YAML file, then command-line flags (`--method`,
`--model`, ...), then `key=value` overrides. The method section is `method: {name: NAME, ...its
options}` (a bare `method: NAME` is accepted); its options are validated against the chosen
method's own dataclass. The resolved configuration is what the run directory stores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcit.core.configs import ConfigError, from_dict, load_yaml, option, parse_override, set_path, to_dict
from mcit.data.config import BenchmarkConfig
from mcit.methods.base import Method
from mcit.methods.registry import build_method
from mcit.models.config import ModelConfig


@dataclass
class TrainConfig:
    """How each task is trained."""

    lr: float = option(2e-3, "peak learning rate of each task", min=0)
    weight_decay: float = option(0.0, "AdamW weight decay", min=0)
    batch_size: int = option(16, "samples per micro-batch over all processes (split evenly between them)", min=1)
    grad_accumulation: int = option(1, "micro-batches per optimiser step", min=1)
    epochs: float = option(2.0, "passes over each task's training data (ignored when max_steps is set)", min=0)
    max_steps: int | None = option(None, "optimiser steps per task, overriding epochs", min=0)
    warmup_ratio: float = option(0.05, "share of each task's steps spent warming the learning rate up", min=0, max=1)
    schedule: Literal["cosine", "linear", "constant"] = option("cosine", "learning-rate decay within each task")
    max_grad_norm: float | None = option(1.0, "clip the gradient to this global norm (null: no clipping)", min=0)
    mixed_precision: Literal["no", "bf16", "fp16"] = option("no", "autocast precision (bf16 on GPUs that support it)")
    log_every: int = option(10, "optimiser steps between log lines", min=1)
    checkpoint_every: int | None = option(
        100, "optimiser steps between checkpoints within a task, which a killed run resumes from (the end of "
             "each task's training is then checkpointed too); null: only after each task's evaluation", min=1)


@dataclass
class EvalConfig:
    """How every task is evaluated after every task."""

    batch_size: int = option(100, "samples per generation batch on each process", min=1)
    zero_shot: bool = option(True, "evaluate the starting model (row 0, needed for FWT)")
    save_predictions: bool = option(True, "write every prediction to the run directory")


@dataclass
class RunConfig:
    """Everything that defines a run except the method's own options."""

    model: ModelConfig = option(default_factory=ModelConfig, help="the vision-language model")
    benchmark: BenchmarkConfig = option(default_factory=BenchmarkConfig, help="the stream of tasks")
    train: TrainConfig = option(default_factory=TrainConfig, help="training of each task")
    eval: EvalConfig = option(default_factory=EvalConfig, help="evaluation after each task")
    seed: int = option(0, "seed of model initialisation, data order and methods' random draws")
    output: str | None = option(None, "run directory (default: runs/BENCHMARK/METHOD-MODEL-seedN)")
    device: Literal["auto", "cpu"] = option("auto", "auto: a GPU when accelerate finds one; cpu: force the CPU")
    deterministic: bool = option(False, "use only deterministic GPU kernels (torch.use_deterministic_algorithms, "
                                        "CUBLAS_WORKSPACE_CONFIG); slower; see docs/determinism.md")


@dataclass
class ResolvedConfig:
    """A validated run configuration with its method."""

    run: RunConfig
    method_name: str
    method: Method

    def to_dict(self) -> dict[str, Any]:
        data = to_dict(self.run)
        return {"method": {"name": self.method_name, **to_dict(self.method.options)}, **data}

    @property
    def output_dir(self) -> Path:
        if self.run.output:
            return Path(self.run.output).expanduser()
        model = Path(self.run.model.name).name or "model"
        benchmark = Path(self.run.benchmark.name).stem or "benchmark"
        return Path("runs") / benchmark / f"{self.method_name}-{model}-seed{self.run.seed}"


DEFAULT_METHOD = "seqft"


def resolve(data: dict[str, Any] | None = None, overrides: list[str] | None = None) -> ResolvedConfig:
    """Validate plain config data plus `key=value` overrides into a `ResolvedConfig`."""
    data = copy.deepcopy(data or {})
    method = data.get("method", DEFAULT_METHOD)
    if isinstance(method, str):
        data["method"] = {"name": method}
    elif not isinstance(method, dict):
        raise ConfigError("config key 'method': expected a method name or a mapping with 'name' and its options")
    for text in overrides or []:
        path, value = parse_override(text)
        if path == ["method"]:
            path = ["method", "name"]
        set_path(data, path, value)
    method_data = dict(data.pop("method"))
    name = str(method_data.pop("name", DEFAULT_METHOD))
    run = from_dict(RunConfig, data)
    return ResolvedConfig(run=run, method_name=name, method=build_method(name, method_data))


def load_config(path: str | Path | None, flags: dict[str, Any], overrides: list[str]) -> ResolvedConfig:
    """Resolve a run configuration from an optional YAML file, command-line flags and overrides.

    `flags` maps dotted keys to values of the command line's named options (`model.name`, ...);
    those given as None are left to the file or the defaults.
    """
    data = load_yaml(path) if path else {}
    method = data.get("method")
    if isinstance(method, str):
        data["method"] = {"name": method}
    for key, value in flags.items():
        if value is not None:
            set_path(data, key.split("."), value)
    return resolve(data, overrides)
