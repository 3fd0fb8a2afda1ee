"""EProj on the tiny model, called directly: projector copies, freezing, routing, and rebuilding
the same structure from state (what a resume needs before the weights are loaded)."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.routing import RoutedProjector
from mcit.methods.components.state import join_state, split_state
from mcit.methods.eproj import EProj, EProjOptions
from test_methods_support import tiny_context


@pytest.fixture(scope="module")
def two_tasks_done():
    """EProj after training-free passes over two tasks (structure and keys only)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx, _ = tiny_context()
    method = EProj(EProjOptions(key_samples=8))
    model = ctx.model = method.setup(ctx.model, ctx)
    frozen_flags = []
    for index, task in enumerate(ctx.tasks):
        ctx.stage_index, ctx.phase, ctx.task = index, "train", task
        model = method.before_task(model, task, ctx)
        frozen_flags.append([all(p.requires_grad for p in e.parameters()) for e in method.routed.experts])
        method.after_task(model, task, ctx)
    yield ctx, method, frozen_flags
    torch.set_num_threads(previous)


def test_each_task_gets_its_own_projector_and_older_ones_freeze(two_tasks_done):
    ctx, method, trainable = two_tasks_done
    assert isinstance(ctx.model.projector, RoutedProjector)
    assert trainable == [[True], [False, True]]
    assert method.task_projector == {"ocr": 0, "digits": 1}
    names = [n for n, _ in ctx.model.trainable_named_parameters() if "experts" in n]
    assert names and all(".experts.1." in n for n in names)
    first, second = method.routed.experts
    assert all(a.device == b.device for a, b in zip(first.parameters(), second.parameters()))


def test_test_samples_are_routed_to_their_tasks_projector(two_tasks_done):
    ctx, method, _ = two_tasks_done
    ctx.phase = "eval"
    for index, task in enumerate(ctx.tasks):
        batch = ctx.model.to_device(ctx.model.generation_batch(task.test))
        ctx.task = None  # routing must not depend on knowing the task
        method.before_forward(batch, ctx)
        assert method.routed.route == [index] * len(task.test)
        with torch.no_grad():
            ctx.model.generate(batch, max_new_tokens=2)
    ctx.phase = "train"
    method.before_forward({}, ctx)
    assert method.routed.route is None, "training goes to the current task's projector"


def test_state_rebuilds_the_same_parameter_names(two_tasks_done):
    ctx, method, _ = two_tasks_done
    skeleton, tensors = split_state(method.state_dict())
    fresh_ctx, _ = tiny_context()
    restored = EProj(EProjOptions(key_samples=8))
    restored.load_state_dict(join_state(skeleton, tensors))
    model = restored.setup(fresh_ctx.model, fresh_ctx)
    expected = [n for n, _ in ctx.model.network.named_parameters()]
    assert [n for n, _ in model.network.named_parameters()] == expected
    assert restored.projectors == 2 and restored.routed.default == 1
    assert all(torch.equal(a["text"], b["text"].cpu()) for a, b in zip(restored.keys, method.keys))
