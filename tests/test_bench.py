"""`mcit bench` on the tiny model: the JSON it writes, ratios against SeqFT from the same run, and
which methods' state grows with the number of tasks. Nothing here asserts on a time."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mcit.run.cli import main


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One short `mcit bench` of EWC, ER and EProj (SeqFT and the plain loop come with it), with growth."""
    output = tmp_path_factory.mktemp("bench") / "bench.json"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["bench", "--methods", "ewc,er,eproj", "--steps", "1", "--repeats", "2", "--warmup", "0",
                     "--batch", "4", "--growth", "1,3", "--output", str(output), "--quiet"]) == 0
    finally:
        torch.set_num_threads(previous)
    return json.loads(output.read_text())


MEASURES = ("step_time_s", "step_time_ratio", "peak_memory_bytes", "peak_memory_ratio")


def test_json_has_every_measure_with_ratios_against_seqft_of_the_same_run(bench):
    assert {"device", "model", "batch", "baseline", "methods"} <= set(bench)
    assert bench["model"] == "tiny-random" and bench["batch"] == 4
    assert list(bench["methods"]) == ["seqft", "ewc", "er", "eproj"]  # seqft always, and first
    reference = bench["methods"]["seqft"]
    for name, entry in [("baseline", bench["baseline"]), *bench["methods"].items()]:
        assert set(MEASURES) <= set(entry), name
        assert entry["step_time_s"] > 0 and entry["peak_memory_bytes"] > 0, name
        assert len(entry["round_times_s"]) == 2 and entry["step_time_s"] == pytest.approx(
            sum(entry["round_times_s"]) / 2), name
        assert entry["step_time_ratio"] == pytest.approx(entry["step_time_s"] / reference["step_time_s"]), name
        assert entry["peak_memory_ratio"] == pytest.approx(
            entry["peak_memory_bytes"] / reference["peak_memory_bytes"]), name
    assert reference["step_time_ratio"] == 1.0 and reference["peak_memory_ratio"] == 1.0
    assert isinstance(bench["settings"]["malloc_pinned"], bool)
    for name, entry in bench["methods"].items():
        assert isinstance(entry["state_bytes"], int) and isinstance(entry["added_parameter_bytes"], int), name
    # EWC keeps Ω and θ* (two float32 copies of the trainable parameters); SeqFT keeps nothing.
    assert bench["methods"]["ewc"]["state_bytes"] > 1000 * bench["methods"]["seqft"]["state_bytes"]
    assert bench["methods"]["eproj"]["added_parameter_bytes"] > 0  # a second projector
    assert all(math.isfinite(e["step_time_ratio"]) for e in bench["methods"].values())


def test_growth_shows_which_state_grows_with_the_tasks(bench):
    growth = bench["growth"]
    assert set(growth) == {"seqft", "ewc", "er", "eproj"}
    assert [row["tasks"] for row in growth["ewc"]] == [1, 3]
    ewc, er, eproj = growth["ewc"], growth["er"], growth["eproj"]
    assert ewc[0]["state_bytes"] == ewc[1]["state_bytes"]  # one Ω and one anchor whatever the tasks
    assert er[1]["state_bytes"] > er[0]["state_bytes"]  # the buffer gains each finished task's records
    assert eproj[1]["added_parameter_bytes"] == 3 * eproj[0]["added_parameter_bytes"]  # one projector per task
    assert ewc[0]["added_parameter_bytes"] == er[1]["added_parameter_bytes"] == 0
    for rows in growth.values():
        for row in rows:
            assert row["step_time_ratio"] == pytest.approx(
                row["step_time_s"] / next(r for r in growth["seqft"] if r["tasks"] == row["tasks"])["step_time_s"])


def test_one_subject_at_a_time_as_on_a_gpu(tmp_path):
    output = tmp_path / "bench.json"
    assert main(["bench", "--methods", "si", "--sequential", "--steps", "1", "--repeats", "1", "--warmup", "0",
                 "--batch", "2", "--output", str(output), "--quiet"]) == 0
    results = json.loads(output.read_text())
    assert list(results["methods"]) == ["seqft", "si"] and results["methods"]["si"]["state_bytes"] > 0
    assert results["baseline"]["step_time_ratio"] > 0


def test_the_synthetic_stream_has_one_text_length_and_unique_task_names():
    from mcit.models.tiny.build import build_processor
    from mcit.run.bench_stream import synthetic_stream, text_length

    tokenizer = build_processor().tokenizer
    tasks = synthetic_stream(10, records=4, tokenizer=tokenizer, text_tokens=48)
    assert len({t.name for t in tasks}) == 10 and tasks[8].name == "choice-2"
    assert {text_length(r, tokenizer) for t in tasks for r in t.train} == {48}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_the_7b_shape_is_refused_without_a_gpu(capsys):
    assert main(["bench", "--model", "llava-7b-shape", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "llava-7b-shape" in error and "no GPU" in error and "tiny" in error


def test_the_7b_shape_has_llava_1_5_7b_dimensions():
    from transformers import LlavaForConditionalGeneration

    from mcit.models.shapes import llava_7b_shape_config, shape_processor

    processor = shape_processor()
    config = llava_7b_shape_config(processor.tokenizer)
    with torch.device("meta"):  # counts parameters without allocating them
        model = LlavaForConditionalGeneration(config)
    assert 7.0e9 < sum(p.numel() for p in model.parameters()) < 7.1e9
    from mcit.models.batches import training_batch
    from mcit.run.bench_stream import synthetic_stream

    records = synthetic_stream(1, records=1, tokenizer=processor.tokenizer, text_tokens=128)[0].train
    batch = training_batch(processor, records)
    assert tuple(batch["pixel_values"].shape) == (1, 3, 336, 336)
    image_tokens = int((batch["input_ids"] == config.image_token_index).sum())
    assert image_tokens == 576 and batch["input_ids"].shape[1] - image_tokens >= 128
