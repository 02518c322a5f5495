"""The dashboard's layer view: the state keeps the latest layer statistics; a key switches to a table of them."""

import pytest
from test_watch import T0, append, drive, make_run, start, steps, text, until

from mnistctl.tui.app import WatchApp
from mnistctl.tui.layers import HOW_TO, LayerPanel
from mnistctl.tui.state import RunState


def layers_event(step: int, dead_zeros: float) -> dict:
    def conv(grad):
        return {"type": "Conv2d", "mean": 0.01, "std": 0.5, "zeros": 0.0, "grad": 0.02,
                "params": {"weight": {"norm": 3.0, "grad": grad, "update": 0.004}, "bias": {"norm": 0.1, "grad": 0.01, "update": 0.002}}}  # fmt: skip

    return {"event": "layers", "time": T0 + step, "epoch": 1, "step": step, "layers": {
        "features.0": conv(0.2), "features.1": {"type": "ReLU", "mean": 0.2, "std": 0.3, "zeros": 0.45, "grad": 0.03},
        "features.3": conv(0.3), "features.4": {"type": "ReLU", "mean": 0.1, "std": 0.2, "zeros": dead_zeros, "grad": 0.0 if dead_zeros > 0.9 else 0.03},
        "classifier.1": conv(1e-9),
    }}  # fmt: skip


def test_state_keeps_the_latest_layer_statistics():
    state = RunState()
    for event in [start(), layers_event(5, 0.5), *steps(1, T0), layers_event(10, 0.97)]:
        state.apply(event)
    assert state.layers["step"] == 10 and state.layers["layers"]["features.4"]["zeros"] == 0.97
    assert state.last_step["step"] == 10 and len(state.losses) == 2  # the other events fold as before


def test_layer_statistics_move_the_progress_on_like_steps():
    state = RunState()
    for event in [start(), steps(1, T0)[0], layers_event(8, 0.5)]:
        state.apply(event)
    assert (state.progress.step, state.progress.step_in_epoch) == (8, 8)  # as the layer view's heading says


def test_marks_stay_on_screen_in_a_narrow_terminal(tmp_path):
    app = WatchApp(make_run(tmp_path, "narrow", [start(), layers_event(10, 0.97)]), poll=0.05)

    async def check(pilot):
        await pilot.press("v")
        table = app.query_one(LayerPanel).query_one("#layers-table")
        await until(pilot, lambda: table.row_count == 5, "layer rows")
        await pilot.pause(0.1)
        widths = [column.get_render_width(table) for column in table.columns.values()]
        marks = [str(c.label) for c in table.columns.values()].index("")
        assert sum(widths[: marks + 1]) <= table.scrollable_content_region.width

    drive(app, check, size=(80, 24))


def test_key_switches_to_the_layer_table_with_marks(tmp_path):
    path = make_run(tmp_path, "layers", [start(), layers_event(5, 0.5)])
    app = WatchApp(path, poll=0.05)

    async def check(pilot):
        panel = app.query_one(LayerPanel)
        table = panel.query_one("#layers-table")
        await until(pilot, lambda: table.row_count == 5, "layer rows")
        assert not panel.display and app.query_one("#charts").display
        await pilot.press("v")
        assert panel.display and not app.query_one("#charts").display and not app.query_one("#bottom").display
        assert table.region.height > 5  # really on screen

        row = dict(zip([str(c.label) for c in table.columns.values()], table.get_row("features.1")))
        assert row["zeros"] == "45.0%" and row["out grad"] == "0.03" and str(row[""]) == ""
        assert str(table.get_row("classifier.1")[1]) == "▼ vanishing"
        assert "step 5 (epoch 1) · 5 layers · 1 ▼ vanishing" in text(panel.query_one("#layers-caption"))

        append(path, [layers_event(10, 0.97)])  # a ReLU dies
        await until(pilot, lambda: "step 10" in text(panel.query_one("#layers-caption")), "the next logged step")
        assert str(table.get_row("features.4")[1]) == "☠ dead ▼ vanishing"
        assert "1 ☠ dead, 2 ▼ vanishing" in text(panel.query_one("#layers-caption"))  # the key to the marks

        await pilot.press("v")
        assert not panel.display and app.query_one("#charts").display

    drive(app, check, size=(110, 30))


def test_layer_view_of_a_run_without_statistics_says_how_to_get_them(tmp_path):
    app = WatchApp(make_run(tmp_path, "plain", [start()]), poll=0.05)

    async def check(pilot):
        await pilot.press("v")
        panel = app.query_one(LayerPanel)
        assert panel.display and text(panel.query_one("#layers-caption")) == HOW_TO

    drive(app, check)


@pytest.mark.parametrize("size", [(40, 30), (50, 30), (60, 20), (80, 24), (120, 30)])
def test_the_layer_table_fits_the_width_leaving_out_the_least_telling_columns(tmp_path, size):
    app = WatchApp(make_run(tmp_path, "fit", [start(), layers_event(10, 0.97)]), poll=0.05)

    async def check(pilot):
        await pilot.press("v")
        table = app.query_one(LayerPanel).query_one("#layers-table")
        await until(pilot, lambda: table.row_count == 5, "layer rows")
        await pilot.resize_terminal(*size)
        await pilot.pause(0.2)
        labels = [str(c.label) for c in table.columns.values()]
        assert table.max_scroll_x == 0, labels  # every column shown is whole
        assert labels[:2] == ["layer", ""] and {"zeros", "w grad"} <= set(labels)  # the name, its marks and their evidence
        assert ("type" in labels) == (size[0] >= 120)
        names = [column for column in table.columns.values() if str(column.label) == "layer"][0]
        assert names.get_render_width(table) >= len("features.4") + 2 * table.cell_padding
        assert str(table.get_row("features.4")[1]) == ("☠ ▼" if size[0] < 60 else "☠ dead ▼ vanishing")  # symbols only where the words do not fit

    drive(app, check, size=(150, 40))
