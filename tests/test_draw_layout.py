"""mnistctl draw at the sizes terminals come in: the pad, the bars, the feature maps and the help all fit, with untrained models."""

import numpy as np
import pytest
import torch
from rich.console import Console
from test_draw import read_after
from test_watch import drive, until

from mnistctl.models import build_model
from mnistctl.tui.canvas import Canvas
from mnistctl.tui.draw import DrawApp, phrase_wrap
from mnistctl.tui.pixels import SIDE
from mnistctl.tui.reader import Reader
from mnistctl.tui.readout import FeatureMaps, Probabilities

ONE = [*["up"] * 9, "space", *["down"] * 18, "space"]  # a vertical stroke, drawn with the keyboard


def reader(*names: str) -> Reader:
    """simplecnn (32 channels in its first conv layer), untrained: the layout does not care what it reads."""
    torch.manual_seed(0)
    return Reader([(build_model({"arch": "simplecnn"}).eval(), 0.1307, 0.3081) for _ in names], list(names))


def lines_of(widget) -> list[str]:
    """What the widget renders, as the lines of text it takes at its width."""
    console = Console(width=widget.content_region.width, color_system=None)
    return ["".join(s.text for s in line).rstrip() for line in console.render_lines(widget.render(), pad=False)]


def fits(app, widget) -> bool:
    return app.screen.region.contains_region(widget.region)


async def one_read(pilot, app):
    """A 1 drawn with the keys, once read: the reading, the probabilities panel and its lines."""
    await pilot.press(*ONE)
    reading = await read_after(pilot, app)
    probs = app.query_one(Probabilities)
    await pilot.pause()
    return reading, probs, lines_of(probs)


async def footer_keys(pilot, footer) -> list:
    """The footer's keys once they are laid out: mounted, then given their places."""
    laid_out = lambda: footer.query("FooterKey") and all(key.region.width for key in footer.query("FooterKey"))
    await until(pilot, laid_out, "the footer's keys")
    return list(footer.query("FooterKey"))


@pytest.mark.parametrize("start, then", [((150, 45), (80, 24)), ((80, 24), (150, 45))])
def test_the_pad_follows_a_resize_at_once(tmp_path, start, then):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        canvas = app.query_one(Canvas)
        assert canvas.scale == (3 if start == (150, 45) else 1)
        await pilot.resize_terminal(*then)
        await pilot.pause()
        assert canvas.scale == (3 if then == (150, 45) else 1)
        assert fits(app, canvas) and fits(app, app.query_one("#status")) and fits(app, app.query_one("#side"))

    drive(app, test, size=start)


@pytest.mark.parametrize("size, scale, beside", [((100, 31), 2, True), ((100, 32), 2, True), ((100, 30), 1, False),
                                                 ((150, 45), 3, True), ((150, 44), 2, False)])
def test_the_pad_takes_the_rows_the_help_would_leave_by_moving_beside_it(tmp_path, size, scale, beside):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        await pilot.press(*ONE)
        await read_after(pilot, app)
        await pilot.pause()
        canvas, help_ = app.query_one(Canvas), app.query_one("#side-status" if beside else "#status")
        assert canvas.scale == scale and fits(app, canvas) and help_.display and fits(app, help_)
        assert lines_of(help_)[0].startswith("mouse: left draws,")
        assert help_.region.bottom <= app.query_one("Footer").region.y and fits(app, app.query_one(Probabilities))

    drive(app, test, size=size)


@pytest.mark.parametrize("size, bar", [((150, 45), 22), ((80, 24), 22), ((60, 19), 13)])
def test_the_bars_shrink_and_every_digit_keeps_its_percentage(tmp_path, size, bar):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        reading, probs, lines = await one_read(pilot, app)
        assert fits(app, probs)
        assert len(lines) == 13 and lines[1].startswith(f"reads  {int(reading.probs.argmax())} ")
        for digit, line in enumerate(lines[3:]):
            assert line.startswith(f"{digit} ") and line.endswith(f"{reading.probs[digit]:.1%}"), line
            assert len(line) == 2 + bar + 7

    drive(app, test, size=size)


