"""The plain loop `mcit bench` compares SeqFT with: the training loop users write today with
transformers and peft.

It is written the way a LLaVA LoRA fine-tuning script is: the model with nothing trainable, peft
LoRA on every linear layer of the language model (the layers mcit adapts, with the same rank,
alpha and dropout), the projector trained in full, AdamW, a cosine schedule with warm-up and
gradient clipping (the settings mcit's SeqFT uses), and on a GPU bf16 autocast and gradient
checkpointing. Batches are collated by the same function mcit uses (the processor plus answer
labels), so the two differ only in the training step: no accelerate, no hooks, no loss
bookkeeping, nothing else.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterable, Iterator

import torch

from mcit.data.schema import Record, Task
from mcit.run.bench_session import BenchSetup, Subject, load_bench_model


def record_batches(records: list[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive batches of `size` records, round and round the list."""
    cycle = itertools.cycle(records)
    while True:
        yield [next(cycle) for _ in range(size)]


class PlainLoop(Subject):
    """The plain transformers + peft training step on the benchmark's model (see the module docstring)."""

    name = "plain loop"

    def __init__(self, setup: BenchSetup, task: Task):
        from peft import LoraConfig, get_peft_model
        from transformers import get_cosine_schedule_with_warmup

        from mcit.models.trainable import lora_target_pattern

        self.setup, self.device = setup, setup.device
        model_config = setup.model
        loaded = load_bench_model(dataclasses.replace(model_config, tune="none", gradient_checkpointing=False),
                                  self.device, setup.seed)
        self.processor = loaded.processor
        targets = lora_target_pattern(loaded.network, loaded.language_model_path, ["all-linear"])
        lora = LoraConfig(r=model_config.lora.rank, lora_alpha=model_config.lora.alpha,
                          lora_dropout=model_config.lora.dropout, target_modules=targets, bias="none")
        network = get_peft_model(loaded.network, lora)
        network.get_base_model().get_submodule(loaded.projector_path).requires_grad_(True)
        if model_config.gradient_checkpointing:
            network.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            network.enable_input_require_grads()
        network.train()
        self.network = network
        self.parameters = [p for p in network.parameters() if p.requires_grad]
        train = setup.train
        self.optimizer = torch.optim.AdamW(self.parameters, lr=train.lr, weight_decay=train.weight_decay)
        self.scheduler = get_cosine_schedule_with_warmup(self.optimizer, int(round(train.warmup_ratio * train.max_steps)),
                                                         train.max_steps)
        self.bf16 = train.mixed_precision == "bf16"
        self.max_grad_norm = train.max_grad_norm
        self.records = record_batches(task.train, train.batch_size)

    def step(self) -> None:
        from mcit.models.batches import training_batch

        batch = {k: v.to(self.device) for k, v in training_batch(self.processor, next(self.records)).items()}
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.network(**batch).loss
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def resident(self) -> Iterable[torch.Tensor]:
        yield from self.network.parameters()
        yield from self.network.buffers()
        for state in self.optimizer.state.values():
            yield from (v for v in state.values() if isinstance(v, torch.Tensor))
