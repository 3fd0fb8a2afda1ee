"""DGG: the guidance formula, its cap, the gate's random stream, the ablation switches, equality
with ER when the gate never opens, and the per-tensor norms and guidance on sharded parameters."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from mcit.core.configs import ConfigError
from mcit.methods.components import gradients as G
from mcit.methods.components.state import join_state, split_state
from mcit.methods.dgg import DGG, DGGOptions, guide_
from mcit.methods.er import ER, EROptions
from mcit.methods.registry import build_method
from mcit.run.cli import main
from test_methods_support import ParameterModel, fake_context, make_task


pytestmark = pytest.mark.usefixtures("one_thread")


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1).float() for t in tensors])


def expected_guidance(grads, params, anchors, per_tensor: bool, scale: bool) -> list[torch.Tensor]:
    """The formula written out tensor by tensor."""
    d = [p - a for p, a in zip(params, anchors)]
    if scale and per_tensor:
        d = [x * min(1.0, float(g.norm() / x.norm())) if x.norm() > 0 else x for x, g in zip(d, grads)]
    elif scale:
        factor = min(1.0, float(flat(grads).norm() / flat(d).norm()))
        d = [x * factor for x in d]
    return [g + x for g, x in zip(grads, d)]


# ---- the formula -------------------------------------------------------------------------------

KNOWN = dict(params=[torch.tensor([3.0, 4.0]), torch.tensor([1.1]), torch.tensor([[0.5, 0.5]])],
             anchors=[torch.tensor([0.0, 0.0]), torch.tensor([1.0]), torch.tensor([[0.5, 0.5]])],
             grads=[torch.tensor([1.0, 0.0]), torch.tensor([2.0]), torch.tensor([[1.0, -1.0]])])


@pytest.mark.parametrize("per_tensor,scale,expected", [
    # ‖d₁‖ = 5 > ‖g₁‖ = 1: d₁ shrinks to [0.6, 0.8]; ‖d₂‖ = 0.1 < 2: added as is; d₃ = 0.
    (True, True, [[1.6, 0.8], [2.1], [[1.0, -1.0]]]),
    (True, False, [[4.0, 4.0], [2.1], [[1.0, -1.0]]]),
    (False, False, [[4.0, 4.0], [2.1], [[1.0, -1.0]]]),
    (False, True, None),  # one factor ‖g‖ / ‖d‖ = √7 / √25.01 for every tensor
])
def test_guidance_follows_the_formula(per_tensor, scale, expected):
    grads = [g.clone() for g in KNOWN["grads"]]
    guide_(grads, KNOWN["params"], KNOWN["anchors"], per_tensor=per_tensor, scale=scale)
    if expected is None:
        factor = (7 ** 0.5) / (25.01 ** 0.5)
        expected = [[1 + 3 * factor, 4 * factor], [2 + 0.1 * factor], [[1.0, -1.0]]]
    for got, want in zip(grads, expected):
        assert torch.allclose(got, torch.tensor(want), atol=1e-6)
    reference = expected_guidance(KNOWN["grads"], KNOWN["params"], KNOWN["anchors"], per_tensor, scale)
    assert torch.allclose(flat(grads), flat(reference), atol=1e-6)


@pytest.mark.parametrize("per_tensor", [True, False])
def test_the_added_guidance_is_never_larger_than_the_gradient(per_tensor):
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        shapes = [(3, 4), (7,), (2, 2, 3), (1,)]
        spread = lambda: 10 ** float(torch.empty(()).uniform_(-3, 3, generator=generator))  # noqa: E731
        params = [torch.randn(s, generator=generator) * spread() for s in shapes]
        anchors = [torch.randn(s, generator=generator) * spread() for s in shapes]
        grads = [torch.randn(s, generator=generator) * spread() for s in shapes]
        edited = [g.clone() for g in grads]
        guide_(edited, params, anchors, per_tensor=per_tensor)
        added = [e - g for e, g in zip(edited, grads)]
        if per_tensor:
            for a, g in zip(added, grads):
                assert a.norm() <= g.norm() * (1 + 1e-5)
        else:
            assert flat(added).norm() <= flat(grads).norm() * (1 + 1e-5)
        reference = expected_guidance(grads, params, anchors, per_tensor, scale=True)
        assert torch.allclose(flat(edited), flat(reference), rtol=1e-5, atol=1e-6)


# ---- the method, called directly ---------------------------------------------------------------


TASKS = [make_task("old", 100), make_task("new", 60)]


def guided_model() -> ParameterModel:
    """Two tensors with gradients and one without; θ* is taken by `before_task` before θ moves."""
    return ParameterModel(a=torch.tensor([3.0, 4.0]), b=torch.tensor([1.0]), c=torch.tensor([5.0]))


def start_second_task(method: DGG, model: ParameterModel):
    ctx = fake_context(TASKS, stage_index=1, task=TASKS[1])
    method.before_task(model, TASKS[1], ctx)
    with torch.no_grad():
        model.parameters["a"].add_(torch.tensor([3.0, 4.0]))  # d_a = [3, 4], ‖d_a‖ = 5
        model.parameters["b"].add_(0.5)  # d_b = [0.5]
    return ctx


def step(method: DGG, model: ParameterModel, ctx, grads=None) -> dict[str, torch.Tensor | None]:
    grads = grads or {"a": [1.0, 0.0], "b": [2.0]}
    for name, p in model.parameters.items():
        p.grad = torch.tensor(grads[name]) if name in grads else None
    method.after_backward(model, ctx)
    ctx.step += 1
    return {name: None if p.grad is None else p.grad.clone() for name, p in model.parameters.items()}


def test_an_open_gate_applies_the_formula_to_the_parameters_with_gradients():
    method, model = DGG(DGGOptions(alpha=1.0)), guided_model()
    grads = step(method, model, start_second_task(method, model))
    assert torch.allclose(grads["a"], torch.tensor([1.6, 0.8])) and torch.allclose(grads["b"], torch.tensor([2.5]))
    assert grads["c"] is None, "a parameter without a gradient gets no guidance"
    assert method.report()["guided_steps"] == {"new": 1} and method.report()["gate_openings"] == {"new": 1}


def test_nothing_happens_on_the_first_task():
    method, model = DGG(DGGOptions(alpha=1.0, gate=False)), guided_model()
    ctx = fake_context(TASKS, stage_index=0, task=TASKS[0])
    method.before_task(model, TASKS[0], ctx)
    assert step(method, model, ctx)["a"].tolist() == [1.0, 0.0]
    assert method.anchor == {} and method.stream is None and method.report()["steps"] == {}


def openings(options: DGGOptions, steps: int = 40, method: DGG | None = None, seed: int = 0) -> list[int]:
    """The gate's draws over `steps` optimiser steps of the second task (1 = open)."""
    method, model = method or DGG(options), guided_model()
    ctx = start_second_task(method, model)
    ctx.seed = seed
    drawn = []
    for _ in range(steps):
        before = method.counts["gate_openings"].get("new", 0)
        step(method, model, ctx)
        drawn.append(method.counts["gate_openings"]["new"] - before)
    return drawn


