"""Gradient vector operations: against flattened reference computations, and sharded over a real
two-process gloo group where each process holds half of every tensor."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mcit.methods.components import gradients as G


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1).float() for t in tensors])


def example(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (6,), (2, 2, 2)]
    return ([torch.randn(s, generator=generator) for s in shapes], [torch.randn(s, generator=generator) for s in shapes])


def test_dot_and_norms_match_the_flattened_vectors():
    a, b = example()
    assert torch.allclose(G.dot(a, b), flat(a) @ flat(b))
    assert torch.allclose(G.squared_norm(a), flat(a) @ flat(a))
    assert torch.allclose(G.norm(b), flat(b).norm())
    assert G.dot(a, b).dim() == 0


def test_dot_of_mixed_dtypes_is_float32():
    a, b = example()
    value = G.dot([t.bfloat16() for t in a], b)
    assert value.dtype == torch.float32
    assert torch.allclose(value, flat([t.bfloat16() for t in a]) @ flat(b), rtol=1e-3)


def test_projection_removes_the_component_along_r():
    g, r = example(1)
    projected = G.project_out(g, r)
    assert abs(float(flat(projected) @ flat(r))) < 1e-4
    expected = flat(g) - (flat(g) @ flat(r)) / (flat(r) @ flat(r)) * flat(r)
    assert torch.allclose(flat(projected), expected, atol=1e-6)
    assert torch.equal(flat(g), flat(example(1)[0])), "project_out must not change its input"


def test_conditional_projection_only_acts_against_r():
    g, r = example(2)
    agreeing = g if float(G.dot(g, r)) > 0 else [-t for t in g]
    kept = [t.clone() for t in agreeing]
    coefficient = G.project_out_(kept, r, only_if_negative=True)
    assert float(coefficient) == 0.0 and torch.equal(flat(kept), flat(agreeing))
    opposing = [-t for t in agreeing]
    G.project_out_(opposing, r, only_if_negative=True)
    assert abs(float(G.dot(opposing, r))) < 1e-4


def test_add_scaled_with_a_tensor_scalar():
    a, b = example(3)
    expected = flat(a) + 0.5 * flat(b)
    G.add_scaled_(a, b, torch.tensor(0.5))
    assert torch.allclose(flat(a), expected)
    G.add_scaled_(a, b, -0.5)
    assert torch.allclose(flat(a), expected - 0.5 * flat(b))


def test_reading_and_writing_parameter_gradients():
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    params[0].grad = torch.full((3,), 2.0)
    grads = G.gradients(params)
    assert params[1].grad is not None and torch.equal(grads[1], torch.zeros(2)), "a missing gradient becomes zeros"
    grads[0].mul_(3)
    assert torch.equal(params[0].grad, torch.full((3,), 6.0)), "gradients() returns the live .grad tensors"
    G.set_gradients(params, [torch.ones(3), torch.full((2,), 4.0)])
    assert torch.equal(params[1].grad, torch.full((2,), 4.0))
    assert G.ordered({"b": 2, "a": 1}, ["a", "b"]) == [1, 2]


# ---- sharded: two processes, each holding half of every tensor as a DTensor ---------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sharded_worker(rank: int, port: int, folder: str) -> None:
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor, Shard, init_device_mesh

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        mesh = init_device_mesh("cpu", (2,))
        g, r = example(4)
        replicated_g, replicated_r = torch.arange(3.0), torch.tensor([1.0, -2.0, 0.5])

        def shard(t):
            return DTensor.from_local(t.chunk(2, dim=0)[rank].clone(), mesh, [Shard(0)], run_check=False)

        sharded_g = [shard(t) for t in g] + [replicated_g.clone()]
        sharded_r = [shard(t) for t in r] + [replicated_r]
        out = {"dot": float(G.dot(sharded_g, sharded_r)), "squared_norm": float(G.squared_norm(sharded_g))}
        G.project_out_(sharded_g, sharded_r)
        with torch.no_grad():
            out["projected"] = [t.full_tensor().reshape(-1).tolist() for t in sharded_g[:-1]] + [sharded_g[-1].tolist()]
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as handle:
            json.dump(out, handle)
    finally:
        dist.destroy_process_group()
    # Interpreter teardown after a DeviceMesh was used can abort (SIGABRT) and fail the spawn
    # although both ranks finished; the results are on disk, so leave at once.
    os._exit(0)


def test_sharded_tensors_give_the_unsharded_results(tmp_path):
    pytest.importorskip("torch.distributed.tensor")
    mp.spawn(_sharded_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    g, r = example(4)
    g, r = g + [torch.arange(3.0)], r + [torch.tensor([1.0, -2.0, 0.5])]
    expected = G.project_out(g, r)
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["dot"] == pytest.approx(float(flat(g) @ flat(r)), rel=1e-5)
        assert got["squared_norm"] == pytest.approx(float(flat(g) @ flat(g)), rel=1e-5)
        assert torch.allclose(torch.tensor([x for t in got["projected"] for x in t]), flat(expected), atol=1e-5)
