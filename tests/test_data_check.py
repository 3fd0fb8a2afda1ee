"""Validation of benchmark data: every problem `mcit data check` reports, each in its own test."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mcit.core.errors import UserError
from mcit.data.check import CheckReport, Problem, check_benchmark_path
from mcit.data.public import load_folder_benchmark


def write_png(path: Path, mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 100).save(path)
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def record(rid: object, image: str | None = "a.png", question: str = "<image>\nWhat?", answer: str = "yes") -> dict:
    out: dict = {"id": rid, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if image is not None:
        out["image"] = image
    return out


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    """A valid benchmark folder with one task, GQA, whose files the tests then break."""
    root = tmp_path / "bench"
    write_png(root / "GQA" / "a.png")
    write_json(root / "GQA" / "train.json", [record("tr0"), record("tr1")])
    write_json(root / "GQA" / "test.json", [record("te0")])
    return root


def train(bench: Path) -> Path:
    return bench / "GQA" / "train.json"


def only_error(report: CheckReport) -> Problem:
    """The one error of `report` (the tests break one thing at a time)."""
    assert len(report.errors) == 1, report.format()
    return report.errors[0]


# --- report -------------------------------------------------------------------------------------


def test_valid_benchmark_passes_with_counts(bench: Path) -> None:
    report = check_benchmark_path(bench)
    assert report.ok
    assert report.problems == []
    assert report.tasks == {"GQA": {"train": 2, "test": 1}}
    text = report.format()
    assert "GQA: 2 train, 1 test records" in text
    assert text.splitlines()[-1] == "1 task, 0 errors, 0 notes: the data is ready to use"


def test_greyscale_and_rgba_images_are_valid(bench: Path) -> None:
    write_png(bench / "GQA" / "grey.png", mode="L")
    write_png(bench / "GQA" / "alpha.png", mode="RGBA")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(bench / "GQA" / "photo.jpg")
    write_json(train(bench), [record("g", "grey.png"), record("r", "alpha.png"), record("j", "photo.jpg")])
    assert check_benchmark_path(bench).ok


def test_problem_format_is_one_line() -> None:
    assert Problem("error", "f.json", "record 2 (id 'x')", "bad").format() == "f.json: record 2 (id 'x'): bad"
    assert Problem("note", "f.json", None, "fine").format() == "f.json: fine"


def test_all_problems_are_collected_across_tasks(bench: Path) -> None:
    write_json(train(bench), [record("tr0", "missing.png"), record("tr0")])
    write_json(bench / "U" / "train.json", [record("u0", None, "a text-only question")])
    (bench / "U" / "test.json").write_text("[", encoding="utf-8")
    report = check_benchmark_path(bench)
    assert not report.ok
    assert len(report.errors) == 3
    assert [n.message for n in report.notes] == [  # U is not a known benchmark task
        "task 'U': no metric declared and the name is not a known benchmark task; scoring by exact match "
        "(declare `metric:` in a benchmark YAML to change it)"]
    assert report.tasks == {"GQA": {"train": 0, "test": 1}, "U": {"train": 1, "test": 0}}
    text = report.format()
    assert "Errors:" in text and text.splitlines()[-1] == "2 tasks, 3 errors, 1 note: fix the errors before training"


# --- files --------------------------------------------------------------------------------------


def test_missing_json_file(bench: Path) -> None:
    (bench / "GQA" / "test.json").unlink()
    problem = only_error(check_benchmark_path(bench))
    assert problem.file == str(bench / "GQA" / "test.json")
    assert problem.record is None
    assert "file not found" in problem.message


def test_malformed_json_gives_line_and_column(bench: Path) -> None:
    train(bench).write_text('[\n  {"id": "a",\n   "image": "a.png" "x"}\n]', encoding="utf-8")
    problem = only_error(check_benchmark_path(bench))
    assert problem.file == str(train(bench))
    assert "malformed JSON at line 3, column 21" in problem.message


def test_non_utf8_json(bench: Path) -> None:
    train(bench).write_bytes('[{"id": "caf\u00e9"}]'.encode("latin-1"))
    problem = only_error(check_benchmark_path(bench))
    assert problem.file == str(train(bench))
    assert "not UTF-8" in problem.message and "0xe9" in problem.message


def test_top_level_not_a_list(bench: Path) -> None:
    write_json(train(bench), {"data": [record("a")]})
    problem = only_error(check_benchmark_path(bench))
    assert problem.file == str(train(bench))
    assert "the top level is a JSON object, expected a list of records" in problem.message


def test_empty_task(bench: Path) -> None:
    write_json(train(bench), [])
    problem = only_error(check_benchmark_path(bench))
    assert problem.file == str(train(bench))
    assert "task 'GQA' has no train records" in problem.message


# --- records ------------------------------------------------------------------------------------


def test_record_not_an_object(bench: Path) -> None:
    write_json(train(bench), [record("a"), "oops"])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1")
    assert "is a JSON string, expected an object" in problem.message


def test_record_without_id(bench: Path) -> None:
    write_json(train(bench), [record("a"), record(None)])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1")
    assert "has no 'id'" in problem.message


def test_numeric_ids_are_accepted(bench: Path) -> None:
    write_json(train(bench), [record(1), record(2)])
    assert check_benchmark_path(bench).ok


def test_duplicate_ids(bench: Path) -> None:
    write_json(train(bench), [record("a"), record("b"), record("a")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 2 (id 'a')")
    assert "duplicate id 'a' (also record 0)" in problem.message


def test_same_id_in_train_and_test_is_fine(bench: Path) -> None:
    write_json(bench / "GQA" / "test.json", [record("tr0")])
    assert check_benchmark_path(bench).ok


def test_record_without_human_turn(bench: Path) -> None:
    bad = record("h")
    bad["conversations"] = [{"from": "gpt", "value": "yes"}]
    write_json(train(bench), [record("a"), bad])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1 (id 'h')")
    assert "has no human turn" in problem.message


def test_record_without_conversations(bench: Path) -> None:
    write_json(train(bench), [{"id": "c", "image": "a.png"}])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 0 (id 'c')"
    assert "has no 'conversations' list" in problem.message


def test_record_without_gpt_answer(bench: Path) -> None:
    bad = record("g")
    bad["conversations"] = bad["conversations"][:1]
    write_json(train(bench), [bad])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 0 (id 'g')")
    assert "has no gpt answer" in problem.message


def test_record_with_empty_answer(bench: Path) -> None:
    write_json(train(bench), [record("e", answer="  ")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 0 (id 'e')")
    assert "empty gpt answer" in problem.message


def test_image_without_marker(bench: Path) -> None:
    write_json(train(bench), [record("m", "a.png", "What?")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 0 (id 'm')")
    assert "has an image but its first human turn has no <image> marker" in problem.message


def test_marker_without_image(bench: Path) -> None:
    write_json(train(bench), [record("n", None, "<image>\nWhat?")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 0 (id 'n')")
    assert "has an <image> marker but the record has no 'image'" in problem.message


def test_text_only_record_is_valid(bench: Path) -> None:
    write_json(train(bench), [record("t", None, "What is 2+2?", "4")])
    assert check_benchmark_path(bench).ok


def test_bad_answers_field(bench: Path) -> None:
    bad = record("r")
    bad["answers"] = "yes"
    write_json(train(bench), [bad])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 0 (id 'r')"
    assert "'answers' must be a list" in problem.message


@pytest.mark.parametrize("value, found", [(3, "a JSON number"), ("  ", "an empty string"), (["how many"], "a JSON list")])
def test_bad_question_type(bench: Path, value, found) -> None:
    bad = record("r")
    bad["question_type"] = value
    write_json(train(bench), [bad])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 0 (id 'r')")
    assert f"'question_type' is {found}, expected the name of the question's type" in problem.message
    assert "fix or remove it" in problem.message


def test_more_than_one_exchange_is_a_note(bench: Path) -> None:
    long = record("x")
    long["conversations"] += [{"from": "human", "value": "And?"}, {"from": "gpt", "value": "no"}]
    write_json(train(bench), [record("a"), long])
    report = check_benchmark_path(bench)
    assert report.ok
    (note,) = report.notes
    assert note.file == str(train(bench))
    assert "1 record has more than one human/gpt exchange (the first is record 1 (id 'x'))" in note.message


def test_unknown_task_name_metric_is_a_note(tmp_path: Path) -> None:
    write_png(tmp_path / "b2" / "mystery" / "a.png")
    write_json(tmp_path / "b2" / "mystery" / "train.json", [record("a")])
    write_json(tmp_path / "b2" / "mystery" / "test.json", [record("b")])
    report = check_benchmark_path(tmp_path / "b2")
    assert report.ok
    (note,) = report.notes
    assert note.file == str(tmp_path / "b2")
    assert note.message.startswith("task 'mystery': no metric declared")


# --- images -------------------------------------------------------------------------------------


def test_missing_image(bench: Path) -> None:
    write_json(train(bench), [record("a"), record("b", "img/none.png")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1 (id 'b')")
    assert "image 'img/none.png' not found" in problem.message


def test_undecodable_image(bench: Path) -> None:
    (bench / "GQA" / "bad.png").write_bytes(b"this is not an image")
    write_json(train(bench), [record("a"), record("b", "bad.png")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1 (id 'b')")
    assert "cannot be decoded by Pillow" in problem.message


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".jpg", "JPEG")])
def test_truncated_image(bench: Path, suffix: str, fmt: str) -> None:
    full = bench / "GQA" / f"full{suffix}"
    image = Image.new("RGB", (128, 128))
    for x in range(128):
        image.putpixel((x, (x * 7) % 128), (255, x * 2, 0))
    image.save(full, fmt)
    data = full.read_bytes()
    (bench / "GQA" / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    write_json(train(bench), [record("a", f"full{suffix}"), record("b", f"cut{suffix}")])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 1 (id 'b')"
    assert "cannot be decoded" in problem.message


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares `width`×`height` pixels but holds almost no data (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(11_000, 10_000), (20_000, 20_000)])
def test_image_over_100_megapixels(bench: Path, width: int, height: int) -> None:
    png_header_only(bench / "GQA" / "huge.png", width, height)
    write_json(train(bench), [record("a"), record("h", "huge.png")])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 1 (id 'h')"
    assert "larger than the 100-megapixel limit" in problem.message


def test_each_image_is_decoded_once_and_reported_per_record(bench: Path) -> None:
    (bench / "GQA" / "bad.png").write_bytes(b"junk")
    write_json(train(bench), [record("a", "bad.png"), record("b", "bad.png")])
    write_json(bench / "GQA" / "test.json", [record("c", "bad.png")])
    report = check_benchmark_path(bench)
    assert [p.record for p in report.errors] == ["record 0 (id 'a')", "record 1 (id 'b')", "record 0 (id 'c')"]


# --- image paths leaving the data folder --------------------------------------------------------


def test_dotdot_escaping_the_benchmark_folder(bench: Path) -> None:
    write_png(bench.parent / "secret.png")
    write_json(train(bench), [record("a"), record("d", "../../secret.png")])
    problem = only_error(check_benchmark_path(bench))
    assert (problem.file, problem.record) == (str(train(bench)), "record 1 (id 'd')")
    assert "outside the data folders" in problem.message


def test_dotdot_to_a_missing_file_outside_is_still_an_escape(bench: Path) -> None:
    write_json(train(bench), [record("d", "../../../nowhere.png")])
    problem = only_error(check_benchmark_path(bench))
    assert "leaves the data folders" in problem.message


def test_dotdot_inside_the_benchmark_folder_is_fine(bench: Path) -> None:
    write_png(bench / "shared" / "s.png")
    write_json(train(bench), [record("d", "../shared/s.png")])
    assert check_benchmark_path(bench).ok


def test_absolute_path_outside_is_an_error(bench: Path) -> None:
    outside = write_png(bench.parent / "elsewhere" / "o.png")
    write_json(train(bench), [record("o", str(outside))])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 0 (id 'o')"
    assert "outside the data folders" in problem.message


def test_absolute_path_inside_the_images_root_is_fine(bench: Path) -> None:
    outside = write_png(bench.parent / "elsewhere" / "o.png")
    write_json(train(bench), [record("o", str(outside))])
    assert check_benchmark_path(bench, images=bench.parent / "elsewhere").ok


def test_absolute_path_inside_the_benchmark_is_fine(bench: Path) -> None:
    write_json(train(bench), [record("o", str(bench / "GQA" / "a.png"))])
    assert check_benchmark_path(bench).ok


def test_symlink_leaving_the_benchmark_folder(bench: Path) -> None:
    target = write_png(bench.parent / "private" / "p.png")
    (bench / "GQA" / "link.png").symlink_to(target)
    write_json(train(bench), [record("a"), record("s", "link.png")])
    problem = only_error(check_benchmark_path(bench))
    assert problem.record == "record 1 (id 's')"
    assert f"resolves to {target.resolve()}, outside the data folders" in problem.message


# --- YAML benchmarks and the loaders ------------------------------------------------------------


def test_yaml_benchmark_is_checked_too(bench: Path) -> None:
    config = bench / "stream.yaml"
    config.write_text("name: s\ntasks:\n  - {name: t, train: GQA/train.json, test: GQA/test.json}\n", encoding="utf-8")
    assert check_benchmark_path(config).tasks == {"t": {"train": 2, "test": 1}}
    write_json(train(bench), [record("a", "gone.png")])
    problem = only_error(check_benchmark_path(config))
    assert problem.file == str(train(bench)) and "not found" in problem.message


def test_check_of_something_else_is_a_user_error(bench: Path) -> None:
    with pytest.raises(UserError, match="not a benchmark"):
        check_benchmark_path(train(bench))


def test_loader_refuses_what_the_check_reports(bench: Path) -> None:
    write_json(train(bench), [record("a"), record("a", answer="")])
    report = check_benchmark_path(bench)
    with pytest.raises(UserError) as exc:
        load_folder_benchmark(bench)
    message = str(exc.value)
    for problem in report.errors:
        assert problem.format() in message
    assert f"run `mcit data check {bench}` for the full report" in message
