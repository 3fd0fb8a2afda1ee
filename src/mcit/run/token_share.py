"""Weighting each process's language-model loss so that data parallelism averages over tokens.

A language model's loss is the mean over the answer tokens of its batch. With N processes each
one computes that mean over its own share of the global batch, and data parallelism (DDP, FSDP)
averages the processes' gradients, which weighs every process equally however many answer
tokens it had: unless all shares hold the same number of tokens, this is not the gradient of the
token mean over the global batch that one process with the whole batch would compute, and
answers of uneven length make the two runs drift apart.

`token_share` returns the factor N · n_local / n_global for this process's loss (n counts the
positions whose label is an answer token, the positions the loss averages over): the averaged
gradient of the scaled losses is exactly the gradient of the global token mean. One all-reduce of
a single number per batch; the result stays on the device (no host synchronisation).
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def answer_tokens(batch: dict) -> torch.Tensor:
    """The number of positions a causal language-model loss averages over: labels after the first
    position that are not ignored (the label at position i+1 is predicted at position i)."""
    return (batch["labels"][:, 1:] != IGNORE_INDEX).sum()


def token_share(batch: dict, accelerator) -> torch.Tensor | None:
    """N · n_local / n_global for `batch` on this process, or None with one process (no scaling)."""
    world = getattr(accelerator, "num_processes", 1)
    if world <= 1 or "labels" not in batch:
        return None
    local = answer_tokens(batch).to(accelerator.device, torch.float32)
    total = accelerator.reduce(local.clone(), reduction="sum")
    return local * world / total.clamp(min=1.0)
