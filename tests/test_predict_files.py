"""mnistctl predict and bad files: listed formats only, bytes and pixels bounded by our own check, no file overwritten."""

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.data import imagefile, imageprep
from mnistctl.errors import DataError, NotFoundError, UsageError
from mnistctl.reading import predict


def seven(size: int = 120) -> Image.Image:
    """A 7 in dark ink on white paper."""
    page = Image.new("L", (size, size), 255)
    ImageDraw.Draw(page).line([(0.2 * size, 0.2 * size), (0.8 * size, 0.2 * size), (0.45 * size, 0.85 * size)], fill=20, width=size // 12)
    return page


def _to_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()



def test_formats_the_readme_does_not_list_are_refused(tmp_path):
    for fmt in ("PCX", "TGA", "ICO"):
        disguised = tmp_path / f"digit-{fmt}.png"
        seven(64).save(disguised, format=fmt)
        with pytest.raises(DataError, match="not an image in a supported format"):
            imageprep.load_prepared(disguised)


def test_every_format_the_refusal_names_is_read(tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(DataError) as info:
        imageprep.load_prepared(tmp_path / "notes.txt")
    named = info.value.hint.removeprefix("use a ").removesuffix(" file").replace(" or ", ", ").split(", ")
    saved_as = {"PBM": ("PPM", "1"), "PGM": ("PPM", "L"), "PPM": ("PPM", "RGB"), "WEBP": ("WEBP", "RGB")}
    for name in named:
        fmt, mode = saved_as.get(name, (name, "L"))
        path = tmp_path / f"seven.{name.lower()}"
        seven(64).convert(mode).save(path, format=fmt)
        assert imageprep.load_prepared(path).shape == (28, 28), name
    assert {"PBM", "PGM"} <= set(named)


def test_files_are_bounded_in_bytes_like_stdin(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(imagefile.MAX_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(DataError, match="more than 100 MB"):
        imageprep.load_prepared(big)


@pytest.mark.parametrize("side", [7000, 100_000])
def test_pixel_limit_is_our_own_check_before_pillows_guard(side):
    with pytest.raises(DataError, match=f"is {side}x{side} pixels, too large to decode safely"):
        imageprep.load_prepared(_png_header(side, side))


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_save_input_never_overwrites_an_input_or_an_existing_file(short_run, tmp_path):
    photo, other = tmp_path / "photo.png", tmp_path / "other.jpg"
    photo.write_bytes(_to_bytes(seven()))
    other.write_bytes(_to_bytes(seven(200), "JPEG"))
    (tmp_path / "other.png").write_bytes(b"someone else's file")
    (tmp_path / "other.prepared.png").write_bytes(b"and another")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = CliRunner().invoke(app, ["predict", str(photo), str(other), "--run", str(short_run.path), "--save-input", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())
    prepared = {Path(o["image"]).name: Path(o["prepared"]).name for o in json.loads(result.stdout)}
    assert prepared == {"photo.png": "photo.prepared.png", "other.jpg": "other.prepared-2.png"}
    assert np.asarray(Image.open(tmp_path / "photo.prepared.png")).shape == (28, 28)
    assert f"prepared images: 2 in {tmp_path}" in result.stderr


def test_a_control_character_in_the_save_input_folder_is_printed_escaped(short_run, tmp_path):
    photo, saved = tmp_path / "photo.png", tmp_path / "new\nline"
    photo.write_bytes(_to_bytes(seven()))
    result = CliRunner().invoke(app, ["predict", str(photo), "--run", str(short_run.path), "--save-input", str(saved), "--jsonl"])
    assert result.exit_code == 0, result.output
    assert f"prepared images: 1 in {tmp_path}/new\\nline" in result.stderr
    assert not any(line.startswith("line") for line in result.stderr.splitlines())


def test_json_lines_on_a_narrow_terminal_stay_one_line_each(short_run, tmp_path):
    import os
    import re
    import subprocess
    import sys

    photo = tmp_path / "photo.png"
    photo.write_bytes(_to_bytes(seven()))
    main, terminal = os.openpty()
    command = [sys.executable, "-m", "mnistctl", "predict", str(photo), str(photo), "--run", str(short_run.path), "--jsonl"]
    done = subprocess.Popen(command, stdout=terminal, stderr=terminal, env={**os.environ, "COLUMNS": "40"})
    os.close(terminal)
    shown = b""
    try:
        while chunk := os.read(main, 65536):
            shown += chunk
    except OSError:  # the terminal closed
        pass
    finally:
        os.close(main)
    assert done.wait(timeout=120) == 0
    pieces = re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode()))
    lines = [json.loads(piece) for piece in pieces if piece.startswith("{")]
    assert [line["image"] for line in lines] == [str(photo)] * 2


def test_an_image_whose_prepared_file_cannot_be_saved_fails_alone(short_run, tmp_path, monkeypatch):
    import errno

    first, other = tmp_path / "first.png", tmp_path / "other.jpg"
    first.write_bytes(_to_bytes(seven()))
    other.write_bytes(_to_bytes(seven(200), "JPEG"))
    saved = tmp_path / "saved"
    real_save = predict.InputSaver.save

    def full_for_the_first(self, result):
        if Path(result.source).name == "first.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(saved / "first.png"))
        return real_save(self, result)

    monkeypatch.setattr(predict.InputSaver, "save", full_for_the_first)
    result = CliRunner().invoke(app, ["predict", str(first), str(other), "--run", str(short_run.path), "--save-input", str(saved), "--jsonl"])
    assert result.exit_code == 1
    assert [Path(json.loads(line)["image"]).name for line in result.stdout.splitlines()] == ["first.png", "other.jpg"]
    assert sorted(p.name for p in saved.iterdir()) == ["other.png"]
    assert f"{first}: its prepared image could not be saved in {saved} (No space left on device)" in result.stderr.replace("\n", "")


def test_a_taken_name_near_the_longest_a_file_system_takes_is_shortened_to_fit(short_run, tmp_path):
    longest = tmp_path / ("d" * 251 + ".png")  # its own name fits; as <stem>.prepared.png it would not
    longest.write_bytes(_to_bytes(seven()))
    saved = tmp_path / "saved"
    result = CliRunner().invoke(app, ["predict", str(longest), str(longest), str(longest), "--run", str(short_run.path), "--save-input", str(saved), "--json"])
    assert result.exit_code == 0, result.output
    names = [Path(o["prepared"]).name for o in json.loads(result.stdout)]
    assert names[0] == longest.name and names[1].endswith(".prepared.png") and names[2].endswith(".prepared-2.png")
    assert all(len(os.fsencode(n)) <= 255 and n.startswith("d" * 200) for n in names)
    assert sorted(p.name for p in saved.iterdir()) == sorted(names)


def test_a_folder_with_symbolic_link_loops_is_walked_once(tmp_path):
    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "a.png", tmp_path / "sub" / "b.png"):
        path.write_bytes(_to_bytes(seven()))
    (tmp_path / "sub" / "up").symlink_to("..")
    (tmp_path / "here").symlink_to(".")
    (tmp_path / "self.png").symlink_to("self.png")
    assert list(predict.expand([str(tmp_path)])) == [str(tmp_path / "a.png"), str(tmp_path / "sub" / "b.png")]


def test_an_empty_file_or_empty_stdin_is_called_empty(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    failures = list(predict.predict([str(tmp_path / "empty.png"), "-"], [], stdin=io.BytesIO(b"")))
    assert [f.error.message for f in failures] == [f"{tmp_path / 'empty.png'} is empty", "stdin is empty"]


def test_stdin_given_twice_or_from_a_terminal_is_refused_before_any_work():
    import os
    import subprocess
    import sys

    twice = CliRunner().invoke(app, ["predict", "-", "-", "--run", "no-such-run"], input=_to_bytes(seven()))
    assert isinstance(twice.exception, UsageError) and twice.exception.message == "- is given twice" and twice.stdout == ""
    main, terminal = os.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "mnistctl", "predict", "-", "--run", "no-such-run"], stdin=terminal,
                              capture_output=True, text=True, timeout=120)
    finally:
        os.close(main)
        os.close(terminal)
    assert done.returncode == 2 and "standard input is a terminal" in done.stderr and "Traceback" not in done.stderr


def test_an_empty_image_path_or_a_closed_stdin_is_refused_before_any_work(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "seven.png").write_bytes(_to_bytes(seven()))  # an image in the current folder, which '' would have read
    for image, message in [("", "error: an image path is empty"), ("-", "error: standard input is closed")]:
        done = subprocess.run([sys.executable, "-m", "mnistctl", "predict", image, "--run", "no-such-run"], preexec_fn=lambda: os.close(0),
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1, done.stderr


def test_the_last_line_names_the_images_that_could_not_be_read_however_far_up_their_errors_are(short_run, tmp_path):
    good, empty, text = tmp_path / "good.png", tmp_path / "empty.png", tmp_path / "notes.png"
    good.write_bytes(_to_bytes(seven()))
    empty.write_bytes(b"")
    text.write_bytes(b"not a picture")
    result = CliRunner().invoke(app, ["predict", str(empty), *[str(good)] * 4, str(text), "--run", str(short_run.path)])
    assert result.exit_code == 1
    last = result.stderr.replace("\n", "").rsplit("error: ", 1)[-1]
    assert last.startswith(f"2 of 6 images could not be read: {empty}, {text}")
    alone = CliRunner().invoke(app, ["predict", str(empty), "--run", str(short_run.path)])
    assert alone.exit_code == 1 and alone.stderr.count("error: ") == 1  # one image: its own error is the last line


def test_one_run_with_two_of_its_weights_is_named_by_its_name_and_two_runs_of_one_name_by_their_paths(tmp_path):
    from mnistctl.runs import Run

    here, there = tmp_path / "fast", tmp_path / "elsewhere" / "fast"
    assert predict.labels([(Run(here), "best"), (Run(str(here) + "/"), "last")]) == ["fast", "fast (last)"]
    assert predict.labels([(Run(here), "best"), (Run(there), "last")]) == [str(here), f"{there} (last)"]


def test_a_digit_too_faint_to_tell_from_the_paper_is_not_called_blank_alone():
    faint = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(faint).line([(24, 24), (96, 24), (54, 102)], fill=240, width=10)  # a light pencil stroke
    with pytest.raises(DataError) as raised:
        imageprep.load_prepared(_to_bytes(faint), name="pencil.png")
    assert "too faint" in raised.value.message and "faint" in raised.value.hint


def test_a_pattern_the_shell_matched_to_nothing_is_said_to_match_no_file(tmp_path):
    pattern = str(tmp_path / "*.jpeg")  # what the shell passes on when no file matches
    with pytest.raises(NotFoundError) as raised:
        imageprep.load_prepared(pattern, name=pattern)
    assert raised.value.message == f"{pattern} does not exist" and "no file matches this pattern" in raised.value.hint
    with pytest.raises(NotFoundError, match="does not exist") as missing:
        imageprep.load_prepared(str(tmp_path / "photo.jpg"))
    assert missing.value.hint == "check the path"


def several(fmt: str, count: int, **options) -> bytes:
    """A picture of ``count`` frames or pages: a 7, then the 7 turned a little more each frame."""
    buffer = io.BytesIO()
    seven().save(buffer, fmt, save_all=True, append_images=[seven().rotate(30 * i) for i in range(1, count)], **options)
    return buffer.getvalue()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_picture_of_several_frames_is_read_from_its_first_with_one_warning(tmp_path, capsys, jobs):
    files = {"anim.gif": several("GIF", 12), "pages.tiff": several("TIFF", 3), "anim.png": several("PNG", 4),
             "anim.webp": several("WEBP", 2, lossless=True), "still.gif": several("GIF", 1), "plain.png": _to_bytes(seven())}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    sources = [str(tmp_path / name) for name in files] * (1 if jobs == 1 else 4)  # more than a chunk: read in worker processes
    results = list(predict.predict(sources, [lambda images: np.full((len(images), 10), 0.1, np.float32)], jobs=jobs))
    first = imageprep.load_prepared(_to_bytes(seven()))
    assert [type(r) for r in results] == [predict.Prediction] * len(sources) and all(np.array_equal(r.image, first) for r in results)
    said = [f"warning: {tmp_path / name} has {count}; read the first" for name, count in
            [("anim.gif", "12 frames"), ("pages.tiff", "3 pages"), ("anim.png", "4 frames"), ("anim.webp", "2 frames")]]
    assert capsys.readouterr().err.splitlines() == said * (1 if jobs == 1 else 4)


def test_a_picture_whose_later_frames_cannot_be_counted_is_read_from_its_first():
    class Damaged:  # Pillow stops counting at a damaged frame, on the frame it reached
        format, frame = "GIF", 0

        @property
        def n_frames(self):
            self.frame = 3
            raise IndexError("index out of range")

        def tell(self):
            return self.frame

        def seek(self, frame):
            self.frame = frame

    image = Damaged()
    assert imagefile._frames(image) == "more than one frame" and image.frame == 0
