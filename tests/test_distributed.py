"""Distributed training on CPU with gloo: real worker processes started by ``train --nproc 2``."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistctl import runs
from mnistctl.runs import Kind, Status, checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training.distributed import World
from mnistctl.training.trainer import Observer, Trainer

SMALL = ["--arch", "lenet", "--precision", "fp32", "--scheduler", "none", "--no-augment", "--val-split", "200", "--quiet"]
PLAIN_SGD = ["--optimizer", "sgd", "--opt-set", "momentum=0", "--opt-set", "nesterov=false", "--lr", "0.1"]
BOUND = 180  # seconds: generous, the machine may be busy; a hang would never end


def settings(args: dict) -> dict:
    """The same settings as command-line flags, for an in-process run."""
    flags = {"arch": "lenet", "precision": "fp32", "scheduler": "none", "val_split": 200, "optimizer": "sgd", "lr": 0.1,
             "optimizer_options": {"momentum": 0.0, "nesterov": False}, "name": "one"}
    return trainconfig.resolve({**flags, **args})


def train(runs_dir: Path, *args: str, wait: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mnistctl", "train", "--runs-dir", str(runs_dir), *args]
    if wait:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=BOUND)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def started(runs_dir: Path, process) -> runs.Run:
    """The run once its workers have logged the start event."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        found = [runs.Run(p) for p in runs_dir.glob("*/") if (p / "metrics.jsonl").is_file()]
        if found and found[0].last(Kind.START):
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the workers never started")


def events(run: runs.Run, kind: Kind) -> list[dict]:
    return list(run.events(kind))


def weights(run: runs.Run, which: str) -> dict:
    return checkpoint.load(run.weights_path(which))[0]


class StopAt(Observer):
    def __init__(self, trainer_box: list, epoch: int, step: int):
        self.box, self.at = trainer_box, (epoch, step)

    def step(self, epoch, step, steps, loss, acc):
        if (epoch, step) == self.at:
            self.box[0].request_stop()


@pytest.fixture
def env_data(data_dir, monkeypatch):
    monkeypatch.setenv("MNISTCTL_DATA_DIR", str(data_dir))
    return data_dir


