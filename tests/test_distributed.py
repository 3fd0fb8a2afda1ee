"""Distributed training: two CPU processes (gloo) standing in for two GPUs, against one process.

The real command line runs six methods (SeqFT, EWC, ER, A-GEM, Fwd-Prompt, DGG) on a two-task
built-in stream twice with the same global batch: once as `python -m mcit run` in one process,
once under `accelerate launch` with the shipped `cpu-2proc` config. The two runs must agree: the
accuracy matrix, the loss of every step, the trained weights, each method's state (Fisher
importance, anchors, subspace bases, buffers), its report (buffer contents, A-GEM's projected
steps, DGG's gate, Fwd-Prompt's selections), the predictions, and the log (one line per event:
only the main process writes). A `torchrun` launch of SeqFT without `device=cpu` checks that
mcit finds the CPU process group by itself and that `python -m mcit` works under torchrun.

The stream mixes a task with answers of one or two words (choice) and one with answers of
uneven length (caption), so that a process's share of the answer tokens differs from its share
of the records. Measured (with generator version 5's one-letter choice answers) without
`mcit.run.token_share`: losses 4e-2 apart, weights 4e-2, EWC's state 7e-2 (relative), A-GEM's
projected steps different, and yet the same matrix (which is why more than the matrix is
compared); with it, losses 1e-6 apart and weights 1e-4.

The multi-process tests are marked `distributed`. They run by default and take about two
minutes on two cores, more on a busy machine; skip them with `-m "not slow and not distributed"`
(a second `-m` replaces the default `-m "not slow"`). Unit tests of the refusals, the token
weighting and the shipped configs run in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mcit.configs import accelerate_config
from mcit.core.errors import UserError
from mcit.methods.registry import build_method
from mcit.run.distributed import check_setup, reads_gradients
from mcit.run.token_share import answer_tokens, token_share

METHODS = ["seqft", "ewc", "er", "agem", "fwd-prompt", "dgg"]

#: Two tasks, a small global batch of 8 (4 per process), a learning rate low enough that the
#: float rounding of summing gradients in another order is not amplified into a different path.
SETTINGS = ["--model", "tiny-random", "--order", "choice,caption", "--quiet", "device=cpu",
            "benchmark.train_size=32", "benchmark.test_size=8", "train.max_steps=12", "train.batch_size=8",
            "train.lr=5e-3", "train.warmup_ratio=0", "train.log_every=1", "eval.batch_size=8",
            "model.lora.rank=16"]
METHOD_OPTIONS = ["ewc.samples=16", "er.buffer_size=8", "agem.buffer_size=8", "dgg.buffer_size=8"]

LOSS_TOLERANCE = 1e-4     # measured: at most 1e-6 (without token weighting: 4e-2)
WEIGHT_TOLERANCE = 2e-3   # measured: at most 1.1e-4, after 24 Adam steps at lr 5e-3
STATE_TOLERANCE = 1e-3    # relative; measured: at most 1.2e-5 (Fisher), 0 (bases, buffers)
MATRIX_TOLERANCE = 1e-6   # measured: identical matrices and predictions


def _environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def _run(command: list[str]) -> None:
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One folder with `one/METHOD-seed0` (one process) and `two/METHOD-seed0` (two processes)."""
    root = tmp_path_factory.mktemp("distributed")
    common = ["run", "--methods", ",".join(METHODS), *SETTINGS, *METHOD_OPTIONS]
    _run([sys.executable, "-m", "mcit", *common, "--output", str(root / "one")])
    _run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config("cpu-2proc")),
          "-m", "mcit", *common, "--output", str(root / "two")])
    return root


def _results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _relative(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """‖a − b‖ / ‖a‖ over all tensors of two mappings with the same keys."""
    assert sorted(a) == sorted(b)
    difference = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in a) ** 0.5
    size = sum(float(a[k].double().pow(2).sum()) for k in a) ** 0.5
    return difference / max(size, 1e-12)


def _matrix_difference(a: list[list[float | None]], b: list[list[float | None]]) -> float:
    assert len(a) == len(b)
    return max(abs((x or 0.0) - (y or 0.0)) for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b))


@pytest.mark.distributed
@pytest.mark.parametrize("method", METHODS)
def test_two_processes_match_one(runs, method):
    one, two = runs / "one" / f"{method}-seed0", runs / "two" / f"{method}-seed0"
    first, second = _results(one), _results(two)
    assert _matrix_difference(first["accuracy_matrix"], second["accuracy_matrix"]) <= MATRIX_TOLERANCE
    assert first["method_report"] == second["method_report"]  # buffers, projected steps, gate, selections

    losses = [[e["loss"] for e in _log(run) if e["event"] == "train"] for run in (one, two)]
    assert len(losses[0]) == len(losses[1]) == 24
    assert max(abs(a - b) for a, b in zip(*losses)) <= LOSS_TOLERANCE

    # only the main process writes: every event is logged once, as in the one-process run
    assert Counter(e["event"] for e in _log(one)) == Counter(e["event"] for e in _log(two))

    for stage in sorted(p.name for p in (one / "checkpoints").iterdir()):
        weights = [_tensors(run / "checkpoints" / stage / "trainable.safetensors") for run in (one, two)]
        assert sorted(weights[0]) == sorted(weights[1])
        worst = max(float((weights[0][k] - weights[1][k]).abs().max()) for k in weights[0])
        assert worst <= WEIGHT_TOLERANCE, f"{stage}: weights differ by {worst}"
        states = [_tensors(run / "checkpoints" / stage / "method.safetensors") for run in (one, two)]
        assert _relative(*states) <= STATE_TOLERANCE, f"{stage}: method state differs"

    for file in sorted((one / "predictions").rglob("*.jsonl")):
        mine = [json.loads(line)["prediction"] for line in file.read_text().splitlines()]
        theirs = [json.loads(line)["prediction"] for line in (two / file.relative_to(one)).read_text().splitlines()]
        assert mine == theirs, f"{file.relative_to(one)}"


