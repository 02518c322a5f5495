"""The ``mnistctl`` command: listing in-process, and errors through the installed script."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnistctl import __version__
from mnistctl.cli import app
from mnistctl.errors import NotFoundError, UsageError
from mnistctl.plugins import archs, optimizers, schedulers

SCRIPT = Path(sys.executable).with_name("mnistctl")
runner = CliRunner()


def mnistctl_script() -> str:
    """The installed console script beside this interpreter, else the one on PATH."""
    found = str(SCRIPT) if SCRIPT.exists() else shutil.which("mnistctl")
    if found is None:
        pytest.fail("the mnistctl console script is not installed (pip install -e .)")
    return found


def run_mnistctl(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the installed script in a fresh process, with extra environment variables."""
    environ = {k: v for k, v in os.environ.items() if k not in {"MNISTCTL_DEBUG", "PYTHONPATH"}}
    return subprocess.run(
        [mnistctl_script(), *args], capture_output=True, text=True, timeout=60, env={**environ, "COLUMNS": "200", **env}
    )


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("kind,registry", [("archs", archs), ("schedulers", schedulers), ("optimizers", optimizers)])
def test_list_json_matches_registry(kind, registry):
    rows = json.loads(invoke("list", kind, "--json").stdout)
    assert [r["name"] for r in rows] == registry().names()
    for row in rows:
        spec = registry().get(row["name"])
        assert row["description"] == spec.description
        assert row["source"] == "mnistctl"
        assert set(row["defaults"]) == set(spec.defaults)
        if kind == "archs":
            assert row["params"] == spec.params


def test_list_archs_table_shows_every_arch_with_params():
    text = invoke("list", "archs").stdout
    for spec in archs().list():
        assert spec.name in text
        assert f"{spec.params:,}" in text


@pytest.mark.parametrize("kind", ["schedulers", "optimizers"])
def test_list_tables(kind):
    text = invoke("list", kind).stdout
    assert all(name in text for name in {"schedulers": schedulers, "optimizers": optimizers}[kind]().names())


def test_list_pattern_filters():
    rows = json.loads(invoke("list", "archs", "simple*", "--json").stdout)
    assert [r["name"] for r in rows] == ["simplecnn"]
    assert "lenet" not in invoke("list", "archs", "simple*").stdout


def test_list_pattern_matching_nothing_suggests_a_name():
    result = runner.invoke(app, ["list", "archs", "lenett"])
    assert result.exit_code != 0
    assert isinstance(result.exception, NotFoundError)
    assert result.exception.message == "no architecture matches 'lenett'"
    assert "'lenet'" in result.exception.hint


def test_list_plugins():
    rows = json.loads(invoke("list", "plugins", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert {"lenet", "simplecnn", "deep-dropout", "schedulers", "optimizers"} <= set(by_name)
    assert by_name["lenet"]["module"] == "mnistctl_lenet"
    assert by_name["lenet"]["package"] == "mnistctl"
    assert by_name["lenet"]["version"] == __version__
    assert by_name["schedulers"]["hooks"] == ["register_schedulers"]
    assert "mnistctl_optimizers" in invoke("list", "plugins").stdout


def test_list_json_holds_all_four_lists_as_each_kind_gives_them():
    everything = json.loads(invoke("list", "--json").stdout)
    assert list(everything) == ["archs", "schedulers", "optimizers", "plugins"]
    for kind in everything:
        assert everything[kind] == json.loads(invoke("list", kind, "--json").stdout)
    result = runner.invoke(app, ["list", "--json", "archs"])
    assert isinstance(result.exception, UsageError) and "after the kind" in result.exception.message


def test_version():
    assert invoke("--version").stdout.strip() == f"mnistctl {__version__}"


def test_help_lists_commands():
    text = invoke("--help").stdout
    for command in ("train", "eval", "visualize", "predict", "compare", "watch", "export", "list"):
        assert command in text


def test_script_lists_archs():
    result = run_mnistctl("list", "archs", "--json")
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)] == archs().names()


