"""Crash-safe files: a crash never leaves a truncated results file, log line or checkpoint.

Every file mcit writes goes to a temporary name in the same folder and is renamed over the
target only when it is complete (rename is atomic on POSIX file systems); a folder of files
(a checkpoint) is built under a temporary name and renamed into place the same way. Temporary
names start with a dot and end in `.tmp`, so what a killed process leaves behind is easy to
recognise and remove (`remove_temporaries`).

The JSON-lines log is the one file that grows by appending: each line is written with a single
`write` call, a line torn by a crash is cut off before the next append (`repair_torn_tail`), and
readers skip an unparsable last line (`read_jsonl`).

A full disk or a folder that cannot be written raises a `UserError` naming the file, after the
temporary file has been removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from mcit.core.errors import UserError

TEMPORARY_SUFFIX = ".tmp"


def _write_failed(path: Path, exc: OSError) -> UserError:
    reason = exc.strerror or str(exc)
    return UserError(f"{path}: writing failed ({reason}); free some space or choose another --output folder "
                     "(a run that had started continues with --resume)")


def _sync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: not every file system supports it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot write here ({exc.strerror}); choose a writable --output folder") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _sync_file(tmp_path)
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _write_failed(path, exc) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it becomes `path` only if the block succeeds.

    An existing folder at `path` is replaced (removed just before the rename). Files written
    into the temporary folder need not be atomic themselves: until the rename nobody reads them.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent))
    except OSError as exc:
        raise UserError(f"{path}: cannot write here ({exc.strerror}); choose a writable --output folder") from None
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                _sync_file(file)
        _sync_folder(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _sync_folder(path.parent)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files and folders a killed process left anywhere under `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob(f".*{TEMPORARY_SUFFIX}") if p.name.startswith(".")]
    removed = []
    for path in sorted(found, key=lambda p: len(p.parts)):
        if not path.exists() and not path.is_symlink():
            continue  # inside a temporary folder removed before it
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    """Write `data` as block-style YAML atomically."""
    write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def read_json(path: str | Path) -> Any:
    """Read a JSON file with a clear error naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def repair_torn_tail(path: str | Path) -> bool:
    """Cut a last line that lacks its newline (a write torn by a crash); returns whether it cut."""
    path = Path(path)
    try:
        with open(path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return False
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return False
            keep = size - 1
            while keep > 0:  # back to the last newline; logs are small enough to step through
                step = min(keep, 1 << 16)
                handle.seek(keep - step)
                block = handle.read(step)
                at = block.rfind(b"\n")
                if at >= 0:
                    keep = keep - step + at + 1
                    break
                keep -= step
            handle.truncate(keep)
            return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _write_failed(path, exc) from None


def append_line(path: str | Path, line: str) -> None:
    """Append one line (a newline is added) with a single write call."""
    path = Path(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a short write: the disk filled up part-way
                raise OSError(28, "No space left on device")
        finally:
            os.close(fd)
    except OSError as exc:
        raise _write_failed(path, exc) from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file; an unparsable last line (torn by a crash) is skipped.

    An unparsable line anywhere else is a `UserError` naming the file and the line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise UserError(f"{path}: line {number} is not JSON ({exc.msg}); the log is damaged") from None
    return entries
