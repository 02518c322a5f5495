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


def test_a_full_disk_while_writing_names_the_file_asked_for_and_leaves_no_temporary_file(tmp_path):
    import errno

    from mnistctl.fsutil import atomic_path

    target = tmp_path / "best.safetensors"
    with pytest.raises(OSError) as info:
        with atomic_path(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write to a full disk raises it: no file named
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert not list(tmp_path.iterdir())


def test_a_full_disk_while_logging_an_event_names_the_metrics_file(tmp_path, monkeypatch):
    import errno
    import io

    from mnistctl.runs import Run, RunWriter

    run = Run(tmp_path / "r")
    run.path.mkdir()
    writer = RunWriter(run)
    writer.event("start")

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer, "_metrics", Full())
    with pytest.raises(OSError) as info:
        writer.event("step")
    assert info.value.filename == str(run.metrics_path)
