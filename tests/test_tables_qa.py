"""Tables that fit the terminal: compare, eval and list keep names, options and numbers whole at narrow widths."""

import itertools
import os
import re
import time

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.reading import compare
from mnistctl.runs import STALLED_AFTER
from test_compare import make_run, probs_for

BREAKS = "-_./"


def invoke(*args, width):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


def fits(text, width):
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width, text


def table_cells(lines):
    """Rows of the table in ``lines`` (after its header rule), a row's wrapped lines joined: [[cell lines, ...], ...]."""
    rows = []
    body = itertools.dropwhile(lambda line: "╇" not in line, lines)
    next(body, None)
    for line in body:
        if "─" in line or "━" in line or "│" not in line:
            if "└" in line or "┘" in line or "│" not in line:
                break
            continue
        parts = line.split("│")
        if line.startswith("│"):
            parts = parts[1:-1]
        parts = [p.strip() for p in parts]
        if not rows or not continues(rows[-1], parts):
            rows.append([[p] for p in parts])
        else:
            for cell, part in zip(rows[-1], parts):
                if part:
                    cell.append(part)
    return rows


def continues(row, parts):
    """Whether ``parts`` wrap on the cells of ``row``: each piece follows one that ended at a break, or is a (status)."""
    return any(parts) and all(not part or cell[-1][-1:] in BREAKS or part.startswith("(") for cell, part in zip(row, parts))


def whole(pieces, name):
    """The pieces are ``name`` wrapped after a '-', '_', '.' or '/' (a piece may end only there), never cut."""
    return "".join(pieces) == name and all(p[-1] in BREAKS for p in pieces[:-1])


NAMES = ["fast", "lenet", "live-int", "one-epoch", "lenet-b128-lr0.05-s0"]


@pytest.fixture
def named_runs(tmp_path):
    root = tmp_path / "runs"
    for i, name in enumerate(NAMES):
        make_run(root, name, [0.9, 0.95], probs_for(set(range(i, 2 * i)), 0.9, 0.6))
    return root


@pytest.mark.parametrize("width, count", [(60, 3), (70, 4), (50, 5), (60, 5), (80, 5)])
def test_the_pairs_table_keeps_every_run_name_readable(named_runs, width, count):
    text = invoke("compare", *NAMES[:count], "--runs-dir", str(named_runs), width=width)
    fits(text, width)
    pairs = text.splitlines()[next(i for i, line in enumerate(text.splitlines()) if line.startswith("McNemar")):]
    rows = table_cells(pairs)
    shown = [("".join(row[0]), "".join(row[1])) for row in rows]
    assert sorted(map(frozenset, shown)) == sorted(frozenset(p) for p in itertools.combinations(NAMES[:count], 2))
    assert all(whole(row[0], a) and whole(row[1], b) for row, (a, b) in zip(rows, shown))


LONG = "this-is-a-very-long-run-name-that-goes-on-and-on-for-quite-a-while-indeed-yes-really-long"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_long_run_name_wraps_and_the_numbers_stay(tmp_path, width):
    root = tmp_path / "runs"
    make_run(root, "a", [0.95, 0.97], probs_for({0, 1}, 0.9, 0.6))
    make_run(root, LONG, [0.90, 0.93], probs_for({2, 3, 4}, 0.9, 0.6))
    text = invoke("compare", "--all", str(root), "--no-stats", width=width)
    fits(text, width)
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert "test acc" in header and "best val acc" in header and "params" in header
    rows = table_cells(text.splitlines())
    assert any(whole(row[0], LONG) for row in rows) and any(row[0] == ["a"] for row in rows)


def styled_runs(monkeypatch, root, names, width):
    from mnistctl.cli.compare import print_runs
    from mnistctl.reading.compare import COLUMNS

    console = Console(record=True, width=width, color_system="standard", force_terminal=True)
    monkeypatch.setattr("mnistctl.console.out", console)
    print_runs(compare.compare(names, root, stats=False), list(COLUMNS), fit=True)
    return console.export_text(clear=False), console.export_text(styles=True)


