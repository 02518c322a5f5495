"""Checkpoints without pickle: tensors in safetensors, everything else in JSON metadata."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistctl.errors import RunError
from mnistctl.fsutil import atomic_path, open_regular
from mnistctl.runs.reader import unreadable

META_KEY = "mnistctl"
MAX_HEADER = 100_000_000  # safetensors' own limit


def save(path: str | Path, tensors: dict[str, Any], meta: Any = None) -> None:
    """Write tensors and JSON-able metadata atomically."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
        except SafetensorError as exc:  # its I/O errors, a full disk among them, as the OSError they are
            code = re.search(r"\(os error (\d+)\)", str(exc))
            if code is None:
                raise
            raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from exc


def load(path: str | Path) -> tuple[dict[str, Any], Any]:
    """Read tensors and metadata written by :func:`save`."""
    loaded = read(path)
    return loaded.tensors, loaded.meta


@dataclass
class Loaded:
    """A checkpoint as read: its tensors, its metadata and the SHA-256 of the very bytes they came from."""

    tensors: dict[str, Any]
    meta: Any
    digest: str


def read(path: str | Path) -> Loaded:
    """Read a checkpoint's bytes once and take tensors, metadata and digest from them, so that all three
    belong to the same file even when it is replaced (renamed over) while it is read."""
    from safetensors.torch import load as from_bytes

    path = Path(path)
    try:
        with open_regular(path) as f:  # safetensors would wait on a FIFO, and calls a file it may not read missing
            start = f.read(8)
            header = f.read(min(int.from_bytes(start, "little"), MAX_HEADER))
            entries = _checked_header(path, start, header, os.fstat(f.fileno()).st_size)
            data = start + header + f.read()
    except FileNotFoundError:
        raise RunError(f"checkpoint {path} does not exist", "train a run first, or pick another --checkpoint") from None
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        tensors = from_bytes(data)
        meta = json.loads((entries.get("__metadata__") or {}).get(META_KEY, "null"))
    except Exception as exc:
        raise RunError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc})", "it may be truncated; use another checkpoint") from None
    return Loaded(tensors, meta, hashlib.sha256(data).hexdigest())


def _checked_header(path: Path, start: bytes, header: bytes, size: int) -> dict[str, Any]:
    """The safetensors header, parsed; a file whose length is not the one it declares is refused before its tensors are
    read: a file cut short, one with more after its tensors, or any other file of whatever size, named as a checkpoint."""
    declared = int.from_bytes(start, "little")
    if len(start) < 8 or (declared <= MAX_HEADER and len(header) < declared):
        raise _unreadable(path, f"it is cut short at {size:,} bytes, inside its header")
    try:
        entries = json.loads(header)
        end = max((entry["data_offsets"][1] for name, entry in entries.items() if name != "__metadata__"), default=0)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
        end = None
    if type(end) is not int:
        raise _unreadable(path, "its first bytes are not a safetensors header", "it is damaged or another kind of file; use another checkpoint")
    expected = 8 + len(header) + end
    if size < expected:
        raise _unreadable(path, f"it is cut short at {size:,} of the {expected:,} bytes its header declares")
    if size > expected:
        raise _unreadable(path, f"{size - expected:,} bytes follow the {expected:,} its header declares", "the file is damaged; use another checkpoint")
    return entries


def _unreadable(path: Path, why: str, hint: str = "use another checkpoint, or train the run again") -> RunError:
    return RunError(f"checkpoint {path} is unreadable: {why}", hint)


def save_model(path: str | Path, model, meta: dict | None = None) -> None:
    save(path, model.state_dict(), meta)


def save_state(path: str | Path, state: Any) -> None:
    """Save any nest of dicts, lists, numbers and tensors (optimizer, scheduler, RNG states)."""
    tensors: dict[str, Any] = {}
    skeleton = _split(state, tensors)
    save(path, tensors, skeleton)


def load_state(path: str | Path) -> Any:
    tensors, skeleton = load(path)
    return _join(skeleton, tensors)


def _split(obj: Any, tensors: dict[str, Any]) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_split(k, tensors), _split(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_split(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _join(obj: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_join(v, tensors) for v in obj["__tuple__"])
        return {_join(k, tensors): _join(v, tensors) for k, v in obj["__dict__"]}
    return obj
