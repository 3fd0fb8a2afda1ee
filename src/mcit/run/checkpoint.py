"""Checkpoints after each stage: the weights that changed, the method's state, the random states.

Only parameters that are not frozen pretrained weights are saved (LoRA adapters, projectors,
prompts, modules a method added, and any base weight a method trained), as safetensors. The
method's state goes through `split_state` (tensors to safetensors, the rest to JSON), so nothing
is ever pickled. Restoring needs the same model and method configuration; the method rebuilds its
structure in `setup` from its state before the weights are loaded into it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mcit.core.errors import UserError
from mcit.core.files import atomic_path, read_json, write_json
from mcit.methods.base import Method
from mcit.methods.components.state import join_state, split_state

WEIGHTS = "trainable.safetensors"
METHOD_TENSORS = "method.safetensors"
METHOD_JSON = "method.json"
RANDOM_JSON = "random.json"
RANDOM_TENSORS = "random.safetensors"


def saved_parameter_names(network: torch.nn.Module, frozen_at_load: set[str], trained: set[str]) -> list[str]:
    """Parameters a checkpoint must hold: everything but untouched frozen pretrained weights."""
    return [n for n, _ in network.named_parameters() if n not in frozen_at_load or n in trained]


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))


def capture_random_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python, NumPy and torch random states (JSON part, tensor part)."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    plain = {"python": [py_version, list(py_state), py_gauss],
             "numpy": [np_kind, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)]}
    tensors = {"torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = state
    return plain, tensors


def restore_random_state(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, state, gauss = plain["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.random.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
        if states:
            torch.cuda.set_rng_state_all(states)


def save_checkpoint(folder: Path, network: torch.nn.Module, names: list[str], method: Method) -> None:
    """Write one stage's checkpoint into `folder` (each file atomically)."""
    parameters = dict(network.named_parameters())
    _save_tensors(folder / WEIGHTS, {n: parameters[n] for n in names})
    skeleton, tensors = split_state(method.state_dict())
    _save_tensors(folder / METHOD_TENSORS, tensors)
    plain, random_tensors = capture_random_state()
    _save_tensors(folder / RANDOM_TENSORS, random_tensors)
    write_json(folder / RANDOM_JSON, plain)
    write_json(folder / METHOD_JSON, skeleton)  # written last: its presence marks a complete checkpoint


def is_complete(folder: Path) -> bool:
    return all((folder / f).exists() for f in (WEIGHTS, METHOD_TENSORS, METHOD_JSON, RANDOM_JSON, RANDOM_TENSORS))


def load_method_state(folder: Path) -> dict[str, Any]:
    return join_state(read_json(folder / METHOD_JSON), load_file(str(folder / METHOD_TENSORS)))


def load_weights(folder: Path, network: torch.nn.Module) -> set[str]:
    """Copy the checkpoint's tensors into `network`; returns their names."""
    tensors = load_file(str(folder / WEIGHTS))
    parameters = dict(network.named_parameters())
    missing = sorted(set(tensors) - set(parameters))
    if missing:
        raise UserError(f"{folder / WEIGHTS}: the checkpoint holds weights this model does not have "
                        f"(e.g. {missing[0]}); resume with the configuration the run was started with")
    with torch.no_grad():
        for name, value in tensors.items():
            parameters[name].copy_(value.to(parameters[name].dtype))
    return set(tensors)


def load_random_state(folder: Path) -> None:
    restore_random_state(read_json(folder / RANDOM_JSON), load_file(str(folder / RANDOM_TENSORS)))