def test_only_completed_runs_compete_for_the_best_time_and_accuracy(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    make_run(root, "a", [0.95, 0.97, 0.96], probs_for({0, 1}, 0.9, 0.6), summary={"wall_time": 30.0})
    make_run(root, "b", [0.90, 0.93, 0.94], probs_for({2, 3}, 0.9, 0.6), summary={"wall_time": 20.0})
    make_run(root, "diverged", [0.99], status="failed", summary={"wall_time": 2.5})
    make_run(root, "stopped", [0.98], status="interrupted", summary={"wall_time": 5.0})
    plain, styled = styled_runs(monkeypatch, root, ["a", "b", "diverged", "stopped"], 200)
    green = "\x1b[1;32m"
    assert green + "20.0s" in styled and green + "2.5s" not in styled and green + "5.0s" not in styled
    assert green + "97.00%" in styled and green + "99.00%" not in styled and green + "98.00%" not in styled
    assert "of completed runs only" in plain


@pytest.mark.parametrize("width", [50, 60, 80])
def test_a_status_without_its_column_is_in_brackets_beside_the_name(tmp_path, width):
    root = tmp_path / "runs"
    make_run(root, "fast", [0.95, 0.97], probs_for({0, 1}, 0.9, 0.6))
    make_run(root, "diverged", [0.5], status="failed")
    make_run(root, "interrupted", [0.6], status="interrupted")
    text = invoke("compare", "fast", "diverged", "interrupted", "--runs-dir", str(root), "--no-stats", width=width)
    fits(text, width)
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    names = ["".join(row[0]) for row in table_cells(text.splitlines())]
    if "status" in header:
        assert sorted(names) == ["diverged", "fast", "interrupted"]
    else:  # no name cell holds a bare status, that reads like a run of that name
        assert sorted(n.replace(")(", ") (").replace("d(", "d (") for n in names) == ["diverged (failed)", "fast", "interrupted (interrupted)"]
        assert "diverged (failed)" in text


def test_a_run_whose_metrics_stopped_long_ago_is_stalled_not_running(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "alive", [0.9], status="running")
    killed = make_run(root, "killed", [0.9], status="running")
    then = time.time() - STALLED_AFTER - 5
    os.utime(killed / "metrics.jsonl", (then, then))
    rows = {row["name"]: row["status"] for row in compare.compare(["alive", "killed"], root, stats=False).rows}
    assert rows == {"alive": "running", "killed": "stalled"}
    text = invoke("compare", "alive", "killed", "--runs-dir", str(root), "--no-stats", width=200)
    assert re.search(r"killed\s+│ stalled", text) and re.search(r"alive\s+│ running", text)


@pytest.mark.parametrize("p", [0.0, 5e-324, 2.2e-317, 2.0e-306, 9.9e-301])
def test_every_p_value_below_1e_300_is_printed_the_same_way(p):
    from mnistctl.cli.compare import p_value
    from mnistctl.reading.compare import mcnemar_exact

    assert p_value(p) == "< 1e-300"
    assert p_value(mcnemar_exact(120, 1551)) == p_value(mcnemar_exact(30, 1624)) == "< 1e-300"
    assert p_value(1.5e-300) == "1.5e-300" and p_value(2.4e-282) == "2.4e-282"


@pytest.mark.parametrize("width", [30, 45, 60, 80])
def test_eval_tables_never_cut_a_count(short_run, width):
    import json

    from mnistctl.reading import evaluate

    text = invoke("eval", str(short_run.path), width=width)
    fits("\n".join(line for line in text.splitlines() if not line.startswith("wrote ")), width)  # a path is printed whole
    matrix = json.loads(evaluate.report_paths(short_run, "test")[0].read_text())["confusion_matrix"]
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Confusion matrix"))
    if "needs" in lines[title]:
        assert "--json" in " ".join(lines[title:title + 4])
        return
    rows = [[int(n) for n in re.findall(r"\d+", line)] for line in lines[title + 1:] if "│" in line and re.search(r"\d", line)][:10]
    assert rows == [[t, *row] for t, row in enumerate(matrix)]


@pytest.mark.parametrize("width", [45, 60, 80, 200])
def test_list_keeps_names_and_options_whole(width):
    from mnistctl.plugins import archs, optimizers, plugin_infos, schedulers

    text = invoke("list", width=width)
    fits(text, width)
    for registry in (archs, schedulers, optimizers):
        for spec in registry().list():
            assert re.search(rf"│ {re.escape(spec.name)}\s+│", text), spec.name
            for option in spec.defaults:
                assert f"{option}=" in text, option
    assert all(re.search(rf"│ {re.escape(info.name)}\s+│", text) for info in plugin_infos())
    for line in text.splitlines():  # a description, when shown, wraps to readable lines, not a word a line
        if line.startswith("┃") and "description" in line:
            assert len(line.split("┃")[2]) >= 15, line
