"""`mcit pretrain`: rebuild the built-in start models with a documented, deterministic recipe.

    tiny-base      tiny-random (seed 0) --full training on the caption mix-->  tiny-base
    tiny-instruct  tiny-base            --full training on the instruction mix-->  tiny-instruct

Both stages are ordinary mcit runs (the `multitask` method on the `pretrain-base` or
`pretrain-instruct` stream, every weight training, the vision encoder included), so the recipe
uses the same loop, data and checkpoints as any run; the result is saved as a Hugging Face folder
in half precision (a few MB) and loads like any other model.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcit.core.errors import UserError
from mcit.models.loading import WEIGHTS_DIR


@dataclass(frozen=True)
class Recipe:
    """How one start model is made."""

    stream: str
    start: str
    steps: int
    lr: float
    batch_size: int


RECIPES = {
    "tiny-base": Recipe(stream="pretrain-base", start="tiny-random", steps=3000, lr=1e-3, batch_size=32),
    "tiny-instruct": Recipe(stream="pretrain-instruct", start="tiny-base", steps=2000, lr=5e-4, batch_size=32),
}


def start_model(recipe: Recipe, output: str | None) -> str:
    """What a recipe starts from: a freshly built sibling folder when writing elsewhere, else the built-in."""
    if recipe.start != "tiny-random" and output:
        sibling = Path(output).parent / recipe.start
        if (sibling / "config.json").exists():
            return str(sibling)
    return recipe.start


def pretrain(name: str, output: str | None = None, steps: int | None = None, quiet: bool = False) -> Path:
    """Train start model `name` by its recipe and save it to `output` (default: the package's folder)."""
    from mcit.models.tiny.build import save_tiny
    from mcit.run.config import resolve
    from mcit.run.console import Console
    from mcit.run.loop import run_stream
    from mcit.run.rundir import RunDirectory

    if name not in RECIPES:
        raise UserError(f"no pre-training recipe for '{name}'; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    folder = Path(output) if output else WEIGHTS_DIR / name
    with tempfile.TemporaryDirectory(prefix=f"mcit-pretrain-{name}-") as work:
        resolved = resolve({
            "method": "multitask",
            "model": {"name": start_model(recipe, output), "tune": "full", "tune_vision": True},
            "benchmark": {"name": recipe.stream},
            "train": {"lr": recipe.lr, "batch_size": recipe.batch_size,
                      "max_steps": steps if steps is not None else recipe.steps, "warmup_ratio": 0.03,
                      "log_every": 50},
            "eval": {"zero_shot": False, "save_predictions": False},
            "seed": 0,
            "output": work,
        })
        run_dir = RunDirectory(work)
        run_dir.prepare(resolved.to_dict(), resume=False, overwrite=True)
        _, model = run_stream(resolved, run_dir, resume=False, console=Console(quiet=quiet))
        save_tiny(model.network, model.processor, folder, dtype="float16")
    if not quiet:
        print(f"saved {name} to {folder}")
    return folder
