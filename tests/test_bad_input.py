"""Bad input at the command line: each case ends in one clear line on stderr naming the file,
record or key and the fix, a non-zero exit status, no traceback, and nothing half-written.

The checks behind these messages have their own tests (configs, data check, loaders); this corpus
checks what a user sees from `mcit run` and that a failed run leaves no partial files behind.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from mcit.run.cli import main

RUN = ["run", "--model", "tiny-random", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def record(rid: str, image: str | None = "a.png", answer: str | None = "red") -> dict:
    turns = [{"from": "human", "value": ("<image>\n" if image else "") + "What colour?"}]
    if answer is not None:
        turns.append({"from": "gpt", "value": answer})
    return {"id": rid, **({"image": image} if image else {}), "conversations": turns}


def benchmark(root: Path, train: list | bytes | None = None, test: list | None = None) -> Path:
    """A one-task benchmark folder (task `colours`) with a valid image `a.png`; pass records to break it."""
    task = root / "bench" / "colours"
    task.mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(task / "a.png")
    for split, records in (("train", train), ("test", test)):
        records = [record(f"{split}{i}") for i in range(4)] if records is None else records
        data = records if isinstance(records, bytes) else json.dumps(records).encode()
        (task / f"{split}.json").write_bytes(data)
    return root / "bench"


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares width x height pixels but holds almost no data (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def with_image(root: Path, name: str, write) -> Path:
    """A benchmark whose first test record uses image `name`, written by `write(path)`."""
    folder = benchmark(root, test=[record("bad", name), *[record(f"test{i}") for i in range(3)]])
    write(folder / "colours" / name)
    return folder


def pickled_model(root: Path) -> Path:
    folder = root / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    torch.save({"weight": torch.zeros(2)}, folder / "pytorch_model.bin")
    return folder


def full_disk_at_checkpoints(monkeypatch) -> None:
    """The disk fills up when the first checkpoint is renamed into place."""
    replace = os.replace

    def failing(source, target, *args, **kwargs):
        if "checkpoints" in str(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)


def read_only_output(monkeypatch) -> None:
    """The output folder refuses new files (as a read-only folder does; tests may run as root)."""
    mkstemp = tempfile.mkstemp

    def refusing(*args, dir=None, **kwargs):
        if dir is not None and "out" in Path(dir).parts:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refusing)


def bench(*args, **kwargs) -> list[str]:
    return ["--benchmark", str(benchmark(*args, **kwargs))]


def image_bench(root: Path, name: str, write) -> list[str]:
    return ["--benchmark", str(with_image(root, name, write))]


# case, (options, items) given tmp_path, words expected on stderr, fault to inject, whether a resumable run stays
CASES = [
    ("malformed YAML", lambda t: ([], [str(_write(t / "bad.yaml", "train: [1, 2\n"))]),
     ["bad.yaml", "malformed YAML at line", "fix the file's syntax"], None, False),
    ("YAML that is not a mapping", lambda t: ([], [str(_write(t / "list.yaml", "- a\n- b\n"))]),
     ["list.yaml", "expected a mapping"], None, False),
    ("unknown method", lambda t: (["--method", "nosuch"], []), ["unknown method 'nosuch'", "seqft"], None, False),
    ("unknown model", lambda t: (["--model", "no-such-model"], []),
     ["cannot load model 'no-such-model'", "built-in name"], None, False),
    ("unknown benchmark", lambda t: (["--benchmark", "nosuch"], []), ["unknown benchmark 'nosuch'", "builtin"],
     None, False),
    ("unknown option", lambda t: ([], ["train.lrr=1"]), ["'train.lrr'", "allowed keys", "lr"], None, False),
    ("wrong type", lambda t: ([], ["train.batch_size=many"]), ["train.batch_size", "expected an integer"], None, False),
    ("empty override key", lambda t: ([], ["=3"]), ["'=3'", "key before '='"], None, False),
    ("override without =", lambda t: ([], ["train.lr"]), ["'train.lr'", "key=value"], None, False),
    ("missing image", lambda t: (bench(t, train=[record("lost", "gone.png")]), []),
     ["train.json", "record 0 (id 'lost')", "image 'gone.png' not found", "mcit data check"], None, False),
    ("corrupt image", lambda t: (image_bench(t, "bad.png", lambda p: p.write_bytes(b"nope")), []),
     ["bad.png", "cannot read the image of record", "id 'bad'", "mcit data check"], None, False),
    ("huge image", lambda t: (image_bench(t, "huge.png", lambda p: png_header_only(p, 11_000, 10_000)), []),
     ["huge.png", "11000x10000", "100-megapixel limit", "downscale"], None, False),
    ("record without an answer", lambda t: (bench(t, train=[record("q", answer=None)]), []),
     ["record 0 (id 'q')", "has no gpt answer"], None, False),
    ("non-UTF-8 text", lambda t: (bench(t, train='[{"id": "caf\u00e9"}]'.encode("latin-1")), []),
     ["train.json", "not UTF-8", "re-save the file as UTF-8"], None, False),
    ("empty task", lambda t: (bench(t, train=[]), []), ["train.json", "task 'colours' has no train records"],
     None, False),
    ("image path leaving its folder", lambda t: (bench(t, train=[record("x", "../../secret.png")]), []),
     ["record 0 (id 'x')", "leaves the data folders"], None, False),
    ("output is a file", lambda t: (["--output", str(_write(t / "out.txt", "x"))], []),
     ["out.txt", "is a file", "--output"], None, False),
    ("output inside a file", lambda t: (["--output", str(_write(t / "file", "x") / "run")], []),
     ["cannot create the run directory", "writable --output"], None, False),
    ("output not writable", lambda t: ([], []), ["config.yaml", "Permission denied", "writable --output"],
     read_only_output, False),
    ("full disk", lambda t: (["--order", "ocr"], []), ["checkpoints", "No space left on device", "--resume"],
     full_disk_at_checkpoints, True),
    ("pickled model", lambda t: (["--model", str(pickled_model(t))], []),
     ["pytorch_model.bin", "pickle", "safetensors", "model.allow_pickle=true"], None, False),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, arguments, words, fault, resumable", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(case, arguments, words, fault, resumable, tmp_path, capsys, monkeypatch,
                                        fast_overrides):
    options, items = arguments(tmp_path)
    output = tmp_path / "out"
    if "--model" not in options:
        options = ["--model", "tiny-random", *options]
    if "--output" not in options:
        options = [*options, "--output", str(output)]
    if fault is not None:
        fault(monkeypatch)
    if "--benchmark" in options:  # the built-in stream's sizes do not apply to a benchmark folder
        fast_overrides = [o for o in fast_overrides if not o.startswith("benchmark.")]
    files = [i for i in items if i.endswith(".yaml")]
    overrides = [i for i in items if i not in files]  # after the fast settings, so that they are the ones seen
    code = main(["run", "--quiet", *options, *files, *fast_overrides, *overrides])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcit: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name == "results.json"]
    assert not leftovers
    if resumable:  # a run that had started stays, complete up to its last saved step, for --resume
        assert json.loads((output / "progress.json").read_text())["stages_done"] == 0
    elif output.is_dir():
        assert not any(output.iterdir()), sorted(p.name for p in output.iterdir())


def test_data_check_reports_findings_with_status_1(tmp_path, capsys):
    folder = benchmark(tmp_path, train=[record("lost", "gone.png"), record("q", answer=None)])
    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "id 'lost'" in out and "id 'q'" in out and "2 errors" in out


def test_greyscale_palette_and_rgba_images_train_and_evaluate(tmp_path, fast_overrides):
    task = tmp_path / "bench" / "colours"
    task.mkdir(parents=True)
    records = []
    for i, mode in enumerate(("L", "LA", "P", "RGBA", "1", "I;16")):
        Image.new(mode, (12, 10)).save(task / f"{i}.png")
        records.append(record(f"r{i}", f"{i}.png"))
    for split in ("train", "test"):
        (task / f"{split}.json").write_text(json.dumps(records))
    out = tmp_path / "out"
    assert main([*RUN, "--benchmark", str(tmp_path / "bench"), "--output", str(out), "train.max_steps=2",
                 "train.batch_size=4", "eval.batch_size=4"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"] == ["colours"] and len(results["accuracy_matrix"]) == 2


def test_pickled_weights_load_only_with_allow_pickle(tmp_path, capsys):
    """With the flag a pickle-only model loads (through torch's weights_only loader) to the same weights."""
    from mcit.models.config import ModelConfig
    from mcit.models.loading import load_model
    from mcit.models.tiny.build import build_model, build_processor

    processor = build_processor()
    network = build_model(processor, seed=3)
    folder = tmp_path / "model"
    network.save_pretrained(folder)
    processor.save_pretrained(folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    loaded = load_model(ModelConfig(name=str(folder), allow_pickle=True, tune="none"))
    expected, got = dict(network.named_parameters()), dict(loaded.base.named_parameters())
    assert expected.keys() <= got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
