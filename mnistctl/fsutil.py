"""Atomic, durable file writes: a temporary file in the same folder, flushed to disk, then a rename."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

UMASK = os.umask(0o022)  # read once, at import, before any thread could create a file meanwhile
os.umask(UMASK)


MAX_JSON = 64 * 2**20  # a run's config.json and summary.json are a few KB
TEMP_STEM_BYTES = 200  # of the name a temporary file starts with; names may have 255


class Taken(FileExistsError):
    """The path asked for with ``replace=False`` exists (another file, which is kept)."""


class NotRegular(OSError):
    """A folder, a FIFO, a device or a socket where a file is read: reading it could wait or never end."""

    def __init__(self, path: str | Path):
        super().__init__(errno.EINVAL, "not a regular file", str(path))


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """An OSError inside that names no file (a full disk says only "No space left on device") names ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno:
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise


@contextmanager
def atomic_path(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it becomes ``path`` in one rename.

    The file is fsynced before the rename and the folder after it, so a power loss leaves the old
    file or the new one, never an empty one. With ``replace=False`` an existing ``path`` is never
    replaced: Taken (a FileExistsError) is raised and nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stem = os.fsdecode(os.fsencode(path.name)[:TEMP_STEM_BYTES])  # a name near the limit still has room for the temporary one's
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None  # the file asked for, not the temporary one
    os.close(fd)
    try:
        with naming(path):
            yield Path(tmp)
            os.chmod(tmp, 0o666 & ~UMASK)  # as any new file, whatever wrote the temporary one
            _fsync(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise Taken(errno.EEXIST, "file exists", str(path)) from None
            os.unlink(tmp)
        _fsync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened for fsync on Windows."""
    if os.name != "nt":
        _fsync(folder)


def write_new(path: str | Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` with ``write(tmp)``, atomically; Taken if it exists (never overwritten)."""
    with atomic_path(path, replace=False) as tmp:
        write(tmp)


def write_first_free(folder: str | Path, names: Iterable[str], write: Callable[[Path], None]) -> Path:
    """Create the first of ``names`` in ``folder`` that is free, as write_new does; never over a file."""
    for name in names:
        try:
            write_new(Path(folder) / name, write)
            return Path(folder) / name
        except Taken:
            continue
    raise FileExistsError(f"no free name left in {folder}")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def regular(path: str | Path) -> os.stat_result:
    """``os.stat(path)``; NotRegular unless it is a regular file (a symbolic link to one is)."""
    found = os.stat(path)
    if not stat.S_ISREG(found.st_mode):
        raise NotRegular(path)
    return found


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened to read bytes, only if it is a regular file: never waiting on a FIFO, nor opening a device."""
    regular(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since it was looked at
            raise NotRegular(path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_json(path: str | Path, limit: int = MAX_JSON) -> Any:
    with open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // 2**20} MB", str(path))
    return json.loads(data)