def test_the_gate_draws_are_reproducible_and_independent_of_the_other_options():
    first = openings(DGGOptions(alpha=0.5))
    assert 5 < sum(first) < 35
    assert openings(DGGOptions(alpha=0.5)) == first
    for switches in (dict(guidance=False), dict(gate=False), dict(scale=False), dict(replay=False),
                     dict(norm="global")):
        assert openings(DGGOptions(alpha=0.5, **switches)) == first, switches
    assert openings(DGGOptions(alpha=0.5), seed=1) != first, "the stream follows the run's seed"
    assert sum(openings(DGGOptions(alpha=0.0))) == 0 and sum(openings(DGGOptions(alpha=1.0))) == 40


def test_the_gate_stream_continues_after_a_state_round_trip():
    full = openings(DGGOptions(alpha=0.3), steps=30)
    interrupted = DGG(DGGOptions(alpha=0.3))
    head = openings(interrupted.options, steps=12, method=interrupted)
    skeleton, tensors = split_state(interrupted.state_dict())
    assert tensors["state.gate_stream"].dtype == torch.uint8
    resumed = DGG(DGGOptions(alpha=0.3))
    resumed.load_state_dict(join_state(json.loads(json.dumps(skeleton)), tensors))
    assert resumed.counts == interrupted.counts and resumed.anchor.keys() == {"a", "b", "c"}
    model = guided_model()
    ctx = fake_context(TASKS, stage_index=1, task=TASKS[1])
    tail = []
    for _ in range(18):  # the same task continues: no before_task, θ* comes from the state
        before = resumed.counts["gate_openings"].get("new", 0)
        step(resumed, model, ctx)
        tail.append(resumed.counts["gate_openings"]["new"] - before)
    assert head + tail == full


