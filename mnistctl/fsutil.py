"""Atomic, durable file writes: a temporary file in the same folder, flushed to disk, then a rename."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

UMASK = os.umask(0o022)  # read once, at import, before any thread could create a file meanwhile
os.umask(UMASK)


class Taken(FileExistsError):
    """The path asked for with ``replace=False`` exists (another file, which is kept)."""


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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None  # the file asked for, not the temporary one
    os.close(fd)
    try:
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


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
