"""EProj, model expansion with one projector per task (He et al., "Continual Instruction Tuning for
Large Multimodal Models", arXiv 2311.16206).

Each task trains its own copy of the vision-to-language projector; the copies of earlier tasks are
frozen. The first task trains the model's own projector; each later one a copy of the previous
task's projector (option `init`, unconfirmed; or of the starting model's). The copies sit behind
one `RoutedProjector` module that replaces the model's projector (`components.routing`).

Routing. At the end of a task its key is computed: the mean, over (up to `key_samples`) training
inputs, of the sample embedding, which has two parts, the L2-normalised frozen image feature at
the projector's input and the L2-normalised mean input embedding of the prompt's text. At
evaluation every sample goes to the projector whose key scores highest, the score being the mean
over the two parts of the cosine between the sample's part and the key's (a sample without an
image is scored on its text). The task being evaluated is never used to route; it only counts the
routing accuracy (the share of a seen task's test samples routed to that task's projector), which
`report()` gives per evaluation row (with several processes, over the main process's share of
the test samples: the loop has no hook after an evaluation to add the shares up).

State: the number of projectors, which task trains which, the keys (two vectors per projector)
and the routing counts; the projector weights themselves are trainable parameters
(`...experts.N...`) and are saved with the model's weights. Memory grows by one projector and one
key per task (`init: initial` also keeps one frozen copy of the starting projector, not saved).

The projector receives the images' features in batch order: one row per image in the LLaVA
family, several (crops, sub-images, vision patches) in others, which the adapter counts per image
(`projector_rows`) so that each image's rows go to its projector. With BLIP-2 and InstructBLIP
the per-task copy is the linear projection after the Q-Former; the Q-Former and query tokens are
shared by all tasks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.routing import RoutedProjector, route_scores, sample_embeddings
from mcit.methods.components.sampling import sample
from mcit.methods.registry import register


@dataclass
class EProjOptions:
    """Options of EProj."""

    init: Literal["previous", "initial"] = option(
        "previous", "what a new task's projector starts as: a copy of the previous task's projector, or of the "
                    "starting model's", unconfirmed=True)
    key_samples: int | None = option(1000, "training records per task whose embeddings make its routing key "
                                           "(null: all of them)", min=1, unconfirmed=True)


@register
class EProj(Method):
    name = "eproj"
    summary = "a new projector per task (older ones frozen); test samples are routed to a projector by key similarity"
    family = "expansion"
    Options = EProjOptions

    def __init__(self, options: Any = None):
        super().__init__(options)
        self.projectors = 0
        self.current = 0
        self.task_projector: dict[str, int] = {}
        self.keys: list[dict[str, Any] | None] = []
        self.routing: dict[str, dict[str, list[int]]] = {}
        self.routed: RoutedProjector | None = None
        self._initial: torch.nn.Module | None = None
        self._trainable = True

    # ---- structure ---------------------------------------------------------------------------

    def setup(self, model, ctx):
        original = model.projector
        self._trainable = any(p.requires_grad for p in original.parameters())
        if self.options.init == "initial":
            self._initial = copy.deepcopy(original).requires_grad_(False)
        self.projectors = max(1, self.projectors)
        experts = [original] + [copy.deepcopy(original) for _ in range(self.projectors - 1)]
        self.routed = RoutedProjector(experts, default=self.current)
        model.set_projector(self.routed)
        self.keys += [None] * (self.projectors - len(self.keys))
        self.keys = [None if k is None else {**k, **_keys_to(k, model.device)} for k in self.keys]
        return model

    def choose_projector(self, model, task, ctx) -> int:
        """The projector `task` trains: the model's own for the first task, a new copy afterwards."""
        if not self.task_projector:
            return 0
        source = self._initial if self._initial is not None else self.routed.experts[self.current]
        self.routed.experts.append(copy.deepcopy(source))
        self.keys.append(None)
        self.projectors += 1
        return self.projectors - 1

    def before_task(self, model, task, ctx):
        self.routed.route = None
        index = self.choose_projector(model, task, ctx)
        self._train_only(index)
        self.current = self.routed.default = index
        self.task_projector[task.name] = index
        return model

    def resume_task(self, model, task, ctx):
        """Mid-task resume: `setup` rebuilt every projector (the task's included) from the state; only
        the task's own projector trains."""
        self.routed.route = None
        self._train_only(self.current)
        return model

    def _train_only(self, index: int) -> None:
        for i, expert in enumerate(self.routed.experts):
            expert.requires_grad_(self._trainable and i == index)

    def after_task(self, model, task, ctx) -> None:
        """Add the task's inputs to the key of the projector it trained."""
        self.routed.route = None
        key = self.keys[self.current] or {"image": None, "images": 0, "text": None, "texts": 0}
        records = sample(task.train, self.options.key_samples, ctx.seed, "eproj-key", task.name)
        for _, batch in ctx.batches(records, ctx.batch_size, kind="generate"):
            image, text, mask = sample_embeddings(model, batch)
            key["text"] = text.sum(0) if key["text"] is None else key["text"] + text.sum(0)
            key["texts"] += text.shape[0]
            if image is not None:
                summed = image[mask].sum(0)
                key["image"] = summed if key["image"] is None else key["image"] + summed
                key["images"] += int(mask.sum())
        self.keys[self.current] = key  # sums: the same direction as the means, and they merge by adding

    # ---- routing -----------------------------------------------------------------------------

    def before_forward(self, batch, ctx):
        self.routed.route = None
        keyed = [i for i, key in enumerate(self.keys) if key is not None]
        if ctx.phase != "eval" or not keyed:
            return batch
        image, text, mask = sample_embeddings(ctx.model, batch)
        scores = route_scores(image, text, mask, [self.keys[i] for i in keyed])
        choice = [keyed[j] for j in scores.argmax(dim=1).tolist()]
        self.routed.route = [c for c, m in zip(choice, mask.tolist()) if m]
        self.routed.rows = ctx.model.projector_rows(batch) if self.routed.route else None
        self._count(ctx, choice)
        return batch

    def _count(self, ctx, choice: list[int]) -> None:
        if ctx.task is None or ctx.task.name not in self.task_projector or ctx.stage_index < 0:
            return
        label = f"after {ctx.tasks[ctx.stage_index].name}"
        owner = self.task_projector[ctx.task.name]
        counts = self.routing.setdefault(label, {}).setdefault(ctx.task.name, [0, 0])
        counts[0] += sum(c == owner for c in choice)
        counts[1] += len(choice)

    def after_eval(self, model, task, ctx) -> None:
        """Each process counted its share of the test records; add the counts up."""
        if ctx.accelerator.num_processes == 1 or ctx.stage_index < 0 or task.name not in self.task_projector:
            return
        label = f"after {ctx.tasks[ctx.stage_index].name}"
        counts = self.routing.setdefault(label, {}).setdefault(task.name, [0, 0])
        total = ctx.accelerator.reduce(torch.tensor(counts, device=ctx.accelerator.device), "sum")
        counts[:] = [int(v) for v in total.tolist()]

    # ---- state and report --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"projectors": self.projectors, "current": self.current, "task_projector": dict(self.task_projector),
                "keys": [None if k is None else dict(k) for k in self.keys],
                "routing": {label: {t: list(c) for t, c in row.items()} for label, row in self.routing.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.projectors = int(state.get("projectors", 0))
        self.current = int(state.get("current", 0))
        self.task_projector = dict(state.get("task_projector", {}))
        self.keys = [None if k is None else dict(k) for k in state.get("keys", [])]
        self.routing = {label: {t: list(c) for t, c in row.items()} for label, row in state.get("routing", {}).items()}

    def report(self) -> dict[str, Any]:
        accuracy = {label: {t: (c[0] / c[1] if c[1] else None) for t, c in row.items()}
                    for label, row in self.routing.items()}
        last = list(accuracy.values())[-1] if accuracy else {}
        values = [v for v in last.values() if v is not None]
        return {"projectors": self.projectors, "task_projector": dict(self.task_projector),
                "routing_accuracy": accuracy,
                "final_routing_accuracy": sum(values) / len(values) if values else None}


def _keys_to(key: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device) for k, v in key.items() if isinstance(v, torch.Tensor)}