def test_local_batches_of_all_ranks_make_the_global_batch():
    order = list(range(103))
    for size in (1, 2, 4):
        shards = [World(rank, size).shard(order) for rank in range(size)]
        steps = World(0, size).steps(len(order), 8)
        local = 8 // size
        assert {len(s) for s in shards} == {len(order) // size}
        for k in range(steps):
            together = sorted(i for s in shards for i in s[k * local : (k + 1) * local])
            assert together == sorted(order[k * 8 : (k + 1) * 8][: len(together)])
            assert len(together) == 8 or k == steps - 1


def test_two_processes_learn_into_one_run(tmp_path, env_data):
    result = train(tmp_path, "--nproc", "2", "--limit", "512", "--batch-size", "32", "--epochs", "2", "--log-layers-every", "8", *SMALL)
    assert result.returncode == 0, result.stderr
    (run_dir,) = list(tmp_path.iterdir())
    run = runs.Run(run_dir)
    assert run.config["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert len(events(run, Kind.START)) == 1 and len(events(run, Kind.END)) == 1
    assert events(run, Kind.START)[0]["world_size"] == 2
    epochs = events(run, Kind.EPOCH)
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"] and epochs[1]["val_acc"] > 0.5
    assert run.summary["status"] == Status.FINISHED and run.summary["test_acc"] > 0.5
    assert not any(k.startswith("module.") for k in weights(run, "best"))
    from mnistctl.models import build_model
    from mnistctl.training.layerstats import watched

    layers = events(run, Kind.LAYERS)
    assert [e["step"] for e in layers] == [8, 16, 24, 32]
    assert all(set(e["layers"]) == set(watched(build_model(run.config))) for e in layers)  # named as in one process, no "module."


def test_one_step_of_two_processes_equals_one_step_of_one(tmp_path, env_data):
    result = train(tmp_path / "two", "--nproc", "2", "--limit", "64", "--batch-size", "64", "--epochs", "1", *SMALL, *PLAIN_SGD)
    assert result.returncode == 0, result.stderr
    (two,) = [runs.Run(p) for p in (tmp_path / "two").iterdir()]
    one = Trainer(settings({"limit": 64, "batch_size": 64, "epochs": 1}), None, tmp_path / "one", env_data)
    one.run()
    one = runs.Run(one.run_dir)
    assert events(two, Kind.START)[0]["steps_per_epoch"] == events(one, Kind.START)[0]["steps_per_epoch"] == 1
    import torch

    initial, stepped = weights(two, "initial"), weights(two, "last")
    assert any(not torch.equal(initial[k], stepped[k]) for k in initial)
    for key, value in weights(one, "last").items():
        torch.testing.assert_close(stepped[key], value, rtol=1e-5, atol=1e-6)


def test_sigterm_stops_every_rank_and_the_run_resumes_on_one_process(tmp_path, env_data):
    launcher = train(tmp_path, "--nproc", "2", "--limit", "512", "--batch-size", "32", "--epochs", "12", *SMALL, wait=False)  # 3 s: time for the signal
    run = started(tmp_path, launcher)
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=BOUND)
    assert launcher.returncode == 130, err
    assert "death signal" not in err and "shutting down workers" not in err  # torch's launcher logs stay quiet
    assert run.summary["status"] == Status.INTERRUPTED and run.state_path.is_file()
    resumed = Trainer.resume(run)
    assert resumed.world.size == 1
    assert resumed.run()["status"] == Status.FINISHED
    starts = events(run, Kind.START)
    assert len(starts) == 2 and (starts[1]["start_epoch"], starts[1]["start_step"]) > (0, 0)
    assert [e["epoch"] for e in run.epochs()] == list(range(1, 13))
    assert len(list(tmp_path.iterdir())) == 1


def test_a_one_process_run_resumes_on_two(tmp_path, env_data):
    box: list = []
    trainer = Trainer(settings({"limit": 256, "batch_size": 32, "epochs": 2}), StopAt(box, 1, 3), tmp_path, env_data)
    box.append(trainer)
    assert trainer.run()["status"] == Status.INTERRUPTED
    result = train(tmp_path, "--nproc", "2", "--resume", str(trainer.run_dir), "--quiet")
    assert result.returncode == 0, result.stderr
    run = runs.Run(trainer.run_dir)
    starts = events(run, Kind.START)
    assert [(s["start_epoch"], s["start_step"]) for s in starts] == [(0, 0), (0, 3)]
    assert [e["epoch"] for e in run.epochs()] == [1, 2] and run.summary["status"] == Status.FINISHED
    first = run.epochs()[0]
    assert 0 < first["train_acc"] <= 1 and first["images_per_s"] > 0


def test_resuming_on_processes_that_do_not_split_the_batch_says_to_choose_other_processes(tmp_path, env_data):
    box: list = []
    trainer = Trainer(settings({"limit": 256, "batch_size": 32, "epochs": 2}), StopAt(box, 1, 3), tmp_path, env_data)
    box.append(trainer)
    assert trainer.run()["status"] == Status.INTERRUPTED
    before = trainer.run_dir.joinpath("metrics.jsonl").read_bytes()
    result = train(tmp_path, "--nproc", "3", "--resume", str(trainer.run_dir))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "does not split evenly across 3 processes" in result.stderr and "--batch-size" not in result.stderr  # refused on --resume
    assert "number of processes that divides 32" in result.stderr
    assert trainer.run_dir.joinpath("metrics.jsonl").read_bytes() == before


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # a thread of the launcher that ended since the listing
            continue
    return found


def rank_of(pid: int) -> int | None:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    ranks = [int(v.split(b"=", 1)[1]) for v in environ if v.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes through /proc")
def test_a_dead_rank_makes_the_launcher_fail(tmp_path, env_data):
    launcher = train(tmp_path, "--nproc", "2", "--limit", "512", "--batch-size", "32", "--epochs", "50", *SMALL, wait=False)
    started(tmp_path, launcher)
    workers = {rank_of(pid): pid for pid in children(launcher.pid)}
    os.kill(workers[1], signal.SIGKILL)
    _, err = launcher.communicate(timeout=BOUND)
    assert launcher.returncode not in (0, 130), err
    assert "rank 1" in err and "SIGKILL" in err and "Traceback" not in err.splitlines()[-1] and "internal error" not in err, err
    assert "running out of memory" in err.splitlines()[-1] and "(train in one process: leave --nproc out)" in err.splitlines()[-1], err
    assert not Path(f"/proc/{workers[0]}").exists() or b"zombie" in Path(f"/proc/{workers[0]}/status").read_bytes(), err


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes through /proc")
def test_a_rank_that_stops_answering_fails_the_run_in_one_line_after_the_timeout(tmp_path, env_data, monkeypatch):
    monkeypatch.setenv("MNISTCTL_DIST_TIMEOUT", "2")
    launcher = train(tmp_path, "--nproc", "2", "--limit", "512", "--batch-size", "32", "--epochs", "50", *SMALL, wait=False)
    run = started(tmp_path, launcher)
    workers = {rank_of(pid): pid for pid in children(launcher.pid)}
    os.kill(workers[1], signal.SIGSTOP)
    try:
        deadline = time.monotonic() + BOUND
        while Path(f"/proc/{workers[0]}").exists() and b"zombie" not in Path(f"/proc/{workers[0]}/status").read_bytes():
            assert time.monotonic() < deadline, "rank 0 never gave up on the silent rank"
            time.sleep(0.1)
    finally:
        os.kill(workers[1], signal.SIGCONT)
    _, err = launcher.communicate(timeout=BOUND)
    assert launcher.returncode not in (0, 130)
    assert "error: rank 0 waited 2 s for a training process that stopped answering (MNISTCTL_DIST_TIMEOUT)" in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert run.summary["status"] == Status.FAILED


@pytest.mark.parametrize("flags, message", [
    (["--val-split", "60000"], "error: --val-split 60,000 leaves no training images"),
    (["--limit", "100", "--batch-size", "256"], "error: batch_size 256 is larger than the 100 training images"),
    pytest.param(["--device", "cuda"], "error: device 'cuda' is not available on this machine", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="a machine with CUDA")),
])
def test_bad_input_is_refused_once_before_the_workers_start(tmp_path, env_data, flags, message):
    result = train(tmp_path, "--nproc", "2", "--arch", "lenet", "--epochs", "1", *flags)
    assert result.returncode == 2 and result.stderr.count("error:") == 1 and result.stderr.startswith(message)
    assert not any(tmp_path.iterdir())


def test_more_processes_than_gpus_are_refused_before_any_starts(tmp_path, env_data, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.errors import UsageError

    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    monkeypatch.setattr("torch.distributed.launcher.api.elastic_launch", lambda *a, **k: pytest.fail("the workers were started"))
    result = CliRunner().invoke(app, ["train", "--nproc", "2", "--device", "cuda", "--arch", "lenet", "--limit", "512", "--runs-dir", str(tmp_path)])
    error = result.exception
    assert isinstance(error, UsageError) and error.message == "2 processes on this machine but only 1 GPUs", result.output
    assert not any(tmp_path.iterdir())


def test_ctrl_c_while_a_worker_imports_the_cli_exits_130_without_a_traceback():
    stop_at_import = (
        "import runpy, sys\n"
        "class Stop:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mnistctl.console':\n"
        "            raise KeyboardInterrupt  # the launcher's SIGINT, arriving mid-import\n"
        "sys.meta_path.insert(0, Stop())\n"
        "sys.argv = ['mnistctl', 'list']\n"
        "runpy.run_module('mnistctl', run_name='__main__', alter_sys=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", stop_at_import], capture_output=True, text=True, timeout=BOUND)
    assert result.returncode == 130 and result.stderr == "interrupted\n", result.stderr


def test_a_sigterm_as_a_worker_leaves_keeps_its_exit_code_without_a_traceback():
    signal_on_leaving = (
        "import os, signal, sys\n"
        "import mnistctl.cli as cli\n"
        "leave = cli._leave\n"
        "def late(code):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the launcher stopping the ranks as this one exits\n"
        "    leave(code)\n"
        "cli._leave = late\n"
        "sys.argv = ['mnistctl', 'train', '--nproc', '0']\n"
        "cli.main()\n"
    )
    result = subprocess.run([sys.executable, "-c", signal_on_leaving], capture_output=True, text=True, timeout=BOUND)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: invalid value for '--nproc'") and result.stderr.count("\n") == 1


def test_a_peer_gone_is_told_from_other_errors():
    from mnistctl.training.distributed import peer_lost

    assert peer_lost(RuntimeError("[../gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:49829: Connection reset by peer. GLHF!"))
    assert not peer_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) and not peer_lost(KeyboardInterrupt())


