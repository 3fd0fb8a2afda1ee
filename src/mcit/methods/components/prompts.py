"""A pool of soft prompts with multimodal keys: selection by query-key matching, and injection.

`PromptPool` holds groups of prompts (one group per task): each prompt is L vectors in the language
model's input-embedding space, with an image key (in the space of the frozen image features) and a
text key (in the input-embedding space). Parameter names depend only on the number of groups
(`prompts.0`, `image_keys.0`, `text_keys.0`, `prompts.1`, ...), so a pool rebuilt with the same
group sizes loads saved weights by name.

Selection (`match_scores`, `select_top`): a sample's query is its image feature and the mean of its
instruction's token embeddings; its score for prompt j is cos(image query, image key j) +
cos(text query, text key j), the image term only for samples that have an image. The top-N prompts
are taken in descending score, ties going to the lower index, so selection is deterministic.
`key_matching_loss` (1 − cos between chosen keys and their queries) pulls the chosen keys toward
the queries that chose them.

Injection (`PromptInjector`), for any model whose language side embeds `input_ids` through its
input-embedding module: the batch gets placeholder positions (`mcit.models.batches.insert_slots`),
and a forward hook on the embedding module replaces the embeddings at those positions with the
selected prompt vectors. The hook acts only on a call whose `input_ids` equal the armed batch's
(the forward pass, or the prefill of generation); the one-token decoding steps of generation and
any other embedding call pass through untouched. The prompt vectors are gathered inside the hooked
call, so the gradient reaches the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F


class PromptPool(nn.Module):
    """Groups of prompts [P, L, d] with image keys [P, Di] and text keys [P, Dt]."""

    def __init__(self, length: int, dim: int, image_dim: int, text_dim: int):
        super().__init__()
        self.length, self.dim, self.image_dim, self.text_dim = length, dim, image_dim, text_dim
        self.prompts = nn.ParameterList()
        self.image_keys = nn.ParameterList()
        self.text_keys = nn.ParameterList()

    @property
    def groups(self) -> int:
        return len(self.prompts)

    @property
    def size(self) -> int:
        """The number of prompts over all groups."""
        return sum(p.shape[0] for p in self.prompts)

    def add_group(self, prompts: torch.Tensor, image_keys: torch.Tensor, text_keys: torch.Tensor) -> int:
        """Append a group (its tensors are copied into new parameters); returns its index."""
        count = prompts.shape[0]
        expected = [(count, self.length, self.dim), (count, self.image_dim), (count, self.text_dim)]
        for tensor, shape in zip((prompts, image_keys, text_keys), expected):
            if tuple(tensor.shape) != shape:
                raise ValueError(f"prompt group tensor of shape {tuple(tensor.shape)}, expected {shape}")
        self.prompts.append(nn.Parameter(prompts.detach().clone().float()))
        self.image_keys.append(nn.Parameter(image_keys.detach().clone().float()))
        self.text_keys.append(nn.Parameter(text_keys.detach().clone().float()))
        return self.groups - 1

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        return [self.prompts[group], self.image_keys[group], self.text_keys[group]]

    def train_only(self, group: int | None) -> None:
        """Let only `group` (None: no group) require gradients."""
        for index in range(self.groups):
            for parameter in self.group_parameters(index):
                parameter.requires_grad_(index == group)

    def group_range(self, group: int) -> range:
        """The pool indices of a group's prompts."""
        start = sum(p.shape[0] for p in self.prompts[:group])
        return range(start, start + self.prompts[group].shape[0])

    def group_of(self) -> torch.Tensor:
        """[M] long: the group of each pool index."""
        return torch.cat([torch.full((p.shape[0],), g, dtype=torch.long, device=p.device)
                          for g, p in enumerate(self.prompts)])

    def keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(image keys [M, Di], text keys [M, Dt]) over the whole pool."""
        return torch.cat(list(self.image_keys)), torch.cat(list(self.text_keys))

    def prompt_values(self, chosen: torch.Tensor) -> torch.Tensor:
        """[B, N·L, d]: the vectors of the chosen prompts ([B, N] pool indices), in order."""
        values = torch.cat(list(self.prompts))[chosen]
        return values.reshape(chosen.shape[0], -1, self.dim)


def _normalized_keys(keys: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.normalize(keys.to(like.device, like.dtype), dim=-1)


def match_scores(image: torch.Tensor | None, text: torch.Tensor, has_image: torch.Tensor,
                 image_keys: torch.Tensor, text_keys: torch.Tensor) -> torch.Tensor:
    """[B, M]: cos(text query, text key) + cos(image query, image key) where the sample has an image."""
    scores = F.normalize(text, dim=-1) @ _normalized_keys(text_keys, text).T
    if image is not None:
        image_scores = F.normalize(image, dim=-1) @ _normalized_keys(image_keys, image).T
        scores = scores + torch.where(has_image.unsqueeze(1), image_scores, torch.zeros_like(image_scores))
    return scores


def select_top(scores: torch.Tensor, count: int, candidates: range | None = None) -> torch.Tensor:
    """[B, count] pool indices of the highest scores, best first, ties to the lower index;
    `candidates` restricts the choice to a range of pool indices."""
    if candidates is not None:
        allowed = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
        allowed[candidates.start:candidates.stop] = True
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.sort(dim=1, descending=True, stable=True).indices[:, :count]


def key_matching_loss(image: torch.Tensor | None, text: torch.Tensor, has_image: torch.Tensor,
                      image_keys: torch.Tensor, text_keys: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mean over chosen (sample, prompt) pairs of 1 − cos(text query, text key), plus the same mean
    of 1 − cos(image query, image key) over the samples with an image."""
    text_cos = F.cosine_similarity(text.unsqueeze(1), text_keys[chosen].to(text.dtype), dim=-1)
    loss = (1 - text_cos).mean()
    if image is not None and bool(has_image.any()):
        image_cos = F.cosine_similarity(image.unsqueeze(1), image_keys[chosen].to(image.dtype), dim=-1)
        loss = loss + (1 - image_cos[has_image]).mean()
    else:
        # keeps the image keys in the graph (a zero gradient), as data-parallel training expects
        loss = loss + 0.0 * image_keys[chosen].sum()
    return loss


