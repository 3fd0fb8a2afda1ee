"""Configuration of the benchmark: which stream, which tasks in which order, how much data."""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option


@dataclass
class BenchmarkConfig:
    """Which stream of tasks to run."""

    name: str = option("builtin", "a built-in stream (see `mcit benchmarks`), a benchmark YAML file, "
                       "or a folder laid out like CoIN/UCIT (one folder per task with train.json and test.json)")
    order: list[str] | None = option(None, "task names to run, in this order (a subset is allowed); default: the stream's order")
    images: str | None = option(None, "extra folder to look for images in (public benchmarks)")
    data_seed: int = option(0, "seed of the built-in stream's generated data (independent of the run's seed)")
    train_size: int | None = option(None, "training samples per built-in task (default: the stream's)", min=1)
    test_size: int | None = option(None, "test samples per built-in task (default: the stream's)", min=1)
    train_limit: int | None = option(None, "use at most this many training records per task (any benchmark)", min=1)
    test_limit: int | None = option(None, "evaluate at most this many test records per task (any benchmark)", min=1)
