"""`mcit pretrain`: rebuild the built-in start models with a documented, deterministic recipe.

    tiny-base      tiny-random (seed 0)
                   --vision encoder alone, dense targets (the part CLIP plays for LLaVA)-->
                   --language model and projector on the caption mix, encoder frozen-->  tiny-base
    tiny-instruct  tiny-base --language model and projector on the instruction mix-->  tiny-instruct

The language stages are ordinary mcit runs (the `multitask` method on the `pretrain-base` or
`pretrain-instruct` stream with `model.tune=full`), so they use the same loop, data and
checkpoints as any run. The result is saved as a Hugging Face folder in half precision (a few
MB) and loads like any other model.
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
    #: Records of the language stage's mix; None keeps the stream's default.
    train_size: int | None = None
    vision_steps: int = 0
    vision_lr: float = 5e-4
    vision_batch_size: int = 64


RECIPES = {
    "tiny-base": Recipe(stream="pretrain-base", start="tiny-random", steps=1000, lr=1e-3, batch_size=32,
                        vision_steps=2500),
    # 8000 steps over 48,000 records: with 3000 over 24,000 the start model counts a named shape
    # or colour beyond one object too seldom for `count` (docs/benchmark.md, "More instruction steps").
    "tiny-instruct": Recipe(stream="pretrain-instruct", start="tiny-base", steps=8000, lr=5e-4, batch_size=32,
                            train_size=48000),
}


def start_model(recipe: Recipe, output: str | None) -> str:
    """What a recipe starts from: a freshly built sibling folder when writing elsewhere, else the built-in."""
    if recipe.start != "tiny-random" and output:
        sibling = Path(output).parent / recipe.start
        if (sibling / "config.json").exists():
            return str(sibling)
    return recipe.start


def _vision_stage(start: str, recipe: Recipe, steps: int, folder: Path, console) -> str:
    """Train the vision encoder of `start` alone and save the model to `folder`; returns its path."""
    from mcit.models.config import ModelConfig
    from mcit.models.loading import load_model
    from mcit.models.tiny.build import save_tiny
    from mcit.run.pretrain_vision import pretrain_vision

    model = load_model(ModelConfig(name=start, tune="none"), seed=0)
    with console.bar(steps, "vision encoder", "step") as bar:
        def on_step(step: int, loss: float) -> None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        accuracy = pretrain_vision(model, steps, recipe.vision_lr, recipe.vision_batch_size, on_step=on_step)
    console.say("vision encoder, held-out accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    save_tiny(model.network, model.processor, folder)
    return str(folder)


def language_stage_config(recipe: Recipe, start: str, steps: int | None, output: Path,
                          overrides: list[str] | None = None):
    """The run that trains a start model's language side: `multitask`, every language-model
    weight, the recipe's mix, steps and learning rate; `overrides` win over the recipe."""
    from mcit.run.config import resolve

    return resolve({
        "method": "multitask",
        "model": {"name": start, "tune": "full", "tune_vision": False},
        "benchmark": {"name": recipe.stream, "train_size": recipe.train_size},
        "train": {"lr": recipe.lr, "batch_size": recipe.batch_size,
                  "max_steps": steps if steps is not None else recipe.steps, "warmup_ratio": 0.03,
                  "log_every": 50},
        "eval": {"zero_shot": False, "save_predictions": False},
        "seed": 0,
        "output": str(output),
    }, overrides)


def pretrain(name: str, output: str | None = None, steps: int | None = None, quiet: bool = False,
             overrides: list[str] | None = None) -> Path:
    """Train start model `name` by its recipe and save it to `output` (default: the package's folder).

    `steps`, when given, replaces the step counts of every stage (for quick checks); `overrides`
    are `key=value` settings of the language stage's run (e.g. `benchmark.test_size=8`).
    """
    from mcit.core.files import atomic_folder
    from mcit.models.tiny.build import save_tiny
    from mcit.run.console import Console
    from mcit.run.loop import run_stream
    from mcit.run.rundir import RunDirectory

    if name not in RECIPES:
        raise UserError(f"no pre-training recipe for '{name}'; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    folder = Path(output) if output else WEIGHTS_DIR / name
    console = Console(quiet=quiet)
    with tempfile.TemporaryDirectory(prefix=f"mcit-pretrain-{name}-") as work:
        start = start_model(recipe, output)
        if recipe.vision_steps:
            vision_steps = steps if steps is not None else recipe.vision_steps
            start = _vision_stage(start, recipe, vision_steps, Path(work) / "vision", console)
        run_folder = Path(work) / "run"
        resolved = language_stage_config(recipe, start, steps, run_folder, overrides)
        run_dir = RunDirectory(run_folder)
        run_dir.prepare(resolved.to_dict(), resume=False, overwrite=True)
        _, model = run_stream(resolved, run_dir, resume=False, console=console)
        with atomic_folder(folder) as tmp:  # a killed pretraining never leaves half a model behind
            save_tiny(model.network, model.processor, tmp, dtype="float16")
            tmp.chmod(0o755)
    if not quiet:
        print(f"saved {name} to {folder}")
    return folder
