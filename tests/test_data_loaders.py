"""Loading public benchmarks: CoIN/UCIT-style folders, benchmark YAML files, task order and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mcit.core.errors import UserError
from mcit.data.conversation import read_conversation_file, strip_image_marker
from mcit.data.public import load_benchmark_path, load_folder_benchmark, load_yaml_benchmark
from mcit.data.schema import METRICS
from mcit.data.task_metrics import metric_for_task


def write_png(path: Path, mode: str = "RGB", color: object = 128) -> Path:
    """An 8×8 PNG image at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8), color).save(path)
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def record(rid: str, image: str | None, question: str, answer: str, **extra: object) -> dict:
    """A LLaVA conversation record; the question gets the image marker when there is an image."""
    value = f"<image>\n{question}" if image is not None else question
    out: dict = {"id": rid, "conversations": [{"from": "human", "value": value}, {"from": "gpt", "value": answer}]}
    if image is not None:
        out["image"] = image
    out.update(extra)
    return out


def make_task(bench: Path, name: str, n_train: int = 2, n_test: int = 1) -> None:
    """A task folder with its own images and train/test files."""
    for i in range(n_train + n_test):
        write_png(bench / name / "img" / f"{i}.png")
    write_json(bench / name / "train.json",
               [record(f"{name}-tr{i}", f"img/{i}.png", f"question {i}?", f"answer {i}") for i in range(n_train)])
    write_json(bench / name / "test.json",
               [record(f"{name}-te{i}", f"img/{n_train + i}.png", f"test {i}?", f"a{i}") for i in range(n_test)])


@pytest.fixture
def coin(tmp_path: Path) -> Path:
    """A CoIN/UCIT-like folder with four tasks and an `images` folder that is not a task."""
    bench = tmp_path / "coin"
    for name in ("TextVQA", "ScienceQA", "VizWiz-caption", "MyTask"):
        make_task(bench, name)
    write_png(bench / "images" / "shared.png")
    return bench


# --- records ------------------------------------------------------------------------------------


def test_records_are_parsed_without_marker_and_with_absolute_images(coin: Path) -> None:
    bench = load_folder_benchmark(coin)
    task = bench.task("ScienceQA")
    first = task.train[0]
    assert first.id == "ScienceQA-tr0"
    assert first.instruction == "question 0?"
    assert first.answers == ("answer 0",)
    assert first.target == "answer 0"
    assert first.image == (coin / "ScienceQA" / "img" / "0.png").resolve()
    assert first.image.is_absolute()
    assert first.source == f"{coin / 'ScienceQA' / 'train.json'}:0 (id 'ScienceQA-tr0')"
    assert [r.id for r in task.test] == ["ScienceQA-te0"]
    assert bench.name == "coin" and bench.root == coin


def test_marker_and_its_newline_are_removed_wherever_they_are() -> None:
    assert strip_image_marker("<image>\nWhat is it?") == "What is it?"
    assert strip_image_marker("What is it?\n<image>") == "What is it?"
    assert strip_image_marker("Look: <image> what?") == "Look:  what?"
    assert strip_image_marker("Line one\n<image>\nLine two") == "Line one\nLine two"


def test_text_only_record_has_no_image(tmp_path: Path) -> None:
    file = write_json(tmp_path / "t.json", [record("q", None, "2+2?", "4")])
    records, problems = read_conversation_file(file, [tmp_path], tmp_path)
    assert problems == []
    assert records[0].image is None and records[0].instruction == "2+2?"