def test_ablation_switches():
    never = DGG(DGGOptions(alpha=1.0, guidance=False))
    model = guided_model()
    ctx = start_second_task(never, model)
    assert never.anchor == {}, "replay only: no θ* is kept"
    assert all(step(never, model, ctx)["a"].tolist() == [1.0, 0.0] for _ in range(5))
    assert never.report()["gate_openings"] == {"new": 5} and never.report()["guided_steps"] == {"new": 0}

    always = DGG(DGGOptions(alpha=0.0, gate=False))
    model = guided_model()
    ctx = start_second_task(always, model)
    assert all(torch.allclose(step(always, model, ctx)["a"], torch.tensor([1.6, 0.8])) for _ in range(5))
    assert always.report()["guided_steps"] == {"new": 5} and always.report()["gate_openings"] == {"new": 0}

    tasks = [make_task("a", 300), make_task("b", 120), make_task("c", 80)]
    ctx = fake_context(tasks)
    without, with_replay = DGG(DGGOptions(buffer_size=5, replay=False)), DGG(DGGOptions(buffer_size=5))
    for method in (without, with_replay):
        method.after_task(None, tasks[0], ctx)
        method.after_task(None, tasks[1], ctx)
    assert without.report()["buffer"] == {} and len(without.buffer) == 0
    assert without.train_data(tasks[2], ctx) == tasks[2].train
    assert len(with_replay.train_data(tasks[2], ctx)) == 80 + 10


def test_the_buffer_and_the_mix_are_ers():
    tasks = [make_task("a", 300), make_task("b", 120), make_task("c", 80)]
    ctx = fake_context(tasks)
    for options in (dict(buffer_size=7, replay_ratio=0.3), dict(buffer_fraction=0.05, selection="reservoir")):
        er, dgg = ER(EROptions(**options)), DGG(DGGOptions(**options))
        for method in (er, dgg):
            method.after_task(None, tasks[0], ctx)
            method.after_task(None, tasks[1], ctx)
        assert dgg.buffer.entries == er.buffer.entries
        assert [r.id for r in dgg.train_data(tasks[2], ctx)] == [r.id for r in er.train_data(tasks[2], ctx)]


def test_alpha_per_task_and_validation():
    method = build_method("dgg", {"alpha": "0.0,0.3,0.1"})
    assert [method.alpha(i) for i in range(5)] == [0.0, 0.3, 0.1, 0.1, 0.1]
    assert build_method("dgg", {"alpha": "0.05"}).alpha(3) == 0.05
    for bad in ("1.5", "0.1,-0.2", [], "nan"):
        with pytest.raises(ConfigError, match="method.alpha"):
            build_method("dgg", {"alpha": bad})
    with pytest.raises(ConfigError, match="method.norm"):
        build_method("dgg", {"norm": "row"})


# ---- whole runs: alpha = 0 is ER ----------------------------------------------------------------


def run(method: str, output: Path, fast: list[str], *extra: str) -> Path:
    assert main(["run", "--model", "tiny-random", "--order", "ocr,digits", "--method", method, "--output",
                 str(output), "--quiet", *fast, "method.buffer_size=2", *extra]) == 0
    return output


def trainable(folder: Path, stage: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "checkpoints" / stage / "trainable.safetensors"))