@dataclass
class _Armed:
    input_ids: torch.Tensor
    rows: torch.Tensor
    columns: torch.Tensor
    values: Callable[[], torch.Tensor]


class PromptInjector:
    """A forward hook on an input-embedding module that writes prompt vectors into slot positions."""

    def __init__(self) -> None:
        self._handle = None
        self._armed: _Armed | None = None
        self.injected = 0

    def attach(self, module: nn.Module) -> None:
        self.detach()
        self._handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._armed = None

    def arm(self, input_ids: torch.Tensor, slots: torch.Tensor, values: Callable[[], torch.Tensor]) -> None:
        """Inject into the next embedding calls of exactly these `input_ids`: at `slots` ([B, S]
        bool), row by row in column order, the vectors `values()` returns ([B, slots per row, d])."""
        rows, columns = slots.nonzero(as_tuple=True)
        self._armed = _Armed(input_ids, rows, columns, values)

    def disarm(self) -> None:
        self._armed = None

    def _hook(self, module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor):
        armed = self._armed
        ids = args[0] if args else kwargs.get("input", kwargs.get("input_ids"))
        if armed is None or not isinstance(ids, torch.Tensor) or ids.shape != armed.input_ids.shape:
            return None
        if not torch.equal(ids, armed.input_ids.to(ids.device)):
            return None
        values = armed.values()
        self.injected += 1
        flat = values.reshape(-1, output.shape[-1]).to(output.device, output.dtype)
        return output.index_put((armed.rows.to(output.device), armed.columns.to(output.device)), flat)


def vocabulary_prompts(table: torch.Tensor, count: int, length: int, draw: torch.Generator,
                       excluded: Sequence[int | None] = ()) -> torch.Tensor:
    """[count, length, d] float32: copies of vocabulary embeddings drawn with `draw` (the ids in
    `excluded`, e.g. the image and pad tokens, never), so new prompts start at the scale and in the
    space of real token embeddings."""
    skip = {i for i in excluded if i is not None}
    allowed = torch.tensor([i for i in range(table.shape[0]) if i not in skip])
    tokens = allowed[torch.randint(len(allowed), (count * length,), generator=draw)]
    return table.detach()[tokens.to(table.device)].float().reshape(count, length, table.shape[1]).cpu()


def perturbed_keys(mean: torch.Tensor | None, noise: torch.Tensor, scale: float = 0.1) -> torch.Tensor:
    """[P, D] keys: the unit vector along `mean` plus each row of `noise` rescaled to a norm of
    about `scale` (the rows differ, so selection among them is not a tie); `noise` itself when
    there is no mean (no sample had that part)."""
    if mean is None:
        return noise
    return F.normalize(mean, dim=0).unsqueeze(0) + scale * noise / noise.shape[1] ** 0.5


def image_feature_dim(model) -> int:
    """The width of the model's frozen image features (`model.image_features`), read from one blank
    image through the model's own image processor."""
    from PIL import Image

    processor = getattr(model.processor, "image_processor", None)
    if processor is None:
        raise ValueError("the model's processor has no image processor; prompt keys need image features")
    pixels = dict(processor(images=[Image.new("RGB", (64, 64))], return_tensors="pt"))
    return int(model.image_features(model.to_device(pixels)).shape[-1])
