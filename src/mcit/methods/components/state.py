"""Method state on disk without pickle: tensors to safetensors, everything else to JSON.

A method's `state_dict()` is a nested structure of dicts and lists whose leaves are tensors or
plain values. `split_state` moves every tensor into a flat name -> tensor mapping (saved with
safetensors) and leaves a JSON skeleton with references in their place; `join_state` reverses it.
"""

from __future__ import annotations

from typing import Any

import torch

_REF = "__tensor__"


def split_state(state: Any, prefix: str = "state", to_cpu: bool = True) -> tuple[Any, dict[str, torch.Tensor]]:
    """(JSON-able skeleton, tensors by flat name); the tensors are contiguous CPU copies for saving,
    or, without `to_cpu`, the state's own tensors (for measuring)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().cpu().contiguous() if to_cpu else node
            return {_REF: path}
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise TypeError(f"state keys must be strings, got {key!r} at {path}")
            return {key: walk(value, f"{path}.{key}") for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(value, f"{path}.{i}") for i, value in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot save a {type(node).__name__} in method state at {path}")

    return walk(state, prefix), tensors


def join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The state `split_state` took apart."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {_REF}:
            return tensors[skeleton[_REF]]
        return {key: join_state(value, tensors) for key, value in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_state(value, tensors) for value in skeleton]
    return skeleton


def tensor_bytes(state: Any) -> int:
    """Total bytes of the tensors in a state structure."""
    _, tensors = split_state(state, to_cpu=False)
    return sum(t.numel() * t.element_size() for t in tensors.values())


def stored_bytes(state: Any) -> int:
    """Bytes a state structure takes in a checkpoint: its tensors' bytes plus its JSON part.

    Unlike `tensor_bytes` it also counts plain values, so a state of references (a replay
    buffer's record ids) has a size that grows with what it holds.
    """
    import json

    skeleton, tensors = split_state(state, to_cpu=False)
    return sum(t.numel() * t.element_size() for t in tensors.values()) + len(json.dumps(skeleton).encode())
