"""What a run ran on, for `results.json`: the software and the processor that can change its numbers.

The same configuration gives the same run bit for bit only on the same software and the same
kind of processor (docs/determinism.md). Recording both lets two runs that differ be traced to
the package or the instruction set that moved, instead of being blamed on the method.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

#: The installed distributions whose versions can change a run's numbers (kernels, tokenisation,
#: image rendering, the bundled digits, the model and adapter code).
RESULT_PACKAGES = ("torch", "transformers", "tokenizers", "peft", "accelerate", "numpy", "pillow",
                   "scikit-learn", "safetensors")

_CPUINFO = Path("/proc/cpuinfo")


def package_versions() -> dict[str, str | None]:
    """The installed version of each of `RESULT_PACKAGES`, None where one is not installed."""
    versions: dict[str, str | None] = {}
    for name in RESULT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor's `key: value` fields of a /proc/cpuinfo text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_description(cpuinfo: Path = _CPUINFO) -> dict[str, Any]:
    """The processor's name, its family and model numbers where the system says them, the vector
    instruction set PyTorch's CPU kernels dispatch to (e.g. AVX2, AVX512) and torch's thread count.

    Virtual machines often report only a vendor name ("AMD EPYC"); the family and model numbers
    still tell processor generations apart, and the capability is what decides the kernels.
    """
    try:
        fields = _cpuinfo_fields(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        fields = {}
    return {
        "name": fields.get("model name") or platform.processor() or platform.machine(),
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def run_environment(device: str) -> dict[str, Any]:
    """The `environment` entry of `results.json` for a run on `device`."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "device": device,
            "cpu": cpu_description(), "packages": package_versions()}
