"""mnistctl predict: MNIST-style preparation of photos, batched and ensemble prediction, and bad input."""

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.data import imageprep
from mnistctl.errors import DataError, UsageError
from mnistctl.models import load_model, predict_proba
from mnistctl.reading import predict

PHOTO_RUN = {"arch": "lenet", "epochs": 1, "limit": None, "batch_size": 128, "val_split": 1000, "optimizer": "adam",
             "scheduler": "none", "precision": "fp32", "channels_last": False, "log_every": 50, "name": "photo"}
N_PHOTOS = 400

@pytest.fixture(scope="module")
def run(train_run):
    """A lenet trained for one epoch on the full training set (about 97% on the test set)."""
    return train_run(**PHOTO_RUN)


def photo_like(digit: np.ndarray, rng) -> bytes:
    """An MNIST digit as a phone photo: scaled up, dark ink on light paper, off centre, RGB, uneven light, noise, JPEG."""
    size = int(rng.integers(70, 140))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    height, width = int(rng.integers(180, 260)), int(rng.integers(180, 260))
    canvas = np.zeros((height, width), np.float32)
    top, left = int(rng.integers(0, height - size)), int(rng.integers(0, width - size))
    canvas[top : top + size, left : left + size] = ink
    return _photograph(1 - 0.85 * canvas.clip(0, 1), rng)


def _photograph(paper: np.ndarray, rng, quality=(50, 85)) -> bytes:
    """Light falling across the page from a random side, a warm tint, sensor noise, JPEG."""
    height, width = paper.shape
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.55 + 0.35 * (np.cos(angle) * xx + np.sin(angle) * yy)
    rgb = (light * paper)[..., None] * np.array([1.0, 0.95, 0.88]) + rng.normal(0, 0.04, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=int(rng.integers(*quality)))
    return buffer.getvalue()


def naive(photo: bytes) -> np.ndarray:
    """What most MNIST demos do: grey, resize to 28x28, invert (generously: the photos are dark on light)."""
    return 255 - np.asarray(Image.open(io.BytesIO(photo)).convert("L").resize((28, 28), Image.Resampling.BILINEAR))


def _arc(cx, cy, rx, ry, start, end, n=24):
    t = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


STROKES = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, 0, 360)],
    1: [[(0.38, 0.2), (0.56, 0.05), (0.52, 0.95)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 180, 400) + [(0.18, 0.95), (0.85, 0.95)]],
    3: [_arc(0.5, 0.27, 0.28, 0.22, 200, 450) + _arc(0.5, 0.72, 0.32, 0.24, 270, 510)],
    4: [[(0.62, 0.05), (0.15, 0.65), (0.88, 0.65)], [(0.66, 0.3), (0.66, 0.95)]],
    5: [[(0.82, 0.05), (0.3, 0.05), (0.26, 0.45)] + _arc(0.5, 0.68, 0.32, 0.27, 230, 500)],
    6: [_arc(0.62, 0.45, 0.35, 0.42, 280, 190) + _arc(0.5, 0.7, 0.3, 0.25, 180, 540)],
    7: [[(0.15, 0.08), (0.85, 0.08), (0.42, 0.95)]],
    8: [_arc(0.5, 0.27, 0.24, 0.22, 90, 450), _arc(0.5, 0.72, 0.3, 0.24, -90, 270)],
    9: [_arc(0.5, 0.3, 0.28, 0.25, 0, 360), [(0.78, 0.3), (0.7, 0.95)]],
}


