"""The data layer: IDX files, checksum listings, folder layouts, resolution order and the real MNIST."""

import gzip
import hashlib
import os
import re
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from mnistctl import data
from mnistctl.errors import DataError

torch = pytest.importorskip("torch")


def write_set(folder, n_train=20, n_test=10, side=28, gz=True, seed=0, image_dtype=np.uint8):
    """A synthetic 10-class data set in MNIST's four-file layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, side, side)).astype(image_dtype),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, side, side)).astype(image_dtype),
        "test_labels": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for key, array in arrays.items():
        data.write_idx(folder / (data.FILES[key] + (".gz" if gz else "")), array)
    return arrays


def read_idx(path):
    raw = path.read_bytes()
    return data.parse_idx(gzip.decompress(raw) if path.suffix == ".gz" else raw)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", ">i2", "<i4", "float32", "float64"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 5) * 9 - 100).reshape(2, 3, 5).astype(dtype)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    data.write_idx(path, array)
    back = read_idx(path)
    assert back.shape == array.shape
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, array)
    assert list(tmp_path.iterdir()) == [path]


def test_idx_header_is_big_endian(tmp_path):
    data.write_idx(tmp_path / "x", np.array([[1, 2, 3]], dtype=np.uint8))
    assert (tmp_path / "x").read_bytes() == bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3])


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(DataError, match="int64"):
        data.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("raw", [b"PK\x03\x04rest", b"\x00\x00\x07\x01\x00\x00\x00\x01x", b"\x00\x00\x08\x00", b"\x1f"])
def test_bad_magic_number(raw):
    with pytest.raises(DataError, match="bad magic number"):
        data.parse_idx(raw, "some-file")


def test_truncated_file(tmp_path):
    data.write_idx(tmp_path / "x", np.zeros((4, 28, 28), dtype=np.uint8))
    raw = (tmp_path / "x").read_bytes()
    with pytest.raises(DataError, match="needs"):
        data.parse_idx(raw[:-1], "x")
    with pytest.raises(DataError, match="truncated inside its header"):
        data.parse_idx(raw[:9], "x")
    with pytest.raises(DataError, match="needs"):
        data.parse_idx(raw + b"\x00", "x")


def test_custom_folder_loads(tmp_path):
    arrays = write_set(tmp_path)
    dataset = data.load(tmp_path, download=False)
    assert dataset.name == "custom"
    assert dataset.n_train == 20 and dataset.num_classes == 10
    assert dataset.images.dtype == torch.uint8 and dataset.images.shape == (30, 28, 28)
    assert dataset.labels.dtype == torch.int64
    np.testing.assert_array_equal(dataset.train_images.numpy(), arrays["train_images"])
    np.testing.assert_array_equal(dataset.test_labels.numpy(), arrays["test_labels"])
    assert dataset.folder == str(tmp_path.resolve())
    raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert dataset.md5["t10k-labels-idx1-ubyte"] == hashlib.md5(raw).hexdigest()
    mean, std = dataset.stats()
    assert mean == pytest.approx(arrays["train_images"].mean() / 255, abs=1e-4)
    assert std == pytest.approx(arrays["train_images"].std(ddof=1) / 255, abs=1e-4)


def test_torchvision_layout_is_located(tmp_path):
    arrays = write_set(tmp_path / "MNIST" / "raw", gz=False)
    found = data.locate(tmp_path)
    assert found == {key: tmp_path / "MNIST" / "raw" / name for key, name in data.FILES.items()}
    dataset = data.load(tmp_path, download=False)
    np.testing.assert_array_equal(dataset.train_labels.numpy(), arrays["train_labels"])


def test_incomplete_folder_is_not_located(tmp_path):
    write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.locate(tmp_path) is None


def _listing(folder, name, algorithm, entries):
    lines = [f"{hashlib.new(algorithm, content).hexdigest()}  {file}" for file, content in entries]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_matching_checksum_listings_pass(tmp_path):
    write_set(tmp_path)
    files = sorted(tmp_path.glob("*.gz"))
    _listing(tmp_path, "SHA256SUMS", "sha256", [(f.name, f.read_bytes()) for f in files])
    _listing(tmp_path, "MD5SUMS", "md5", [(f.stem, gzip.decompress(f.read_bytes())) for f in files])
    assert data.load(tmp_path, download=False).n_train == 20


@pytest.mark.parametrize("listing,algorithm,compressed", [("MD5SUMS", "md5", False), ("SHA256SUMS", "sha256", True)])
def test_checksum_mismatch_is_a_data_error(tmp_path, listing, algorithm, compressed):
    write_set(tmp_path)
    victim = tmp_path / "train-labels-idx1-ubyte.gz"
    name = victim.name if compressed else victim.stem
    _listing(tmp_path, listing, algorithm, [(name, b"something else")])
    with pytest.raises(DataError, match=f"does not match its checksum in {listing}") as info:
        data.load(tmp_path, download=False)
    assert victim.name in info.value.message


def test_wrong_image_size_is_rejected(tmp_path):
    write_set(tmp_path, side=32)
    with pytest.raises(DataError, match="expected N x 28 x 28"):
        data.load(tmp_path, download=False)


def test_float_images_are_rejected(tmp_path):
    write_set(tmp_path, image_dtype=np.float32)
    with pytest.raises(DataError, match="float32 images"):
        data.load(tmp_path, download=False)


def test_labels_outside_0_to_9_are_rejected(tmp_path):
    write_set(tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="labels run from 12 to 12"):
        data.load(tmp_path, download=False)


def test_mismatched_counts_are_rejected(tmp_path):
    write_set(tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataError) as info:
        data.load(tmp_path, download=False)
    assert info.value.message == "test has 10 images but 9 labels"
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((10, 2), dtype=np.uint8))
    with pytest.raises(DataError) as info:
        data.load(tmp_path, download=False)
    assert info.value.message == "test has 10 images but labels of shape (10, 2)"


def test_corrupt_gzip_is_a_data_error(tmp_path):
    write_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[10] = 0xFF  # the first deflate block now has the reserved block type
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="not a valid gzip file"):
        data.load(tmp_path, download=False)


BOMB = 64 * 2**20


def _bomb(path, gz):
    """An IDX file of two 28x28 images followed by 64 MB of zeros: a few KB gzipped, or a sparse file."""
    head = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
    if gz:
        deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
        path.write_bytes(deflate.compress(head) + b"".join(deflate.compress(bytes(2**20)) for _ in range(BOMB // 2**20)) + deflate.flush())
    else:
        path.write_bytes(head)
        os.truncate(path, BOMB)


@pytest.mark.parametrize("gz", [True, False])
def test_a_file_far_longer_than_its_header_is_refused_without_reading_it_all(tmp_path, gz):
    """A gzip bomb, or a huge file, named as MNIST costs no more memory than the set its header declares."""
    write_set(tmp_path, n_train=2)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.unlink()
    _bomb(path if gz else path.with_suffix(""), gz)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"\(2, 28, 28\)"):
            data.load(tmp_path, download=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BOMB // 4


def test_a_header_larger_than_a_small_gzip_file_could_hold_is_refused(tmp_path):
    write_set(tmp_path)
    head = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (2**31, 28, 28))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + bytes(1000)))
    with pytest.raises(DataError, match="too short to hold"):
        data.load(tmp_path, download=False)


@pytest.mark.parametrize("gz", [True, False])
def test_files_are_read_by_their_content_not_their_suffix(tmp_path, gz):
    """A gzipped file saved without .gz, or a browser's gunzipped one still named .gz, is read all the same."""
    arrays = write_set(tmp_path / "set", gz=gz)
    for path in (tmp_path / "set").iterdir():
        path.rename(path.with_name(path.name.removesuffix(".gz") if gz else path.name + ".gz"))
    dataset = data.load(tmp_path / "set", download=False)
    np.testing.assert_array_equal(dataset.train_images.numpy(), arrays["train_images"])
    np.testing.assert_array_equal(dataset.test_labels.numpy(), arrays["test_labels"])


