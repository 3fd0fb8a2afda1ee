"""`mcit compare` notes a group whose seeds ran on different software or processors."""

from __future__ import annotations

from fake_runs import write_run
from mcit.run.cli import main
from mcit.run.compare import compare, format_table
from mcit.run.compare_environment import differences, unrecorded


def _environment(transformers: str = "5.24.0", family: str = "25", capability: str = "AVX2") -> dict:
    return {"python": "3.11.7", "torch": "2.13.0+cpu", "platform": "Linux-a", "device": "cpu",
            "cpu": {"name": "AMD EPYC", "family": family, "model": "1", "capability": capability, "threads": 1},
            "packages": {"torch": "2.13.0+cpu", "transformers": transformers, "peft": "0.21.2"}}


def test_the_same_environment_gives_no_note(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"seqft-seed{seed}", "seqft", seed, environment=_environment())
    text = format_table(compare([tmp_path]))
    assert "note:" not in text


def test_a_package_and_a_processor_that_moved_are_named_with_their_seeds(tmp_path):
    write_run(tmp_path / "ewc-seed0", "ewc", 0, environment=_environment("5.23.0", family="25", capability="AVX512"))
    write_run(tmp_path / "ewc-seed1", "ewc", 1, environment=_environment("5.24.0"))
    write_run(tmp_path / "ewc-seed2", "ewc", 2, environment={**_environment("5.24.0"), "platform": "Linux-b"})
    write_run(tmp_path / "seqft-seed0", "seqft", 0, environment=_environment())
    text = format_table(compare([tmp_path]))
    notes = [line for line in text.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "ewc (tiny-random)" in notes[0]
    assert "cpu.capability AVX512 (seed 0), AVX2 (seeds 1, 2)" in notes[0]
    assert "packages.transformers 5.23.0 (seed 0), 5.24.0 (seeds 1, 2)" in notes[0]
    assert "platform" not in notes[0] and "family" not in notes[0]
    assert "note: the seeds of ewc" in format_table(compare([tmp_path]), "markdown")


def test_runs_made_before_a_section_was_recorded_are_said_apart(tmp_path):
    old = {"python": "3.11.7", "torch": "2.13.0+cpu", "platform": "Linux-a", "device": "cpu"}
    runs = [(0, old), (1, _environment()), (2, _environment())]
    assert differences(runs) == []
    assert unrecorded(runs) == ["cpu recorded for seeds 1, 2 only", "packages recorded for seeds 1, 2 only"]
    assert unrecorded([(0, old), (1, old)]) == []
    assert differences([(0, {}), (1, old)]) == [
        "python not recorded (seed 0), 3.11.7 (seed 1)", "torch not recorded (seed 0), 2.13.0+cpu (seed 1)",
        "device not recorded (seed 0), cpu (seed 1)"]
    without_tokenizers = _environment()
    del without_tokenizers["packages"]["transformers"]
    runs = [(0, without_tokenizers), (1, _environment("5.23.0")), (2, _environment("5.24.0"))]
    assert differences(runs) == ["packages.transformers 5.23.0 (seed 1), 5.24.0 (seed 2)"]
    assert unrecorded(runs) == ["packages.transformers recorded for seeds 1, 2 only"]
    write_run(tmp_path / "si-seed0", "si", 0, environment=old)
    write_run(tmp_path / "si-seed1", "si", 1, environment=_environment())
    notes = [line for line in format_table(compare([tmp_path])).splitlines() if line.startswith("note:")]
    assert notes == ["note: not every seed of si (tiny-random) recorded what it ran on: "
                     "cpu recorded for seed 1 only; packages recorded for seed 1 only"]


def test_csv_stays_machine_readable_and_the_note_goes_to_stderr(tmp_path, capsys):
    write_run(tmp_path / "mas-seed0", "mas", 0, environment=_environment("5.23.0"))
    write_run(tmp_path / "mas-seed1", "mas", 1, environment=_environment("5.24.0"))
    assert main(["compare", str(tmp_path), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "note" not in out and out.startswith("method,")
    assert "packages.transformers 5.23.0 (seed 0), 5.24.0 (seed 1)" in err