def test_answers_field_gives_references_with_the_target_first(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    file = write_json(tmp_path / "t.json", [
        record("vqa", "a.png", "Is it red?", "yes", answers=["no", "yes", "yes", "Yes", "no"]),
        record("cap", "a.png", "Describe.", "a grey square", answers=["grey square", "a small tile"]),
    ])
    records, problems = read_conversation_file(file, [tmp_path], tmp_path)
    assert problems == []
    # One copy of the target is dropped from the references; the others keep their counts (VQA accuracy).
    assert records[0].answers == ("yes", "no", "yes", "Yes", "no")
    assert records[1].answers == ("a grey square", "grey square", "a small tile")
    assert records[1].target == "a grey square"


def test_question_type_is_read_when_a_record_has_one(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    file = write_json(tmp_path / "t.json", [
        record("a", "a.png", "How many dogs?", "2", question_type=" how many "),
        record("b", "a.png", "Is it red?", "yes"),
        record("c", "a.png", "What color is it?", "red", question_type=None),
    ])
    records, problems = read_conversation_file(file, [tmp_path], tmp_path)
    assert problems == []
    assert [r.question_type for r in records] == ["how many", None, None]


def test_only_the_first_exchange_is_used_and_noted_once(coin: Path) -> None:
    write_json(coin / "MyTask" / "train.json", [
        {"id": f"m{i}", "image": "img/0.png", "conversations": [
            {"from": "human", "value": "<image>\nfirst?"}, {"from": "gpt", "value": "one"},
            {"from": "human", "value": "second?"}, {"from": "gpt", "value": "two"}]}
        for i in range(3)])
    bench = load_folder_benchmark(coin)
    train = bench.task("MyTask").train
    assert [(r.instruction, r.answers) for r in train] == [("first?", ("one",))] * 3
    multi = [n for n in bench.notes if "more than one human/gpt exchange" in n]
    assert len(multi) == 1
    assert "3 records" in multi[0] and "record 0 (id 'm0')" in multi[0]


# --- image roots --------------------------------------------------------------------------------


def test_image_roots_are_task_folder_then_benchmark_folder_then_images(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    extra = tmp_path / "extra"
    write_png(bench / "T" / "both.png")
    write_png(bench / "both.png")
    write_png(bench / "bench_only.png")
    write_png(extra / "extra_only.png")
    write_png(bench / "extra_too.png")
    write_png(extra / "extra_too.png")
    write_json(bench / "T" / "train.json", [
        record("a", "both.png", "q", "x"),
        record("b", "bench_only.png", "q", "x"),
        record("c", "extra_only.png", "q", "x"),
        record("d", "extra_too.png", "q", "x"),
    ])
    write_json(bench / "T" / "test.json", [record("t", "both.png", "q", "x")])
    train = load_folder_benchmark(bench, images=extra).task("T").train
    assert [r.image for r in train] == [
        (bench / "T" / "both.png").resolve(),
        (bench / "bench_only.png").resolve(),
        (extra / "extra_only.png").resolve(),
        (bench / "extra_too.png").resolve(),
    ]


def test_images_root_is_needed_for_images_outside_the_folder(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    write_png(tmp_path / "pool" / "p.png")
    write_json(bench / "T" / "train.json", [record("a", "p.png", "q", "x")])
    write_json(bench / "T" / "test.json", [record("b", "p.png", "q", "x")])
    with pytest.raises(UserError, match="not found"):
        load_folder_benchmark(bench)
    assert load_folder_benchmark(bench, images=tmp_path / "pool").task("T").train[0].image == \
        (tmp_path / "pool" / "p.png").resolve()


def test_missing_images_root_is_a_user_error(coin: Path) -> None:
    with pytest.raises(UserError, match="images folder not found"):
        load_folder_benchmark(coin, images=coin / "nope")


# --- task order ---------------------------------------------------------------------------------


def test_default_order_is_sorted_folder_names_and_non_task_folders_are_skipped(coin: Path) -> None:
    assert load_folder_benchmark(coin).task_names == ["MyTask", "ScienceQA", "TextVQA", "VizWiz-caption"]


def test_order_selects_a_subset_in_the_given_order(coin: Path) -> None:
    bench = load_folder_benchmark(coin, order=["TextVQA", "scienceqa"])
    assert bench.task_names == ["TextVQA", "ScienceQA"]


def test_unknown_task_in_order_lists_the_available_tasks(coin: Path) -> None:
    with pytest.raises(UserError) as exc:
        load_folder_benchmark(coin, order=["TextVQA", "GQA"])
    message = str(exc.value)
    assert "unknown task 'GQA'" in message
    assert "MyTask, ScienceQA, TextVQA, VizWiz-caption" in message


def test_task_named_twice_in_order_is_refused(coin: Path) -> None:
    with pytest.raises(UserError, match="twice"):
        load_folder_benchmark(coin, order=["TextVQA", "TextVQA"])


def test_order_subset_skips_invalid_unselected_tasks(coin: Path) -> None:
    (coin / "MyTask" / "train.json").write_text("[{", encoding="utf-8")
    assert load_folder_benchmark(coin, order=["ScienceQA"]).task_names == ["ScienceQA"]


def test_folder_without_task_folders_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(UserError, match="no task folders"):
        load_folder_benchmark(tmp_path / "empty")


# --- metrics ------------------------------------------------------------------------------------


def test_folder_tasks_get_their_benchmark_metric(coin: Path) -> None:
    bench = load_folder_benchmark(coin)
    assert bench.task("TextVQA").metric == "vqa_accuracy"
    assert bench.task("ScienceQA").metric == "multiple_choice"
    assert bench.task("VizWiz-caption").metric == "cider"
    assert bench.task("TextVQA").metric_note is None
    assert bench.task("MyTask").metric == "exact_match"
    assert bench.task("MyTask").metric_note == (
        "task 'MyTask': no metric declared and the name is not a known benchmark task; scoring by exact match "
        "(declare `metric:` in a benchmark YAML to change it)")


@pytest.mark.parametrize("name, metric", [
    ("VQAv2", "vqa_accuracy"), ("textvqa", "vqa_accuracy"), ("VizWiz", "vqa_accuracy"), ("GQA", "vqa_accuracy"),
    ("OK-VQA", "vqa_accuracy"),
    ("Grounding", "grounding"), ("RefCOCO+", "grounding"), ("refcocog", "grounding"),
    ("VizWiz-caption", "cider"), ("vizwiz_cap", "cider"), ("Flickr30k", "cider"), ("COCO caption", "cider"),
    ("nocaps", "cider"), ("TextCaps", "cider"),
    ("ScienceQA", "multiple_choice"), ("IconQA", "multiple_choice"), ("ArxivQA", "multiple_choice"),
    ("MMBench", "multiple_choice"), ("A-OKVQA-MC", "multiple_choice"),
    ("ImageNet", "exact_match"), ("ImageNet-R", "exact_match"), ("CLEVR-Math", "exact_match"),
    ("OCR-VQA", "anls"), ("OCRVQA", "anls"), ("DocVQA", "anls"), ("ST-VQA", "anls"),
])
def test_known_task_names_map_to_their_metric(name: str, metric: str) -> None:
    assert metric_for_task(name) == (metric, None)


def test_unknown_task_name_defaults_to_exact_match_with_a_note() -> None:
    metric, note = metric_for_task("my-vizwiz-variant")
    assert metric == "exact_match"
    assert note == ("task 'my-vizwiz-variant': no metric declared and the name is not a known benchmark task; "
                    "scoring by exact match (declare `metric:` in a benchmark YAML to change it)")


# --- benchmark YAML -----------------------------------------------------------------------------


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def yaml_bench(coin: Path) -> Path:
    return write_yaml(coin / "stream.yaml", """\
name: my-stream
tasks:
  - name: scienceqa
    train: ScienceQA/train.json
    test: ScienceQA/test.json
    images: ScienceQA
    metric: multiple_choice
    max_new_tokens: 8
    instruction_templates:
      - "{instruction}\\nAnswer with the option's letter from the given choices directly."
      - "Question: {instruction}"
  - name: my-captions
    train: VizWiz-caption/train.json
    test: VizWiz-caption/test.json
  - name: textvqa
    train: TextVQA/train.json
    test: TextVQA/test.json
""")


def test_yaml_benchmark_loads_tasks_in_listed_order(yaml_bench: Path, coin: Path) -> None:
    bench = load_yaml_benchmark(yaml_bench)
    assert bench.name == "my-stream"
    assert bench.root == coin
    assert bench.task_names == ["scienceqa", "my-captions", "textvqa"]
    sqa = bench.task("scienceqa")
    assert sqa.metric == "multiple_choice" and sqa.max_new_tokens == 8 and sqa.metric_note is None
    assert sqa.train[0].image == (coin / "ScienceQA" / "img" / "0.png").resolve()
    assert bench.task("textvqa").metric == "vqa_accuracy"
    assert bench.task("my-captions").metric == "exact_match"
    assert "my-captions" in (bench.task("my-captions").metric_note or "")


def test_yaml_instruction_templates_cycle_over_records(yaml_bench: Path) -> None:
    sqa = load_yaml_benchmark(yaml_bench).task("scienceqa")
    assert [r.instruction for r in sqa.train] == [
        "question 0?\nAnswer with the option's letter from the given choices directly.",
        "Question: question 1?",
    ]
    assert sqa.test[0].instruction.startswith("test 0?\nAnswer with")


def test_yaml_order_subset(yaml_bench: Path) -> None:
    assert load_yaml_benchmark(yaml_bench, order=["textvqa"]).task_names == ["textvqa"]
    with pytest.raises(UserError, match="available tasks: scienceqa, my-captions, textvqa"):
        load_yaml_benchmark(yaml_bench, order=["gqa"])


def test_yaml_absolute_paths_and_task_images_root(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    write_png(pool / "x.png")
    write_json(tmp_path / "data" / "train.json", [record("a", "x.png", "q", "y")])
    write_json(tmp_path / "data" / "test.json", [record("b", "x.png", "q", "y")])
    (tmp_path / "cfg").mkdir()
    config = write_yaml(tmp_path / "cfg" / "b.yml", f"""\
tasks:
  - name: t
    train: {tmp_path / 'data' / 'train.json'}
    test: {tmp_path / 'data' / 'test.json'}
    images: {pool}
""")
    bench = load_yaml_benchmark(config)
    assert bench.name == "b"
    assert bench.task("t").train[0].image == (pool / "x.png").resolve()


@pytest.mark.parametrize("text, expected", [
    ("name: s\ntasks: []\nextra: 1\n", "unknown top-level key 'extra'; allowed keys: name, tasks"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, lr: 1}\n", "task 0 ('a'): unknown key 'lr'; allowed keys: name"),
    ("tasks:\n  - {train: a.json, test: b.json}\n", "task 0: missing 'name'"),
    ("tasks:\n  - {name: a, test: b.json}\n", "task 0 ('a'): missing 'train'"),
    ("tasks:\n  - {name: a, train: a.json}\n", "task 0 ('a'): missing 'test'"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, metric: bleu}\n",
     "unknown metric 'bleu'; choose one of " + ", ".join(METRICS)),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, max_new_tokens: 0}\n", "'max_new_tokens' must be a positive integer"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, instruction_templates: ['Answer briefly.']}\n",
     "task 0 ('a'): instruction template 0 has no {instruction} placeholder"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, instruction_templates: ['{instruction} {choice}']}\n",
     "task 0 ('a'): instruction template 0 cannot be filled"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json}\n  - {name: a, train: a.json, test: b.json}\n",
     "the name 'a' is used twice"),
    ("name: s\n", "'tasks' must be a non-empty list"),
    ("tasks:\n  - {name: a, train: a.json, test: b.json, images: nowhere}\n", "images folder"),
])
def test_yaml_is_validated_strictly(tmp_path: Path, text: str, expected: str) -> None:
    config = write_yaml(tmp_path / "bench.yaml", text)
    with pytest.raises(UserError) as exc:
        load_yaml_benchmark(config)
    assert str(config) in str(exc.value)
    assert expected in str(exc.value)