def test_a_terminal_too_narrow_for_the_panel_beside_the_pad_has_it_below(tmp_path):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        await pilot.press(*ONE)
        reading = await read_after(pilot, app)
        await pilot.pause()
        canvas, probs = app.query_one(Canvas), app.query_one(Probabilities)
        assert canvas.scale == 1 and fits(app, canvas) and probs.region.y > canvas.region.bottom
        assert fits(app, probs) and probs.region.bottom <= 24 - 2  # above the footer's two rows
        assert f"reads  {int(reading.probs.argmax())}   {reading.probs.max():.1%}" in lines_of(probs)

    drive(app, test, size=(40, 24))


@pytest.mark.parametrize("size, shown", [((150, 45), "top 12 of 32"), ((80, 24), "top 3 of 32"), ((60, 19), None)])
def test_feature_map_tiles_are_never_cropped(tmp_path, size, shown):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        await pilot.press(*ONE, "f")
        await until(pilot, lambda: app.reading is not None and app.reading.maps is not None, "feature maps")
        await pilot.pause()
        maps = app.query_one(FeatureMaps)
        lines = lines_of(maps)
        assert len(lines) <= maps.content_region.height and fits(app, maps)
        assert lines[0] == (f"features.0: {shown}" if shown else "no room for the maps")

    drive(app, test, size=size)


def test_an_ensemble_names_the_model_whose_feature_maps_are_shown():
    drawing = np.zeros((SIDE, SIDE), np.float32)
    drawing[5:24, 13:16] = 255
    assert reader("long1").read(drawing, maps=True).layer == "features.0"
    assert reader("long1", "noval").read(drawing, maps=True).layer == "long1 features.0"


def test_the_help_breaks_between_phrases_and_the_footer_keeps_every_key_at_80_columns(tmp_path):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        status = app.query_one("#status")
        lines = str(status.content).splitlines()
        assert status.content_region.height == len(lines) and fits(app, status)  # no line wrapped inside a phrase
        assert lines == ["mouse: left draws,", "right erases", "keys: arrows move,", "space lowers the pen, e eraser"]
        await pilot.press("e")
        await pilot.pause()
        assert str(status.content).splitlines()[-1] == "space lowers the eraser, e pen"  # e switches back
        footer = app.query_one("Footer")
        keys = await footer_keys(pilot, footer)
        assert all(footer.region.contains_region(key.region) for key in keys)
        assert not any(a.region.overlaps(b.region) for i, a in enumerate(keys) for b in keys[i + 1:])  # none hidden
        assert "Quit" in [key.description for key in keys]

    drive(app, test, size=(80, 24))


def test_phrase_wrap_keeps_short_lines_and_breaks_long_ones_after_commas():
    lines = ["mouse: left draws, right erases", "keys: arrows move, space lowers the pen, e eraser"]
    assert phrase_wrap(lines, 49) == "\n".join(lines)
    assert phrase_wrap(lines, 30).splitlines() == ["mouse: left draws,", "right erases", "keys: arrows move,",
                                                   "space lowers the pen, e eraser"]


@pytest.mark.parametrize("size", [(150, 45), (60, 19), (56, 30), (51, 30), (50, 30), (40, 30)])
def test_every_key_of_the_footer_is_on_screen_quit_too(tmp_path, size):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        keys = await footer_keys(pilot, app.query_one("Footer"))
        assert [k.description for k in keys] == ["Pen", "Eraser", "Clear", "Save", "Features", "Quit"]
        assert all(fits(app, k) and k.region.width > 0 for k in keys), [(k.description, k.region) for k in keys]

    drive(app, test, size=size)


@pytest.mark.parametrize("size, expected", [
    ((80, 19), ["mouse: left draws, right erases", "keys: arrows move,", "space lowers the pen, e eraser"]),
    ((60, 19), ["left draws, right erases", "arrows move,", "space lowers the pen"]),  # the footer names e
])
def test_a_short_terminal_shows_the_whole_help_beside_the_pad(tmp_path, size, expected):
    app = DrawApp(reader("long1"), tmp_path)

    async def test(pilot):
        await pilot.press(*ONE)
        await read_after(pilot, app)
        await pilot.pause()
        beside, below = app.query_one("#side-status"), app.query_one("#status")
        assert beside.display and not below.display
        assert lines_of(beside) == expected
        assert fits(app, beside) and beside.region.bottom <= app.query_one("Footer").region.y
        assert beside.region.y >= app.query_one(Probabilities).region.bottom

    drive(app, test, size=size)


