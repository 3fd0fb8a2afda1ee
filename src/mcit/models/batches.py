"""Turning records into model inputs through the model's own processor and chat template.

Training batches: the prompt (chat template with the image marker and the instruction, ending
in the assistant turn's opening) goes through the processor, which expands image tokens and
makes pixel values; the answer's tokens and the end-of-sequence token are appended per sample;
labels are -100 everywhere except on the answer and the end token. Sequences are right-padded
so positions start at 0 as in generation.

Generation batches: only the prompt, left-padded, so new tokens follow every prompt directly.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
from PIL import Image

from mcit.core.errors import UserError
from mcit.data.check import MAX_IMAGE_PIXELS
from mcit.data.schema import Record

IGNORE_INDEX = -100
#: Keys holding one value per token; they are cut and padded together with input_ids.
PER_TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


def load_image(record: Record) -> Image.Image | None:
    """The record's image as RGB (greyscale and RGBA files are converted), or None.

    Images above `MAX_IMAGE_PIXELS` are refused from their header, before any pixel is decoded
    (the loaders check that images exist, not their contents; `mcit data check` checks both).
    """
    if record.image is None:
        return None
    where = f"record {record.source or record.id}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below applies instead
            with Image.open(record.image) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise UserError(f"{record.image}: the image of {where} has {width}x{height} pixels, above the "
                                    f"{MAX_IMAGE_PIXELS // 1_000_000}-megapixel limit; downscale it")
                return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{record.image}: cannot read the image of {where} ({exc}); "
                        "run `mcit data check` on the benchmark") from None


def prompt_text(processor, record: Record, template: str | None = None) -> str:
    """The chat-formatted prompt of a record, ending where the answer starts.

    The processor's own chat template is used; `template` (the family's format) only when the
    processor has none.
    """
    content = ([{"type": "image"}] if record.image is not None else []) + [{"type": "text", "text": record.instruction}]
    messages = [{"role": "user", "content": content}]
    extra = {}
    if template is not None and not getattr(processor, "chat_template", None):
        extra["chat_template"] = template
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **extra)


def _processor_inputs(processor, records: Sequence[Record], padding_side: str,
                      template: str | None = None, nested: bool = False) -> dict[str, torch.Tensor]:
    texts = [prompt_text(processor, r, template) for r in records]
    loaded = [load_image(r) for r in records]
    images = [img for img in loaded if img is not None]
    if nested and images:  # one list of images per sample (SmolVLM's processor wants them so)
        images = [[img] if img is not None else [] for img in loaded]
    kwargs = {"text": texts, "return_tensors": "pt", "padding": True}
    if images:
        kwargs["images"] = images
    processor.tokenizer.padding_side = padding_side
    inputs = dict(processor(**kwargs))
    inputs.pop("labels", None)  # PaliGemma's processor adds labels of its own; mcit makes them below
    return inputs


def generation_batch(processor, records: Sequence[Record], template: str | None = None,
                     nested: bool = False) -> dict[str, torch.Tensor]:
    """Left-padded prompts with pixel values, ready for `generate` (`template`: see `prompt_text`;
    `nested`: images go to the processor as one list per sample)."""
    return _processor_inputs(processor, records, padding_side="left", template=template, nested=nested)


def training_batch(processor, records: Sequence[Record], max_length: int | None = None,
                   template: str | None = None, nested: bool = False) -> dict[str, torch.Tensor]:
    """Prompts plus answers with labels on the answer tokens only, right-padded (`template`,
    `nested`: see `generation_batch`)."""
    tokenizer = processor.tokenizer
    inputs = _processor_inputs(processor, records, padding_side="right", template=template, nested=nested)
    token_keys = [k for k in PER_TOKEN_KEYS if k in inputs]
    mask = inputs["attention_mask"].bool()
    rows: list[dict[str, torch.Tensor]] = []
    for i, record in enumerate(records):
        answer = tokenizer(record.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        answer = torch.tensor(answer, dtype=torch.long)
        row = {}
        for key in token_keys:
            prompt_part = inputs[key][i][mask[i]]
            fill = answer if key == "input_ids" else torch.full_like(answer, 1 if key != "mm_token_type_ids" else 0)
            row[key] = torch.cat([prompt_part, fill.to(prompt_part.dtype)])
        row["labels"] = torch.cat([torch.full((int(mask[i].sum()),), IGNORE_INDEX), answer])
        if max_length is not None and row["input_ids"].numel() > max_length:
            # Only the answer is cut: cutting the prompt could split the image tokens from their features.
            keep = max(max_length, int(mask[i].sum()) + 1)
            row = {k: v[:keep] for k, v in row.items()}
        rows.append(row)
    length = max(r["input_ids"].numel() for r in rows)
    pads = {"input_ids": tokenizer.pad_token_id, "labels": IGNORE_INDEX}
    batch = {key: torch.stack([torch.nn.functional.pad(r[key], (0, length - r[key].numel()), value=pads.get(key, 0))
                               for r in rows])
             for key in rows[0]}
    for key, value in inputs.items():
        if key not in PER_TOKEN_KEYS:
            batch[key] = value
    return batch


#: Value a new slot takes in each per-token key (input_ids take the caller's token id).
_SLOT_FILL = {"attention_mask": 1, "labels": IGNORE_INDEX, "token_type_ids": 0, "mm_token_type_ids": 0}


def insert_slots(batch: dict[str, torch.Tensor], count: int, token_id: int, mask_key: str) -> dict[str, torch.Tensor]:
    """A copy of `batch` with `count` new positions right before each sequence's first real token.

    Works on right-padded (training) and left-padded (generation) batches alike: the slots go in
    front of the real tokens, after any left padding, so padding stays contiguous and positions
    derived from the attention mask (generation) or counted from 0 (right-padded training) place
    the slots at 0..count-1 and the real tokens after them, whatever the padding. A slot holds
    `token_id` in input_ids, 1 in the attention mask, -100 in labels and 0 in (mm_)token_type_ids;
    `batch[mask_key]` (a key starting with `mcit_`, which the adapter drops before the model sees
    the batch) is a [B, S + count] bool mask of the slots. Other keys (pixel values) are unchanged.
    """
    if not mask_key.startswith("mcit_"):
        raise ValueError(f"the slot mask key must start with 'mcit_', got {mask_key!r}")
    ids = batch["input_ids"]
    rows, length = ids.shape
    attended = batch["attention_mask"].bool()
    first = attended.int().argmax(dim=1)  # the first real token (argmax returns the first maximum)
    column = torch.arange(length + count, device=ids.device).unsqueeze(0).expand(rows, -1)
    start = first.unsqueeze(1)
    slots = (column >= start) & (column < start + count)
    source = torch.where(column < start, column, column - count).clamp(0, max(length - 1, 0))
    out = dict(batch)
    for key in (*PER_TOKEN_KEYS, "labels"):
        if key not in batch:
            continue
        value = batch[key]
        fill = token_id if key == "input_ids" else _SLOT_FILL.get(key, 0)
        moved = value.gather(1, source)
        out[key] = torch.where(slots, torch.full_like(moved, fill), moved)
    out[mask_key] = slots
    return out