@pytest.fixture
def three_places(tmp_path, monkeypatch):
    """A --data-dir folder, a MNISTCTL_DATA_DIR folder and a cache folder, each a valid set."""
    places = {"flag": tmp_path / "flag", "env": tmp_path / "env", "cache": tmp_path / "xdg" / "mnistctl" / "mnist"}
    for folder in places.values():
        write_set(folder, n_train=10, n_test=10)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(data.ENV_VAR, str(places["env"]))
    return places


def _folder(found):
    return found["train_images"].parent


def test_data_dir_beats_env_beats_cache(three_places, monkeypatch):
    assert data.cache_dir() == three_places["cache"]
    assert _folder(data.resolve(three_places["flag"], download=False)) == three_places["flag"]
    assert _folder(data.resolve(None, download=False)) == three_places["env"]
    monkeypatch.delenv(data.ENV_VAR)
    assert _folder(data.resolve(None, download=False)) == three_places["cache"]


def test_named_folder_without_data_does_not_fall_back(three_places, tmp_path):
    with pytest.raises(DataError, match="--data-dir") as info:
        data.resolve(tmp_path / "empty", download=False)
    assert str(tmp_path / "empty") in info.value.message


def test_a_named_folder_says_what_it_lacks(tmp_path, monkeypatch):
    """A half-copied folder names the files still missing; a mistyped one says it does not exist."""
    write_set(tmp_path / "half")
    for key in ("test_images", "test_labels"):
        (tmp_path / "half" / f"{data.FILES[key]}.gz").unlink()
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "half"))
    with pytest.raises(DataError) as info:
        data.resolve(None, download=False)
    assert info.value.message == (f"{data.ENV_VAR} {tmp_path / 'half'} holds 2 of the four MNIST IDX files: "
                                  "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte missing")
    with pytest.raises(DataError) as info:
        data.resolve(tmp_path / "typo", download=False)
    assert info.value.message == f"--data-dir {tmp_path / 'typo'} does not exist"


