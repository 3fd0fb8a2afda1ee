"""The synthetic stream `mcit bench` trains on: any number of tasks built from the built-in ones.

Task j is built-in task type j mod 8 (in the built-in stream's order) drawn with data seed j div 8,
so a stream of 17 tasks has 17 different record sets, and names stay unique (`choice`, ..., `caption`,
`choice-2`, ...). Each task has `records` training records (generated once into the data cache)
and one test record (nothing is evaluated).

Every record is then lengthened with a filler word so that instruction and answer have the same
number of tokens in all records: the longest record's count, or `text_tokens` if that is more.
Every batch of every subject then has the same shape whichever records it draws (replay buffers
and reference batches included), so differences in time and memory are the methods' and not the
data's.
"""

from __future__ import annotations

import dataclasses
import math

from mcit.data.schema import Record, Task

#: The word appended to lengthen instructions (any word works; it only adds tokens).
FILLER = "the"


def synthetic_stream(count: int, records: int, tokenizer, text_tokens: int | None = None) -> list[Task]:
    """`count` tasks of `records` training records each, all of one text length (see the module docstring)."""
    from mcit.data.benchmarks import load_benchmark
    from mcit.data.builtin.streams import STREAMS
    from mcit.data.config import BenchmarkConfig

    order = STREAMS["builtin"].order
    cycles = math.ceil(count / len(order))
    tasks: list[Task] = []
    for cycle in range(cycles):
        names = order[: min(len(order), count - cycle * len(order))]
        loaded = load_benchmark(BenchmarkConfig(order=list(names), data_seed=cycle, train_size=records, test_size=1))
        for task in loaded.tasks:
            name = task.name if cycle == 0 else f"{task.name}-{cycle + 1}"
            tasks.append(dataclasses.replace(task, name=name))
    lengths = {id(r): text_length(r, tokenizer) for task in tasks for r in task.train}
    target = max([text_tokens or 0, *lengths.values()])
    for task in tasks:
        task.train = [lengthen(r, lengths[id(r)], target, tokenizer) for r in task.train]
    return tasks


def _count(text: str, tokenizer) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def text_length(record: Record, tokenizer) -> int:
    """Tokens of the record's instruction and training answer."""
    return _count(record.instruction, tokenizer) + _count(record.target, tokenizer)


def lengthen(record: Record, length: int, tokens: int, tokenizer) -> Record:
    """`record` (of `length` text tokens) with `FILLER` appended to its instruction until it has
    `tokens` (or just over, for a filler of several tokens)."""
    if length >= tokens:
        return record
    words = math.ceil((tokens - length) / max(1, _count(" " + FILLER, tokenizer)))
    return dataclasses.replace(record, instruction=record.instruction + (" " + FILLER) * words)
