"""Configuration: defaults, YAML, flags and overrides, and one clear message for every bad value."""

from __future__ import annotations

import pytest

from mcit.core.configs import ConfigError, load_yaml
from mcit.core.errors import UserError
from mcit.run.config import load_config, resolve


def test_defaults_resolve_to_the_default_job():
    resolved = resolve()
    assert resolved.method_name == "seqft"
    assert resolved.run.model.name == "tiny-instruct"
    assert resolved.run.benchmark.name == "builtin"
    data = resolved.to_dict()
    assert data["method"] == {"name": "seqft"}
    assert data["train"]["lr"] == resolved.run.train.lr
    assert str(resolved.output_dir) == "runs/builtin/seqft-tiny-instruct-seed0"


def test_overrides_are_typed_by_the_field():
    resolved = resolve(overrides=["train.lr=1e-4", "train.max_steps=5", "eval.zero_shot=false",
                                  "benchmark.order=ocr,digits", "model.lora.targets=q_proj,v_proj"])
    assert resolved.run.train.lr == pytest.approx(1e-4)
    assert resolved.run.train.max_steps == 5
    assert resolved.run.eval.zero_shot is False
    assert resolved.run.benchmark.order == ["ocr", "digits"]
    assert resolved.run.model.lora.targets == ["q_proj", "v_proj"]
    assert resolve(overrides=["train.max_steps=null"]).run.train.max_steps is None


@pytest.mark.parametrize("override, words", [
    (["train.lrr=1"], ["train.lrr", "allowed keys", "lr"]),
    (["nonsense=1"], ["'nonsense'", "allowed keys"]),
    (["train.lr=fast"], ["train.lr", "expected a number", "fast"]),
    (["train.batch_size=2.5"], ["train.batch_size", "integer"]),
    (["train.batch_size=0"], ["train.batch_size", "below the minimum 1"]),
    (["train.schedule=wavy"], ["train.schedule", "'cosine'", "'linear'", "'constant'"]),
    (["eval.zero_shot=maybe"], ["eval.zero_shot", "true or false"]),
    (["method=nosuch"], ["unknown method 'nosuch'", "seqft"]),
    (["method.alpha=1"], ["method.alpha", "allowed keys"]),
    (["train.lr"], ["key=value"]),
    (["=3"], ["key before '='"]),
])
def test_bad_values_name_the_key_and_what_is_allowed(override, words):
    with pytest.raises(UserError) as info:
        resolve(overrides=override)
    message = str(info.value)
    for word in words:
        assert word in message
    assert "\n" not in message


def test_yaml_file_then_flags_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method: multitask\nseed: 3\ntrain:\n  lr: 0.01\n  epochs: 1\n")
    resolved = load_config(path, {"seed": 5, "model.name": None}, ["train.lr=0.02"])
    assert resolved.method_name == "multitask"
    assert resolved.run.seed == 5  # the flag wins over the file
    assert resolved.run.train.lr == pytest.approx(0.02)  # the override wins over both
    assert resolved.run.train.epochs == 1.0
    assert resolved.run.model.name == "tiny-instruct"


def test_method_given_as_mapping_with_options(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("method:\n  name: zeroshot\n")
    assert load_config(path, {}, []).method_name == "zeroshot"
    path.write_text("method:\n  name: zeroshot\n  lam: 3\n")
    with pytest.raises(ConfigError, match="method.lam"):
        load_config(path, {}, [])


@pytest.mark.parametrize("text, words", [
    ("train: [1, 2\n", ["malformed YAML", "line"]),
    ("- just\n- a list\n", ["expected a mapping"]),
])
def test_bad_yaml_files(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_yaml(path)
    for word in words:
        assert word in str(info.value)
    assert str(path) in str(info.value)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(UserError, match="malformed YAML"):
        load_yaml(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml", {}, [])
