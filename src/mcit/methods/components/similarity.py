"""Task similarity from the three parts of every sample: image, instruction and output.

For each task, μ^m is the mean embedding of part m ∈ {image, instruction, output} over a seeded
sample of the task's training records (default 64), each record's embedding L2-normalised first
so that no record weighs more than another. The similarity of tasks t and i is

    s(t, i) = mean over m of cos(μ_t^m, μ_i^m),

over the parts both tasks have (a task without images is compared on its texts only). So a task's
similarity with itself is 1 and the matrix is symmetric. Texts are embedded by a text encoder
("minilm" by default), images by an image encoder ("vision-tower": the model's own frozen vision
features); see `mcit.methods.components.encoders`.

The state is one mean vector per part per seen task (O(T·D), a few kilobytes per task) plus the
task order; the matrix itself is recomputed from them and reported as
`{"tasks": [...], "matrix": [[...]]}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from mcit.core.configs import ConfigError, option
from mcit.data.schema import Task
from mcit.methods.components import encoders
from mcit.methods.components.sampling import sample

PARTS = ("image", "instruction", "output")


@dataclass
class SimilarityOptions:
    """Options of task similarity (shared by the methods that use it)."""

    text_encoder: str = option("minilm", "text encoder for instructions and outputs: minilm "
                               "(all-MiniLM-L6-v2, shipped offline) or model-embeddings (the model's own input embeddings)")
    image_encoder: str = option("vision-tower", "image encoder: vision-tower (the model's frozen vision features)")
    similarity_samples: int = option(64, "training records per task whose embeddings are averaged", min=1,
                                     unconfirmed=True)

    def validate(self) -> None:
        if self.text_encoder not in encoders.TEXT_ENCODERS:
            raise ConfigError(f"config key 'method.text_encoder': unknown encoder {self.text_encoder!r}; "
                              f"choose one of {', '.join(sorted(encoders.TEXT_ENCODERS))}")
        if self.image_encoder not in encoders.IMAGE_ENCODERS:
            raise ConfigError(f"config key 'method.image_encoder': unknown encoder {self.image_encoder!r}; "
                              f"choose one of {', '.join(sorted(encoders.IMAGE_ENCODERS))}")


def _mean_direction(embeddings: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(embeddings.float(), dim=-1).mean(dim=0).cpu()


class TaskSimilarity:
    """Mean part embeddings of the tasks seen so far, and the similarities between them."""

    def __init__(self, text_encoder: str = "minilm", image_encoder: str = "vision-tower", samples: int = 64):
        self.text_encoder, self.image_encoder, self.samples = text_encoder, image_encoder, samples
        self.means: dict[str, dict[str, torch.Tensor | None]] = {}

    @classmethod
    def from_options(cls, options: SimilarityOptions) -> TaskSimilarity:
        return cls(options.text_encoder, options.image_encoder, options.similarity_samples)

    @property
    def tasks(self) -> list[str]:
        return list(self.means)

    def observe(self, task: Task, model, ctx) -> None:
        """Embed a sample of the task's training records (once per task)."""
        if task.name in self.means:
            return
        records = sample(task.train, self.samples, ctx.seed, "similarity", task.name)
        encode_text = encoders.TEXT_ENCODERS[self.text_encoder]
        means: dict[str, torch.Tensor | None] = {
            "instruction": _mean_direction(encode_text([r.instruction for r in records], model, ctx)),
            "output": _mean_direction(encode_text([r.target for r in records], model, ctx)),
            "image": None,
        }
        with_images = [r for r in records if r.image is not None]
        if with_images:
            means["image"] = _mean_direction(encoders.IMAGE_ENCODERS[self.image_encoder](with_images, model, ctx))
        self.means[task.name] = means

    def similarity(self, a: str, b: str) -> float:
        """s(a, b): the mean over shared parts of the cosine of the two tasks' mean embeddings."""
        values = []
        for part in PARTS:
            x, y = self.means[a].get(part), self.means[b].get(part)
            if x is not None and y is not None:
                values.append(torch.nn.functional.cosine_similarity(x, y, dim=0).item())
        if a == b and values:
            return 1.0
        return sum(values) / len(values) if values else 0.0

    def matrix(self, names: Sequence[str] | None = None) -> list[list[float]]:
        names = list(names) if names is not None else self.tasks
        return [[self.similarity(a, b) for b in names] for a in names]

    def report(self) -> dict[str, Any]:
        """`{"tasks": [...], "matrix": [[...]]}` over the tasks seen so far, for results.json."""
        return {"tasks": self.tasks, "matrix": [[round(v, 6) for v in row] for row in self.matrix()]}

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.tasks, "means": {name: dict(parts) for name, parts in self.means.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        means = state.get("means", {})
        self.means = {name: dict(means[name]) for name in state.get("order", [])}
