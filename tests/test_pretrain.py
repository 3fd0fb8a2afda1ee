"""`mcit pretrain`: both recipes run end to end (with a few steps) and give loadable half-precision models."""

from __future__ import annotations

import json
import random

import pytest
import torch

from mcit.core.errors import UserError
from mcit.data.builtin.scene import GRID
from mcit.data.builtin.vision_targets import vision_example
from mcit.run.pretrain import RECIPES, language_stage_config, pretrain, start_model
from mcit.run.pretrain_vision import DenseHeads, _spread, _targets


def test_spread_puts_each_cell_target_on_its_patches():
    cells = torch.arange(9).reshape(1, 9)
    patches = _spread(cells, side=6, rows=3, columns=3)
    assert patches.shape == (1, 6, 6)
    assert patches[0, 0, 0] == patches[0, 1, 1] == 0
    assert patches[0, 0, 2] == 1 and patches[0, 5, 5] == 8 and patches[0, 2, 0] == 3
    letters = _spread(torch.tensor([[4, 5, 6]]), side=6, rows=1, columns=3)
    assert letters[0, :, 0].tolist() == [4] * 6 and letters[0, 3, 5] == 6


def test_every_patch_is_taught_its_own_grid_cell():
    side = 12
    examples = [vision_example(random.Random(seed)) for seed in range(2)]
    cells = _targets(examples, side)["cell"]
    assert cells.shape == (2, side, side) and torch.equal(cells[0], cells[1])  # the place, not the content
    step = side // GRID
    for row in range(GRID):
        for column in range(GRID):
            block = cells[0, row * step:(row + 1) * step, column * step:(column + 1) * step]
            assert (block == row * GRID + column).all()
    logits = DenseHeads(width=8)(torch.zeros(2, side, side, 8))
    assert logits["cell"].shape == (2, side, side, GRID * GRID)


def test_unknown_recipe_is_refused():
    with pytest.raises(UserError, match="tiny-base"):
        pretrain("tiny-huge", quiet=True)


def test_the_instruction_stage_trains_on_the_recipes_records_and_steps(tmp_path):
    recipe = RECIPES["tiny-instruct"]
    config = language_stage_config(recipe, "tiny-base", None, tmp_path).to_dict()
    assert config["benchmark"]["train_size"] == recipe.train_size == 48000
    assert config["train"]["max_steps"] == recipe.steps
    # the caption stage keeps its stream's size; a user's settings win over the recipe's
    assert language_stage_config(RECIPES["tiny-base"], "x", None, tmp_path).to_dict()["benchmark"]["train_size"] is None
    quick = language_stage_config(recipe, "tiny-base", 2, tmp_path, ["benchmark.train_size=64"]).to_dict()
    assert (quick["benchmark"]["train_size"], quick["train"]["max_steps"]) == (64, 2)


def test_both_recipes_build_loadable_models(tmp_path):
    from mcit.models.config import ModelConfig
    from mcit.models.loading import load_model

    quick = ["benchmark.train_size=64", "benchmark.test_size=4"]
    base = pretrain("tiny-base", output=str(tmp_path / "tiny-base"), steps=2, quiet=True, overrides=quick)
    # tiny-instruct starts from the freshly built sibling, not the installed one
    assert start_model(RECIPES["tiny-instruct"], str(tmp_path / "tiny-instruct")) == str(base)
    instruct = pretrain("tiny-instruct", output=str(tmp_path / "tiny-instruct"), steps=2, quiet=True, overrides=quick)
    for folder in (base, instruct):
        assert json.loads((folder / "config.json").read_text())["model_type"] == "llava"
        assert (folder / "model.safetensors").stat().st_size < 8_000_000  # half precision, a few MB
        model = load_model(ModelConfig(name=str(folder)))
        assert model.network.config.model_type == "llava"
        # the tests run with HF_HUB_OFFLINE=1; the saved tokenizer must not pin its users offline
        assert "local_files_only" not in json.loads((folder / "tokenizer_config.json").read_text())
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left beside the models
