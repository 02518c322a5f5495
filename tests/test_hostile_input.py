"""Input made to hurt: pictures that are FIFOs or one pixel high, names with terminal escapes, NaN in JSON,
SIGTERM in the middle of a write, and a dashboard that fails."""

import json
import os
import signal
import subprocess
import time
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistctl import cli, console
from mnistctl.cli import predict_output
from mnistctl.data import imagefile, imageprep
from mnistctl.errors import NotFoundError, RunError
from mnistctl.reading.predict import Prediction
from test_hardening import copies, small_data  # noqa: F401 -- fixtures

ESCAPES = "\x1b[2J\x1b[31mRED\nline\x9b"


@pytest.mark.parametrize("how", ["fifo", "device", "folder"])
def test_a_picture_that_is_not_a_regular_file_is_named_so_not_called_missing(how, tmp_path):
    path = tmp_path / "x.png"
    if how == "fifo":
        os.mkfifo(path)
    elif how == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(NotFoundError) as info:
        imageprep.load_prepared(path)
    assert (info.value.message, info.value.hint) == (f"{path} is not a regular file", "pass an image file")
    with pytest.raises(NotFoundError, match="does not exist"):
        imagefile.read_gray(tmp_path / "missing.png")


def test_a_line_one_pixel_high_is_thickened_at_the_working_size(tmp_path, monkeypatch):
    path = tmp_path / "strip.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1, 4000), np.uint8)).save(path)  # took 16 s: a kernel as wide as the line
    thickened = []
    thicken = imageprep._thicken
    monkeypatch.setattr(imageprep, "_thicken", lambda ink, scale: thickened.append(ink.shape) or thicken(ink, scale))
    prepared = imageprep.load_prepared(path)
    assert thickened and max(thickened[0]) <= imageprep.WORK_SIDE
    assert prepared.shape == (28, 28) and prepared.max() == 255


# Names that hold control characters are shown escaped

def test_an_error_naming_a_file_with_escapes_stays_one_line_that_cannot_clear_the_screen(capsys):
    console.report(f"{ESCAPES}.png is empty", f"hint {ESCAPES}")
    console.warn(f"{ESCAPES}.png")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x9b" not in err and len(err.splitlines()) == 2
    assert "\\x1b[2J\\x1b[31mRED\\nline\\x9b.png is empty" in err and "hint \\x1b[2J" in err


def test_a_table_row_naming_a_file_with_escapes_stays_one_row(capsys):
    with predict_output.Output("table", ["run"]) as output:
        output.add(Prediction(f"{ESCAPES}.png", 3, 0.9, [(3, 0.9), (5, 0.1)]))
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3 and rows[2].endswith("\\x1b[2J\\x1b[31mRED\\nline\\x9b.png") and "\x1b" not in rows[2]


@pytest.mark.parametrize("kind", ["json", "jsonl"])
def test_probabilities_that_are_not_numbers_are_written_as_null_in_valid_json(kind, capsys):
    nan = float("nan")
    with predict_output.Output(kind, ["run"]) as output:
        output.add(Prediction("a.png", 0, nan, [(0, nan), (1, float("inf"))]))
        output.add(Prediction("b.png", 0, nan, [(0, nan)], saved=Path("b-prepared.png")))
    out = capsys.readouterr().out
    found = json.loads(out) if kind == "json" else [json.loads(line) for line in out.splitlines()]
    assert [f["probability"] for f in found] == [None, None]
    assert found[0]["top_k"] == [{"digit": 0, "probability": None}, {"digit": 1, "probability": None}]


# SIGTERM stops a command as Ctrl-C does: its temporary files go

SIGTERM_AT_FIRST_FSYNC = """
import os, signal, sys
from mnistctl import cli, fsutil

real = fsutil._fsync

def fsync(path):
    os.kill(os.getpid(), signal.SIGTERM)
    real(path)

fsutil._fsync = fsync
sys.argv = ["mnistctl", *sys.argv[1:]]
cli.main()
"""


def test_sigterm_while_eval_writes_leaves_no_temporary_file_and_ends_by_sigterm(copies):
    _, (good, _) = copies
    result = subprocess.run([sys.executable, "-c", SIGTERM_AT_FIRST_FSYNC, "eval", str(good.path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert "Traceback" not in result.stderr
    reports = good.path / "reports"
    assert not [p.name for p in reports.iterdir() if p.name.endswith(".tmp")]


# A dashboard that fails is one line and exit code 1, not Textual's traceback and 0

def failing_app(error: Exception):
    from textual.app import App

    class Failing(App):
        def on_mount(self) -> None:
            raise error

        def run(self, **options):
            return super().run(headless=True)

    return Failing


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize("error, line", [
    (ValueError("bad chart"), "error: internal error: ValueError: bad chart (rerun with MNISTCTL_DEBUG=1 for the traceback)"),
    (RunError("metrics.jsonl is not a regular file", "the run directory is damaged"), "error: metrics.jsonl is not a regular file (the run directory is damaged)"),
])
def test_watch_reports_an_error_of_the_dashboard_as_one_line_and_fails(error, line, copies, monkeypatch, capfd):
    from mnistctl.tui import app

    root, (good, _) = copies
    monkeypatch.setattr(app, "WatchApp", lambda *args, **kwargs: failing_app(error)())
    monkeypatch.setattr(sys, "argv", ["mnistctl", "watch", str(good.path)])
    monkeypatch.delenv("MNISTCTL_DEBUG", raising=False)
    assert cli._run() == 1
    err = capfd.readouterr().err
    assert err.strip() == line and "Traceback" not in err


@pytest.mark.usefixtures("terminal")
def test_draw_reports_an_error_of_the_pad_as_one_line_and_fails(copies, monkeypatch, capfd):
    from mnistctl.tui import draw

    root, (good, _) = copies
    monkeypatch.setattr(draw, "DrawApp", lambda *args, **kwargs: failing_app(ValueError("bad pad"))())
    monkeypatch.setattr(sys, "argv", ["mnistctl", "draw", "--run", str(good.path), "--out", str(root / "drawn")])
    monkeypatch.delenv("MNISTCTL_DEBUG", raising=False)
    assert cli._run() == 1
    err = capfd.readouterr().err
    assert err.strip() == "error: internal error: ValueError: bad pad (rerun with MNISTCTL_DEBUG=1 for the traceback)"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)], ids=["ctrl-c", "sigterm"])
def test_a_command_stopped_by_a_signal_says_interrupted(signum, code, monkeypatch, capfd):
    from mnistctl import runs

    def stopped(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)

    left = []
    monkeypatch.setattr(runs, "resolve_checkpoint", stopped)
    monkeypatch.setattr(cli, "_leave", left.append)
    monkeypatch.setattr(cli, "TERMINATED", [])
    monkeypatch.setattr(cli, "INTERRUPTED", [])
    monkeypatch.setattr(sys, "argv", ["mnistctl", "eval", "somerun"])
    monkeypatch.delenv("MNISTCTL_DEBUG", raising=False)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        cli.main()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert left == [code] and capfd.readouterr().err.strip() == "interrupted"
