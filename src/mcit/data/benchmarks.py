"""Resolve `--benchmark NAME|PATH` to a loaded, ordered, validated stream of tasks."""

from __future__ import annotations

from pathlib import Path

from mcit.core.errors import UserError
from mcit.data.config import BenchmarkConfig
from mcit.data.schema import Benchmark


def _limit(benchmark: Benchmark, config: BenchmarkConfig) -> Benchmark:
    for task in benchmark.tasks:
        if config.train_limit is not None:
            task.train = task.train[: config.train_limit]
        if config.test_limit is not None:
            task.test = task.test[: config.test_limit]
    return benchmark


def load_benchmark(config: BenchmarkConfig) -> Benchmark:
    """The stream named or pointed to by `config`, with its tasks in run order.

    Built-in streams are generated into the cache on first use and then read through the same
    loader as a user's benchmark YAML.
    """
    from mcit.data.builtin.streams import STREAMS, materialize
    from mcit.data.public import load_benchmark_path

    images = Path(config.images).expanduser() if config.images else None
    if config.name in STREAMS:
        stream = STREAMS[config.name]
        order = tuple(config.order) if config.order else stream.order
        unknown = [name for name in order if name not in stream.order]
        if unknown:
            raise UserError(f"config key 'benchmark.order': unknown task '{unknown[0]}' in the built-in stream "
                            f"'{config.name}'; its tasks are: {', '.join(stream.order)}")
        if len(set(order)) != len(order):
            raise UserError("config key 'benchmark.order': a task is listed twice")
        path = materialize(config.name, seed=config.data_seed, train_size=config.train_size,
                           test_size=config.test_size, tasks=order)
        benchmark = load_benchmark_path(path)
        benchmark.name = config.name
        return _limit(benchmark, config)
    path = Path(config.name).expanduser()
    if not path.exists():
        raise UserError(f"unknown benchmark '{config.name}': not a built-in stream ({', '.join(STREAMS)}) "
                        "and no such file or folder; give a benchmark YAML or a CoIN/UCIT-layout folder")
    if config.train_size is not None or config.test_size is not None:
        raise UserError("config keys 'benchmark.train_size'/'benchmark.test_size' apply to built-in streams only; "
                        "use benchmark.train_limit/test_limit to cut a public benchmark")
    return _limit(load_benchmark_path(path, images=images, order=config.order), config)