def test_script_error_is_one_line_without_traceback():
    result = run_mnistctl("list", "archs", "lenett")
    assert result.returncode == 2  # a name typed wrong is bad input, like every usage mistake
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "lenett" in lines[0] and "did you mean 'lenet'?" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_script_without_a_command_shows_help_without_traceback():
    result = run_mnistctl()
    assert result.returncode == 2  # like any usage mistake
    assert "Usage: mnistctl" in result.stdout
    assert "Commands" in result.stdout
    assert result.stderr == ""


def test_list_without_a_kind_shows_every_table():
    text = invoke("list").stdout
    titles = [line.strip() for line in text.splitlines() if line.strip() in ("Architectures", "Schedulers", "Optimizers", "Plugins")]
    assert titles == ["Architectures", "Schedulers", "Optimizers", "Plugins"]
    for name in (*archs().names(), "onecycle", "sgd", "mnistctl_optimizers"):
        assert name in text


@pytest.mark.parametrize("command", [
    ["export", "--output"],
    ["predict", "digit.png", "--explain"],
    ["compare", "a", "--plot"],
    ["sweep", "--study", "s", "--plot"],
])
def test_a_named_output_that_exists_is_never_replaced(command, short_run, tmp_path):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's own file")
    result = run_mnistctl(*command, str(mine), "--runs-dir", str(short_run.path.parent))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {command[-1]} {mine} already exists (name a new file, or move the old one away first)"
    assert mine.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.png"]
    folder = run_mnistctl(*command, str(tmp_path), "--runs-dir", str(short_run.path.parent))
    assert folder.returncode == 2 and folder.stderr.strip().startswith(f"error: {command[-1]} {tmp_path} is a folder (name a new file in it")


@pytest.mark.parametrize("command", [["visualize", "RUN", "--what", "curves", "--out"], ["predict", "digit.png", "--run", "RUN", "--save-input"]])
def test_an_output_folder_that_is_a_file_is_one_usage_error(command, short_run, tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's own file")
    result = run_mnistctl(*[str(short_run.path) if arg == "RUN" else arg for arg in command], str(mine))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: {command[-1]} {mine} is a file, not a folder (pass a folder)"
    assert mine.read_text() == "the user's own file"


@pytest.mark.parametrize("command", [
    ["visualize", "RUN", "--what", "curves", "--out"],
    ["predict", "digit.png", "--run", "RUN", "--save-input"],
    ["draw", "--run", "RUN", "--out"],
])
def test_an_output_folder_named_like_a_file_is_refused_before_anything_is_written(command, short_run, tmp_path):
    wanted = tmp_path / "plots" / "curves.PNG"
    result = run_mnistctl(*[str(short_run.path) if arg == "RUN" else arg for arg in command], str(wanted))
    assert result.returncode == 2, result.stderr
    expected = f"error: {command[-1]} {wanted} names a file, but {command[-1]} takes a folder for the images (pass a folder, e.g. {command[-1]} {wanted.with_suffix('')})"
    assert result.stderr.strip() == expected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["train"], ["sweep", "--study", "s", "--space", str(Path(__file__).parents[1] / "docs" / "sweep-space.toml"), "--trials", "1"]])
