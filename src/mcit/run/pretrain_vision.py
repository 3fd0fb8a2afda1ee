"""The first stage of the tiny models' recipe: train the vision encoder with dense targets.

Linear heads read the encoder's patch features pooled over each grid cell (shape and colour),
each word column (letter), the whole image (digit) and the patch's own place (cell);
cross-entropy on all of them trains the encoder, and the heads are thrown away afterwards. This
plays the part CLIP pre-training plays for real LLaVA models: the language side later learns to
read features that already separate what the tasks ask about.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import torch
from torch import nn

from mcit.data.builtin.glyphs import WORD_LENGTH
from mcit.data.builtin.scene import GRID
from mcit.data.builtin.vision_targets import (COLOR_CLASSES, DIGIT_CLASSES, IGNORE, LETTER_CLASSES, SHAPE_CLASSES,
                                              VisionExample, vision_example)
from mcit.models.adapter import VisionLanguageModel


class DenseHeads(nn.Module):
    """Linear read-outs of the encoder's patch features.

    Every patch token predicts the shape and colour of the grid cell it lies in and the letter of
    the word column it lies in, so each token, not only an average over a cell, carries what is at
    its place. That is what lets the language model find an object by what it is ("the
    triangle") and not only by where it is. The digit is read from the mean over all patches.

    Every patch token also predicts which grid cell it lies in. Without that target the features
    hold a patch's place only in part (a linear probe reads its grid row 0.41 and its column 0.82
    of the time), the language model takes the rest from the order of the image tokens, and the
    boxes `ground` asks for often land in the wrong column; see "Where the box goes wrong" in
    docs/benchmark.md.
    """

    def __init__(self, width: int):
        super().__init__()
        self.shape = nn.Linear(width, len(SHAPE_CLASSES))
        self.color = nn.Linear(width, len(COLOR_CLASSES))
        self.letter = nn.Linear(width, len(LETTER_CLASSES))
        self.digit = nn.Linear(width, len(DIGIT_CLASSES))
        self.cell = nn.Linear(width, GRID * GRID)

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """`patches` [B, side, side, D] -> logits: per patch for shape, colour, letter and cell; per image
        for digit."""
        return {"shape": self.shape(patches), "color": self.color(patches), "letter": self.letter(patches),
                "digit": self.digit(patches.mean(dim=(1, 2))), "cell": self.cell(patches)}


def _spread(targets: torch.Tensor, side: int, rows: int, columns: int) -> torch.Tensor:
    """Targets of a rows × columns grid [B, rows*columns] -> the same target on each patch [B, side, side]."""
    grid = targets.reshape(-1, rows, columns)
    return grid.repeat_interleave(side // rows, dim=1).repeat_interleave(side // columns, dim=2)


def _targets(examples: list[VisionExample], side: int) -> dict[str, torch.Tensor]:
    return {"shape": _spread(torch.tensor([e.cell_shapes for e in examples]), side, GRID, GRID),
            "color": _spread(torch.tensor([e.cell_colors for e in examples]), side, GRID, GRID),
            "letter": _spread(torch.tensor([e.letters for e in examples]), side, 1, WORD_LENGTH),
            "digit": torch.tensor([e.digit for e in examples]),
            "cell": _spread(torch.arange(GRID * GRID).repeat(len(examples), 1), side, GRID, GRID)}


def _patch_grid(model: VisionLanguageModel, pixel_values: torch.Tensor) -> torch.Tensor:
    hidden = model.vision_encoder(pixel_values=pixel_values).last_hidden_state[:, 1:, :]  # drop the class token
    side = int(math.isqrt(hidden.shape[1]))
    return hidden.reshape(hidden.shape[0], side, side, hidden.shape[-1])


def _pixels(model: VisionLanguageModel, examples: list[VisionExample]) -> torch.Tensor:
    processed = model.processor.image_processor([e.image for e in examples], return_tensors="pt")
    return processed["pixel_values"].to(model.device)


def _accuracies(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, float]:
    out = {}
    for key, value in logits.items():
        target = targets[key].to(value.device)
        mask = target != IGNORE
        out[key] = float((value.argmax(-1)[mask] == target[mask]).float().mean()) if mask.any() else float("nan")
    return out


def pretrain_vision(model: VisionLanguageModel, steps: int, lr: float, batch_size: int, seed: int = 0,
                    on_step: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """Train `model`'s vision encoder in place; returns held-out accuracy per target kind."""
    encoder = model.vision_encoder
    heads = DenseHeads(encoder.config.hidden_size).to(model.device)
    parameters = list(encoder.parameters()) + list(heads.parameters())
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    rng = random.Random(f"mcit-vision-pretraining/{seed}/train")
    held_out_rng = random.Random(f"mcit-vision-pretraining/{seed}/test")
    held_out = [vision_example(held_out_rng) for _ in range(300)]
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    encoder.train()
    for step in range(steps):
        examples = [vision_example(rng) for _ in range(batch_size)]
        patches = _patch_grid(model, _pixels(model, examples))
        targets = _targets(examples, patches.shape[1])
        logits = heads(patches)
        loss = sum(loss_fn(logits[k].reshape(-1, logits[k].shape[-1]), targets[k].reshape(-1).to(model.device))
                   for k in logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if on_step:
            on_step(step + 1, float(loss.detach()))
    encoder.eval()
    with torch.no_grad():
        patches = _patch_grid(model, _pixels(model, held_out))
        accuracy = _accuracies(heads(patches), _targets(held_out, patches.shape[1]))
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return accuracy
