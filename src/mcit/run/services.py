"""Services the loop offers methods through the context: extra gradients and batches over records.

`gradient_of` is how a method gets a gradient other than the optimiser's (A-GEM's reference
gradient, Fisher or MAS importance) without ever calling backward itself: the loop saves the
gradients being accumulated, runs forward and backward on the given records, reads the new
gradients and puts the accumulated ones back.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch

from mcit.data.schema import Record
from mcit.methods.context import Objective
from mcit.models.adapter import VisionLanguageModel
from mcit.run.token_share import token_share


def make_gradient_of(model: VisionLanguageModel, accelerator):
    """A `gradient_of(records, objective=None, synchronize=True)` bound to this run's model.

    Returns {parameter name: gradient} for the parameters that currently require gradients,
    unscaled when fp16 loss scaling is on.
    With `synchronize`, the gradient is averaged over processes like the training gradient
    (A-GEM's reference): the records given to all processes together make one batch, and the
    language-model loss is weighted by each process's share of its answer tokens
    (`mcit.run.token_share`), so the result is the gradient one process would compute on all of
    them. Without it each process keeps its own (per-sample importance, which is squared before
    it is averaged).
    """

    def gradient_of(records: Sequence[Record], objective: Objective | None = None,
                    synchronize: bool = True) -> dict[str, torch.Tensor]:
        named = model.trainable_named_parameters()
        saved = [p.grad for _, p in named]
        for _, p in named:
            p.grad = None
        was_training = model.network.training
        try:
            batch = model.to_device(model.training_batch(records))
            sync = contextlib.nullcontext() if synchronize else accelerator.no_sync(model.module)
            with sync:
                with accelerator.autocast():
                    outputs = model.forward(batch)
                    loss = objective(outputs, batch) if objective is not None else outputs.loss
                    del outputs  # backward does not need the logits: do not hold them through it
                share = token_share(batch, accelerator) if synchronize and objective is None else None
                if share is not None:  # the token mean over every process's records, as in training
                    loss = loss * share
                accelerator.backward(loss)
            scaler = getattr(accelerator, "scaler", None)
            scale = 1.0 / scaler.get_scale() if scaler is not None and accelerator.mixed_precision == "fp16" else 1.0
            grads = {n: (torch.zeros_like(p) if p.grad is None else p.grad.detach() if scale == 1.0
                         else p.grad.detach() * scale) for n, p in named}
        finally:
            for (_, p), g in zip(named, saved):
                p.grad = g
            model.network.train(was_training)
        return grads

    return gradient_of


def make_batches(model: VisionLanguageModel):
    """A `batches(records, batch_size, kind="train"|"generate")` yielding model-ready batches."""

    def batches(records: Sequence[Record], batch_size: int, kind: str = "train") -> Iterator[tuple[list[Record], dict]]:
        build = model.training_batch if kind == "train" else model.generation_batch
        for start in range(0, len(records), batch_size):
            chunk = list(records[start:start + batch_size])
            yield chunk, model.to_device(build(chunk))

    return batches
