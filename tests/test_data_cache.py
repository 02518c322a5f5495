"""Decoded sets kept on disk: the same data as the IDX files, read again when a file changes, never trusted when damaged."""

import os

import numpy as np
import pytest
from test_data import write_set

from mnistctl import data
from mnistctl.data import cache

torch = pytest.importorskip("torch")


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "decoded"
    monkeypatch.setenv(cache.ENV_VAR, str(folder))
    return folder


def _same(a, b):
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert (a.n_train, a.name, a.md5, a.folder) == (b.n_train, b.name, b.md5, b.folder)


def test_a_second_load_comes_from_the_cache_and_matches(tmp_path, store, monkeypatch):
    write_set(tmp_path / "set")
    first = data.load(tmp_path / "set", download=False)
    assert len(list(store.glob("*.npz"))) == 1
    monkeypatch.setattr("mnistctl.data.mnist.parse_idx", lambda *a, **k: pytest.fail("the files were parsed again"))
    _same(first, data.load(tmp_path / "set", download=False))


def test_a_changed_file_is_read_again(tmp_path, store):
    write_set(tmp_path / "set")
    assert data.load(tmp_path / "set", download=False).train_labels[:3].tolist() == [0, 1, 2]
    labels = tmp_path / "set" / "train-labels-idx1-ubyte.gz"
    data.write_idx(labels, np.full(20, 7, dtype=np.uint8))
    os.utime(labels, ns=(1, 1))
    assert data.load(tmp_path / "set", download=False).train_labels[:3].tolist() == [7, 7, 7]


def test_a_damaged_entry_is_ignored_and_replaced(tmp_path, store):
    write_set(tmp_path / "set")
    first = data.load(tmp_path / "set", download=False)
    (entry,) = store.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    _same(first, data.load(tmp_path / "set", download=False))
    assert cache.read(data.resolve(tmp_path / "set", download=False)) is not None


def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV_VAR, str(blocker / "decoded"))
    write_set(tmp_path / "set")
    assert data.load(tmp_path / "set", download=False).n_train == 20


def test_only_the_entries_used_last_are_kept(tmp_path, store):
    sets = [tmp_path / f"set{k}" for k in range(cache.KEEP + 2)]
    for k, folder in enumerate(sets):
        write_set(folder, seed=k)
        data.load(folder, download=False)
        for entry in store.glob("*.npz"):  # a second apart, as loads on different days would be
            os.utime(entry, (entry.stat().st_mtime - 1,) * 2)
    entries = {cache.entry(data.resolve(folder, download=False)) for folder in sets}
    assert set(store.glob("*.npz")) == {cache.entry(data.resolve(folder, download=False)) for folder in sets[-cache.KEEP:]}
    assert len(entries) == cache.KEEP + 2
    data.load(sets[-cache.KEEP], download=False)  # read again: the newest use
    write_set(tmp_path / "new", seed=99)
    data.load(tmp_path / "new", download=False)
    kept = set(store.glob("*.npz"))
    assert cache.entry(data.resolve(sets[-cache.KEEP], download=False)) in kept and len(kept) == cache.KEEP


@pytest.mark.parametrize("damage", ["facts a list", "facts without md5", "n_train a string", "images cut short", "images as floats", "labels in a column"])
def test_an_entry_that_reads_but_holds_no_whole_set_is_read_again(tmp_path, store, damage):
    """A valid archive whose contents are not a set as load stores one (damaged, or written otherwise) is not trusted."""
    write_set(tmp_path / "set")
    first = data.load(tmp_path / "set", download=False)
    paths = data.resolve(tmp_path / "set", download=False)
    (arrays, facts) = cache.read(paths)
    changed = {
        "facts a list": lambda: (arrays, []),
        "facts without md5": lambda: (arrays, {k: v for k, v in facts.items() if k != "md5"}),
        "n_train a string": lambda: (arrays, {**facts, "n_train": "20"}),
        "images cut short": lambda: ({**arrays, "images": arrays["images"][:3], "labels": arrays["labels"][:3]}, facts),
        "images as floats": lambda: ({**arrays, "images": arrays["images"].astype(np.float64)}, facts),
        "labels in a column": lambda: ({**arrays, "labels": arrays["labels"].reshape(-1, 1)}, facts),
    }[damage]
    cache.write(paths, *changed())
    again = data.load(tmp_path / "set", download=False)
    _same(first, again)
    assert (again.images.dtype, again.labels.dtype) == (torch.uint8, torch.int64)
    assert cache.read(paths)[0]["images"].shape == first.images.shape  # replaced by a whole entry


def test_pruning_removes_only_the_caches_own_entries(tmp_path, store):
    """$MNISTCTL_DATA_CACHE may name a folder that holds the user's own .npz files: they are never removed."""
    store.mkdir()
    own = [store / f"experiment{k}.npz" for k in range(cache.KEEP + 2)]
    for path in own:
        np.savez(path, a=np.arange(3))
    write_set(tmp_path / "set")
    data.load(tmp_path / "set", download=False)
    assert all(path.exists() for path in own)
    assert len(list(store.glob("*.npz"))) == len(own) + 1
