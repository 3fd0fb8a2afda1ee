"""Checkpoints: everything needed to continue a run exactly, written atomically and checksummed.

A checkpoint is a folder under `RUN/checkpoints/`, named after where the run was:

    NN-NAME/                stage NN trained, its `after_task` done and every task evaluated
    NN-NAME.trained/        stage NN trained and its `after_task` done, not yet evaluated
    NN-NAME.step-SSSSSS/    stage NN after SSSSSS of its optimiser steps

holding

    trainable.safetensors   every parameter that is not an untouched frozen pretrained weight
                            (LoRA adapters, projectors, prompts, modules a method added, and any
                            base weight a method trained)
    method.safetensors      the method's state: tensors ...
    method.json             ... and everything else, with references to the tensors
    random.safetensors      the torch (and CUDA) random states ...
    random.json             ... and Python's and NumPy's
    optimizer.safetensors   step checkpoints only: the optimiser's state by parameter name ...
    optimizer.json          ... its parameter groups, the learning-rate schedule's and the loss scaler's state
    loop.json               where the loop was: stage, step, global step, loss sums, timings
    manifest.json           the size and SHA-256 of every file above; written last

Nothing is pickled: tensors go to safetensors and the rest to JSON (`split_state`). The folder is
built under a temporary name and renamed into place when the manifest is written, so a crash
never leaves a half-written checkpoint under a checkpoint's name; `verify` checks the manifest's
checksums, so a checkpoint damaged later is detected and the run falls back to an older one.
Restoring needs the same model and method configuration; the method rebuilds its structure in
`setup` from its state before the weights are loaded into it.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mcit.core.errors import UserError
from mcit.core.files import atomic_folder, read_json, sha256_of
from mcit.methods.base import Method
from mcit.methods.components.state import join_state, split_state
from mcit.run import killpoint

WEIGHTS = "trainable.safetensors"
METHOD_TENSORS = "method.safetensors"
METHOD_JSON = "method.json"
RANDOM_JSON = "random.json"
RANDOM_TENSORS = "random.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
LOOP_JSON = "loop.json"
MANIFEST = "manifest.json"
FORMAT = 1


def saved_parameter_names(network: torch.nn.Module, frozen_at_load: set[str], trained: set[str]) -> list[str]:
    """Parameters a checkpoint must hold: everything but untouched frozen pretrained weights."""
    return [n for n, _ in network.named_parameters() if n not in frozen_at_load or n in trained]


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors as safetensors; an I/O failure becomes an `OSError` like any other write."""
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code:
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from None
        raise


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


def write_checkpoint(folder: Path, network: torch.nn.Module, names: list[str], method: Method,
                     loop: dict[str, Any], optimizer: dict[str, Any] | None = None,
                     random_state: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None) -> None:
    """Write a checkpoint into `folder` (see the module docstring), replacing any folder there.

    `loop` is plain JSON data; `optimizer` a structure of tensors and plain values (the optimiser,
    schedule and scaler states); `random_state` defaults to the random states now.
    """
    parameters = dict(network.named_parameters())
    skeleton, method_tensors = split_state(method.state_dict())
    plain_random, random_tensors = random_state if random_state is not None else capture_random_state()
    # The folder is renamed into place once complete, so its files are written directly.
    with atomic_folder(folder) as tmp:
        save_tensors(tmp / WEIGHTS, {n: parameters[n] for n in names})
        killpoint.reached("checkpoint")
        save_tensors(tmp / METHOD_TENSORS, method_tensors)
        _write_json(tmp / METHOD_JSON, skeleton)
        save_tensors(tmp / RANDOM_TENSORS, random_tensors)
        _write_json(tmp / RANDOM_JSON, plain_random)
        if optimizer is not None:
            optimizer_skeleton, optimizer_tensors = split_state(optimizer, "train")
            save_tensors(tmp / OPTIMIZER_TENSORS, optimizer_tensors)
            _write_json(tmp / OPTIMIZER_JSON, optimizer_skeleton)
        _write_json(tmp / LOOP_JSON, {"format": FORMAT, **loop})
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        _write_json(tmp / MANIFEST, {"format": FORMAT, "files": {
            name: {"bytes": (tmp / name).stat().st_size, "sha256": sha256_of(tmp / name)} for name in files}})


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def verify(folder: Path) -> str | None:
    """Why the checkpoint in `folder` cannot be used (missing, incomplete, damaged), or None if it can."""
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return "incomplete (no manifest.json)"
    try:
        manifest = read_json(manifest_file)
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            return "manifest.json lists no files"
    except (UserError, KeyError, TypeError) as exc:
        return f"manifest.json is unreadable ({exc})"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected.get("bytes"):
            return f"{name} has {path.stat().st_size} bytes, the manifest says {expected.get('bytes')}"
        if sha256_of(path) != expected.get("sha256"):
            return f"{name} does not match its SHA-256 checksum"
    return None


def is_complete(folder: Path) -> bool:
    return verify(folder) is None


def load_loop_state(folder: Path) -> dict[str, Any]:
    return read_json(folder / LOOP_JSON)


def load_method_state(folder: Path) -> dict[str, Any]:
    return join_state(read_json(folder / METHOD_JSON), load_file(str(folder / METHOD_TENSORS)))


def load_optimizer_state(folder: Path) -> dict[str, Any]:
    return join_state(read_json(folder / OPTIMIZER_JSON), load_file(str(folder / OPTIMIZER_TENSORS)))


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


def load_random_state(folder: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The random states saved in `folder` (JSON part, tensor part); `restore_random_state` applies them."""
    return read_json(folder / RANDOM_JSON), load_file(str(folder / RANDOM_TENSORS))
