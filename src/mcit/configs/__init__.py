"""Configuration files shipped with mcit: `accelerate/` holds launch configs for `accelerate launch`.

`python -m mcit.configs NAME` prints the path of `accelerate/NAME.yaml` (ddp, fsdp2,
deepspeed-zero2, deepspeed-zero3, cpu-2proc), so a launch command can name a shipped config
without knowing where the package is installed; see docs/distributed.md.
"""

from __future__ import annotations

from pathlib import Path

ACCELERATE = Path(__file__).resolve().parent / "accelerate"


def accelerate_config(name: str) -> Path:
    """The path of the shipped accelerate config `name` (with or without `.yaml`)."""
    path = ACCELERATE / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ACCELERATE.glob("*.yaml")))
        raise FileNotFoundError(f"no accelerate config named {name!r}; shipped: {known}")
    return path