@pytest.mark.distributed
def test_torchrun_finds_the_cpu_group_by_itself(runs, tmp_path):
    """`torchrun -m mcit run` without device=cpu: on a machine without a GPU both processes join one
    gloo group (rather than each running the stream alone) and match the one-process run."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: without device=cpu the launch would use it, not the CPU")
    settings = [s for s in SETTINGS if s != "device=cpu"]
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "mcit", "run", "--method", "seqft", *settings, "--output", str(tmp_path / "torchrun")])
    reference, launched = _results(runs / "one" / "seqft-seed0"), _results(tmp_path / "torchrun")
    assert _matrix_difference(reference["accuracy_matrix"], launched["accuracy_matrix"]) <= MATRIX_TOLERANCE
    losses = [[e["loss"] for e in _log(run) if e["event"] == "train"]
              for run in (runs / "one" / "seqft-seed0", tmp_path / "torchrun")]
    assert max(abs(a - b) for a, b in zip(*losses)) <= LOSS_TOLERANCE


# ---- in-process unit tests ---------------------------------------------------------------------


class _Reducer:
    """A stand-in accelerator for `token_share`: N processes whose answer-token counts are given."""

    def __init__(self, counts: list[int]):
        self.num_processes, self.device, self.counts = len(counts), torch.device("cpu"), counts

    def reduce(self, tensor, reduction="sum"):
        assert reduction == "sum"
        return torch.tensor(float(sum(self.counts)))


def _labels(answer_lengths: list[int], width: int = 12) -> dict:
    labels = torch.full((len(answer_lengths), width), -100)
    for row, length in enumerate(answer_lengths):
        labels[row, width - length:] = 7
    return {"labels": labels}


def test_token_share_weights_each_process_by_its_answer_tokens():
    batch = _labels([3, 1])
    assert int(answer_tokens(batch)) == 4
    share = token_share(batch, _Reducer([4, 12]))
    assert float(share) == pytest.approx(2 * 4 / 16)  # N · n_local / n_global
    # the averaged, weighted token means equal the token mean over the global batch
    means, counts = torch.tensor([1.0, 3.0]), [4, 12]
    weighted = sum(m * 2 * c / 16 for m, c in zip(means, counts)) / 2
    assert float(weighted) == pytest.approx((1.0 * 4 + 3.0 * 12) / 16)
    assert token_share(batch, SimpleNamespace(num_processes=1)) is None


def _accelerator(kind: str, processes: int = 2, zero_stage: int | None = None):
    from accelerate.utils import DistributedType

    plugin = SimpleNamespace(zero_stage=zero_stage, deepspeed_config={})
    return SimpleNamespace(num_processes=processes, distributed_type=getattr(DistributedType, kind),
                           state=SimpleNamespace(deepspeed_plugin=plugin))


def test_setups_the_loop_cannot_run_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    seqft, ewc, dgg = build_method("seqft", {}), build_method("ewc", {}), build_method("dgg", {})
    check_setup(_accelerator("MULTI_CPU"), dgg, "dgg", 4)  # DDP: everything runs
    check_setup(_accelerator("DEEPSPEED", zero_stage=2), seqft, "seqft", 1)
    with pytest.raises(UserError, match="accelerate joined 1"):
        check_setup(_accelerator("NO", processes=1), seqft, "seqft", 1)
    with pytest.raises(UserError, match="FSDP is not supported yet"):
        check_setup(_accelerator("FSDP"), seqft, "seqft", 1)
    with pytest.raises(UserError, match="ZeRO-3 is not supported yet.*'dgg' also reads gradients"):
        check_setup(_accelerator("DEEPSPEED", zero_stage=3), dgg, "dgg", 1)
    with pytest.raises(UserError, match="method 'ewc' reads or edits gradients"):
        check_setup(_accelerator("DEEPSPEED", zero_stage=2), ewc, "ewc", 1)
    with pytest.raises(UserError, match="train.grad_accumulation"):
        check_setup(_accelerator("DEEPSPEED", zero_stage=2), seqft, "seqft", 2)


def test_methods_that_read_gradients_say_so():
    readers = {"ewc", "mas", "si", "agem", "dgg", "fwd-prompt", "ewc-tir", "mas-tir", "si-tir"}
    for name in sorted(readers | {"seqft", "er", "eproj", "multitask", "zeroshot"}):
        assert reads_gradients(build_method(name, {})) == (name in readers), name


def test_shipped_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    expected = {"ddp": (DistributedType.MULTI_GPU, None), "fsdp2": (DistributedType.FSDP, 2),
                "deepspeed-zero2": (DistributedType.DEEPSPEED, 2), "deepspeed-zero3": (DistributedType.DEEPSPEED, 3),
                "cpu-2proc": (DistributedType.MULTI_GPU, None)}
    for name, (kind, level) in expected.items():
        config = load_config_from_file(str(accelerate_config(name)))
        assert config.distributed_type == kind, name
        if kind == DistributedType.FSDP:
            assert config.fsdp_config["fsdp_version"] == level
        if kind == DistributedType.DEEPSPEED:
            assert config.deepspeed_config["zero_stage"] == level
    with pytest.raises(FileNotFoundError, match="shipped: cpu-2proc, ddp"):
        accelerate_config("zero4")
