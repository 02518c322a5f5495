"""mnistctl draw: the soft brush, half-block rendering, and the pad driven by mouse and keyboard with a real run."""

import numpy as np
import pytest
from PIL import Image
from test_watch import drive, until
from typer.testing import CliRunner

from mnistctl import fsutil
from mnistctl.cli import app as cli
from mnistctl.errors import NotFoundError
from mnistctl.models import load_model
from mnistctl.tui.canvas import Canvas
from mnistctl.tui.draw import DrawApp, save_drawing
from mnistctl.tui.pixels import SIDE, centre_by_mass, halfblock_rows, stroke
from mnistctl.tui.reader import Reader
from mnistctl.tui.readout import FeatureMaps, Probabilities

FULL_RUN = {"arch": "lenet", "epochs": 1, "limit": None, "batch_size": 128, "val_split": 1000, "optimizer": "adam",
            "scheduler": "none", "precision": "fp32", "channels_last": False, "log_every": 50, "name": "photo"}


@pytest.fixture(scope="module")
def reader(train_run):
    """A lenet trained for one epoch on the full training set (the same run test_predict uses)."""
    run = train_run(**FULL_RUN)
    return Reader([(load_model(run), *run.normalization)], [run.name])


async def read_after(pilot, app: DrawApp):
    """The reading of the drawing as it is now, once the reading thread has caught up."""
    await pilot.pause()
    await until(pilot, lambda: app.shown == app.serial, "the reading thread caught up")
    return app.reading


def cell_of(canvas: Canvas, row: float, col: float) -> tuple[int, int]:
    """The widget offset (border included) of the cell showing pixel (row, col)."""
    return 1 + int(col * canvas.scale), 1 + int(row * canvas.scale / 2)


async def drag(pilot, canvas: Canvas, points: list[tuple[float, float]], button: int = 1) -> None:
    await pilot.mouse_down(canvas, cell_of(canvas, *points[0]), button=button)
    for point in points[1:]:
        await pilot.hover(canvas, cell_of(canvas, *point))
    await pilot.mouse_up(canvas, cell_of(canvas, *points[-1]))


# The brush and the rendering, without Textual


def test_a_stroke_is_soft_bounded_and_continuous():
    image = np.zeros((SIDE, SIDE), np.float32)
    stroke(image, (4.0, 14.0), (23.0, 14.0))
    assert image.min() == 0 and image.max() == 255
    assert (image[4:24, 14] == 255).all()  # no gaps along the line
    profile = image[14, 10:19]
    assert 0 < profile[2] < 255 and profile[0] == 0  # anti-aliased edges, nothing far away
    assert (profile[4] == 255) and np.allclose(profile, profile[::-1])
    stroke(image, (14.0, 10.0), (14.0, 18.0), erase=True)
    assert image[14, 14] == 0 and image[5, 14] == 255


def test_centre_by_mass_moves_the_ink_to_the_middle():
    image = np.zeros((SIDE, SIDE), np.float32)
    stroke(image, (2.0, 3.0), (10.0, 3.0))
    centred = centre_by_mass(image)
    rows, cols = np.nonzero(centred)
    assert abs(np.average(rows, weights=centred[rows, cols]) - 13.5) <= 1
    assert abs(np.average(cols, weights=centred[rows, cols]) - 13.5) <= 1
    assert centred.sum() == pytest.approx(image.sum())
    assert not centre_by_mass(np.zeros((SIDE, SIDE), np.float32)).any()


@pytest.mark.parametrize("scale, lines", [(1, 14), (2, 28), (3, 42)])
def test_half_blocks_keep_pixels_square(scale, lines):
    image = np.zeros((SIDE, SIDE), np.float32)
    image[0, 0] = 255
    rows = halfblock_rows(image, scale)
    assert len(rows) == lines
    assert all(sum(len(s.text) for s in row) == SIDE * scale for row in rows)
    assert rows[0][0].text.startswith("▀") and rows[0][0].style.color.triplet == (255, 255, 255)


def test_save_never_overwrites_and_honours_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "UMASK", 0o077)
    (tmp_path / "drawing-001.png").write_bytes(b"keep me")
    image = np.zeros((SIDE, SIDE), np.uint8)
    image[10:18, 12:16] = 255
    first, second = save_drawing(image, tmp_path), save_drawing(image, tmp_path)
    assert first.stat().st_mode & 0o777 == 0o600
    assert (first.name, second.name) == ("drawing-002.png", "drawing-003.png")
    assert (tmp_path / "drawing-001.png").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawing-001.png", "drawing-002.png", "drawing-003.png"]
    with Image.open(first) as saved:
        assert saved.size == (28, 28) and saved.mode == "L"
        assert (np.asarray(saved) == image).all()


# The app, driven like a user


def test_mouse_strokes_change_the_prediction_and_a_vertical_stroke_reads_as_one(reader, tmp_path):
    app = DrawApp(reader, tmp_path)

    async def test(pilot):
        canvas = app.query_one(Canvas)
        assert canvas.scale == 2 and canvas.blank
        assert "draw a digit" in app.query_one(Probabilities).render().plain
        await drag(pilot, canvas, [(5, 14), (12, 14), (18, 14), (23, 14)])
        one = await read_after(pilot, app)
        assert one is not None and int(one.probs.argmax()) == 1, one.probs.round(3)
        assert one.probs.sum() == pytest.approx(1, abs=1e-4)
        assert "reads" in app.query_one(Probabilities).render().plain
        await drag(pilot, canvas, [(5, 8), (5, 20), (8, 18)])  # a bar across the top: no longer a plain 1
        seven = await read_after(pilot, app)
        assert not np.allclose(seven.probs, one.probs, atol=0.05)
        assert seven.probs[1] < one.probs[1]

    drive(app, test, size=(100, 40))