def test_the_start_line_says_how_many_processes_train():
    from mnistctl.cli.progress import start_line

    event = {"dir": "runs/a", "device": "cpu", "params": 1000, "resumed": False}
    assert "runs/a[/] on cpu, 1,000 parameters" in start_line(event)  # runs from before world_size
    assert "runs/a[/] on cpu, 1,000" in start_line({**event, "world_size": 1})
    assert "runs/a[/] on cpu in 2 processes, 1,000" in start_line({**event, "world_size": 2})


def test_the_dashboard_header_shows_the_world_size():
    from mnistctl.tui.widgets import setup_terms

    config = {"batch_size": 128, "device": "cpu"}
    assert not any("processes" in t for t in setup_terms(config))
    assert "2 processes (gloo)" in setup_terms({**config, "distributed": {"world_size": 2, "backend": "gloo"}})


@pytest.mark.parametrize("codes,cause", [
    ({0: 1, 1: -signal.SIGKILL}, 1),  # rank 0 exited because its peer vanished
    ({0: -signal.SIGTERM, 1: -signal.SIGKILL}, 1),  # rank 0 was stopped by the launcher
    ({0: 1, 1: -signal.SIGTERM}, 0),  # rank 0 failed; the launcher stopped rank 1
    ({0: 1, 1: 1}, 0),
])
def test_the_error_names_the_rank_that_caused_the_failure(codes, cause):
    from types import SimpleNamespace

    from mnistctl.training.distributed import _root_cause

    failures = {rank: SimpleNamespace(exitcode=code, timestamp=1000) for rank, code in codes.items()}
    assert _root_cause(failures)[0] == cause


