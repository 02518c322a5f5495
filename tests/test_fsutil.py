"""fsutil: atomic writes are durable (fsync of the file before the rename, of the folder after) and can refuse to replace."""

import os

import pytest

from mnistctl import fsutil


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    fsutil.write_text(tmp_path / "a.json", "{}")
    file_ino, folder_ino = os.stat(tmp_path / "a.json").st_ino, os.stat(tmp_path).st_ino
    assert events == [("fsync", file_ino), ("rename", file_ino), ("fsync", folder_ino)]


def test_write_new_never_replaces_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "x.png"
    fsutil.write_new(target, lambda tmp: tmp.write_bytes(b"first"))
    with pytest.raises(fsutil.Taken):
        fsutil.write_new(target, lambda tmp: tmp.write_bytes(b"second"))
    assert target.read_bytes() == b"first" and os.listdir(tmp_path) == ["x.png"]


def test_write_first_free_takes_the_next_name_but_stops_at_a_file_in_the_way(tmp_path):
    names = [f"d-{n}.png" for n in range(1, 100)]
    (tmp_path / "d-1.png").write_bytes(b"keep")
    assert fsutil.write_first_free(tmp_path, names, lambda tmp: tmp.write_bytes(b"new")).name == "d-2.png"
    (tmp_path / "notes.txt").write_text("keep")
    written = []
    with pytest.raises(OSError) as raised:
        fsutil.write_first_free(tmp_path / "notes.txt", names, lambda tmp: written.append(tmp))
    assert not isinstance(raised.value, fsutil.Taken) and written == []


def test_written_files_respect_the_umask_whoever_wrote_them(tmp_path):
    """safetensors writes its files 0600; every file of a run gets the usual mode, as config.json does."""
    import os
    import stat

    from mnistctl import fsutil

    def written(name, write):
        with fsutil.atomic_path(tmp_path / name) as tmp:
            write(tmp)
        return stat.S_IMODE(os.stat(tmp_path / name).st_mode)

    expected = 0o666 & ~fsutil.UMASK
    assert written("a.json", lambda p: p.write_text("{}")) == expected
    assert written("b.bin", lambda p: (p.unlink(), os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)))) == expected


def test_a_name_near_the_length_limit_is_still_written_atomically(tmp_path):
    for name in ("d" * 251 + ".png", "é" * 125 + ".png"):  # 255 bytes, the most a name may have
        fsutil.write_new(tmp_path / name, lambda tmp: tmp.write_bytes(b"png"))
        assert (tmp_path / name).read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["d" * 251 + ".png", "é" * 125 + ".png"])
