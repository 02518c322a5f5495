"""``mnistctl sweep`` and Ctrl-C at a trial's boundaries: the signal is raised at the exact moment (while the study is
told, while a trial is created, just before training, as the run ends) in an in-process sweep of tiny trials; the
command exits 130 in one line, a finished trial keeps its result, an interrupted one is failed and queued again,
and no trial is left running."""

import signal
import sys

import pytest

from mnistctl.training import sweep as training

optuna = pytest.importorskip("optuna")
TINY = ["--arch", "lenet", "--limit", "256", "--val-split", "256", "--batch-size", "32", "--epochs", "1", "--precision", "fp32"]


@pytest.fixture
def run_sweep(tmp_path, data_dir, monkeypatch, capsys):
    """Runs ``mnistctl sweep`` as ``main`` does (its Ctrl-C handler installed); the exit code, stderr and the study."""
    from mnistctl import cli

    space = tmp_path / "space.toml"
    space.write_text("lr = { float = [0.01, 0.2], log = true }\n")
    root = tmp_path / "runs"
    monkeypatch.setenv("COLUMNS", "200")

    def run(trials: int = 2, ctrl_c_ignored: bool = False):
        capsys.readouterr()
        args = ["sweep", "--study", "s", "--trials", str(trials), "--space", str(space), "--runs-dir", str(root), "--data-dir", str(data_dir), "--quiet", *TINY]
        monkeypatch.setattr(sys, "argv", ["mnistctl", *args])
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN if ctrl_c_ignored else cli._interrupt)
        try:
            code = cli._run()
        finally:
            signal.signal(signal.SIGINT, previous)
            cli.INTERRUPTED.clear()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(study_name="s", storage=f"sqlite:///{root.resolve() / 'optuna.db'}")
        return code, capsys.readouterr().err, study.get_trials(), root

    return run


def ctrl_c_once(monkeypatch, owner, name: str, when=lambda *args, **kwargs: True, before: bool = False, sig=signal.SIGINT):
    """Patch ``owner.name`` to send this process SIGINT (once, when ``when`` says so) before or after it does its work."""
    original = getattr(owner, name)
    sent = []

    def patched(*args, **kwargs):
        fire = not sent and when(*args, **kwargs)
        if fire:
            sent.append(name)
        if fire and before:
            signal.raise_signal(sig)
        result = original(*args, **kwargs)
        if fire and not before:
            signal.raise_signal(sig)
        return result

    monkeypatch.setattr(owner, name, patched)
    return sent


def assert_one_line(code: int, err: str, says: str) -> None:
    assert code == 130, err
    assert "Traceback" not in err and "internal error" not in err and "Exception in thread" not in err, err
    assert says in err, err


def test_ctrl_c_while_the_study_is_told_a_finished_trial_keeps_its_result(run_sweep, monkeypatch):
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    sent = ctrl_c_once(monkeypatch, RDBStorage, "set_trial_state_values", lambda self, trial_id, state, values=None: state == TrialState.COMPLETE, before=True)
    code, err, trials, _ = run_sweep()
    assert sent
    assert_one_line(code, err, "interrupted")
    assert [t.state.name for t in trials] == ["COMPLETE"]  # told, never left running; no second trial started
    assert trials[0].value is not None and trials[0].user_attrs["status"] == "finished"


def test_ctrl_c_as_the_heartbeat_thread_stops_a_finished_trial_keeps_its_result(run_sweep, monkeypatch):
    from optuna.storages._heartbeat import HeartbeatThread

    sent = ctrl_c_once(monkeypatch, HeartbeatThread, "join")  # the thread has stopped; the study is told next
    code, err, trials, _ = run_sweep()
    assert sent
    assert_one_line(code, err, "interrupted")
    assert [t.state.name for t in trials] == ["COMPLETE"]


def test_ctrl_c_as_a_trial_is_created_fails_it_and_queues_its_settings(run_sweep, monkeypatch):
    from optuna.storages import RDBStorage

    calls = []
    sent = ctrl_c_once(monkeypatch, RDBStorage, "_create_new_trial", lambda *args, **kwargs: calls.append(1) or len(calls) == 2)
    code, err, trials, root = run_sweep()
    assert sent
    assert_one_line(code, err, "interrupted")
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "WAITING"]
    assert trials[1].user_attrs["status"] == "interrupted"
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].system_attrs["fixed_params"] == trials[1].params
    assert not (root / "s-t1").exists()  # stopped before its run began: no stub run
    again, _, trials, _ = run_sweep()
    assert again == 0
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]  # the queued settings ran, the study is full
    assert trials[2].params == trials[1].params


def test_ctrl_c_just_before_training_removes_the_run_and_queues_the_settings(run_sweep, monkeypatch):
    from mnistctl.training.trainer import Trainer

    sent = ctrl_c_once(monkeypatch, Trainer, "prepare")
    code, err, trials, root = run_sweep()
    assert sent
    assert_one_line(code, err, "interrupted")
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs["status"] == "interrupted" and trials[1].user_attrs["retry_of"] == 0
    assert not (root / "s-t0").exists()


def test_ctrl_c_as_a_trials_run_ends_stops_the_sweep_after_recording_it(run_sweep, monkeypatch):
    from mnistctl.training.trainer import Trainer

    sent = ctrl_c_once(monkeypatch, Trainer, "_test")  # after the last look at a stop request: the run still finishes
    code, err, trials, _ = run_sweep()
    assert sent
    assert_one_line(code, err, "had ended and its result is recorded")
    assert [t.state.name for t in trials] == ["COMPLETE"]
    assert trials[0].user_attrs["status"] == "finished"


def test_sigterm_as_a_trials_run_ends_stops_a_background_sweep_that_ignores_ctrl_c(run_sweep, monkeypatch):
    from mnistctl.training.trainer import Trainer

    sent = ctrl_c_once(monkeypatch, Trainer, "_test", sig=signal.SIGTERM)  # training's handler takes it; the sweep stops after
    code, err, trials, _ = run_sweep(ctrl_c_ignored=True)
    assert sent
    assert_one_line(code, err, "had ended and its result is recorded")
    assert [t.state.name for t in trials] == ["COMPLETE"]


@pytest.mark.parametrize("own_handlers", [True, False])
def test_ctrl_c_while_training_still_leaves_a_resumable_run(run_sweep, monkeypatch, own_handlers):
    from mnistctl.cli import train

    if not own_handlers:  # training without handlers of its own: the sweep's passes the stop on
        monkeypatch.setattr(train, "run_with_signals", lambda trainer: trainer.run())
    sent = ctrl_c_once(monkeypatch, training.TrialObserver, "step")
    code, err, trials, root = run_sweep()
    assert sent
    assert_one_line(code, err, "resumable")
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[0].user_attrs["status"] == "interrupted" and trials[1].user_attrs["retry_of"] == 0
    assert (root / "s-t0" / "metrics.jsonl").is_file()


def test_the_deferred_signal_is_delivered_once_the_study_is_written():
    with pytest.raises(KeyboardInterrupt):
        with training.deferred_signals() as held:
            signal.raise_signal(signal.SIGINT)
            assert held.pending  # held back, not raised here
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