def drawing(digit: int, rng, side: int = 300, pen: float = 0.06) -> np.ndarray:
    """A digit written with a pen in dark ink, slanted and off centre, on a light page: luminance in [0, 1]."""
    size = rng.uniform(0.35, 0.6) * side
    ox, oy = rng.uniform(0.05, 0.95 - size / side, 2) * side
    slant = rng.uniform(-0.15, 0.15)
    page = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(page)
    for stroke in STROKES[digit]:
        points = [(ox + (x + slant * (0.5 - y)) * size * 0.75, oy + y * size) for x, y in stroke]
        draw.line(points, fill=int(rng.integers(20, 70)), width=max(2, round(pen * size)), joint="curve")
    texture = Image.fromarray((rng.random((side // 10, side // 10)) * 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    paper = 0.92 + 0.08 * np.asarray(texture, np.float32) / 255
    return paper * np.asarray(page.filter(ImageFilter.GaussianBlur(1)), np.float32) / 255


def handwritten(digit: int, rng, pen: float = 0.06) -> bytes:
    """A written digit photographed in skewed light and saved as a scan-quality JPEG."""
    return _photograph(drawing(digit, rng, pen=pen), rng, quality=(40, 75))


def invoke(*args, stdin=None):
    return CliRunner().invoke(app, ["predict", *map(str, args)], input=stdin)


def png(array: np.ndarray, mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG") if mode else Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


# Preparation


def test_prepared_digit_has_mnist_form():
    gray = drawing(7, np.random.default_rng(3))
    prepared = imageprep.prepare(gray)
    assert prepared.dtype == np.uint8 and prepared.shape == (28, 28)
    assert prepared.max() == 255 and np.median(prepared) == 0  # white ink on black
    rows, cols = np.nonzero(prepared > 0)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20)  # fitted into 20x20
    from scipy import ndimage

    assert ndimage.center_of_mass(prepared.astype(float)) == pytest.approx((14, 14), abs=0.5)


def test_every_mode_and_orientation_gives_the_same_digit(tmp_path):
    gray = drawing(4, np.random.default_rng(5))
    reference = imageprep.prepare(gray)
    l8 = (gray * 255).round().astype(np.uint8)
    ink = 1 - gray
    rgba = np.dstack([np.zeros_like(l8)] * 3 + [(ink / ink.max() * 255).astype(np.uint8)])  # black strokes on transparency
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left; viewers turn it right
    Image.fromarray(l8).rotate(90, expand=True).save(rotated, "PNG", exif=exif)
    variants = {
        "L": png(l8),
        "RGB": png(np.dstack([l8] * 3)),
        "RGBA": png(rgba, "RGBA"),
        "I;16": png((gray * 65535).astype(np.uint16)),
        "P": _to_bytes(Image.fromarray(l8).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)),
        "EXIF": rotated.getvalue(),
    }
    for name, data in variants.items():
        prepared = imageprep.load_prepared(data)
        difference = np.abs(prepared.astype(int) - reference.astype(int)).mean()
        assert difference < 12, f"{name} differs by {difference:.1f} grey levels on average"


def _to_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_photos_are_read_almost_as_well_as_raw_mnist_and_clearly_better_than_a_naive_resize(run, mnist):
    rng = np.random.default_rng(0)
    raw, labels = mnist.test_images[:N_PHOTOS], mnist.test_labels[:N_PHOTOS]
    photos = [photo_like(d, rng) for d in raw.numpy()]
    model, (mean, std) = load_model(run), run.normalization

    def accuracy(images):
        return (predict_proba(model, torch.as_tensor(np.asarray(images)), mean, std).argmax(1) == labels).float().mean().item()

    raw_acc = accuracy(raw)
    photo_acc = accuracy(np.stack([imageprep.load_prepared(p) for p in photos]))
    naive_acc = accuracy(np.stack([naive(p) for p in photos]))
    assert raw_acc > 0.93
    assert photo_acc >= raw_acc - 0.04, (raw_acc, photo_acc)
    assert naive_acc < raw_acc - 0.3, (raw_acc, naive_acc)


def test_digits_written_by_hand_are_read(run, tmp_path):
    rng = np.random.default_rng(1)
    for digit in range(10):
        (tmp_path / f"digit-{digit}.jpg").write_bytes(handwritten(digit, rng))
    results = list(predict.predict(predict.expand([tmp_path]), [predict.member_from_run(run)]))
    read = [int(r.source[-5]) == r.digit for r in results]
    assert sum(read) >= 9, [(r.source, r.digit) for r in results]


def test_raw_skips_preparation_and_needs_28x28(run, mnist, tmp_path):
    digit = mnist.test_images[0].numpy()
    (tmp_path / "mnist.png").write_bytes(png(digit))
    (tmp_path / "big.png").write_bytes(png(np.zeros((40, 40), np.uint8)))
    expected = predict_proba(load_model(run), mnist.test_images[:1], *run.normalization)[0]
    result = invoke(tmp_path / "mnist.png", tmp_path / "big.png", "--raw", "--run", run.path, "--json", "--top-k", "10")
    assert result.exit_code == 1
    good, bad = json.loads(result.stdout)
    assert [t["probability"] for t in good["top_k"]] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-6)
    assert "40x40" in bad["error"] and "--raw" in bad["error"]


def test_raw_refuses_dark_on_light_but_not_a_digit_touching_the_edge(run, mnist, tmp_path):
    digit = mnist.test_images[0].numpy()
    touching = digit.copy()
    touching[:, :2] = 0
    touching[10:20, :3] = 255  # a stroke runs off the left edge
    (tmp_path / "dark.png").write_bytes(png(255 - digit))
    (tmp_path / "touching.png").write_bytes(png(touching))
    result = invoke(tmp_path / "dark.png", tmp_path / "touching.png", "--raw", "--run", run.path, "--json")
    assert result.exit_code == 1
    bad, good = json.loads(result.stdout)
    assert "dark on light" in bad["error"] and "drop --raw" in bad["hint"] and "digit" in good


# The command


def test_predict_reads_files_folders_and_stdin_and_saves_what_the_model_saw(run, tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "three.jpg").write_bytes(handwritten(3, rng))
    (folder / "notes.txt").write_text("not an image, and not picked from a folder")
    (tmp_path / "seven.jpg").write_bytes(handwritten(7, rng))
    saved = tmp_path / "seen"
    result = invoke(tmp_path / "seven.jpg", folder, "-", "--run", run.path, "--json", "--save-input", saved,
                    stdin=handwritten(0, rng))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(Path(o["image"]).name, o["digit"]) for o in out] == [("seven.jpg", 7), ("three.jpg", 3), ("stdin", 0)]
    for o in out:
        assert len(o["top_k"]) == 3 and o["top_k"][0]["probability"] == o["probability"]
        assert [t["probability"] for t in o["top_k"]] == sorted((t["probability"] for t in o["top_k"]), reverse=True)
    assert sorted(p.name for p in saved.iterdir()) == ["seven.png", "stdin.png", "three.png"]
    seen = np.asarray(Image.open(saved / "three.png"))
    assert seen.shape == (28, 28) and np.array_equal(seen, imageprep.load_prepared(folder / "three.jpg"))


def test_table_output_and_latest_run_by_default(run, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(run.path.parent))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.jpg").write_bytes(handwritten(1, np.random.default_rng(4)))
    result = invoke("one.jpg", "--top-k", "2")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "one.jpg" in line)
    assert line.split()[0] == "1" and line.split()[-1] == "one.jpg" and line.count("%") == 3
    assert run.name in result.stdout