def test_right_button_erases_and_c_clears(reader, tmp_path):
    app = DrawApp(reader, tmp_path)

    async def test(pilot):
        canvas = app.query_one(Canvas)
        await drag(pilot, canvas, [(5, 14), (23, 14)])
        assert canvas.image[14, 14] == 255
        await drag(pilot, canvas, [(12, 8), (12, 20)], button=3)
        assert canvas.image[12, 14] == 0 and canvas.image[20, 14] == 255
        await pilot.press("c")
        assert canvas.blank
        assert await read_after(pilot, app) is None
        assert "draw a digit" in app.query_one(Probabilities).render().plain

    drive(app, test, size=(100, 40))


def test_keyboard_drawing_saving_and_feature_maps(reader, tmp_path):
    out = tmp_path / "drawings"
    app = DrawApp(reader, out)

    async def test(pilot):
        canvas = app.query_one(Canvas)
        await pilot.press("s")
        assert not out.exists()  # nothing drawn, nothing saved
        await pilot.press(*["up"] * 9, "space", *["down"] * 18, "space", *["right"] * 5)
        assert canvas.cursor == (23, 19) and not canvas.pen_down
        assert (canvas.image[5:24, 14] == 255).all() and not canvas.image[:, 19:].any()
        reading = await read_after(pilot, app)
        assert int(reading.probs.argmax()) == 1
        await pilot.press("s", "s")
        saved = sorted(out.iterdir())
        assert [p.name for p in saved] == ["drawing-001.png", "drawing-002.png"]
        with Image.open(saved[0]) as image:
            assert image.size == (28, 28) and (np.asarray(image) == reader.model_input(canvas.image)).all()
        await pilot.press("f")
        maps = app.query_one(FeatureMaps)
        await until(pilot, lambda: app.reading is not None and app.reading.maps is not None, "feature maps")
        assert maps.display and app.reading.layer == "features.0" and app.reading.maps.shape[1:] == (28, 28)
        assert maps.render().renderables[0].plain == "features.0: all 6 channels"

    drive(app, test, size=(100, 40))


def test_an_unknown_run_fails_before_any_screen(tmp_path):
    result = CliRunner().invoke(cli, ["draw", "--run", "nope", "--runs-dir", str(tmp_path)])
    assert isinstance(result.exception, NotFoundError) and "no run 'nope'" in result.exception.message


def test_an_onnx_file_is_pointed_at_predict_before_any_screen(tmp_path):
    from mnistctl.errors import UsageError

    onnx = tmp_path / "digits.onnx"
    onnx.write_bytes(b"onnx")
    result = CliRunner().invoke(cli, ["draw", "--run", str(onnx)])
    assert isinstance(result.exception, UsageError) and "ONNX" in result.exception.message
    assert f"mnistctl predict IMAGE --run {onnx}" in result.exception.hint


def test_the_same_run_twice_is_refused_before_any_screen(short_run):
    from mnistctl.errors import UsageError

    best = str(short_run.path / "weights" / "best.safetensors")
    for runs, message in [([str(short_run.path)] * 2, f"--run {short_run.path} is given twice"), ([str(short_run.path), best], f"--run {short_run.path} and --run {best} are the same run")]:
        result = CliRunner().invoke(cli, ["draw", *(arg for run in runs for arg in ("--run", run))])
        assert isinstance(result.exception, UsageError) and result.exception.message == message


@pytest.mark.usefixtures("terminal")
def test_draw_reads_with_a_weights_file_and_refuses_an_out_that_is_a_file(train_run, tmp_path, monkeypatch):
    import torch

    from mnistctl.errors import UsageError

    run = train_run(**FULL_RUN)
    started = []
    monkeypatch.setattr(DrawApp, "run", lambda self: started.append(self))
    result = CliRunner().invoke(cli, ["draw", "--run", str(run.path / "weights" / "last.safetensors"), "--out", str(tmp_path / "pad")])
    assert result.exit_code == 0, result.output
    assert started[0].reader.names == ["photo (last)"]  # not the best weights: the panel says which
    model = started[0].reader.members[0][0]
    last = load_model(run, "last")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), last.state_dict().values()))

    (tmp_path / "notes.txt").write_text("keep")
    result = CliRunner().invoke(cli, ["draw", "--run", str(run.path), "--out", str(tmp_path / "notes.txt")])
    assert isinstance(result.exception, UsageError) and "--out" in result.exception.message and len(started) == 1
    assert CliRunner().invoke(cli, ["draw", "--run", str(run.path), "--weights", "initial"]).exit_code == 0
    assert started[-1].reader.names == ["photo (initial)"]
    assert CliRunner().invoke(cli, ["draw", "--run", str(run.path)]).exit_code == 0
    assert started[-1].reader.names == ["photo"]
