"""A store that cannot be used stops `smmkit serve` with one line naming the file and what to
do — no traceback. Real files: garbage bytes, a truncated copy, a read-only file, a read-only
folder, a missing folder that cannot be created and a full (tiny) filesystem."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "panel-0.1.db"
ROOT = os.geteuid() == 0  # root ignores permission bits: use immutable files and ro mounts


def serve(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "smmkit", "serve", "--db", str(db), "--port", "0",
                           "--workers", "1"], capture_output=True, text=True, timeout=120)


def assert_one_line_naming(result: subprocess.CompletedProcess[str], path: Path,
                           *needles: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert str(path) in lines[0] and "--db" in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@contextlib.contextmanager
def read_only_file(path: Path) -> Iterator[None]:
    if ROOT:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        path.chmod(0o444)
    try:
        yield
    finally:
        if ROOT:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


@contextlib.contextmanager
def read_only_dir(folder: Path) -> Iterator[None]:
    if ROOT:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if ROOT:
            subprocess.run(["umount", str(folder)], check=True)
        folder.chmod(0o755)


def test_garbage_bytes(tmp_path: Path) -> None:
    db = tmp_path / "panel.db"
    db.write_bytes(os.urandom(8192))
    assert_one_line_naming(serve(db), db, "damaged or not an smmkit store", "move it away")


def test_truncated_store(tmp_path: Path) -> None:
    db = tmp_path / "panel.db"
    shutil.copy(FIXTURE, db)
    with open(db, "r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    assert_one_line_naming(serve(db), db, "damaged", "truncated")


def test_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "panel.db"
    shutil.copy(FIXTURE, db)
    before = db.read_bytes()
    with read_only_file(db):
        assert_one_line_naming(serve(db), db, "cannot be written", "writable")
    assert db.read_bytes() == before


def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "panel.db"
    shutil.copy(FIXTURE, db)
    with read_only_dir(folder):
        result = serve(db)
    assert_one_line_naming(result, db, "folder", "writable")


def test_missing_folder_that_cannot_be_created(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "missing" / "panel.db"
    with read_only_dir(folder):
        result = serve(db)
    assert_one_line_naming(result, db, "folder", str(db.parent))


def _mount_tiny_filesystem(folder: Path) -> bool:
    if not ROOT:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_full_disk(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    db = folder / "panel.db"
    if _mount_tiny_filesystem(folder):
        try:
            assert_one_line_naming(serve(db), db, "no room", "disk is full")
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    # No mount here: the same start-up with writes capped by RLIMIT_FSIZE (EFBIG from the
    # kernel, SQLite's disk I/O error), the nearest unprivileged stand-in for ENOSPC.
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192)); "
            "from smmkit.cli import main; sys.argv = ['smmkit', 'serve', '--db', sys.argv[1], "
            "'--port', '0']; main()")
    result = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True,
                            text=True, timeout=120)
    assert_one_line_naming(result, db, "disk may be full")


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_a_refused_store_is_left_as_it_was(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "panel.db"
    if kind == "garbage":
        db.write_bytes(b"not sqlite at all\n" * 500)
    else:
        shutil.copy(FIXTURE, db)
        with open(db, "r+b") as handle:
            handle.truncate(40_000)
    before = db.read_bytes()
    serve(db)
    assert db.read_bytes() == before