def test_missing_data_names_the_four_files(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DataError) as info:
        data.resolve(None, download=False)
    assert "MNIST was not found" in info.value.message
    for name in data.FILES.values():
        assert name in info.value.hint
    assert "--data-dir" in info.value.hint and data.ENV_VAR in info.value.hint
    assert not (tmp_path / "xdg").exists()


def test_split_indices_are_seeded_and_disjoint():
    train, val = data.split_indices(100, 15, seed=3)
    assert len(train) == 85 and len(val) == 15
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    assert torch.equal(val, data.split_indices(100, 15, seed=3)[1])
    assert not torch.equal(val, data.split_indices(100, 15, seed=4)[1])
    with pytest.raises(DataError, match="pass its data with --data-dir"):
        data.split_indices(100, 100, seed=0)


def test_run_split_cuts_training_images_to_the_limit_and_keeps_validation():
    full_train, full_val = data.split_indices(100, 15, seed=3)
    train, val = data.run_split(100, {"val_split": 15, "seed": 3, "limit": 20})
    assert torch.equal(train, full_train[:20]) and torch.equal(val, full_val)
    assert torch.equal(data.run_split(100, {"val_split": 15, "seed": 3, "limit": None})[0], full_train)
    recorded = {"val_split": 15, "seed": 3, "limit": None, "data": {"n_train": 30}}  # resumed on larger data
    assert torch.equal(data.run_split(120, recorded)[0], data.split_indices(120, 15, seed=3)[0][:30])
    train, val = data.run_split(100, {"seed": 3})
    assert train.tolist() == list(range(100)) and len(val) == 0


def test_normalize_and_identity_augment():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    x = data.normalize(images, 0.5, 0.25)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0], (images.float() / 255 - 0.5) / 0.25)
    same = data.augment(x, rotation=0.0, shift=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)
    moved = data.augment(x, rotation=15.0, shift=0.1, generator=torch.Generator().manual_seed(0))
    assert moved.shape == x.shape and not torch.allclose(moved, x, atol=1e-2)


def test_mnist_files_under_each_others_names_are_refused(data_dir, tmp_path):
    """MNIST's training and test files swapped would train on the 10,000 test images: refused by their checksums."""
    import shutil

    swapped = {"train": "t10k", "t10k": "train"}
    for path in data.resolve(data_dir, download=False).values():
        split, rest = path.name.split("-", 1)
        shutil.copy(path, tmp_path / f"{swapped[split]}-{rest}")
    with pytest.raises(DataError) as caught:
        data.load(tmp_path, download=False)
    assert re.fullmatch(r".*/train-images-idx3-ubyte(\.gz)? holds MNIST's t10k-images-idx3-ubyte", caught.value.message)
    assert "renamed or swapped" in caught.value.hint


def test_real_mnist(mnist):
    assert mnist.name == "mnist"
    assert mnist.images.shape == (70000, 28, 28) and mnist.images.dtype == torch.uint8
    assert mnist.n_train == 60000 and len(mnist.test_labels) == 10000
    assert mnist.md5 == data.MNIST_MD5
    assert sorted(mnist.labels.unique().tolist()) == list(range(10))
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.stats() == pytest.approx((0.1307, 0.3081), abs=1e-4)


def test_empty_split_is_rejected(tmp_path):
    write_set(tmp_path, n_test=0)
    with pytest.raises(DataError, match="test files hold no images"):
        data.load(tmp_path, download=False)


def test_a_failed_download_says_why_in_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root, download):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got:\n<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError) as caught:
        data.load()
    assert str(caught.value).startswith("MNIST was not found and could not be downloaded (<urlopen error [Errno -2] Name or service not known>) (put ")
    assert "\n" not in str(caught.value)


def test_a_download_cut_short_leaves_nothing_for_the_next_run(tmp_path, monkeypatch):
    """The network drops in the last file: no partial set stays in the cache, and the next download lands whole."""
    import torchvision.datasets

    def cut_short(root, download):
        raw = Path(root) / "MNIST" / "raw"
        write_set(raw)
        last = raw / "t10k-labels-idx1-ubyte.gz"
        last.write_bytes(last.read_bytes()[:20])
        raise RuntimeError("Error downloading t10k-labels-idx1-ubyte.gz:\nConnection reset by peer")

    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", cut_short)
    with pytest.raises(DataError, match="could not be downloaded"):
        data.load()
    assert [path for path in data.cache_dir().rglob("*") if path.is_file()] == []
    monkeypatch.setattr(torchvision.datasets, "MNIST", lambda root, download: write_set(Path(root) / "MNIST" / "raw"))
    assert data.load().n_train == 20
    assert sorted(path.name for path in data.cache_dir().iterdir()) == sorted(f"{name}.gz" for name in data.FILES.values())


def test_a_named_data_folder_that_is_not_there_is_bad_input(tmp_path):
    """Exit 2, as a run or file named wrong is; a symbolic link that leads nowhere is called that, not missing."""
    (tmp_path / "loop").symlink_to("loop")
    for folder, lack in (("typo", "does not exist"), ("loop", "is a symbolic link that leads nowhere")):
        with pytest.raises(DataError, match=lack) as info:
            data.resolve(tmp_path / folder, download=False)
        assert info.value.exit_code == 2
