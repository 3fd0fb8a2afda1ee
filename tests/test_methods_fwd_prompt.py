"""Fwd-Prompt on the tiny model, called directly: what trains, what stays bitwise frozen, prompt
injection (alone and batched generation, the image merge untouched), selection, gradient
projection in the method, and rebuilding the pool from state."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.state import join_state, split_state
from mcit.methods.components.subspace import project_rows
from mcit.methods.fwd_prompt import POOL_NAME, SLOT_KEY, FwdPrompt, FwdPromptOptions
from mcit.run.config import TrainConfig
from mcit.run.train import train_stage
from test_methods_support import tiny_context

OPTIONS = dict(key_init_samples=8, basis_samples=8)


def snapshot(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in network.state_dict().items() if POOL_NAME not in n}


@pytest.fixture(scope="module")
def trained():
    """Fwd-Prompt after two optimiser steps on the first task and its task end, with the second
    task started; plus the network's weights before training and the first task's initial prompts."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx, task = tiny_context()
    method = FwdPrompt(FwdPromptOptions(**OPTIONS))
    model = ctx.model = method.setup(ctx.model, ctx)
    before = snapshot(model.network)
    frozen_after_setup = not any(p.requires_grad for p in model.network.parameters())
    model = ctx.model = method.before_task(model, task, ctx)
    trainable = [n for n, _ in model.trainable_named_parameters()]
    initial = [p.detach().clone() for p in method.pool.group_parameters(0)]
    losses = train_stage(method, task, ctx, TrainConfig(max_steps=2, batch_size=4, lr=0.05, log_every=1))
    method.after_task(model, task, ctx)
    ctx.stage_index, ctx.task = 1, ctx.tasks[1]
    model = ctx.model = method.before_task(model, ctx.tasks[1], ctx)
    yield dict(ctx=ctx, method=method, before=before, frozen_after_setup=frozen_after_setup, trainable=trainable,
               initial=initial, losses=losses)
    torch.set_num_threads(previous)


def test_only_the_current_tasks_prompts_and_keys_train(trained):
    ctx, method = trained["ctx"], trained["method"]
    assert trained["frozen_after_setup"], "setup freezes every weight, LoRA and projector included"
    assert trained["trainable"] == [f"base_model.model.{POOL_NAME}.{part}.0"
                                    for part in ("prompts", "image_keys", "text_keys")]
    names = [n for n, _ in ctx.model.trainable_named_parameters()]
    assert names == [f"base_model.model.{POOL_NAME}.{part}.1" for part in ("prompts", "image_keys", "text_keys")]
    assert method.pool.size == 20 and method.pool.prompts[0].shape == (10, 5, 192)
    p, l, d, di = 10, 5, 192, 128
    assert ctx.model.count_parameters()["trainable"] == p * (l * d + di + d)


def test_training_changes_prompts_and_keys_and_nothing_else(trained):
    ctx, method = trained["ctx"], trained["method"]
    assert set(trained["losses"]) == {"lm", "key"}
    after = snapshot(ctx.model.network)
    assert after.keys() == trained["before"].keys()
    changed = [n for n in after if not torch.equal(after[n], trained["before"][n])]
    assert changed == [], f"weights other than prompts and keys changed: {changed[:3]}"
    assert all(not torch.equal(a, b) for a, b in zip(trained["initial"], method.pool.group_parameters(0)))


def mixed_records(ctx, count: int = 3):
    return [r for task in ctx.tasks for r in task.test[:count]]


def test_generation_with_prompts_is_the_same_alone_and_batched(trained):
    ctx, method = trained["ctx"], trained["method"]
    model = ctx.model
    ctx.phase = "eval"
    model.network.eval()
    records = mixed_records(ctx)
    batch = method.before_forward(model.to_device(model.generation_batch(records)), ctx)
    assert not bool(batch["attention_mask"].all()), "the batch is left-padded"
    assert int(batch[SLOT_KEY].sum(1).unique()) == 25
    injected = method.injector.injected
    together = model.generate(batch, 6)
    assert method.injector.injected == injected + 1, "the prefill, and only it, gets the prompts"
    alone = [model.generate(method.before_forward(model.to_device(model.generation_batch([r])), ctx), 6)[0]
             for r in records]
    assert together == alone
    ctx.phase = "train"


def test_the_image_merge_is_untouched_and_the_slots_hold_the_chosen_prompts(trained):
    ctx, method = trained["ctx"], trained["method"]
    model = ctx.model
    ctx.phase = "eval"
    captured = []
    handle = model.language_model.register_forward_pre_hook(
        lambda _m, args, kwargs: captured.append(kwargs["inputs_embeds"].detach()), with_kwargs=True)
    try:
        plain = model.to_device(model.generation_batch(mixed_records(ctx)))
        method.injector.disarm()
        with torch.no_grad():
            model.forward(plain)
            slotted = method.before_forward(plain, ctx)
            model.forward(slotted)
    finally:
        handle.remove()
        ctx.phase = "train"
    without, with_prompts = captured
    slots = slotted[SLOT_KEY]
    image_token = model.base.config.image_token_index
    assert int((slotted["input_ids"] == image_token).sum()) == int((plain["input_ids"] == image_token).sum())
    keep = plain["attention_mask"].bool()
    assert torch.equal(with_prompts[~slots][slotted["attention_mask"][~slots].bool()], without[keep])
    expected = method.pool.prompt_values(_chosen(method, model, plain)).detach()
    assert torch.equal(with_prompts[slots].reshape(expected.shape), expected)


