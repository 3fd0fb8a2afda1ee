"""`mcit data check` and `mcit data show` from the command line."""

from __future__ import annotations

import json

from PIL import Image

from mcit.data.builtin.streams import materialize
from mcit.run.cli import main


def _coin_folder(root, *, broken: bool = False):
    task = root / "scienceqa"
    task.mkdir(parents=True)
    Image.new("RGB", (8, 8), "red").save(task / "a.png")
    records = [{"id": "q1", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "red"}]}]
    if broken:
        records.append({"id": "q2", "image": "missing.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": ""}]})
    for split in ("train", "test"):
        (task / f"{split}.json").write_text(json.dumps(records))
    return root


def test_check_passes_on_good_data_and_fails_on_bad(tmp_path, capsys):
    assert main(["data", "check", str(_coin_folder(tmp_path / "good"))]) == 0
    assert "scienceqa" in capsys.readouterr().out
    assert main(["data", "check", str(_coin_folder(tmp_path / "bad", broken=True))]) == 1
    out = capsys.readouterr().out
    assert "train.json" in out and "q2" in out and "missing.png" in out


def test_run_refuses_invalid_data_with_the_report(tmp_path, capsys):
    folder = _coin_folder(tmp_path / "bad", broken=True)
    code = main(["run", "--benchmark", str(folder), "--model", "tiny-random", "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "q2" in err and "mcit data check" in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_check_of_the_builtin_stream_is_clean(tmp_path, capsys):
    path = materialize("builtin", seed=0, train_size=3, test_size=2, root=tmp_path)
    assert main(["data", "check", str(path)]) == 0


def test_show_prints_samples_and_writes_a_contact_sheet(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    code = main(["data", "show", "ground", "-n", "4", "--sheet", str(sheet)])
    out = capsys.readouterr().out
    assert code == 0
    assert "grounding" in out and out.count("→ [") == 4
    assert sum(f"] ({kind}) " in out for kind in ("by colour and shape", "by shape", "by colour")) >= 1
    with Image.open(sheet) as image:
        assert image.width > 0 and image.height > 0


def test_show_unknown_task(capsys):
    assert main(["data", "show", "nosuch"]) == 2
    assert "caption" in capsys.readouterr().err