@pytest.mark.parametrize("nproc, hint", [(2, "train in one process: leave --nproc out"), (8, "train with fewer processes, e.g. --nproc 4")])
def test_a_rank_killed_by_sigkill_points_at_memory(nproc, hint):
    from types import SimpleNamespace

    from mnistctl.training.distributed import _failed

    error = _failed(1, SimpleNamespace(exitcode=-signal.SIGKILL, pid=42, signal_name=lambda: "SIGKILL"), nproc)
    assert "rank 1 (pid 42) was killed (SIGKILL), usually by the system running out of memory" in error.message and error.hint == hint
    assert "out of memory" not in _failed(1, SimpleNamespace(exitcode=-signal.SIGSEGV, pid=42, signal_name=lambda: "SIGSEGV"), nproc).message


def test_workers_that_cannot_fit_in_memory_are_refused_before_any_starts(tmp_path, env_data, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.errors import UsageError
    from mnistctl.training import distributed

    monkeypatch.setattr(distributed, "available_mib", lambda: 3 * distributed.USUAL_WORKER_MIB + 100)
    monkeypatch.setattr("torch.distributed.launcher.api.elastic_launch", lambda *a, **k: pytest.fail("the workers were started"))
    result = CliRunner().invoke(app, ["train", "--nproc", "64", "--arch", "lenet", "--epochs", "1", "--limit", "512", "--runs-dir", str(tmp_path)])
    error = result.exception
    assert isinstance(error, UsageError) and error.exit_code == 2, result.output  # the CLI prints it as one line, exit 2
    assert error.message.startswith(f"--nproc 64 needs at least {64 * distributed.WORKER_MIB / 1024:.1f} GiB of memory")
    assert error.hint == f"pass --nproc 3 or fewer: a process usually takes {distributed.USUAL_WORKER_MIB} MiB" and not any(tmp_path.iterdir())
    monkeypatch.setattr(distributed, "available_mib", lambda: None)  # where MemAvailable cannot be read, nothing is refused
    distributed.check_memory(64)


def test_more_processes_than_cores_on_the_cpu_are_warned_of(monkeypatch, capsys):
    from mnistctl.training import distributed

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(distributed, "usable_cores", lambda: 2)
    monkeypatch.setattr(distributed, "check_memory", lambda nproc: None)
    monkeypatch.setattr("torch.distributed.launcher.api.elastic_launch", lambda config, entrypoint: lambda *args: None)
    assert distributed.launch(4, ["train"]) == 0
    assert capsys.readouterr().err == "warning: --nproc 4 starts more processes than the 2 CPU cores here: training is slower than with --nproc 2\n"
    assert distributed.launch(2, ["train"]) == 0 and distributed.launch(4, ["train"], on_cpu=False) == 0  # one GPU a process
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf"])
def test_a_bad_collective_timeout_is_refused_once_before_any_worker_starts(value, tmp_path, monkeypatch):
    from mnistctl.errors import UsageError
    from mnistctl.training.distributed import collective_timeout

    monkeypatch.setenv("MNISTCTL_DIST_TIMEOUT", value)
    with pytest.raises(UsageError, match=f"MNISTCTL_DIST_TIMEOUT={value} is not a number of seconds above 0"):
        collective_timeout()
    monkeypatch.delenv("MNISTCTL_DIST_TIMEOUT")
    assert collective_timeout() == 300.0
    script = Path(sys.executable).with_name("mnistctl")
    result = subprocess.run([str(script), "train", "--nproc", "2", "--preset", "fast", "--limit", "500", "--runs-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "MNISTCTL_DIST_TIMEOUT": value})
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"error: MNISTCTL_DIST_TIMEOUT={value} is not a number of seconds above 0 (set it to e.g. 600, or unset it for 300)"]
    assert not list(tmp_path.iterdir())