def _chosen(method, model, batch):
    from mcit.methods.components.prompts import match_scores, select_top

    image, text, has_image = method.queries(model, batch)
    return select_top(match_scores(image, text, has_image, *method.pool.keys()), method.options.top_n)


def test_a_record_has_the_same_query_in_training_and_evaluation(trained):
    ctx, method = trained["ctx"], trained["method"]
    model = ctx.model
    records = mixed_records(ctx)
    train_image, train_text, train_has = method.queries(model, model.to_device(model.training_batch(records)))
    eval_image, eval_text, eval_has = method.queries(model, model.to_device(model.generation_batch(records)))
    assert torch.equal(train_has, eval_has) and bool(train_has.all())
    assert torch.allclose(train_text, eval_text, atol=1e-5), "the answer tokens are not part of the query"
    assert torch.allclose(train_image, eval_image, atol=1e-5)


def test_selection_is_deterministic_and_task_agnostic(trained):
    ctx, method = trained["ctx"], trained["method"]
    model = ctx.model
    ctx.phase = "eval"
    plain = model.to_device(model.generation_batch(mixed_records(ctx)))
    first = method.before_forward(plain, ctx)
    ctx.task = None  # selection must not depend on knowing the task
    second = method.before_forward(plain, ctx)
    ctx.phase, ctx.task = "train", ctx.tasks[1]
    assert torch.equal(first["input_ids"], second["input_ids"])
    chosen = _chosen(method, model, plain)
    assert chosen.shape == (len(plain["input_ids"]), 5)
    assert torch.equal(chosen, _chosen(method, model, plain))


def test_prompt_gradients_are_projected_in_the_method(trained):
    ctx, method = trained["ctx"], trained["method"]
    model = ctx.model
    batch = method.before_forward(model.to_device(model.training_batch(ctx.tasks[1].train[:4])), ctx)
    outputs = model.forward(batch)
    (outputs.loss + sum(method.extra_losses(model, batch, outputs, ctx).values())).backward()
    prompts = method.pool.prompts[1]
    raw = prompts.grad.clone()
    old, pre = method.old_basis, method.pre_basis
    assert raw.norm() > 0 and old is not None and 0 < old.shape[1] < 192 and 0 < pre.shape[1] < 192
    method.after_backward(model, ctx)
    both = prompts.grad.clone()
    assert torch.allclose(both, project_rows(raw, old, pre, "both"))
    assert (both - (both @ pre) @ pre.T).norm() < 1e-4 * raw.norm(), "inside the pre-trained subspace"
    prompts.grad.copy_(raw)
    method.options.projection = "residual"
    try:
        method.after_backward(model, ctx)
    finally:
        method.options.projection = "both"
    assert (prompts.grad @ old).norm() < 1e-4 * raw.norm(), "no part along the old tasks' subspace"
    for p in method.pool.parameters():
        p.grad = None


def test_report_and_log_give_the_ranks(trained):
    method = trained["method"]
    report = method.report()
    assert report["prompts"] == 20 and report["groups"] == ["ocr", "digits"]
    ranks = report["ranks"]["ocr"]
    assert ranks["old_rank"] == ranks["added"] == ranks["task_rank"] > 0
    assert 0 < report["pretrained_rank"] <= report["dimension"] == 192
    assert sum(report["selection_train"]["ocr"]) == 2 * 4 * 5  # 2 steps x 4 samples x top-5


def test_state_rebuilds_the_same_pool(trained):
    ctx, method = trained["ctx"], trained["method"]
    skeleton, tensors = split_state(method.state_dict())
    fresh_ctx, _ = tiny_context()
    restored = FwdPrompt(FwdPromptOptions(**OPTIONS))
    restored.load_state_dict(join_state(skeleton, tensors))
    model = restored.setup(fresh_ctx.model, fresh_ctx)
    expected = {n: p.shape for n, p in ctx.model.network.named_parameters()}
    assert {n: p.shape for n, p in model.network.named_parameters()} == expected
    assert torch.equal(restored.old_basis.cpu(), method.old_basis.cpu())
    assert torch.equal(restored.pre_basis, method.pre_basis), "U_pre is recomputed identically"
    assert restored.report()["ranks"] == method.report()["ranks"]


def test_a_new_group_starts_the_same_for_the_same_seed():
    ctx, task = tiny_context(train_size=8)
    groups = []
    for _ in range(2):
        method = FwdPrompt(FwdPromptOptions(**OPTIONS))
        model = method.setup(ctx.model, ctx)
        method.before_task(model, task, ctx)
        groups.append([p.detach().clone() for p in method.pool.group_parameters(0)])
    assert all(torch.equal(a, b) for a, b in zip(*groups))
