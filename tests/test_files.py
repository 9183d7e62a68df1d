"""translate/files.py: every write is all or nothing, fsynced before the rename, and leaves no temp file."""

import os
import stat
from pathlib import Path

import pytest

from translate import files


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def synced(monkeypatch):
    """Records, in order, ("fsync", inode) for each os.fsync and ("replace", inode of the source) for each
    os.replace made through translate.files (both still happen)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    return events


def test_write_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, synced):
    path = tmp_path / "out" / "a.txt"
    files.write_text(path, "día\n")
    assert path.read_bytes() == "día\n".encode()
    file_ino, dir_ino = path.stat().st_ino, path.parent.stat().st_ino
    assert synced == [("fsync", file_ino), ("replace", file_ino), ("fsync", dir_ino)]
    assert entries(path.parent) == ["a.txt"]


class Crash(Exception):
    pass


@pytest.mark.parametrize("existing", [None, b"old and complete"])
def test_a_crash_mid_write_leaves_the_old_file_and_no_temp_file(tmp_path, existing):
    path = tmp_path / "results.json"
    if existing is not None:
        path.write_bytes(existing)

    def half_then_crash(f):
        f.write(b'{"half": ')
        raise Crash

    with pytest.raises(Crash):
        files.write_atomic(path, half_then_crash)
    assert entries(tmp_path) == ([] if existing is None else ["results.json"])
    if existing is not None:
        assert path.read_bytes() == existing


def test_a_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="disk gone"):
        files.write_bytes(tmp_path / "x.bin", b"123")
    assert entries(tmp_path) == []


def test_new_files_get_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640


def test_lines_and_json_are_utf8_with_newlines_as_given(tmp_path):
    files.write_lines(tmp_path / "h.txt", ["uno", "", "tres\r"])
    assert (tmp_path / "h.txt").read_bytes() == b"uno\n\ntres\r\n"
    files.write_json(tmp_path / "r.json", {"ñ": [1, 2]})
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == '{\n  "ñ": [\n    1,\n    2\n  ]\n}\n'


@pytest.mark.parametrize("links", [True, False])
def test_link_atomic_gives_a_second_complete_name(tmp_path, monkeypatch, synced, links):
    src, dst = tmp_path / "step-3.pt", tmp_path / "last.pt"
    src.write_bytes(b"new checkpoint")
    dst.write_bytes(b"old checkpoint")
    if not links:  # a file system without hard links: the name is a copy, fsynced before the rename

        def no_links(a, b):
            raise OSError("links not supported")

        monkeypatch.setattr(files.os, "link", no_links)
    files.link_atomic(src, dst)
    assert dst.read_bytes() == b"new checkpoint" and entries(tmp_path) == ["last.pt", "step-3.pt"]
    assert os.path.samefile(src, dst) is links
    dst_ino = dst.stat().st_ino
    copied = [] if links else [("fsync", dst_ino)]
    assert synced == [*copied, ("replace", dst_ino), ("fsync", tmp_path.stat().st_ino)]


def test_write_dir_atomic_replaces_the_whole_directory(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "stale.bin").write_bytes(b"x")

    def fill(d: Path):
        (d / "model.bin").write_bytes(b"m")

    files.write_dir_atomic(out, fill)
    assert entries(out) == ["model.bin"] and entries(tmp_path) == ["export"]

    def crash(d: Path):
        (d / "partial.bin").write_bytes(b"p")
        raise Crash

    with pytest.raises(Crash):
        files.write_dir_atomic(out, crash)
    assert entries(out) == ["model.bin"] and entries(tmp_path) == ["export"]