def test_alpha_zero_and_replay_only_give_exactly_the_er_run(tmp_path, fast_overrides):
    """α = 0 and the replay-only ablation (`guidance: false`) are ER, bitwise: the results tables
    use ER's runs for DGG's replay-only row."""
    er = run("er", tmp_path / "er", fast_overrides)
    silent = run("dgg", tmp_path / "dgg0", fast_overrides, "method.alpha=0")
    replay_only = run("dgg", tmp_path / "replay-only", fast_overrides, "method.alpha=1", "method.guidance=false")
    guided = run("dgg", tmp_path / "dgg1", fast_overrides, "method.alpha=1")
    results = {name: json.loads((folder / "results.json").read_text()) for name, folder in
               (("er", er), ("silent", silent), ("replay_only", replay_only), ("guided", guided))}
    for twin, folder in (("silent", silent), ("replay_only", replay_only)):
        assert results[twin]["accuracy_matrix"] == results["er"]["accuracy_matrix"]
        for stage in ("01-ocr", "02-digits"):
            expected, got = trainable(er, stage), trainable(folder, stage)
            assert expected.keys() == got.keys()
            assert all(torch.equal(expected[n], got[n]) for n in expected), (twin, stage)
        assert results[twin]["method_report"]["buffer"] == results["er"]["method_report"]["buffer"]

    first, last = trainable(guided, "01-ocr"), trainable(guided, "02-digits")
    assert all(torch.equal(first[n], trainable(er, "01-ocr")[n]) for n in first), "no guidance on the first task"
    assert any(not torch.equal(last[n], trainable(er, "02-digits")[n]) for n in last), "guidance changes the weights"
    report = results["guided"]["method_report"]
    assert report["steps"] == report["gate_openings"] == report["guided_steps"] == {"digits": 3}
    log = [json.loads(line) for line in (guided / "log.jsonl").read_text().splitlines()]
    events = [e for e in log if e["event"] == "dgg"]
    assert len(events) == 1 and events[0]["task"] == "digits"
    assert [events[0][k] for k in ("steps", "gate_openings", "guided_steps")] == [3, 3, 3]


# ---- per-tensor norms and guidance on sharded parameters ---------------------------------------


def test_per_tensor_norms_of_plain_tensors():
    tensors = [torch.randn(4, 3), torch.randn(6).bfloat16(), torch.zeros(2)]
    got = G.norms(tensors)
    assert all(n.dim() == 0 and n.dtype == torch.float32 for n in got)
    assert torch.allclose(torch.stack(got), torch.stack([t.float().norm() for t in tensors]))
    assert G.norms([]) == []
    value = torch.ones(3)
    assert G.local_like(value, torch.zeros(3)) is value and G.whole(value) is value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sharded_example():
    generator = torch.Generator().manual_seed(7)
    shapes = [(5, 3), (6,), (3, 2)]  # 5 and 3 rows split unevenly over two processes
    params, anchors, grads = ([torch.randn(s, generator=generator) for s in shapes] for _ in range(3))
    return params + [torch.tensor([1.0, 2.0])], anchors + [torch.tensor([0.0, 0.0])], grads + [torch.tensor([0.5, 0.5])]


def _sharded_worker(rank: int, port: int, folder: str) -> None:
    import torch.distributed as dist
    from torch.distributed.tensor import Shard, distribute_tensor, init_device_mesh

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        mesh = init_device_mesh("cpu", (2,))
        params, anchors, grads = sharded_example()

        def shard(tensors):  # the last tensor stays a plain (replicated) tensor
            return [distribute_tensor(t, mesh, [Shard(0)], src_data_rank=None) for t in tensors[:-1]] + [tensors[-1]]

        out = {"norms": [float(n) for n in G.norms(shard(grads))],
               "whole": [G.whole(p).tolist() for p in shard(params)]}
        for per_tensor in (True, False):
            sharded_params, sharded_grads = shard(params), shard([g.clone() for g in grads])
            pieces = [G.local_like(a, p) for a, p in zip(anchors, sharded_params)]
            guide_(sharded_grads, sharded_params, pieces, per_tensor=per_tensor)
            out[f"guided_{per_tensor}"] = [G.whole(g).reshape(-1).tolist() for g in sharded_grads]
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
            json.dump(out, handle)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's exit-time destructors: after a DeviceMesh was used they
    # occasionally abort the process (std::terminate), which would fail a worker that finished.
    os._exit(0)


def test_sharded_parameters_get_whole_tensor_norms_and_the_unsharded_guidance(tmp_path):
    pytest.importorskip("torch.distributed.tensor")
    mp.spawn(_sharded_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    params, anchors, grads = sharded_example()
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["norms"] == pytest.approx([float(g.norm()) for g in grads], rel=1e-5)
        assert all(torch.equal(torch.tensor(w), p) for w, p in zip(got["whole"], params))
        for per_tensor in (True, False):
            expected = expected_guidance(grads, params, anchors, per_tensor, scale=True)
            assert torch.allclose(torch.tensor([x for t in got[f"guided_{per_tensor}"] for x in t]), flat(expected),
                                  atol=1e-5)