def test_malformed_yaml_is_a_user_error(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "bench.yaml", "tasks: [\n")
    with pytest.raises(UserError, match="malformed YAML"):
        load_yaml_benchmark(config)


# --- dispatch and refusal -----------------------------------------------------------------------


def test_load_benchmark_path_dispatches_on_yaml_and_folder(yaml_bench: Path, coin: Path) -> None:
    assert load_benchmark_path(yaml_bench).name == "my-stream"
    assert load_benchmark_path(coin).name == "coin"
    with pytest.raises(UserError, match="benchmark folder .* or a benchmark .yaml/.yml file"):
        load_benchmark_path(coin / "ScienceQA" / "train.json")
    with pytest.raises(UserError, match="not found"):
        load_benchmark_path(coin / "missing")


def test_loader_refuses_invalid_data_with_the_check_report(coin: Path) -> None:
    data = json.loads((coin / "TextVQA" / "train.json").read_text())
    data[1]["image"] = "img/missing.png"
    del data[0]["id"]
    write_json(coin / "TextVQA" / "train.json", data)
    with pytest.raises(UserError) as exc:
        load_folder_benchmark(coin)
    message = str(exc.value)
    train = coin / "TextVQA" / "train.json"
    assert f"{train}: record 0: has no 'id'" in message
    assert f"{train}: record 1 (id 'TextVQA-tr1'): image 'img/missing.png' not found" in message
    assert message.splitlines()[-1] == f"run `mcit data check {coin}` for the full report"


def test_loader_refusal_shows_at_most_twenty_errors(coin: Path) -> None:
    write_json(coin / "MyTask" / "train.json", [record(f"r{i}", "img/none.png", "q", "a") for i in range(25)])
    with pytest.raises(UserError) as exc:
        load_folder_benchmark(coin)
    lines = str(exc.value).splitlines()
    assert "25 errors" in lines[0]
    assert sum("not found" in line for line in lines) == 20
    assert "  and 5 more" in lines
    assert "mcit data check" in lines[-1]


def test_yaml_loader_refuses_invalid_data(yaml_bench: Path, coin: Path) -> None:
    (coin / "TextVQA" / "test.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UserError) as exc:
        load_benchmark_path(yaml_bench)
    assert "the top level is a JSON object, expected a list" in str(exc.value)
    assert f"mcit data check {yaml_bench}" in str(exc.value)


def test_loader_does_not_decode_images(coin: Path) -> None:
    # Decoding every image is left to `mcit data check`; the loader checks existence and location only.
    (coin / "ScienceQA" / "img" / "0.png").write_bytes(b"not a png")
    assert load_folder_benchmark(coin).task("ScienceQA").train[0].id == "ScienceQA-tr0"
