"""Fwd-Prompt, prompt-based continual instruction tuning with gradient projection (Zheng et al.,
"Beyond Anti-Forgetting: Multimodal Continual Instruction Tuning with Positive Forward Transfer",
arXiv 2401.09181).

Prompt pool. Each task adds `prompts_per_task` soft prompts (P, default 10), each `prompt_length`
vectors (L, default 5) in the language model's input-embedding space, with an image key and a text
key; the task trains only its own prompts and keys, earlier groups stay frozen, and `setup` freezes
every weight of the model (LoRA adapters and projector included). A sample's query is its frozen
image feature (mean-pooled, at the projector's input) and the mean input embedding of its
instruction's tokens (in training batches the answer tokens are left out, so a sample has the same
query in training and evaluation); its score for a prompt is cos(image query, image key) +
cos(text query, text key). The `top_n` best prompts (N, default 5) of the whole pool, best first,
ties to the lower index, are prepended to the sample's tokens: N·L placeholder positions go in
front of its real tokens and a hook on the input-embedding module writes the prompt vectors there
(`components.prompts`), so injection works for any model the adapter loads. Selection never uses
the task's identity at evaluation; in training it is over the whole pool too
(`train_selection: pool`) or over the current task's prompts only (`task`). The key-matching loss
`key_loss_weight` · (1 − cos) between chosen keys and their queries is returned as `key`.
A new group starts with prompts copied from random vocabulary embeddings and keys at the mean
query of (`key_init_samples`, default 64) records of its task, plus a small seeded perturbation
(`key_init: queries`; `random` draws them), so that pool selection picks the new prompts at all.

Gradient projection. At each task end the Gram matrix of X_t, the language model's input
embeddings (token embeddings and projected image features) over the non-padding positions of
(`basis_samples`, default 64) of the task's training records, is collected, and its unspanned
directions join the old tasks' basis U_old by the energy rule with ε = `energy` (default 0.97);
`merge` chooses how many (`components.subspace`). U_pre is the same rule (ε = `pretrained_energy`)
on the pre-trained vocabulary embedding matrix; it is a deterministic function of the frozen
embedding table, so `setup` recomputes it rather than saving it. After each backward the prompt
gradients become U_pre U_preᵀ (I − U_old U_oldᵀ) g (`projection: both`); `residual`, `pretrained`
and `none` keep one step or neither, for the ablation. Keys' gradients are not projected. With
several processes each one computes the bases from the same records, so they agree without
communication; the projection acts on whole rows (a parameter sharded along its first dimension
is fine).

Every default above except the projection's form is unconfirmed (the paper's full text was not
available): P, L, N, ε, ε_pre, the loss weight, the sample counts, the merge rule, training
selection and key initialisation are options.

State: the groups (owner task and size), L, the widths of the two query spaces, U_old (d × k,
float32; grows with each task's new directions, at most d × d), the ranks, and selection counts
(per trained task per prompt, and per evaluation row per evaluated task per group; in the middle
of a task also its tally so far, so that a run resumed there counts on). Prompts and
keys are parameters of a `PromptPool` attached to the model as `mcit_prompt_pool` and are saved
with the model's weights: P · (L·d + Di + Dt) numbers per task. `report()` gives the ranks, the
pool size and the selection counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.gradients import local
from mcit.methods.components.prompts import (PromptInjector, PromptPool, image_feature_dim, key_matching_loss,
                                             match_scores, perturbed_keys, select_top, vocabulary_prompts)
from mcit.methods.components.routing import image_token_id, sample_embeddings
from mcit.methods.components.sampling import generator, sample
from mcit.methods.components.subspace import (basis_from_gram, embedding_gram, energy_rank, intersection_basis,
                                              language_input_gram, merge_basis, project_rows)
from mcit.methods.registry import register
from mcit.models.batches import IGNORE_INDEX, insert_slots

SLOT_KEY = "mcit_prompt_slots"
POOL_NAME = "mcit_prompt_pool"


@dataclass
class FwdPromptOptions:
    """Options of Fwd-Prompt."""

    prompts_per_task: int = option(10, "prompts (P) each task adds to the pool", min=1, unconfirmed=True)
    prompt_length: int = option(5, "vectors (L) per prompt", min=1, unconfirmed=True)
    top_n: int = option(5, "prompts (N) prepended to each sample", min=1, unconfirmed=True)
    key_loss_weight: float = option(1.0, "weight of the key-matching loss 1 - cos(key, query)", min=0,
                                    unconfirmed=True)
    train_selection: Literal["pool", "task"] = option(
        "pool", "in training, choose among the whole pool or the current task's prompts (evaluation always uses "
                "the whole pool)", unconfirmed=True)
    key_init: Literal["queries", "random"] = option(
        "queries", "a new task's keys start at the mean query of its records (plus a small perturbation) or random",
        unconfirmed=True)
    key_init_samples: int | None = option(64, "training records whose queries initialise a task's keys (null: all)",
                                          min=1, unconfirmed=True)
    projection: Literal["none", "residual", "pretrained", "both", "intersection"] = option(
        "both", "prompt-gradient projection: away from old tasks' input space (residual), into the "
                "pre-trained one (pretrained), the first then the second (both, the paper's form), onto the "
                "exact intersection of the two spaces (intersection), or none")
    energy: float = option(0.97, "share ε of a task's input-embedding energy its basis keeps", min=0, max=1,
                           unconfirmed=True)
    pretrained_energy: float = option(0.97, "share ε_pre of the vocabulary embeddings' energy U_pre keeps",
                                      min=0, max=1, unconfirmed=True)
    basis_samples: int | None = option(64, "training records per task whose input embeddings make its basis "
                                           "(null: all)", min=1, unconfirmed=True)
    merge: Literal["total", "residual"] = option(
        "total", "directions a task adds to U_old: until the merged basis holds ε of the task's energy (total), or "
                 "ε of the energy outside U_old (residual)", unconfirmed=True)


@register
class FwdPrompt(Method):
    name = "fwd-prompt"
    summary = ("a growing pool of multimodal-keyed soft prompts (only they train), their gradients projected away "
               "from old tasks' input space and into the pre-trained one")
    family = "prompt"
    Options = FwdPromptOptions
    reads_gradients = True

    def __init__(self, options: Any = None):
        super().__init__(options)
        self.groups: list[dict[str, Any]] = []
        self.length = self.options.prompt_length
        self.dims: dict[str, int] = {}
        self.old_basis: torch.Tensor | None = None
        self.pre_basis: torch.Tensor | None = None
        self.ranks: dict[str, dict[str, int]] = {}
        self.pre_rank: int | None = None
        self.train_counts: dict[str, list[int]] = {}
        self.eval_counts: dict[str, dict[str, list[int]]] = {}
        self.pool: PromptPool | None = None
        self.injector = PromptInjector()
        self.current: int | None = None
        self._pending: tuple | None = None
        self._tally: torch.Tensor | None = None
        self._intersection_cache: tuple[int, torch.Tensor] | None = None

    # ---- structure ---------------------------------------------------------------------------

    def setup(self, model, ctx):
        model.network.requires_grad_(False)
        embedding = model.input_embeddings()
        if not self.dims:
            self.dims = {"embedding": int(embedding.weight.shape[1]), "image": image_feature_dim(model)}
        d, di = self.dims["embedding"], self.dims["image"]
        self.pool = PromptPool(self.length, d, di, d)
        for group in self.groups:
            n = group["prompts"]
            self.pool.add_group(torch.zeros(n, self.length, d), torch.zeros(n, di), torch.zeros(n, d))
        self.pool.to(model.device)
        self.pool.train_only(None)
        model.base.add_module(POOL_NAME, self.pool)
        self.injector.attach(embedding)
        self.current = None
        if self.options.projection in ("pretrained", "both", "intersection"):
            self.pre_basis = basis_from_gram(embedding_gram(embedding.weight.detach()),
                                             self.options.pretrained_energy).float()
            self.pre_rank = int(self.pre_basis.shape[1])
        if self.old_basis is not None:
            self.old_basis = self.old_basis.to(model.device)
        return model

    def before_task(self, model, task, ctx):
        self.injector.disarm()
        count, d = self.options.prompts_per_task, self.dims["embedding"]
        draw = generator(ctx.seed, "fwd-prompt-init", task.name)
        excluded = (image_token_id(model), model.processor.tokenizer.pad_token_id)
        prompts = vocabulary_prompts(model.input_embeddings().weight, count, self.length, draw, excluded)
        image_keys, text_keys = self._initial_keys(model, task, ctx, draw)
        self.current = self.pool.add_group(prompts, image_keys, text_keys)
        self.groups.append({"task": task.name, "prompts": count})
        self.pool.to(model.device)
        self.pool.train_only(self.current)
        self._tally = torch.zeros(self.pool.size, dtype=torch.long, device=model.device)
        return model

    def resume_task(self, model, task, ctx):
        """Mid-task resume: `setup` rebuilt the pool with the task's group (its values come with the
        weights); only that group trains, and the selection tally continues from the state."""
        self.injector.disarm()
        self.current = len(self.groups) - 1
        self.pool.train_only(self.current)
        tally = self._tally if self._tally is not None else torch.zeros(self.pool.size, dtype=torch.long)
        self._tally = tally.to(model.device)
        return model

    def _initial_keys(self, model, task, ctx, draw: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(image keys, text keys) of a new group: near the mean query of the task's records, or random."""
        count, di, dt = self.options.prompts_per_task, self.dims["image"], self.dims["embedding"]
        noise_image, noise_text = torch.randn(count, di, generator=draw), torch.randn(count, dt, generator=draw)
        if self.options.key_init == "random":
            return noise_image, noise_text
        sums, counts = [torch.zeros(di), torch.zeros(dt)], [0, 0]
        records = sample(task.train, self.options.key_init_samples, ctx.seed, "fwd-prompt-keys", task.name)
        for _, batch in ctx.batches(records, ctx.batch_size, kind="generate"):
            image, text, has_image = sample_embeddings(model, batch)
            sums[1] += text.sum(0).cpu()
            counts[1] += text.shape[0]
            if image is not None:
                sums[0] += image[has_image].sum(0).cpu()
                counts[0] += int(has_image.sum())
        means = [total / n if n else None for total, n in zip(sums, counts)]
        return perturbed_keys(means[0], noise_image), perturbed_keys(means[1], noise_text)

    def trainable_parameters(self, model, task):
        return [{"params": self.pool.group_parameters(self.current)}]

    # ---- selection and injection -------------------------------------------------------------

    def before_forward(self, batch, ctx):
        self.injector.disarm()
        self._pending = None
        if self.pool is None or self.pool.size == 0:
            return batch
        model = ctx.model
        image, text, has_image = self.queries(model, batch)
        with torch.no_grad():
            scores = match_scores(image, text, has_image, *self.pool.keys())
        candidates = None
        if ctx.phase == "train" and self.options.train_selection == "task" and self.current is not None:
            candidates = self.pool.group_range(self.current)
        count = min(self.options.top_n, len(candidates) if candidates is not None else self.pool.size)
        chosen = select_top(scores, count, candidates)
        slotted = insert_slots(batch, count * self.length, self._slot_token(model), SLOT_KEY)
        pool = self.pool
        self.injector.arm(slotted["input_ids"], slotted[SLOT_KEY], lambda: pool.prompt_values(chosen))
        if ctx.phase == "train":
            self._pending = (image, text, has_image, chosen)
            if self._tally is not None and self._tally.numel() == self.pool.size:
                self._tally.index_add_(0, chosen.flatten(), torch.ones_like(chosen.flatten()))
        else:
            self._count_eval(ctx, chosen)
        return slotted

    @staticmethod
    def queries(model, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """(image query [B, Di] or None, text query [B, Dt], has_image [B]), L2-normalised; in a
        training batch the answer tokens are left out of the text query, so that it equals the
        query of the same record's generation batch."""
        if "labels" in batch:
            batch = {**batch, "attention_mask": batch["attention_mask"] * (batch["labels"] == IGNORE_INDEX)}
        return sample_embeddings(model, batch)

    @staticmethod
    def _slot_token(model) -> int:
        tokenizer = model.processor.tokenizer
        token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if token is None or token == image_token_id(model):
            raise ValueError("the tokenizer has no pad or end token that is not the image token; prompt slots need one")
        return int(token)

    def _count_eval(self, ctx, chosen: torch.Tensor) -> None:
        if ctx.task is None or ctx.stage_index < 0:
            return
        label = f"after {ctx.tasks[ctx.stage_index].name}"
        counts = self.eval_counts.setdefault(label, {}).setdefault(ctx.task.name, [0] * self.pool.groups)
        by_group = torch.bincount(self.pool.group_of()[chosen.flatten()], minlength=self.pool.groups)
        counts[:] = [a + b for a, b in zip(counts, by_group.tolist())]

    def extra_losses(self, model, batch, outputs, ctx):
        if ctx.phase != "train" or self._pending is None or self.options.key_loss_weight == 0:
            return {}
        image, text, has_image, chosen = self._pending
        loss = key_matching_loss(image, text, has_image, *self.pool.keys(), chosen)
        return {"key": self.options.key_loss_weight * loss}

    # ---- gradient projection -----------------------------------------------------------------

    def after_backward(self, model, ctx) -> None:
        if self.options.projection == "none" or self.current is None:
            return
        grad = self.pool.prompts[self.current].grad
        if grad is None:
            return
        old, pre, mode = self.old_basis, self.pre_basis, self.options.projection
        if mode == "intersection":
            old, pre, mode = None, self._intersection(), "pretrained"
        for piece in local([grad]):  # rows are whole vectors: a shard along the first dimension is fine
            piece.copy_(project_rows(piece, old, pre, mode))

    def _intersection(self) -> torch.Tensor:
        """span(U_pre) ∩ span(U_old)^⊥, recomputed only when the old basis has grown."""
        size = 0 if self.old_basis is None else int(self.old_basis.shape[1])
        if self._intersection_cache is None or self._intersection_cache[0] != size:
            self._intersection_cache = (size, intersection_basis(self.old_basis, self.pre_basis).to(self.pre_basis.device))
        return self._intersection_cache[1]

    def after_task(self, model, task, ctx) -> None:
        self.injector.disarm()
        self._pending = None
        records = sample(task.train, self.options.basis_samples, ctx.seed, "fwd-prompt-basis", task.name)
        matrix, vectors = language_input_gram(model, (batch for _, batch in ctx.batches(records, ctx.batch_size)))
        values = torch.linalg.eigvalsh(matrix).flip(0).clamp(min=0)
        basis, added = merge_basis(self.old_basis, matrix, self.options.energy, self.options.merge)
        self.old_basis = basis.float()
        self.ranks[task.name] = {"task_rank": energy_rank(values, self.options.energy), "added": added,
                                 "old_rank": int(self.old_basis.shape[1]), "vectors": vectors}
        if self._tally is not None:
            tally = self._tally
            if ctx.accelerator.num_processes > 1:
                tally = ctx.accelerator.reduce(tally, "sum")
            self.train_counts[task.name] = [int(v) for v in tally.tolist()]
            self._tally = None
        self.pool.train_only(None)
        ctx.log({"event": "fwd-prompt", "task": task.name, "prompts": self.pool.size,
                 "dimension": self.dims["embedding"], "pretrained_rank": self.pre_rank, **self.ranks[task.name]})

    def after_eval(self, model, task, ctx) -> None:
        """Each process counted the selections of its share of the test records; add them up."""
        if ctx.accelerator.num_processes == 1 or ctx.stage_index < 0 or self.pool.size == 0:
            return
        label = f"after {ctx.tasks[ctx.stage_index].name}"
        counts = self.eval_counts.setdefault(label, {}).setdefault(task.name, [0] * self.pool.groups)
        total = ctx.accelerator.reduce(torch.tensor(counts, device=ctx.accelerator.device), "sum")
        counts[:] = [int(v) for v in total.tolist()]

    # ---- state and report --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {"groups": [dict(g) for g in self.groups], "length": self.length, "dims": dict(self.dims),
                 "old_basis": self.old_basis, "ranks": _copy(self.ranks),
                 "train_counts": _copy(self.train_counts), "eval_counts": _copy(self.eval_counts)}
        if self._tally is not None:  # in the middle of a task: its selections so far
            state["tally"] = self._tally
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.groups = [dict(g) for g in state.get("groups", [])]
        self.length = int(state.get("length", self.options.prompt_length))
        self.dims = {k: int(v) for k, v in state.get("dims", {}).items()}
        self.old_basis = state.get("old_basis")
        self.ranks = _copy(state.get("ranks", {}))
        self.train_counts = _copy(state.get("train_counts", {}))
        self.eval_counts = _copy(state.get("eval_counts", {}))
        self._tally = state.get("tally")

    def report(self) -> dict[str, Any]:
        return {"prompts": sum(g["prompts"] for g in self.groups), "groups": [g["task"] for g in self.groups],
                "prompt_length": self.length, "top_n": self.options.top_n, "projection": self.options.projection,
                "dimension": self.dims.get("embedding"), "pretrained_rank": self.pre_rank,
                "ranks": _copy(self.ranks), "selection_train": _copy(self.train_counts),
                "selection_eval": _copy(self.eval_counts)}


def _copy(value: Any) -> Any:
    """A copy of nested dicts and lists of plain values."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