def test_the_table_has_its_header_when_the_first_image_fails(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "one.jpg").write_bytes(handwritten(1, np.random.default_rng(4)))
    result = CliRunner().invoke(app, ["predict", "broken.png", "one.jpg", "--run", str(run.path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"model: {run.name}" and lines[1].split() == ["digit", "probability", "top-k", "image"]
    assert lines[2].split()[-1] == "one.jpg"


def test_table_columns_stay_aligned_whatever_the_names_in_a_folder(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for name in ("a.jpg", "a-much-longer-name-from-a-phone.jpg", "sub/z.jpg"):
        (tmp_path / "photos" / name).write_bytes(handwritten(3, rng))
    result = invoke("photos", "--run", run.path)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()[1:]
    assert len(rows) == 3
    starts = {header.index("image")} | {row.index("photos") for row in rows}
    assert len(starts) == 1, f"the columns moved: {[header, *rows]}"
    assert sorted(row[row.index("photos"):] for row in rows) == ["photos/a-much-longer-name-from-a-phone.jpg", "photos/a.jpg", "photos/sub/z.jpg"]


def test_checkpoint_path_finds_its_run(run, tmp_path):
    member = predict.member_from_checkpoint(run.path / "weights" / "best.safetensors")
    assert member.name == f"{run.name}:best"
    stray = tmp_path / "elsewhere" / "model.safetensors"
    stray.parent.mkdir()
    stray.write_bytes((run.path / "weights" / "best.safetensors").read_bytes())
    with pytest.raises(UsageError, match="not a run checkpoint"):
        predict.member_from_checkpoint(stray)


def test_ensemble_averages_probabilities(run, mnist, tmp_path):
    images = mnist.test_images[:50]
    members = [predict.member_from_run(run, "best"), predict.member_from_run(run, "initial")]
    each = [predict_proba(load_model(run, which), images, *run.normalization).numpy() for which in ("best", "initial")]
    together = predict.ensemble_proba(members, images.numpy())
    assert np.allclose(together, (each[0] + each[1]) / 2, atol=1e-6)
    assert not np.allclose(together, each[0], atol=1e-3)
    (tmp_path / "d.png").write_bytes(png(images[0].numpy()))
    result = invoke(tmp_path / "d.png", "--raw", "--checkpoint", run.weights("best"), "--checkpoint", run.weights("initial"),
                    "--json", "--top-k", "10")
    top = json.loads(result.stdout)[0]["top_k"]
    assert {t["digit"]: t["probability"] for t in top} == pytest.approx(dict(enumerate(together[0].tolist())), abs=1e-6)


def test_the_header_and_the_explain_title_name_weights_that_are_not_the_best(run, mnist, tmp_path):
    (tmp_path / "d.png").write_bytes(png(mnist.test_images[0].numpy()))
    header = {args: invoke(tmp_path / "d.png", "--run", *args).stdout.splitlines()[0]
              for args in [(run.path,), (run.path, "--weights", "initial"), (run.weights("last"),)]}
    assert list(header.values()) == [f"model: {run.name}", f"model: {run.name} (initial)", f"model: {run.name} (last)"]
    assert predict.member_from_run(run, "initial").name == f"{run.name} (initial)"  # the title of --explain


def test_the_same_run_given_twice_is_refused_before_any_work(run, tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(run.path.parent))
    for refs in [(run.path, run.path), ("latest", "latest"), (run.name, run.weights("best"))]:
        result = invoke(tmp_path / "missing.png", *(a for ref in refs for a in ("--run", ref)))
        assert isinstance(result.exception, UsageError) and result.stdout == "", refs
        assert result.exception.message in (f"--run {refs[0]} is given twice", f"--run {refs[0]} and --run {refs[1]} are the same run")
    assert invoke(tmp_path / "missing.png", "--run", run.path, "--run", run.weights("initial")).exit_code == 1


# Bad input: each fails on its own line, the good image is still predicted, and the exit code is 1


def _huge_png() -> bytes:
    """A valid PNG header declaring 100,000 x 100,000 pixels: tiny on disk, 10 GB if decoded."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    data = handwritten(5, np.random.default_rng(6))
    return data[: len(data) // 2]


def _blank_paper() -> bytes:
    rng = np.random.default_rng(7)
    return _photograph(np.full((200, 240), 0.95, np.float32), rng)


def _damaged_png() -> bytes:
    data = bytearray((Path(__file__).parent.parent / "docs" / "samples" / "scan.png").read_bytes())
    data[40] ^= 0xFF  # a checksum no longer matches
    return bytes(data)


BAD = {
    "missing": (None, "does not exist"),
    "damaged-png": (_damaged_png(), "is truncated or corrupt (it starts as a PNG file, which cannot be read)"),
    "not-an-image": (b"name,digit\nfoo,3\n", "is not an image"),
    "truncated": (_truncated_jpeg(), "truncated or corrupt"),
    "blank": (_blank_paper(), "has no ink"),
    "huge": (_huge_png(), "too large to decode safely"),
}


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_fails_alone(kind, run, tmp_path):
    content, message = BAD[kind]
    bad = tmp_path / f"{kind}.png"
    if content is not None:
        bad.write_bytes(content)
    (tmp_path / "good.jpg").write_bytes(handwritten(2, np.random.default_rng(8)))
    result = invoke(bad, tmp_path / "good.jpg", "--run", run.path, "--json")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and message in errors[0] and str(bad) in errors[0]
    assert errors[1].startswith(f"error: 1 of 2 images could not be read: {bad}")  # the last line names it
    failed, good = json.loads(result.stdout)
    assert message in failed["error"] and good["digit"] == 2


def test_load_prepared_raises_data_error_for_blank_bytes():
    with pytest.raises(DataError, match="no ink"):
        imageprep.load_prepared(png(np.full((50, 50), 255, np.uint8)))


# Every picture of a digit is read: tight crops, thick strokes, digits at the border, margins


def tight_crop(digit: np.ndarray, margin: bool = False) -> bytes:
    """An MNIST digit cropped to its ink, dark on white, upscaled 4x; with ``margin``, a quarter of white around it."""
    rows, cols = np.nonzero(digit)
    ink = Image.fromarray(255 - digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    ink = ink.resize((ink.width * 4, ink.height * 4), Image.Resampling.BICUBIC)
    if margin:
        pad = max(ink.size) // 4
        page = Image.new("L", (ink.width + 2 * pad, ink.height + 2 * pad), 255)
        page.paste(ink, (pad, pad))
        ink = page
    return _to_bytes(ink)


@pytest.mark.parametrize("margin", [False, True], ids=["tight", "margin"])
def test_cropped_digits_are_read_with_or_without_a_margin(run, mnist, margin):
    digits, labels = mnist.test_images[:100].numpy(), mnist.test_labels[:100].numpy()
    prepared = np.stack([imageprep.load_prepared(tight_crop(d, margin)) for d in digits])  # none is called blank
    model, (mean, std) = load_model(run), run.normalization
    raw = (predict_proba(model, torch.as_tensor(digits), mean, std).argmax(1).numpy() == labels).mean()
    read = (predict_proba(model, torch.as_tensor(prepared), mean, std).argmax(1).numpy() == labels).mean()
    assert read >= raw - 0.04, (raw, read)


def scanned_crop(digit: np.ndarray) -> bytes:
    """An MNIST digit as if scanned large (10x, dark ink on white) and cropped tight to its ink."""
    page = 255 - np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC))
    rows, cols = np.nonzero(page < 128)
    return png(page[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


def test_white_areas_inside_a_large_tight_crop_are_not_taken_for_a_sheet_of_paper(run, mnist):
    digits, labels = mnist.test_images[:50].numpy(), mnist.test_labels[:50].numpy()
    prepared = np.stack([imageprep.load_prepared(scanned_crop(d)) for d in digits])
    model, (mean, std) = load_model(run), run.normalization
    raw = (predict_proba(model, torch.as_tensor(digits), mean, std).argmax(1).numpy() == labels).mean()
    read = (predict_proba(model, torch.as_tensor(prepared), mean, std).argmax(1).numpy() == labels).mean()
    assert read >= raw - 0.04, (raw, read)  # cut down to the area inside a loop, 12% fewer were read


def in_a_strip(digit: np.ndarray, width: int = 3000, height: int = 140) -> np.ndarray:
    """An MNIST digit 112 px high, dark on white, a third of the way along a long strip of paper."""
    strip = np.full((height, width), 255, np.uint8)
    top, left = (height - 112) // 3, (width - 112) // 3
    strip[top : top + 112, left : left + 112] = 255 - np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC))
    return strip


def test_a_digit_in_a_very_wide_or_tall_strip_is_read(run, mnist):
    digits, labels = mnist.test_images[:20].numpy(), mnist.test_labels[:20].numpy()
    model, (mean, std) = load_model(run), run.normalization
    for shape in ((140, 3000), (3000, 140), (140, 6000)):
        strips = [in_a_strip(d, shape[1], shape[0]) if shape[0] < shape[1] else in_a_strip(d.T, shape[0], shape[1]).T for d in digits]
        prepared = np.stack([imageprep.load_prepared(png(s)) for s in strips])  # each was called blank, shrunk to a few pixels
        read = (predict_proba(model, torch.as_tensor(prepared), mean, std).argmax(1).numpy() == labels).mean()
        assert read >= 0.9, (shape, read)


def test_thick_strokes_and_digits_touching_the_border_are_read(run):
    rng = np.random.default_rng(11)
    member = predict.member_from_run(run)
    images, expected = [], []
    for digit in (0, 2, 3, 4, 7, 8):
        images.append(imageprep.prepare(drawing(digit, rng, pen=0.2)))  # a marker
        page = drawing(digit, rng)
        rows, cols = np.nonzero(page < 0.6)
        images.append(imageprep.prepare(page[rows.min() : rows.max() + 1, cols.min() - 15 : cols.max() + 1]))  # ink on three edges
        expected += [digit, digit]
    read = member(np.stack(images)).argmax(1)
    assert (read == expected).mean() >= 0.8, list(zip(expected, read))


def test_small_pictures_are_read_at_64_px_unless_their_digit_is_small_there(monkeypatch):
    rng = np.random.default_rng(5)
    read_at = []
    found_ink = imageprep._found_ink
    monkeypatch.setattr(imageprep, "_found_ink", lambda x: read_at.append(max(x.shape)) or found_ink(x))
    page = drawing(3, rng, side=200)
    rows, cols = np.nonzero(page < 0.6)
    crop = page[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # the digit fills the picture
    assert imageprep.SMALL_SIDE < max(crop.shape) <= imageprep.WORK_SIDE
    imageprep.prepare(crop)
    assert len(read_at) == 1 and read_at[0] <= imageprep.SMALL_SIDE
    read_at.clear()
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize((24, 30), Image.Resampling.BOX)
    small_digit = np.ones((120, 120), np.float32)
    small_digit[45:75, 48:72] = np.asarray(digit, np.float32) / 255  # 30 px of a 120 px picture
    prepared = imageprep.prepare(small_digit)
    assert read_at == [60, 120]  # too small at 60 px: read again at full size
    monkeypatch.setattr(imageprep, "SMALL_SIDE", imageprep.WORK_SIDE)
    assert np.array_equal(prepared, imageprep.prepare(small_digit))


def on_desk(paper: np.ndarray, rng, sides: str) -> np.ndarray:
    """``paper`` lying on a darker desk that shows on the given sides (t, b, l, r)."""
    top, bottom, left, right = (int(rng.integers(40, 120)) if side in sides else 0 for side in "tblr")
    desk = np.full((paper.shape[0] + top + bottom, paper.shape[1] + left + right), rng.uniform(0.1, 0.45))
    desk[top : top + paper.shape[0], left : left + paper.shape[1]] = paper
    return desk


def test_a_page_photographed_on_a_desk_is_read(run):
    rng = np.random.default_rng(3)
    member = predict.member_from_run(run)
    images, expected = [], []
    for digit in (0, 2, 3, 4, 7, 8):
        for sides in ("tblr", "tl", "r"):
            page = drawing(digit, rng, side=400)
            images.append(imageprep.load_prepared(_photograph(on_desk(page, rng, sides), rng)))
            expected.append(digit)
            work = imageprep._shrink(page.astype(np.float32), imageprep.WORK_SIDE)
            assert imageprep._sheet_of_paper(work) is None  # the page alone, all paper
    read = member(np.stack(images)).argmax(1)
    assert (read == expected).mean() >= 0.8, list(zip(expected, read))


@pytest.mark.parametrize("shape", [(90, 130), (128, 85)])
def test_paper_in_light_that_falls_off_in_a_line_is_found_up_to_the_border(shape):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    for slope_rows, slope_cols in ((0.2, 0.3), (-0.35, 0.1), (0.25, -0.25)):
        paper = (0.5 + slope_rows * rows + slope_cols * cols).astype(np.float32)
        found = imageprep._background(paper)
        assert np.abs(found - paper).max() < 0.04  # a flat continuation past the border was 0.09 off at a corner


def test_dark_ink_in_dim_light_is_found_as_strong_as_in_full_light():
    rows, cols = np.mgrid[0:120, 0:120] / 120
    paper = np.ones((120, 120), np.float32)
    paper[50:70, 20:24] = paper[50:70, 96:100] = 0.15  # the same stroke twice
    ink = imageprep._ink_up(((0.95 - 0.6 * cols) * paper).astype(np.float32))  # light falls from 0.95 to 0.35
    bright, dim = ink[55:65, 21:23].mean(), ink[55:65, 97:99].mean()
    assert dim == pytest.approx(bright, rel=0.15)  # measured against the paper: half as strong before


def test_a_margin_goes_on_with_the_light_across_the_paper_and_not_with_the_ink():
    rows, cols = np.mgrid[0:80, 0:60] / 80
    page = (0.5 + 0.12 * rows + 0.08 * cols).astype(np.float32)
    page[30:50, 0:6] = 0.1  # ink running off the left side
    edge = imageprep._border(page)
    margined = imageprep._with_margin(page, edge, float(np.median(edge)))
    pad = (margined.shape[0] - page.shape[0]) // 2
    inner = margined[pad:-pad, pad:-pad]
    assert np.array_equal(inner, page)
    for outside, border in ((margined[pad - 1, pad:-pad], page[0]), (margined[-pad, pad:-pad], page[-1]), (margined[pad:-pad, -pad], page[:, -1])):
        assert np.abs(outside - border).max() < 0.02  # a flat margin was up to 0.1 off
    beside_ink = margined[pad + 30 : pad + 50, pad - 1]
    assert np.abs(beside_ink - (0.5 + 0.12 * rows[30:50, 0])).max() < 0.02


def test_only_pictures_without_ink_are_blank():
    for blank in (np.full((40, 60), 1.0), np.full((40, 60), 0.0), np.full((300, 200), 0.5)):
        with pytest.raises(DataError, match="no ink"):
            imageprep.prepare(blank.astype(np.float32))
    solid = np.ones((60, 60), np.float32)
    solid[5:55, 25:35] = 0  # a bar of ink filling most of the height
    assert imageprep.prepare(solid).max() == 255


def test_mnist_form_images_are_detected_without_raw(run, mnist, tmp_path):
    digits = mnist.test_images[:3].numpy()
    for i, d in enumerate(digits):
        (tmp_path / f"m{i}.png").write_bytes(png(d))
    (tmp_path / "dark-on-light.png").write_bytes(png(255 - digits[0]))
    assert all(np.array_equal(imageprep.load_prepared(tmp_path / f"m{i}.png"), d) for i, d in enumerate(digits))
    assert not np.array_equal(imageprep.load_prepared(tmp_path / "dark-on-light.png"), 255 - digits[0])



def test_a_28x28_digit_off_centre_or_small_is_prepared_but_every_mnist_digit_counts_as_mnist_form(run, mnist):
    assert all(imageprep.is_mnist_form(d) for d in mnist.test_images.numpy())
    seven = np.zeros((28, 28), np.uint8)
    seven[3:5, 3:11] = seven[3:13, 9:11] = 255  # a 10x8 seven in the top left corner
    assert not imageprep.is_mnist_form(seven)
    prepared = imageprep.load_prepared(png(seven))
    assert imageprep.is_mnist_form(prepared)
    assert predict.member_from_run(run)(prepared[None]).argmax() == 7


def test_json_with_jsonl_and_an_explain_file_that_is_not_png_are_refused(tmp_path):
    (tmp_path / "d.png").write_bytes(png(np.zeros((28, 28), np.uint8)))
    both = invoke(tmp_path / "d.png", "--json", "--jsonl")
    assert isinstance(both.exception, UsageError) and "--json and --jsonl" in both.exception.message and both.stdout == ""
    text = invoke(tmp_path / "d.png", "--explain", tmp_path / "why.txt")
    assert isinstance(text.exception, UsageError) and "not a .png path" in text.exception.message
    assert not (tmp_path / "why.txt").exists()


def test_an_explain_file_that_appears_while_it_is_drawn_is_kept(run, tmp_path):
    from mnistctl.reading.attributions import explain_predictions

    seven = predict.Prediction("seven.png", 7, 0.9, [(7, 0.9)], imageprep.prepare(drawing(7, np.random.default_rng(1))))
    why = tmp_path / "why.png"
    why.write_text("mine")  # after predict checked that the name was free
    with pytest.raises(UsageError, match="appeared while it was being written"):
        explain_predictions([seven], [predict.member_from_run(run, onnx=False)], why)
    assert why.read_text() == "mine"


def sheet_on_a_desk(digit: np.ndarray, sheet_size: tuple[int, int], angle: float) -> bytes:
    """A sheet of paper, lit a little unevenly, with the digit written on it, lying (turned by ``angle``) on a plain dark desk."""
    width, height = sheet_size
    y, x = np.mgrid[0:height, 0:width]
    sheet = Image.fromarray((205 + 30 * x / width - 25 * y / height).astype(np.uint8))
    side = min(width, height) // 2
    ink = Image.fromarray(255 - digit).resize((side, side))
    sheet.paste(ink, (width // 3, height // 4), Image.eval(ink, lambda v: 255 - v))
    outline = Image.new("L", sheet.size, 255).rotate(angle, expand=True)
    sheet = sheet.rotate(angle, expand=True)
    desk = Image.new("L", (1600, 1200), 60)
    desk.paste(sheet, ((1600 - sheet.width) // 2, (1200 - sheet.height) // 2), outline)
    out = io.BytesIO()
    desk.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("fill, angle", [(0.25, 0), (0.5, 5), (0.8, -8)], ids=["a-quarter", "half-turned", "most-turned-back"])
def test_a_small_or_turned_sheet_on_a_desk_is_read_without_the_desk(fill, angle, mnist):
    size = (round(1600 * fill**0.5), round(1200 * fill**0.5))
    digits = mnist.test_images[:5].numpy()
    prepared = [imageprep.load_prepared(sheet_on_a_desk(d, size, angle)) for d in digits]
    likeness = [np.corrcoef(p.ravel().astype(float), d.ravel().astype(float))[0, 1] for p, d in zip(prepared, digits)]
    assert np.mean(likeness) > 0.6, likeness  # the desk's edges, read as ink, took it under 0.4


def test_the_header_names_runs_of_the_same_name_from_different_folders_by_their_paths(run, mnist, tmp_path):
    copy = shutil.copytree(run.path, tmp_path / "kept" / run.name)
    (tmp_path / "d.png").write_bytes(png(mnist.test_images[0].numpy()))
    header = invoke(tmp_path / "d.png", "--run", run.path, "--run", copy).stdout.splitlines()[0]
    assert header == f"model: {run.path} + {copy}"
    assert invoke(tmp_path / "d.png", "--run", run.path).stdout.splitlines()[0] == f"model: {run.name}"


def test_the_explain_title_names_runs_of_the_same_name_by_their_paths(run, mnist, tmp_path, monkeypatch):
    from mnistctl.reading import attributions, figures

    titles = []
    monkeypatch.setattr(attributions, "explain_figure", lambda title, *args: titles.append(title))
    monkeypatch.setattr(figures, "save", lambda figure, path, replace: path)
    copy = shutil.copytree(run.path, tmp_path / "kept" / run.name)
    (tmp_path / "d.png").write_bytes(png(mnist.test_images[0].numpy()))
    invoke(tmp_path / "d.png", "--run", run.path, "--run", copy, "--explain", tmp_path / "why.png")
    assert titles == [f"Why {run.path} + {copy} read this digit as they did"]
