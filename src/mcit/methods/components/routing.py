"""Several projectors behind one module, and the embeddings that route samples between them.

`RoutedProjector` replaces a model's vision-to-language projector with a list of projectors
(`experts.0`, `experts.1`, ...: the parameter names depend only on the count, so a resumed run that
rebuilds the same count loads the saved weights by name). Its forward receives the image features
of a batch, one row per image in batch order, and sends each row to the projector in `route`
(set per batch by the method), or all of them to `default` when `route` is None (training, and
any pass the method did not route).

`sample_embeddings` gives, per sample of a generation batch, the two parts a route is chosen by:
the L2-normalised frozen image feature at the projector's input (`model.image_features`, zero for a
sample without an image) and the L2-normalised mean input embedding of its prompt text
(`model.instruction_embeddings`). A task's key is the mean of these over its training inputs; a
sample's score for a key is the mean over the parts of the cosine between them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class RoutedProjector(nn.Module):
    """A list of projectors; each image goes to the one its sample is routed to.

    `route` holds one projector index per image. Where a family's projector gets several rows per
    image (crops, sub-images, vision patches: `VisionLanguageModel.projector_rows`), `rows` holds
    each image's count; the rows of consecutive images with the same projector then go through it
    together and the outputs are joined in order, which also suits projectors that merge rows
    (Qwen2-VL's 2×2 patch merger).
    """

    def __init__(self, experts: Sequence[nn.Module], default: int = 0):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        self.default = default
        self.route: list[int] | None = None
        self.rows: list[int] | None = None

    def forward(self, features: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        route = self.route
        if route is None:
            return self.experts[self.default](features, *args, **kwargs)
        if self.rows is not None and any(n != 1 for n in self.rows):
            return self._by_runs(features, route, self.rows, *args, **kwargs)
        if len(route) != features.shape[0]:
            raise RuntimeError(f"the routed projector got {features.shape[0]} images but a route for {len(route)}")
        chosen = sorted(set(route))
        if len(chosen) == 1:
            return self.experts[chosen[0]](features, *args, **kwargs)
        index = torch.tensor(route, device=features.device)
        out = None
        for expert in chosen:
            rows = (index == expert).nonzero().squeeze(1)
            part = self.experts[expert](features.index_select(0, rows), *args, **kwargs)
            if out is None:
                out = part.new_empty((features.shape[0], *part.shape[1:]))
            out.index_copy_(0, rows, part)
        return out

    def _by_runs(self, features: torch.Tensor, route: list[int], rows: list[int], *args, **kwargs) -> torch.Tensor:
        if len(route) != len(rows) or sum(rows) != features.shape[0]:
            raise RuntimeError(f"the routed projector got {features.shape[0]} rows but a route for {len(route)} images "
                               f"of {sum(rows)} rows")
        parts, start, index = [], 0, 0
        while index < len(route):
            end = index
            while end + 1 < len(route) and route[end + 1] == route[index]:
                end += 1
            count = sum(rows[index:end + 1])
            parts.append(self.experts[route[index]](features[start:start + count], *args, **kwargs))
            start, index = start + count, end + 1
        return torch.cat(parts, dim=0)


def image_token_id(model) -> int | None:
    config = model.base.config
    return getattr(config, "image_token_index", getattr(config, "image_token_id", None))


def has_image(model, batch: dict) -> torch.Tensor:
    """[B] bool: which samples of the batch carry an image (their prompt holds image tokens)."""
    token = image_token_id(model)
    if token is None or not any(k.startswith("pixel") for k in batch):
        return torch.zeros(batch["input_ids"].shape[0], dtype=torch.bool, device=batch["input_ids"].device)
    return (batch["input_ids"] == token).any(dim=1)


@torch.no_grad()
def sample_embeddings(model, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """(image part [B, Di] or None when no sample has an image, text part [B, Dt], has_image [B])."""
    text = nn.functional.normalize(model.instruction_embeddings(batch), dim=-1)
    mask = has_image(model, batch)
    image = None
    if bool(mask.any()):
        features = nn.functional.normalize(model.image_features(batch), dim=-1)
        image = features.new_zeros((mask.shape[0], features.shape[1]))
        image[mask] = features
    return image, text, mask


def route_scores(image: torch.Tensor | None, text: torch.Tensor, mask: torch.Tensor,
                 keys: Sequence[dict]) -> torch.Tensor:
    """[B, K] scores: per key, the mean over the parts a sample and the key both have of their cosine."""
    columns = []
    for key in keys:
        score = nn.functional.cosine_similarity(text, key["text"].to(text.device).unsqueeze(0), dim=-1)
        if image is not None and key.get("image") is not None:
            image_score = nn.functional.cosine_similarity(image, key["image"].to(image.device).unsqueeze(0), dim=-1)
            score = torch.where(mask, (score + image_score) / 2, score)
        columns.append(score)
    return torch.stack(columns, dim=1)