@pytest.mark.parametrize("size", [(60, 19), (40, 24), (100, 40)])
def test_a_long_model_name_is_never_broken_across_lines(tmp_path, size):
    long = "simplecnn-lr0.05-batch128-onecycle-seed0-final"
    app = DrawApp(reader(long, "fast"), tmp_path)

    async def test(pilot):
        await pilot.pause()
        lines = lines_of(app.query_one(Probabilities))
        head = " ".join(lines[: lines.index("")])
        assert head.startswith("model ") and head.endswith("+ fast")
        shown = head.removeprefix("model ").removesuffix(" + fast").strip()
        assert shown == long or (shown.endswith("…") and long.startswith(shown[:-1]) and len(shown) >= 10), lines

    drive(app, test, size=size)


@pytest.mark.parametrize("size, shown", [((55, 22), "reading"), ((55, 24), "runners-up"), ((50, 40), "bars")])
def test_under_the_pad_the_reading_shows_in_the_rows_left_the_bars_only_where_they_fit(tmp_path, size, shown):
    app = DrawApp(reader("fast"), tmp_path)

    async def test(pilot):
        reading, probs, lines = await one_read(pilot, app)
        assert app.has_class("narrow") and fits(app, probs)
        assert len(lines) <= probs.content_region.height
        best = int(reading.probs.argmax())
        assert any(line.startswith(f"reads  {best} ") for line in lines)
        assert ("model fast" in lines) == (shown != "reading")
        assert any(line.startswith("then ") for line in lines) == (shown == "runners-up")
        assert (len(lines) == 13 and lines[3 + best].endswith(f"{reading.probs[best]:.1%}")) == (shown == "bars")

    drive(app, test, size=size)


@pytest.mark.parametrize("size, help_shown", [((50, 20), False), ((50, 21), False), ((54, 21), False), ((55, 22), True)])
def test_a_short_narrow_terminal_shows_the_reading_the_help_giving_way(tmp_path, size, help_shown):
    app = DrawApp(reader("fast"), tmp_path)

    async def test(pilot):
        reading, probs, lines = await one_read(pilot, app)
        footer = app.query_one("Footer")
        assert app.has_class("narrow") and fits(app, probs) and probs.region.bottom <= footer.region.y
        assert any(line.startswith(f"reads  {int(reading.probs.argmax())} ") for line in lines[: probs.content_region.height])
        status = app.query_one("#status")
        assert status.display == help_shown and (not help_shown or status.region.bottom <= probs.region.y)

    drive(app, test, size=size)


@pytest.mark.parametrize("size, least", [((40, 15), "32x19"), ((31, 40), "32x19"), ((55, 17), "32x18"), ((60, 16), "32x17")])
def test_a_terminal_too_small_for_the_pad_says_how_large_until_it_is_resized(tmp_path, size, least):
    app = DrawApp(reader("fast"), tmp_path)

    async def test(pilot):
        await pilot.pause()
        notice = app.query_one("#too-small")
        assert notice.display and not app.query_one("#main").display and not app.query_one("Footer").display
        assert notice.region == app.screen.region and " ".join(lines_of(notice)).split() == [
            "terminal", "too", "small:", "at", "least", least, "(now", f"{size[0]}x{size[1]};", "q", "quits)"]
        await pilot.press(*ONE, "s", "f")  # the hidden pad takes no keys, nor do the app's but q
        canvas = app.query_one(Canvas)
        assert canvas.blank and not list(tmp_path.iterdir()) and not app.query_one(FeatureMaps).display
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert not notice.display and fits(app, canvas) and app.focused is canvas
        assert len(await footer_keys(pilot, app.query_one("Footer"))) == 6
        await pilot.press(*ONE)
        assert not canvas.blank

    drive(app, test, size=size)


@pytest.mark.parametrize("size", [(32, 19), (51, 18), (56, 17)])
def test_the_least_size_the_notice_names_shows_the_pad_whole_and_a_reading(tmp_path, size):
    app = DrawApp(reader("fast"), tmp_path)

    async def test(pilot):
        reading, probs, lines = await one_read(pilot, app)
        footer = app.query_one("Footer")
        assert not app.query_one("#too-small").display and fits(app, app.query_one(Canvas)) and fits(app, probs)
        assert probs.region.height >= 1 and probs.region.bottom <= footer.region.y and fits(app, footer)
        assert any(line.startswith(f"reads  {int(reading.probs.argmax())} ") for line in lines[: probs.content_region.height])

    drive(app, test, size=size)
