"""Decoded data sets kept on disk, so that a second load skips gunzip, parsing and checksums.

An entry is keyed by the identity (path, size, modification time, inode) of its source files and
of the checksum listings beside them: replace or touch a file and the set is read from it again.
A damaged or unreadable entry is ignored, and failing to write one only costs speed. Entries live
in ``$MNISTCTL_DATA_CACHE``, by default ``~/.cache/mnistctl/decoded``; the KEEP used last are kept
(55 MB each for MNIST), the others removed when a new one is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mnistctl.fsutil import atomic_path

ENV_VAR = "MNISTCTL_DATA_CACHE"
FORMAT = 1
KEEP = 3  # entries: a data folder or two beside MNIST; an entry of files since replaced is never read again
DIGITS = 32
ENTRY_GLOB = "[0-9a-f]" * DIGITS + ".npz"


def root() -> Path:
    """mnistctl's folder in the user cache (``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnistctl"


def folder() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return root() / "decoded"


def entry(paths: dict[str, Path]) -> Path:
    sources = sorted({*paths.values(), *(listing for path in paths.values() for listing in path.parent.glob("*SUMS*"))})
    identity = []
    for source in sources:
        found = source.stat()
        identity.append([str(source.resolve()), found.st_size, found.st_mtime_ns, found.st_ino])
    digest = hashlib.sha256(json.dumps([FORMAT, identity]).encode()).hexdigest()[:DIGITS]
    return folder() / f"{digest}.npz"


def read(paths: dict[str, Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and facts stored for these files, or None."""
    try:
        with np.load(found := entry(paths), allow_pickle=False) as stored:
            arrays, facts = {"images": stored["images"], "labels": stored["labels"]}, json.loads(str(stored["facts"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    try:
        os.utime(found)  # used now: kept over entries used longer ago
    except OSError:
        pass
    return arrays, facts


def write(paths: dict[str, Path], arrays: dict[str, np.ndarray], facts: dict[str, Any]) -> None:
    try:
        with atomic_path(entry(paths)) as tmp, open(tmp, "wb") as out:
            np.savez(out, **arrays, facts=np.array(json.dumps(facts)))
    except OSError:
        return
    _prune()


def _prune() -> None:
    """Remove all but the KEEP entries used last; other files in the folder (it may be one the user named) are left alone."""
    try:
        entries = sorted(folder().glob(ENTRY_GLOB), key=lambda path: path.stat().st_mtime, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink()
    except OSError:  # another process pruning at the same time, or a read-only folder
        pass
