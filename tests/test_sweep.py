"""``mnistctl sweep``: tiny real trials in a shared Optuna study, pruning, reading the study back, and bad input."""

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.errors import UsageError
from mnistctl.runs import Run

optuna = pytest.importorskip("optuna")
SCRIPT = Path(sys.executable).with_name("mnistctl")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TINY = ["--arch", "lenet", "--limit", "256", "--val-split", "256", "--batch-size", "32", "--epochs", "1", "--precision", "fp32"]
SPACE = 'lr = { float = [0.01, 0.2], log = true }\nscheduler = { choice = ["onecycle", "none"] }\n'
runner = CliRunner()


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def sweep(*args: str):
    result = runner.invoke(app, ["sweep", *args], env={"COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def sweep_process(*args: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "MNISTCTL_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.Popen([str(SCRIPT), "sweep", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def load(study: str, url: str):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=study, storage=url)


def counted(study) -> list:
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


def study_runs(root: Path, name: str) -> dict[int, Run]:
    found = [Run(p.parent) for p in root.glob("*/config.json")]
    trials = [r.config["study"]["trial"] for r in found if r.config["study"]["name"] == name]
    assert len(trials) == len(set(trials)), f"a trial has two run directories: {sorted(trials)}"
    return {r.config["study"]["trial"]: r for r in found if r.config["study"]["name"] == name}


def check_workers(procs: list[subprocess.Popen], name: str, url: str, root: Path, n: int) -> None:
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr
    study = load(name, url)
    done = counted(study)
    assert len(done) == n
    assert len({t.number for t in done}) == n
    runs = study_runs(root, study.study_name)
    assert sorted(runs) == sorted(t.number for t in done)
    assert all(run.name == f"{study.study_name}-t{number}" for number, run in runs.items()), "a run directory name clashed"
    ran = [int(stdout.split("this worker ran ")[1].split()[0]) for stdout, _ in outputs]
    assert sum(ran) == n



def new_study(tmp_path, name: str):
    """An empty runs folder with a study of that name in its default storage, as sweep would make it."""
    root = tmp_path / "runs"
    root.mkdir()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return root, optuna.create_study(storage=f"sqlite:///{root / 'optuna.db'}", study_name=name, direction="maximize")

def test_sweep_records_trials_as_runs_and_show_reads_them_back(tmp_path, space, data_dir):
    root = tmp_path / "runs"
    sweep("--study", "tiny", "--trials", "2", "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet", *TINY)
    url = f"sqlite:///{root.resolve() / 'optuna.db'}"
    study = load("tiny", url)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    runs = study_runs(root, "tiny")
    assert sorted(runs) == [0, 1]
    for trial in trials:
        run = runs[trial.number]
        assert run.config["study"] == {"name": "tiny", "trial": trial.number, "storage": url}
        assert run.config["lr"] == pytest.approx(trial.params["lr"])
        assert run.config["scheduler"] == trial.params["scheduler"]
        assert run.summary["best_val_acc"] == pytest.approx(trial.value)
        assert run.config["epochs"] == 1 and run.config["limit"] == 256

    shown = sweep("--study", "tiny", "--show", "--runs-dir", str(root)).stdout
    best = max(trials, key=lambda t: t.value)
    assert shown.index(f"tiny-t{best.number}") < shown.index(f"tiny-t{1 - best.number}")
    assert f"best: trial {best.number}, validation accuracy {best.value:.2%}" in shown
    config = root / f"tiny-t{best.number}" / "config.json"
    assert f"train it again with: mnistctl train --config {config}\n" in shown
    assert_trains_again(config, runs[best.number])
    data = json.loads(sweep("--study", "tiny", "--show", "--json", "--runs-dir", str(root)).stdout)
    assert [t["number"] for t in data["trials"]] == [best.number, 1 - best.number] and data["study"] == "tiny"
    for listed in data["trials"]:
        run = runs[listed["number"]]
        assert (listed["status"], listed["state"], listed["reason"], listed["epochs"]) == ("finished", "COMPLETE", None, 1)
        assert listed["run"] == run.name and listed["path"] == str(run.path) and listed["test_acc"] == run.summary["test_acc"]
        assert listed["params"] == trials[listed["number"]].params and type(listed["time"]) is float
    assert data["best"] == data["trials"][0] | {"config": str(config)} and data["best"]["value"] == best.value
    assert set(data["importances"]) == ({"lr", "scheduler"} if trials[0].value != trials[1].value else set())
    elsewhere = sweep("--study", "tiny", "--show", "--storage", url, "--runs-dir", str(tmp_path / "other")).stdout
    assert "its searched settings, to add to the sweep's own train options:" in elsewhere  # the run is not in this runs folder
    assert f"--scheduler {best.params['scheduler']}" in elsewhere and f"--lr {best.params['lr']!r}" in elsewhere
    tied = trials[0].value == trials[1].value  # such tiny runs can both score the same; fANOVA then has nothing to explain
    assert ("parameter importances" in shown) != tied

    compared = runner.invoke(app, ["compare", "--study", "tiny", "--top", "1", "--no-stats", "--runs-dir", str(root)], env={"COLUMNS": "200"})
    assert compared.exit_code == 0, compared.output
    assert f"tiny-t{best.number}" in compared.stdout and f"tiny-t{1 - best.number}" not in compared.stdout

    again = sweep("--study", "tiny", "--trials", "2", "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), *TINY)
    assert "study tiny in sqlite:///" in again.stdout and ": 2 trials, --trials 2: nothing to run (raise --trials to run more)" in again.stdout
    assert "this worker ran" not in again.stdout
    assert len(load("tiny", url).get_trials()) == 2


def assert_trains_again(config: Path, run: Run) -> None:
    """``train --config`` of the trial's config.json resolves to the trial's settings, fixed flags (epochs, limit...) included."""
    from mnistctl.training.config import DEFAULTS, resolve

    again = resolve({}, config)
    assert {k: again[k] for k in DEFAULTS if k != "name"} == {k: run.config[k] for k in DEFAULTS if k != "name"}


def test_two_workers_share_one_sqlite_study(tmp_path, space, data_dir):
    root = tmp_path / "runs"
    args = ["--study", "pair", "--trials", "2", "--space", str(space), "--runs-dir", str(root), *TINY]
    procs = [sweep_process(*args, data_dir=data_dir) for _ in range(2)]
    check_workers(procs, "pair", f"sqlite:///{root.resolve() / 'optuna.db'}", root, 2)


def test_a_hopeless_trial_is_pruned_and_its_run_says_so(tmp_path, data_dir):
    from mnistctl.reading.compare import compare
    from mnistctl.tui.state import RunState

    root = tmp_path / "runs"
    root.mkdir()
    url = f"sqlite:///{root.resolve() / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=url, study_name="prune", direction="maximize")
    study.enqueue_trial({"lr": 3e-3})
    study.enqueue_trial({"lr": 1e-7})  # barely moves from the initial weights: far below the first trial
    space = tmp_path / "lr.toml"
    space.write_text("lr = { float = [1e-7, 0.01], log = true }\n")
    fixed = ["--optimizer", "adam", "--scheduler", "none", "--limit", "512", "--batch-size", "32", "--epochs", "2", "--val-split", "256"]
    sweep("--study", "prune", "--trials", "2", "--space", str(space), "--pruner", "halving", "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet", "--arch", "lenet", *fixed)
    first, second = load("prune", url).get_trials()
    assert (first.state.name, second.state.name) == ("COMPLETE", "PRUNED")
    assert list(second.intermediate_values) == [1]
    pruned = study_runs(root, "prune")[1]
    assert pruned.status() == "pruned"
    assert pruned.summary["status"] == "pruned" and pruned.summary["epochs_run"] == 1
    rows = {row["name"]: row for row in compare([str(pruned.path)], stats=False).rows}
    assert rows["prune-t1"]["status"] == "pruned"
    state = RunState()
    for event in pruned.events():
        state.apply(event)
    assert state.status() == "pruned"
    shown = sweep("--study", "prune", "--show", "--runs-dir", str(root)).stdout
    assert "pruned" in shown


def test_ctrl_c_stops_the_trial_resumably_and_queues_it_again(tmp_path, space, data_dir):
    root = tmp_path / "runs"
    args = ["--study", "stop", "--trials", "2", "--space", str(space), "--runs-dir", str(root), *TINY, "--epochs", "50", "--limit", "128"]
    proc = sweep_process(*args, data_dir=data_dir)
    for line in proc.stdout:
        if line.startswith("epoch"):
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "resumable" in stderr and "Traceback" not in stderr
    trials = load("stop", f"sqlite:///{root.resolve() / 'optuna.db'}").get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs["status"] == "interrupted"
    assert trials[1].user_attrs["retry_of"] == 0
    run = study_runs(root, "stop")[0]
    assert run.status() == "interrupted" and run.state_path.is_file()
    shown = sweep("--study", "stop", "--show", "--runs-dir", str(root)).stdout
    assert "interrupted" in shown and "outside the sweep" not in shown
    resumed = subprocess.run([str(SCRIPT), "train", "--resume", run.name, "--runs-dir", str(root), "--quiet"], capture_output=True, text=True,
                             env={**os.environ, "MNISTCTL_DATA_DIR": str(data_dir)}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    shown = sweep("--study", "stop", "--show", "--runs-dir", str(root)).stdout
    row = next(line for line in shown.splitlines() if line.startswith("│") and run.name in line)
    assert "finished" in row and "interrupted" not in row and f"{run.summary['best_val_acc']:.2%}" in row
    assert "trial 0 ended outside the sweep" in shown and "no trial has finished in the sweep yet" in shown


@pytest.mark.parametrize(
    "text,message",
    [
        ("lrr = { float = [0.01, 0.1] }", "lrr is not a training setting"),
        ("lr = { float = [0.1, 0.01] }", "the range [0.1, 0.01] is empty"),
        ("lr = { choice = [] }", "choice is empty"),
        ('lr = { choice = ["fast"] }', "choice 'fast' is not a number"),
        ("batch_size = { choice = [64.5] }", "choice 64.5 is not a whole number"),
        ("batch_size = { int = [8, 16], step = 3 }", "step 3 does not divide the range [8, 16]"),
        ("lr = { float = [0.01, 0.1], step = 0.04 }", "step 0.04 does not divide the range [0.01, 0.1]"),
        ("batch_size = { float = [16, 64] }", "batch_size takes whole numbers"),
        ("[set]\ndropot = { float = [0, 0.5] }", "arch 'lenet' has no option 'dropot'"),
        ("[opt-set]\nmomentum = { choice = [0.9] }\n[sched-set]\ngama = { float = [0.1, 0.5] }", "scheduler 'step' has no option 'gama'"),
        ('scheduler = { choice = ["cosine", "cosin"] }', "unknown scheduler 'cosin'"),
        ("epochs = { int = [0, 3] }", "bad.toml: epochs = 0 is not allowed"),
        ("lr = { float = [0, 0.1], log = true }", "a log range must start above zero"),
        ("[opt-set]\nlr = { float = [0.001, 0.5], log = true }", "opt-set.lr: lr is not an optimizer option"),
        ("[opt-set]\nweight_decay = { float = [0, 0.01] }", "opt-set.weight_decay: weight_decay is not an optimizer option"),
        ('scheduler = { choice = ["cosine"] }\n[sched-set]\nmin_lr_ratio = { float = [-1, 0.5] }', "min_lr_ratio = -1.0 is not allowed"),
        ("val_split = { choice = [500, 0] }", "val_split = 0 leaves no validation images"),
        ("val_split = { int = [0, 500] }", "val_split = 0 leaves no validation images"),
    ],
)
def test_bad_space_files_are_refused_before_anything_is_written(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        sweep("--study", "bad", "--space", str(path), "--runs-dir", str(tmp_path / "runs"), "--arch", "lenet")
    assert message in caught.value.message
    assert not (tmp_path / "runs" / "optuna.db").exists()
    assert not (tmp_path / "runs").exists()


def test_a_value_the_settings_refuse_is_named_once_and_fixed_in_the_space_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("lr = { float = [-1, 0.5] }\n")
    with pytest.raises(UsageError) as caught:
        sweep("--study", "bad", "--space", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert caught.value.message == "bad.toml: lr = -1.0 is not allowed: expected a positive number up to 3.4e+38"
    assert caught.value.hint == "change its range or choices in the space file"


def test_a_folder_given_as_space_file_is_named_a_folder(tmp_path):
    with pytest.raises(UsageError, match=f"space file {tmp_path} is a folder, not a file"):
        sweep("--study", "bad", "--space", str(tmp_path), "--runs-dir", str(tmp_path / "runs"))
    with pytest.raises(UsageError, match="space file /dev/null is not a regular file"):
        sweep("--study", "bad", "--space", "/dev/null", "--runs-dir", str(tmp_path / "runs"))


def test_a_space_file_is_read_as_utf8_with_or_without_a_byte_order_mark(tmp_path):
    from mnistctl.training.space import load

    path = tmp_path / "space.toml"
    path.write_bytes("\ufeff# taux d'apprentissage, échelle log\nlr = { float = [0.01, 0.1], log = true }\n".encode())
    assert [dim.name for dim in load(path, {"arch": "lenet"})] == ["lr"]


@pytest.mark.parametrize("show", [True, False])
def test_a_folder_where_the_study_database_goes_is_named_a_folder(tmp_path, space, show):
    (tmp_path / "runs" / "optuna.db").mkdir(parents=True)
    args = ["--show"] if show else ["--space", str(space), "--trials", "1"]
    with pytest.raises(UsageError, match=f"the study database {tmp_path / 'runs' / 'optuna.db'} is a folder"):
        sweep("--study", "s", "--runs-dir", str(tmp_path / "runs"), *args)


@pytest.mark.parametrize(
    "name, value, option",
    [("lr", 0.023845678912345, "--lr 0.023845678912345"), ("lr", 0.1, "--lr 0.1"), ("weight_decay", 5e-4, "--weight-decay 0.0005"),
     ("lr", 3e-05, "--lr 3e-05"), ("batch_size", 64, "--batch-size 64"),
     ("opt-set.momentum", 0.9123456789, "--opt-set momentum=0.9123456789"),
     ("augment", False, "--no-augment"), ("channels_last", False, "--no-channels-last"), ("channels_last", True, "--channels-last")],
)
def test_a_trials_settings_print_as_train_options_that_reproduce_it(name, value, option):
    from mnistctl.training.space import flag

    assert flag(name, value) == option


def test_a_setting_fixed_and_searched_is_refused(tmp_path, space):
    with pytest.raises(UsageError, match="lr is also fixed on the command line"):
        sweep("--study", "bad", "--space", str(space), "--lr", "0.1", "--runs-dir", str(tmp_path / "runs"))


def test_unreachable_storage_is_one_line_and_exit_2(tmp_path, space):
    port = free_port()
    url = f"postgresql+psycopg2://me:secret@127.0.0.1:{port}/db"
    result = subprocess.run(
        [str(SCRIPT), "sweep", "--study", "x", "--space", str(space), "--storage", url, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot use the study storage" in result.stderr and "secret" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_storage_url_whose_driver_is_missing_names_the_module(tmp_path):
    pytest.importorskip("psycopg2")
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed")
    with pytest.raises(UsageError) as caught:
        sweep("--study", "x", "--show", "--storage", "postgresql+psycopg://me:secret@127.0.0.1/db", "--runs-dir", str(tmp_path))
    assert caught.value.message == "no database driver for the study storage postgresql+psycopg://me@127.0.0.1/db: the module 'psycopg' is not installed"
    assert "postgresql+psycopg2://" in caught.value.hint


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_storage_is_refused_before_any_trial(tmp_path, space, url):
    with pytest.raises(UsageError, match="is an in-memory database, which keeps no study"):
        sweep("--study", "x", "--space", str(space), "--storage", url, "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path), *TINY)
    assert not (tmp_path / "runs").exists()


def test_a_study_database_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, space):
    db = tmp_path / "study.db"
    optuna.create_study(storage=f"sqlite:///{db}", study_name="x", direction="maximize")
    before = db.read_bytes()
    url = f"sqlite:///file:{db}?mode=ro&uri=true"  # read-only as a read-only folder or mount makes it, even for root
    result = subprocess.run(
        [str(SCRIPT), "sweep", "--study", "x", "--space", str(space), "--storage", url, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot write to the study storage" in result.stderr and "readonly database" in result.stderr
    assert "internal error" not in result.stderr and db.read_bytes() == before and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["../esc", ".hidden", "", "  ", "a/b", "lr search"])
def test_a_study_name_its_trials_cannot_carry_is_refused_before_anything_is_stored(name, tmp_path, space):
    result = runner.invoke(app, ["sweep", "--study", name, "--trials", "1", "--space", str(space), "--preset", "fast", "--runs-dir", str(tmp_path / "runs")])
    assert isinstance(result.exception, UsageError) and result.exception.message == f"study name {name!r} is not allowed: its trials are runs named after it"
    assert not (tmp_path / "runs").exists()


def test_a_range_the_architecture_cannot_be_built_with_is_refused_before_any_trial(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[set]\ndropout = { float = [0.5, 1.5] }\n")
    result = runner.invoke(app, ["sweep", "--study", "s", "--trials", "2", "--space", str(space), "--preset", "fast", "--runs-dir", str(tmp_path / "runs")])
    assert isinstance(result.exception, UsageError) and result.exception.hint == "change its range or choices in the space file"
    assert result.exception.message.startswith("space.toml: set.dropout = 1.5: the architecture 'simplecnn' cannot be built with")
    assert not (tmp_path / "runs").exists()


def test_show_names_a_missing_study(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(storage=f"sqlite:///{root / 'optuna.db'}", study_name="present")
    result = runner.invoke(app, ["sweep", "--study", "presnt", "--show", "--runs-dir", str(root)])
    assert "did you mean 'present'" in str(result.exception)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server in a temporary folder, run as an unprivileged user; its URL."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"no PostgreSQL server binaries at {PG_BIN} (Debian package postgresql-15)")
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver is not installed: pip install psycopg2-binary")
    prefix = []
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
        if user is None or not shutil.which("runuser"):
            pytest.skip("running as root without a postgres or nobody user and runuser to start PostgreSQL")
        prefix = ["runuser", "-u", user, "--"]
    folder = Path(tempfile.mkdtemp(prefix="mnistctl-pg-"))
    if prefix:
        os.chown(folder, pwd.getpwnam(prefix[2]).pw_uid, -1)
    port = free_port()
    run = lambda *args: subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=True)  # noqa: E731
    try:
        run(str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-U", "mnistctl", "-A", "trust", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-l", str(folder / "log"), "-w", "start")
        yield f"postgresql+psycopg2://mnistctl@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_two_workers_share_a_postgresql_study(tmp_path, space, data_dir, postgres):
    root = tmp_path / "runs"
    secret = postgres.replace("mnistctl@", "mnistctl:hunter2@")  # the server trusts local users: the password is not checked
    args = ["--study", "pg", "--trials", "2", "--space", str(space), "--runs-dir", str(root), *TINY]
    procs = [sweep_process(*args, *storage, data_dir=data_dir) for storage in (["--storage", secret], [f"--storage={secret}"])]
    check_workers(procs, "pg", postgres, root, 2)
    assert not (root / "optuna.db").exists()
    assert all(run.config["study"]["storage"] == postgres for run in study_runs(root, "pg").values())
    for run in study_runs(root, "pg").values():
        assert "hunter2" not in run.config_path.read_text() and postgres in run.config["command"]


def test_study_runs_picks_the_study_best_validation_first(tmp_path):
    from test_compare import make_run

    from mnistctl.errors import NotFoundError
    from mnistctl.reading.compare import study_runs

    root = tmp_path / "runs"
    for trial, accs in enumerate([[0.90, 0.92], [0.95, 0.94], [0.80], [0.97]]):
        make_run(root, f"s-t{trial}", accs, status="pruned" if trial == 2 else "finished", study={"name": "s", "trial": trial})
    make_run(root, "other", [0.99], study={"name": "other", "trial": 0})
    make_run(root, "plain", [0.99])
    assert [Path(p).name for p in study_runs("s", root, top=3)] == ["s-t3", "s-t1", "s-t0"]
    assert len(study_runs("s", root, top=0)) == 4
    with pytest.raises(NotFoundError, match="no runs of study 'x'"):
        study_runs("x", root)


def test_drawn_settings_that_cannot_train_fail_their_trial_with_the_reason(tmp_path, data_dir):
    from mnistctl.errors import RunError

    root = tmp_path / "runs"
    space = tmp_path / "big.toml"
    space.write_text("batch_size = { int = [2000, 3000] }\n")
    with pytest.raises(RunError, match=r"3 trials in a row failed \(the last: batch_size \d,\d{3} is larger than the 1,200 training images\)"):
        sweep("--study", "big", "--trials", "5", "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet",
              "--arch", "lenet", "--limit", "1200", "--val-split", "200", "--epochs", "1")
    trials = load("big", f"sqlite:///{root.resolve() / 'optuna.db'}").get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] * 3
    assert all("is larger than the 1,200 training images" in t.user_attrs["error"] for t in trials)
    assert not any(p.is_dir() for p in root.iterdir())  # no run was claimed


def test_diverging_trials_fail_in_optuna_and_three_in_a_row_stop_the_sweep(tmp_path, data_dir):
    from mnistctl.errors import RunError

    root = tmp_path / "runs"
    space = tmp_path / "huge.toml"
    space.write_text("lr = { float = [1e30, 1e31], log = true }\n")  # the weights overflow: the loss becomes inf or nan
    with pytest.raises(RunError, match="3 trials in a row failed"):
        sweep("--study", "nan", "--trials", "5", "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet",
              "--arch", "lenet", "--optimizer", "sgd", "--scheduler", "none", "--limit", "256", "--val-split", "256", "--epochs", "1")
    trials = load("nan", f"sqlite:///{root.resolve() / 'optuna.db'}").get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] * 3
    assert all(t.user_attrs["status"] == "failed" for t in trials)
    assert all(Run(root / f"nan-t{n}").status() == "failed" for n in range(3))


def test_importances_are_empty_when_the_finished_trials_all_score_the_same():
    from mnistctl.reading.sweep import importances

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("lr", 0.01, 0.1) * 0 + 0.1162, n_trials=3)
    assert importances(study) == {}
    study.optimize(lambda trial: trial.suggest_float("lr", 0.01, 0.1), n_trials=3)
    assert set(importances(study)) == {"lr"}


def test_the_best_trials_config_is_only_offered_from_its_own_run(tmp_path):
    import json
    from types import SimpleNamespace

    from mnistctl.reading.sweep import run_config

    study = SimpleNamespace(study_name="s1")
    trial = SimpleNamespace(number=0, user_attrs={"run": "s1-t0"})
    (tmp_path / "s1-t0").mkdir()
    config = tmp_path / "s1-t0" / "config.json"
    config.write_text(json.dumps({"lr": 0.1, "study": {"name": "s1", "trial": 0}}))
    assert run_config(study, trial, tmp_path) == config
    config.write_text(json.dumps({"lr": 0.1, "study": {"name": "s1", "trial": 3}}))  # another study of that name, elsewhere
    assert run_config(study, trial, tmp_path) is None
    config.write_text("[]")
    assert run_config(study, trial, tmp_path) is None
    assert run_config(study, SimpleNamespace(number=1, user_attrs={}), tmp_path) is None


@pytest.mark.parametrize("columns", [60, 100, 250])
def test_show_never_cuts_a_value_or_a_header_of_many_searched_settings(tmp_path, columns):
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial
    from rich.text import Text

    root, study = new_study(tmp_path, "many")
    names = ["lr", "opt-set.centered", "sched-set.power", "set.batchnorm", "set.channels", "set.hidden", "set.scale", "set.width"]
    drawn = [{n: (f"{k}.00{k}3995" if n in ("lr", "set.scale") else "finished-ish" if n == "set.channels" else str(k)) for n in names} for k in (0, 1)]
    choices = {n: CategoricalDistribution(sorted({params[n] for params in drawn})) for n in names}
    for params, value in zip(drawn, [0.4110, 0.1862]):
        study.add_trial(create_trial(params=params, distributions=choices, value=value, user_attrs={"status": "finished"}))
    result = runner.invoke(app, ["sweep", "--study", "many", "--show", "--runs-dir", str(root)], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    table = [line for line in result.stdout.splitlines() if "┃" in line or "│" in line]
    text = "\n".join(table)
    assert "…" not in text and "finished-ish" in text and "1.0013995" in text and "41.10%" in text, result.stdout
    for name in names:  # each header whole, on one line or split after its '.'
        assert name in text or all(part in text for part in name.replace(".", ".\n").split("\n")), name
    assert columns < 120 or max(Text(line).cell_len for line in table) <= columns


def test_a_worker_with_other_fixed_settings_or_space_is_refused_before_any_trial(tmp_path, space, data_dir):
    root = tmp_path / "runs"
    url = f"sqlite:///{root.resolve() / 'optuna.db'}"
    common = ["--study", "fix", "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    sweep(*common, "--trials", "1", "--space", str(space), *TINY)
    assert load("fix", url).user_attrs["mnistctl.sweep"]["fixed"]["limit"] == 256
    other = ["--arch", "lenet", "--val-split", "256", "--batch-size", "32", "--epochs", "2", "--precision", "fp32"]  # no --limit, two epochs
    with pytest.raises(UsageError, match=r"^study fix fixes epochs=1, limit=256; this worker gives epochs=2, limit=None \(") as refused:
        sweep(*common, "--trials", "2", "--space", str(space), *other)
    assert "start a new --study" in refused.value.hint
    narrower = tmp_path / "narrower.toml"
    narrower.write_text(SPACE.replace("0.01", "0.05"))
    with pytest.raises(UsageError, match=r"^study fix searches lr=float \[0.01, 0.2\] log; this worker searches lr=float \[0.05, 0.2\] log \("):
        sweep(*common, "--trials", "2", "--space", str(narrower), *TINY)
    assert len(load("fix", url).get_trials()) == 1  # no trial was run by either
    where = ["--device", "cpu", "--checkpoint-every", "2", "--runs-dir", str(tmp_path / "elsewhere"), "--storage", url]
    joined = sweep("--study", "fix", "--trials", "1", "--space", str(space), "--data-dir", str(data_dir), *TINY, *where)
    assert joined.exit_code == 0 and "1 trial, --trials 1: nothing to run" in joined.stdout  # where and how it runs is no difference


def test_a_study_made_before_settings_were_recorded_is_joined_as_before(tmp_path, space, data_dir):
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    root = tmp_path / "runs"
    root.mkdir()
    url = f"sqlite:///{root.resolve() / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=url, study_name="old", direction="maximize")
    study.add_trial(create_trial(params={"lr": 0.1}, distributions={"lr": FloatDistribution(0.01, 0.2, log=True)}, value=0.5))
    joined = sweep("--study", "old", "--trials", "1", "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), *TINY)
    assert joined.exit_code == 0 and "1 trial, --trials 1: nothing to run" in joined.stdout
    assert "mnistctl.sweep" not in load("old", url).user_attrs


def test_show_gives_a_queued_trial_its_settings_and_no_run_or_epochs(tmp_path):
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    root, study = new_study(tmp_path, "c")
    drawn = {"lr": 0.0123, "scheduler": "onecycle"}
    dists = {"lr": FloatDistribution(0.01, 0.2, log=True), "scheduler": CategoricalDistribution(["onecycle", "none"])}
    study.add_trial(create_trial(state=TrialState.FAIL, params=drawn, distributions=dists, intermediate_values={0: 0.5},
                                 user_attrs={"status": "interrupted", "run": "c-t0"}))
    study.enqueue_trial(drawn, user_attrs={"retry_of": 0})  # as a sweep stopped by Ctrl-C leaves it
    shown = sweep("--study", "c", "--show", "--runs-dir", str(root)).stdout
    header = next(line for line in shown.splitlines() if line.startswith("┃"))
    row = next(line for line in shown.splitlines() if line.startswith("│") and "waiting" in line)
    cells = dict(zip([h.strip() for h in header.strip("┃").split("┃")], [c.strip() for c in row.strip("│").split("│")]))
    assert cells["trial"] == "1" and cells["lr"] == "0.0123" and cells["scheduler"] == "onecycle", shown
    assert cells["epochs"] in ("", "-") and cells["run"] == "" and "None" not in shown, shown


def test_show_json_says_each_trials_state_and_why_it_failed(tmp_path):
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    root, study = new_study(tmp_path, "j")
    dists = {"lr": FloatDistribution(0.01, 0.2, log=True), "scheduler": CategoricalDistribution(["onecycle", "none"])}

    def add(state, lr, value=None, reported=None, **attrs):
        study.add_trial(create_trial(state=state, params={"lr": lr, "scheduler": "none"}, distributions=dists, value=value,
                                     intermediate_values=reported or {}, user_attrs=attrs))

    add(TrialState.FAIL, 0.2, status="failed", run="j-t0", error="batch_size 4,000 is too large")
    add(TrialState.FAIL, 0.15, reported={0: 0.3}, status="failed", run="j-t1")
    assert json.loads(sweep("--study", "j", "--show", "--json", "--runs-dir", str(root)).stdout)["best"] is None
    add(TrialState.COMPLETE, 0.05, 0.5, {0: 0.5}, status="finished", run="j-t2")
    add(TrialState.PRUNED, 0.01, None, {0: 0.1}, status="pruned", run="j-t3")
    study.enqueue_trial({"lr": 0.0123, "scheduler": "onecycle"})
    data = json.loads(sweep("--study", "j", "--show", "--json", "--runs-dir", str(root)).stdout)
    shown = {t["number"]: t for t in data["trials"]}
    assert [t["number"] for t in data["trials"]] == [2, 1, 3, 0, 4]  # best validation accuracy first, none last
    assert {n: (t["status"], t["state"]) for n, t in shown.items()} == {
        0: ("failed", "FAIL"), 1: ("failed", "FAIL"), 2: ("finished", "COMPLETE"), 3: ("pruned", "PRUNED"), 4: ("waiting", "WAITING")}
    assert [shown[n]["reason"] for n in range(5)] == ["batch_size 4,000 is too large", "its loss diverged", None, None, None]
    assert (shown[1]["value"], shown[1]["val_acc"], shown[0]["val_acc"], shown[3]["val_acc"]) == (None, 0.3, None, 0.1)
    assert shown[4]["params"] == {"lr": 0.0123, "scheduler": "onecycle"} and shown[4]["run"] is None and shown[4]["epochs"] is None
    assert data["best"] == shown[2] | {"config": None} and shown[2]["path"] is None  # its run is not in this runs folder
    with pytest.raises(UsageError, match="--json prints the study that --show reads"):
        sweep("--study", "j", "--json", "--runs-dir", str(root))


def test_a_failed_trials_line_says_why():
    from types import SimpleNamespace

    from mnistctl.cli.sweep import _trial_line

    def trial(reported, **attrs):
        return SimpleNamespace(number=2, state=SimpleNamespace(name="FAIL"), value=None, intermediate_values=reported,
                               params={"lr": 1e30}, user_attrs={"status": "failed", "run": "s-t2", **attrs})

    assert "failed[/] its loss diverged  lr=1e+30" in _trial_line(trial({}))
    assert "failed[/] best val acc 91.00% its loss diverged  lr=1e+30" in _trial_line(trial({1: 0.91}))
    assert "failed[/] batch_size 4,000 is too large  lr=1e+30" in _trial_line(trial({}, error="batch_size 4,000 is too large"))
    crashed = trial({})
    del crashed.user_attrs["status"]  # failed by an error that ended the sweep: Optuna's state only
    assert "failed[/]" in _trial_line(crashed) and "diverged" not in _trial_line(crashed)


@pytest.mark.parametrize("history", [[(0, 0.97, True)], [(n, 0.1 + n / 50, n % 3 > 0) for n in range(40)]])
def test_the_sweep_figure_shows_whole_trials_no_accuracy_above_100_and_its_legend_off_the_points(history):
    from mnistctl.reading.figures.sweep import sweep_figure

    fig = sweep_figure("s", history, {})
    fig.canvas.draw()
    ax = fig.axes[0]
    assert all(tick == int(tick) for tick in ax.get_xticks() if ax.get_xlim()[0] <= tick <= ax.get_xlim()[1])
    assert ax.get_ylim()[1] <= 100.5
    assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0  # below the axes, hiding no trial


def test_a_trial_that_failed_before_an_accuracy_is_drawn_on_the_axis_not_left_out():
    from mnistctl.reading.figures.sweep import sweep_figure

    fig = sweep_figure("s", [(0, 0.97, True), (1, None, False), (2, 0.98, True)], {})
    fig.canvas.draw()
    ax = fig.axes[0]
    failed = [line for line in ax.get_lines() if line.get_label() == "failed before an accuracy"]
    assert len(failed) == 1 and list(failed[0].get_xdata()) == [1]
    assert "failed before an accuracy" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_a_pruned_trial_shows_its_best_epoch_and_is_never_the_best_or_explained(tmp_path):
    from optuna.trial import TrialState

    root, study = new_study(tmp_path, "p")
    done = study.ask()
    done.suggest_float("lr", 0.01, 0.2)
    study.tell(done, 0.5)
    pruned = study.ask()
    pruned.suggest_float("lr", 0.01, 0.2)
    pruned.report(0.9, 1)
    pruned.report(0.6, 2)
    study.tell(pruned, state=TrialState.PRUNED)  # Optuna gives it the value of its last report, 0.6
    data = json.loads(sweep("--study", "p", "--show", "--json", "--runs-dir", str(root)).stdout)
    shown = {t["number"]: t for t in data["trials"]}
    assert (shown[1]["state"], shown[1]["value"], shown[1]["val_acc"]) == ("PRUNED", None, 0.9)
    assert data["best"]["number"] == 0 and data["importances"] == {}  # one finished trial: nothing to explain
    assert "best: trial 0, validation accuracy 50.00%" in sweep("--study", "p", "--show", "--runs-dir", str(root)).stdout


def test_show_lists_the_searched_settings_in_the_space_files_order(tmp_path):
    root, study = new_study(tmp_path, "o")
    trial = study.ask()
    trial.suggest_float("lr", 0.01, 0.2)  # as the space file lists them: lr, then batch_size
    trial.suggest_categorical("batch_size", [64, 128])
    study.tell(trial, 0.5)
    header = next(line for line in sweep("--study", "o", "--show", "--runs-dir", str(root)).stdout.splitlines() if "trial" in line and "status" in line)
    assert header.index(" lr ") < header.index(" batch_size ")


@pytest.mark.parametrize("order", [["augment", "rotation"], ["rotation", "augment"]])
def test_a_trial_that_draws_augment_false_trains_without_augmentation_whatever_the_space_order(order):
    from mnistctl.training.space import Dimension, apply, settings

    dims = {"augment": Dimension("augment", "choice", (True, False)), "rotation": Dimension("rotation", "float", (0.0, 20.0))}
    drawn = [dims[name] for name in order]
    assert settings(apply({}, drawn, {"augment": False, "rotation": 10.0}))["augment"] is None
    assert settings(apply({}, drawn, {"augment": True, "rotation": 10.0}))["augment"]["rotation"] == 10.0


@pytest.mark.parametrize("given", [["--rotation", "10"], ["--no-augment"]])
def test_augment_searched_and_fixed_names_the_option_given(tmp_path, given):
    path = tmp_path / "space.toml"
    path.write_text("augment = { choice = [true, false] }\n")
    with pytest.raises(UsageError) as caught:
        sweep("--study", "a", "--space", str(path), "--runs-dir", str(tmp_path / "runs"), *given)
    assert caught.value.message == f"space.toml: augment is also fixed on the command line ({given[0]})"
