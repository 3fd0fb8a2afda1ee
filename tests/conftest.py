"""Shared fixtures: an isolated data cache and small, fast run settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Generated benchmark data goes to a per-session folder, not the user's cache; no hub access."""
    path = tmp_path_factory.mktemp("mcit-cache")
    previous = os.environ.get("MCIT_CACHE")
    os.environ["MCIT_CACHE"] = str(path)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub, even on a connected machine
    yield path
    if previous is None:
        os.environ.pop("MCIT_CACHE", None)
    else:
        os.environ["MCIT_CACHE"] = previous


#: key=value overrides that make a built-in run take seconds: two small tasks, few steps.
FAST = ["benchmark.train_size=48", "benchmark.test_size=8", "train.max_steps=3", "train.batch_size=8",
        "eval.batch_size=8", "train.log_every=1"]


@pytest.fixture(scope="session")
def fast_overrides() -> list[str]:
    return list(FAST)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module whose runs are tiny: thread start-up would cost more than it saves,
    and a test run beside others on a small machine does not oversubscribe its cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