@pytest.mark.parametrize("below", [False, True])
def test_a_runs_folder_that_is_a_file_is_one_usage_error(command, below, data_dir, tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's own file")
    root = mine / "runs" if below else mine
    args = [*command, "--arch", "lenet", "--epochs", "1", "--limit", "256", "--val-split", "100", "--data-dir", str(data_dir)]
    result = run_mnistctl(*args, "--runs-dir", str(root))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"error: cannot keep runs in {root}: it or a folder above it is a file (pass --runs-dir DIR or set MNISTCTL_RUNS_DIR to a folder)"
    assert mine.read_text() == "the user's own file"


@pytest.mark.parametrize("command, written", [
    (["export", "RUN", "--output", "FILE/x.onnx"], "FILE/x.onnx"),
    (["visualize", "RUN", "--what", "curves", "--out", "FILE/plots"], "FILE/plots/curves.png"),
    (["compare", "RUN", "--plot", "FILE/c.png"], "FILE/c.png"),
])
def test_an_output_path_through_a_file_is_one_usage_error(command, written, short_run, tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's own file")
    result = run_mnistctl(*[arg.replace("RUN", str(short_run.path)).replace("FILE", str(mine)) for arg in command])
    assert result.returncode == 2, result.stderr
    folder = Path(written.replace("FILE", str(mine))).parent
    assert result.stderr.strip() == f"error: cannot write to {folder}: it or a folder above it is a file (choose another path)"
    assert mine.read_text() == "the user's own file"


@pytest.mark.parametrize("exists", [False, True])
def test_a_read_only_runs_folder_says_where_runs_can_go(exists, tmp_path, monkeypatch):
    """A current folder (or runs folder) the user cannot write to: one line naming it and --runs-dir, nothing made."""
    import errno

    from mnistctl import runs
    from mnistctl.errors import RunError

    root = tmp_path / "runs"
    if exists:
        root.mkdir()

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(RunError) as caught:
        runs.create(root, "fast")
    assert str(caught.value) == (f"cannot write runs in {root}: Read-only file system "
                                 "(pass --runs-dir DIR or set MNISTCTL_RUNS_DIR to a folder you can write to)")
    assert root.exists() == exists and not (root / "fast").exists()


def test_a_file_system_refusal_is_one_line_with_the_path(monkeypatch, capsys):
    import mnistctl.cli as cli

    def refused(argv):
        raise PermissionError(13, "Permission denied", "/data/runs/a/config.json")

    monkeypatch.setattr(cli, "command", refused)
    assert cli._run() == 1
    assert capsys.readouterr().err.strip() == "error: /data/runs/a/config.json: Permission denied (check the path, its permissions and the free space)"


def test_script_debug_shows_traceback():
    result = run_mnistctl("list", "archs", "lenett", MNISTCTL_DEBUG="1")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "NotFoundError" in result.stderr


@pytest.mark.parametrize("args", [("list", "archs", "lenett"), ("eval", "--bogus")])
def test_debug_adds_the_traceback_but_keeps_the_error_line_and_the_exit_code(args):
    plain, debug = run_mnistctl(*args), run_mnistctl(*args, MNISTCTL_DEBUG="1")
    assert plain.returncode == debug.returncode == 2, debug.stderr
    assert "Traceback" in debug.stderr and debug.stderr.splitlines()[-1] == plain.stderr.strip()


def test_eval_and_compare_read_the_data_from_data_dir_when_the_usual_places_have_none(short_run, data_dir, tmp_path, monkeypatch):
    moved = [tmp_path / "moved", tmp_path / "moved-2"]
    for path in moved:
        shutil.copytree(short_run.path, path)
        config = json.loads((path / "config.json").read_text())
        config["data"]["dir"] = str(tmp_path / "gone")
        (path / "config.json").write_text(json.dumps(config))
        shutil.rmtree(path / "reports", ignore_errors=True)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("MNISTCTL_DATA_DIR", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["eval", str(moved[0]), "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(short_run.summary["test_acc"], abs=1e-6)
    shutil.rmtree(moved[0] / "reports")
    result = CliRunner().invoke(app, ["compare", *map(str, moved), "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    ensemble = json.loads(result.stdout)["ensemble"]
    assert ensemble["test_acc"] == pytest.approx(short_run.summary["test_acc"], abs=1e-6)


@pytest.mark.parametrize("command", [["watch", "RUN"], ["draw", "--run", "RUN"]], ids=["watch", "draw"])
@pytest.mark.parametrize("tty", ["", "1"], ids=["stdout", "stdin"])
def test_a_dashboard_without_a_terminal_is_refused_instead_of_running_blind(command, tty, short_run):
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "MNISTCTL_DEBUG")}
    env.update({"TTY_COMPATIBLE": tty} if tty else {})  # rich then takes stdout for a terminal
    args = [str(short_run.path) if arg == "RUN" else arg for arg in command]
    result = subprocess.run([mnistctl_script(), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)
    assert result.returncode == 2 and not result.stdout
    assert plain.splitlines()[0].startswith(f"error: {command[0]} needs a terminal, but {'stdin' if tty else 'stdout'} is not one (run it in a terminal; ")


@pytest.mark.parametrize("args", [
    ("train", "--runs-dir", ""), ("train", "--data-dir", ""), ("train", "--config", ""), ("eval", "latest", "--runs-dir", ""),
    ("predict", "x.png", "--save-input", ""), ("predict", "x.png", "--explain", ""), ("export", "latest", "--output", ""),
    ("sweep", "--study", "s", "--space", ""), ("compare", "a", "b", "--plot", ""), ("visualize", "latest", "--data-dir", ""),
])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(args, tmp_path):
    result = subprocess.run([mnistctl_script(), *args], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                            env={**os.environ, "COLUMNS": "200", "MNISTCTL_RUNS_DIR": str(tmp_path / "runs")})
    option = args[args.index("") - 1]
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: invalid value for '{option}'") and "is empty; name a path" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("columns", ["0", "1"])
def test_an_unusable_columns_setting_is_ignored_not_obeyed(columns):
    for args in (("--help",), ("list", "archs")):
        result = run_mnistctl(*args, COLUMNS=columns)
        lines = result.stdout.splitlines()
        assert result.returncode == 0 and "lenet" in result.stdout if args[0] == "list" else "Usage: mnistctl" in result.stdout
        assert len(lines) > 5 and max(map(len, lines)) > 40, result.stdout  # the terminal's width, or 80 without one


def test_a_control_character_in_a_path_is_printed_escaped_not_raw(tmp_path):
    from test_data import write_set

    write_set(tmp_path / "data", n_train=200, n_test=20)
    root = tmp_path / "new\nline"
    common = {"MNISTCTL_DATA_DIR": str(tmp_path / "data"), "MNISTCTL_RUNS_DIR": str(root)}
    trained = run_mnistctl("train", "--arch", "lenet", "--epochs", "1", "--val-split", "50", "--name", "r", **common)
    assert trained.returncode == 0, trained.stderr
    evaluated = run_mnistctl("eval", "r", **common)
    assert evaluated.returncode == 0, evaluated.stderr
    shown = trained.stdout + evaluated.stdout
    assert f"training {tmp_path}/new\\nline/r on cpu" in shown and f"run saved in {tmp_path}/new\\nline/r" in shown
    assert f"wrote {tmp_path}/new\\nline/r/reports/eval-test.json" in shown and not any(line.startswith("line/") for line in shown.splitlines())


def test_a_name_the_output_encoding_cannot_spell_is_escaped_not_a_crash(tmp_path):
    from test_compare import make_run

    make_run(tmp_path / "runs", "café", [0.9])
    result = run_mnistctl("compare", "--all", str(tmp_path / "runs"), "--no-stats", PYTHONIOENCODING="ascii")
    assert result.returncode == 0 and "caf\\xe9" in result.stdout, result.stderr


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_a_closed_standard_output_drops_the_results_without_an_error(command, short_run, tmp_path):
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    args = [str(tmp_path / "blank.png"), "--run", str(short_run.path), "--raw"] if command == "predict" else [str(short_run.path)]
    done = subprocess.run([mnistctl_script(), command, *args, "--json"], stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(1))
    assert done.stderr == "" and done.returncode == 0, done.stderr


def test_a_file_named_like_an_option_gets_a_hint_to_name_it_as_a_path(tmp_path):
    (tmp_path / "-photo.png").write_bytes(b"")
    done = subprocess.run([mnistctl_script(), "predict", "-photo.png"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr == "error: no such option: -p (for the file -photo.png, write ./-photo.png)\n"
