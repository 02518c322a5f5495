import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from mnistctl import runs
from mnistctl.errors import RunError, TrainingDiverged, UsageError
from mnistctl.runs import Kind, Status, checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training import trainer as trainer_module
from mnistctl.training.trainer import Observer, Trainer, improves
from mnistctl.tui.widgets import setup_terms
from test_cli import run_mnistctl

QUICK = {"arch": "lenet", "epochs": 2, "limit": 1024, "batch_size": 128, "val_split": 1000, "log_every": 4}


def make(tmp_path, data_dir, observer=None, **flags):
    return Trainer(trainconfig.resolve({**QUICK, **flags}), observer, tmp_path / "runs", data_dir)


class StopAt(Observer):
    """Requests a stop once training reaches (epoch, step)."""

    def __init__(self, epoch, step):
        self.at, self.trainer = (epoch, step), None

    def step(self, epoch, step, steps, loss, acc):
        if (epoch, step) == self.at:
            self.trainer.request_stop()


def test_short_run_learns_and_writes_a_complete_run(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, limit=4096, epochs=2, optimizer="adam", scheduler="none")
    summary = trainer.run()
    run = runs.Run(trainer.run_dir)
    assert summary["status"] == "finished" and run.status() == "finished"
    assert summary["test_acc"] > 0.8, summary
    for name in ("initial", "best", "last"):
        assert run.weights(name).is_file()
    assert run.state_path.is_file()
    epochs = run.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(0 <= e["val_acc"] <= 1 and e["train_loss"] > 0 for e in epochs)
    steps = list(run.events("step"))
    assert steps and all({"loss", "lr", "images_per_s"} <= set(s) for s in steps)
    assert [e["event"] for e in run.events()][-2:] == ["test", "end"]
    assert [e["epoch"] for e in run.events("checkpoint") if e["kind"] == "last"] == [1, 2]  # once each, the last one too
    best = [e for e in run.events("checkpoint") if e["kind"] == "best"]
    assert best and all((b["val_acc"], b["val_loss"]) == (epochs[b["epoch"] - 1]["val_acc"], epochs[b["epoch"] - 1]["val_loss"]) for b in best)
    end = list(run.events("end"))[-1]
    assert (end["test_acc"], end["test_loss"]) == (summary["test_acc"], summary["test_loss"])
    config = run.config
    assert config["data"]["md5"]["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"
    assert config["versions"]["torch"] == torch.__version__
    assert summary["best_epoch"] in (1, 2) and summary["params"] == 61_706


@pytest.mark.parametrize("stop_at, more", [((1, 8), {}), ((2, 3), {}), ((2, 3), {"arch": "strided-bn", "ema": 0.9})], ids=["epoch-boundary", "mid-epoch", "mid-epoch-ema"])
def test_resume_is_bit_exact(tmp_path, data_dir, stop_at, more):
    options = dict(arch="simplecnn", scheduler="onecycle", augment={"rotation": 15, "shift": 0.1}) | more
    whole = make(tmp_path, data_dir, name="whole", **options)
    whole.run()

    observer = StopAt(*stop_at)
    broken = observer.trainer = make(tmp_path, data_dir, observer, name="broken", **options)
    assert broken.run()["status"] == "interrupted"
    resumed = Trainer.resume(runs.Run(broken.run_dir))
    assert resumed.run()["status"] == "finished"

    a, _ = checkpoint.load(whole.run_dir / "weights" / "last.safetensors")
    b, _ = checkpoint.load(broken.run_dir / "weights" / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert runs.Run(broken.run_dir).summary["test_acc"] == runs.Run(whole.run_dir).summary["test_acc"]
    logged = lambda trainer: {e["step"]: (e["epoch"], e["loss"], e["lr"]) for e in runs.Run(trainer.run_dir).events("step")}
    before, after = logged(whole), logged(broken)
    if stop_at == (2, 3):  # stopped at step 11: steps 9-11 are logged at the stop, step 12 after the resume
        split, resumed, together = after.pop(11), after.pop(12), before.pop(12)
        assert (3 * split[1] + resumed[1]) / 4 == pytest.approx(together[1], abs=1e-5) and resumed[2] == together[2]
    assert after == before
    epochs = lambda trainer: [(e["epoch"], e["train_loss"], e["lr"]) for e in runs.Run(trainer.run_dir).epochs()]
    assert epochs(broken) == epochs(whole)


@pytest.fixture
def threads(monkeypatch):
    """Sets the cores a run finds (it trains on as many threads); torch's own count is put back after the test."""
    if not trainer_module.KNOWS_AFFINITY:
        pytest.skip("the thread count follows the affinity mask only where there is one")
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield lambda n: monkeypatch.setattr(trainer_module, "usable_cores", lambda: n)
    torch.set_num_threads(before)


class Threads(StopAt):
    """Records the thread count each step ran on; stops at (epoch, step) if given."""

    def __init__(self, epoch=0, step=0):
        super().__init__(epoch, step)
        self.seen = set()

    def step(self, epoch, step, steps, loss, acc):
        self.seen.add(torch.get_num_threads())
        super().step(epoch, step, steps, loss, acc)


def test_a_resume_trains_on_the_threads_the_run_trained_on_so_stays_exact(tmp_path, data_dir, threads):
    options = dict(arch="simplecnn", epochs=2, precision="fp32")
    threads(1)
    whole = make(tmp_path, data_dir, name="whole", **options)
    whole.run()
    observer = Threads(1, 4)
    broken = observer.trainer = make(tmp_path, data_dir, observer, name="broken", **options)
    assert broken.run()["status"] == "interrupted"

    threads(2)  # resumed where it finds more cores
    observer = Threads()
    assert Trainer.resume(runs.Run(broken.run_dir), observer).run()["status"] == "finished"
    assert observer.seen == {1}
    a, _ = checkpoint.load(whole.run_dir / "weights" / "last.safetensors")
    b, _ = checkpoint.load(broken.run_dir / "weights" / "last.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_resume_on_other_threads_says_it_will_not_be_exact_and_how_to_make_it(tmp_path, data_dir, threads, monkeypatch, capsys):
    threads(2)
    observer = StopAt(1, 4)
    broken = observer.trainer = make(tmp_path, data_dir, observer)
    assert broken.run()["status"] == "interrupted"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert Trainer.resume(runs.Run(broken.run_dir)).run()["status"] == "finished"
    err = " ".join(capsys.readouterr().err.split())
    assert "trained on 2 CPU threads and continues on 1 (OMP_NUM_THREADS=1), so not bit for bit" in err and "unset OMP_NUM_THREADS for an exact resume" in err


def test_a_run_stopped_at_the_last_step_of_an_epoch_resumes_on_processes_that_leave_an_image_out(tmp_path, data_dir, monkeypatch):
    observer = StopAt(1, 9)  # 1,025 images: 9 steps on one process, the last with a single image
    trainer = observer.trainer = make(tmp_path, data_dir, observer, limit=1025)
    assert trainer.run()["status"] == "interrupted"
    monkeypatch.setattr(trainer_module.World, "steps", lambda self, n, batch: math.ceil((n - n % 2) / batch))  # as on 2: 8 steps of 1,024
    resumed = Trainer.resume(runs.Run(trainer.run_dir))
    assert resumed.run()["status"] == "finished"
    assert [e["epoch"] for e in runs.Run(trainer.run_dir).epochs()] == [1, 2] and resumed.global_step == 9 + 8


class SlowThenStop(Observer):
    """Makes each of the first three steps of epoch 2 take 100 s more on the trainer's clock, then requests a stop."""

    def __init__(self, monkeypatch):
        self.trainer, self.late = None, 0.0
        monkeypatch.setattr("mnistctl.training.trainer.time", SimpleNamespace(perf_counter=lambda: time.perf_counter() + self.late))

    def step(self, epoch, step, steps, loss, acc):
        if epoch == 2 and step <= 3:
            self.late += 100.0
        if (epoch, step) == (2, 3):
            self.trainer.request_stop()


def test_a_resumed_epoch_counts_its_time_before_the_interruption(tmp_path, data_dir, monkeypatch):
    observer = SlowThenStop(monkeypatch)
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    assert Trainer.resume(runs.Run(trainer.run_dir)).run()["status"] == "finished"
    run = runs.Run(trainer.run_dir)
    second = run.epochs()[1]
    assert second["epoch_time"] >= 300 and second["images_per_s"] == pytest.approx(1024 / second["epoch_time"], rel=0.01)
    stopped, first_after = [e for e in run.events("step") if e["step"] > 8][:2]
    assert stopped["step"] == 11 and stopped["images_per_s"] <= round(3 * 128 / 300, 1)  # steps 9-11, the slow ones
    assert first_after["step"] == 12 and first_after["images_per_s"] > 128 / 100  # step 12 alone, its 100 s not counted again


def test_elapsed_counts_validation_but_the_epoch_time_does_not(tmp_path, data_dir, monkeypatch):
    """watch's clock runs on from each epoch event: the next event's elapsed must not fall behind it."""
    import mnistctl.training.trainer as module

    late = [0.0]
    monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=lambda: time.perf_counter() + late[0]))
    validate = module.predict_proba

    def slow_validation(*args, **kwargs):
        late[0] += 100.0
        return validate(*args, **kwargs)

    monkeypatch.setattr(module, "predict_proba", slow_validation)
    trainer = make(tmp_path, data_dir)
    trainer._test = lambda: {}  # the test pass uses predict_proba too
    trainer.run()
    first, second = runs.Run(trainer.run_dir).epochs()
    assert first["epoch_time"] < 100 and second["epoch_time"] < 100
    assert first["elapsed"] >= 100 and second["elapsed"] - first["elapsed"] >= 100 + second["epoch_time"] * 0.99
    assert runs.Run(trainer.run_dir).summary["wall_time"] == second["elapsed"]


def test_a_state_written_before_the_interval_and_epoch_time_were_kept_still_resumes(tmp_path, data_dir):
    observer = StopAt(2, 3)
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    run = runs.Run(trainer.run_dir)
    state = checkpoint.load_state(run.state_path)
    assert state.pop("interval")["steps"] == 0 and state.pop("epoch_time") > 0 and state.pop("step_lr") > 0  # none pending: logged at the stop
    checkpoint.save_state(run.state_path, state)
    assert Trainer.resume(run).run()["status"] == "finished"
    assert [e["epoch"] for e in run.epochs()] == [1, 2] and run.epochs()[1]["images_per_s"] > 0


def test_resuming_an_early_stopped_run_is_refused_in_plain_words(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, epochs=1, limit=256)
    trainer.run()
    run = runs.Run(trainer.run_dir)
    lines = run.metrics_path.read_text().splitlines()
    end = json.loads(lines[-1])
    assert end["event"] == "end"
    run.metrics_path.write_text("\n".join([*lines[:-1], json.dumps({**end, "status": "early_stopped"})]) + "\n")
    with pytest.raises(UsageError) as info:
        Trainer.resume(run)
    assert info.value.message == f"run {run.name} has already stopped early: its validation figure no longer improved; there is nothing to resume"


def test_resuming_a_finished_run_is_refused(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, epochs=1, limit=256)
    trainer.run()
    run = runs.Run(trainer.run_dir)
    with pytest.raises(UsageError, match="already finished"):
        Trainer.resume(run)
    shutil.rmtree(run.state_path.parent)
    with pytest.raises(UsageError, match="already finished"):  # not "no resume state": the run is over, with or without one
        Trainer.resume(run)


def test_a_run_still_training_cannot_be_resumed_by_another_process(tmp_path, data_dir):
    attempts = []

    class ResumeMidway(Observer):
        def step(self, epoch, step, steps, loss, acc):
            if (epoch, step) != (2, 2):
                return
            run = runs.Run(trainer.run_dir)
            before = run.metrics_path.read_bytes()
            command = [sys.executable, "-m", "mnistctl", "train", "--resume", str(run.path), "--quiet"]
            attempts.append(subprocess.run(command, env={**os.environ, "MNISTCTL_DATA_DIR": str(data_dir)}, capture_output=True, text=True, timeout=300))
            with pytest.raises(UsageError, match=f"run {run.name} is still training in another process"):
                Trainer(trainer.config, None, tmp_path / "runs", data_dir, resume=run).prepare()  # past the check in Trainer.resume
            attempts.append(run.metrics_path.read_bytes() == before and not run.summary_path.exists())

    trainer = make(tmp_path, data_dir, ResumeMidway())
    assert trainer.run()["status"] == "finished"
    refused, untouched = attempts
    assert refused.returncode == 2 and untouched
    assert refused.stderr.strip().splitlines() == [f"error: run {trainer.run_dir.name} is still training in another process (wait for it, or stop it first)"]
    run = runs.Run(trainer.run_dir)
    assert [e["event"] for e in run.events() if e["event"] in ("start", "end")] == ["start", "end"]
    assert [e["epoch"] for e in run.epochs()] == [1, 2]
    with pytest.raises(UsageError, match="already finished"):  # the lock went with the run
        Trainer.resume(run)


@pytest.mark.parametrize("damage", ["truncated", "weights"])
def test_a_resume_from_a_damaged_state_fails_and_leaves_the_run_as_it_was(tmp_path, data_dir, damage):
    observer = StopAt(1, 3)
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    run = runs.Run(trainer.run_dir)
    if damage == "truncated":
        run.state_path.write_bytes(run.state_path.read_bytes()[:1000])
    else:
        run.state_path.write_bytes(run.weights_path("initial").read_bytes())
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    with pytest.raises(RunError, match=re.escape(str(run.state_path))):
        Trainer.resume(run).run()
    assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()} == before
    assert run.summary["status"] == "interrupted"


def test_a_damaged_resume_state_says_to_start_a_new_run_and_that_the_best_weights_still_work(tmp_path, data_dir):
    observer = StopAt(2, 3)
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    run = runs.Run(trainer.run_dir)
    run.state_path.write_text("x\n")
    new_run = f"start a new run from its settings: mnistctl train --config {shlex.quote(str(run.config_path))}"
    with pytest.raises(RunError) as info:
        Trainer.resume(run).run()
    assert info.value.message.startswith(f"checkpoint {run.state_path} is unreadable")
    assert info.value.hint == f"{new_run}; its best weights still work: mnistctl eval {shlex.quote(str(run.path))}, or export"
    run.weights_path("best").write_text("x\n")
    with pytest.raises(RunError) as info:
        Trainer.resume(run).run()
    assert info.value.hint == new_run


@pytest.mark.parametrize("arch, options, message", [
    ("lenet", {"kernel_size": "15"}, "the architecture 'lenet' with kernel_size=15 does not fit 28x28 images: Calculated padded input size"),
    ("deep-dropout", {"channels": "8,8,8,8,8"}, "the architecture 'deep-dropout' with channels=8,8,8,8,8 does not fit 28x28 images: Given input size"),
])
def test_options_that_do_not_fit_28x28_images_are_a_usage_error_and_write_nothing(tmp_path, data_dir, recwarn, arch, options, message):
    with pytest.raises(UsageError) as info:
        make(tmp_path, data_dir, arch=arch, arch_options=options).run()
    assert str(info.value).startswith(message) and str(info.value).endswith("(choose smaller kernels or fewer blocks)")
    assert not (tmp_path / "runs").exists()
    assert not recwarn.list


def test_run_names_never_collide(tmp_path, data_dir):
    first = make(tmp_path, data_dir, name="same")
    second = make(tmp_path, data_dir, name="same")
    assert first.prepare().name == "same" and second.prepare().name == "same-2"
    claimed = []
    threads = [threading.Thread(target=lambda: claimed.append(runs.create(tmp_path / "race", "x"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in claimed}) == 8


def test_default_name_comes_from_hyperparameters(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, epochs=3, lr=0.01, seed=7)
    assert trainer.prepare().name == "lenet-e3-b128-lr0.01-step-s7"


class OutputGone(Observer):
    """Printing the progress fails in the second epoch, as rich does when the output pipe closes (``| head``)."""

    def step(self, epoch, step, steps, loss, acc):
        if epoch == 2:
            raise SystemExit(1)


def test_a_run_whose_output_goes_away_ends_interrupted_and_resumes(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, OutputGone(), epochs=3)
    with pytest.raises(SystemExit):
        trainer.run()
    run = runs.Run(trainer.run_dir)
    assert run.status() == Status.INTERRUPTED and "SystemExit" in run.last(Kind.END)["message"]
    assert Trainer.resume(run).run()["status"] == Status.FINISHED
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]

def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, scheduler="exponential", scheduler_options={"gamma": 1e8}, epochs=3, lr=0.05)
    with pytest.raises(TrainingDiverged, match="loss became"):
        trainer.run()
    run = runs.Run(trainer.run_dir)
    assert run.status() == "failed"
    last, meta = checkpoint.load(run.weights("last"))
    assert meta["epoch"] >= 1
    assert all(torch.isfinite(t).all() for t in last.values())


def test_resuming_a_diverged_run_is_refused_as_it_would_diverge_again(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, scheduler="exponential", scheduler_options={"gamma": 1e8}, epochs=3, lr=0.05)
    with pytest.raises(TrainingDiverged):
        trainer.run()
    run = runs.Run(trainer.run_dir)
    before = run.metrics_path.read_bytes()
    result = run_mnistctl("train", "--resume", str(run.path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: run {run.name} diverged at epoch 2, step 3: resuming would repeat it, as training is deterministic "
        f"(its scheduler raised the learning rate: start a new run with other scheduler settings, e.g. mnistctl train --config {run.config_path} --sched-set ...; "
        f"mnistctl eval {run.path} tests its best weights)"
    ]
    assert run.metrics_path.read_bytes() == before


@pytest.mark.parametrize("settings, rate, hint", [
    ({"scheduler": "exponential", "scheduler_options": {"gamma": 1e8}, "lr": 0.05}, r"5e\+06 \(the exponential scheduler's, from --lr 0.05\)",
     "the exponential scheduler raised it: start a new run with other settings than --sched-set gamma=100000000.0, or another scheduler"),
    ({"scheduler": "none", "lr": 1e6}, r"1e\+06", "lower the learning rate, --lr 1e+06, and start a new run"),
    ({"scheduler": "onecycle", "lr": 1e6}, r"\d{5,6} \(the onecycle scheduler's, from --lr 1e\+06\)", "lower the learning rate, --lr 1e+06, and start a new run"),
])
def test_a_diverged_run_names_the_learning_rate_its_diverging_step_used(tmp_path, data_dir, settings, rate, hint):
    with pytest.raises(TrainingDiverged) as info:
        make(tmp_path, data_dir, epochs=3, precision="fp32", **settings).run()
    assert re.fullmatch(rf"the loss became \S+ at epoch \d, step \d, at a learning rate of {rate}; .*", info.value.message)
    assert info.value.hint == hint


def test_config_round_trip(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, arch="simplecnn", arch_options={"dropout": "0.3", "channels": "16,32"}, seed=3)
    trainer.prepare()
    again = trainconfig.resolve({}, trainer.run_dir / "config.json")
    for key in trainconfig.DEFAULTS:
        if key != "name":
            assert again[key] == trainer.config[key], key
    assert again["arch_options"]["channels"] == [16, 32] and again["arch_options"]["dropout"] == 0.3
    toml = tmp_path / "c.toml"
    toml.write_text('arch = "lenet"\nepochs = 4\n[augment]\nrotation = 5\n')
    from_toml = trainconfig.resolve({"epochs": 6}, toml)
    assert (from_toml["arch"], from_toml["epochs"], from_toml["augment"]) == ("lenet", 6, {"rotation": 5, "shift": 0.1, "zoom": 0.0, "elastic": 0.0})


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"arch": "lenett"}, "did you mean 'lenet'"),
        ({"arch_options": {"dropuot": "0.3"}}, "no option 'dropuot'"),
        ({"arch_options": {"dropout": "high"}}, "architecture 'simplecnn' option dropout = 'high' is not allowed: expected a finite number (fix --set"),
        ({"epochs": 0}, "epochs = 0 is not allowed: expected a whole number from 1"),
        ({"scheduler": "cosin"}, "did you mean 'cosine'"),
    ],
)
def test_bad_settings_fail_clearly(flags, message):
    with pytest.raises(Exception) as info:
        trainconfig.resolve(flags)
    assert message in f"{info.value.message} ({info.value.hint})"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_stop_signal_checkpoints_and_resume_finishes(tmp_path, data_dir, stop):
    env = {**os.environ, "MNISTCTL_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "mnistctl", "train", "--arch", "lenet", "--epochs", "3", "--limit", "6000",
           "--batch-size", "64", "--runs-dir", str(tmp_path), "--name", "sig"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "sig" / "metrics.jsonl"
    deadline = time.time() + 600  # a wait, not a timing check: a loaded machine is slow
    while time.time() < deadline and '"event": "epoch"' not in (metrics.read_text() if metrics.exists() else ""):
        time.sleep(0.2)
    proc.send_signal(stop)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "mnistctl train --resume" in stderr and "Traceback" not in stderr
    run = runs.Run(tmp_path / "sig")
    assert run.status() == "interrupted"
    state = checkpoint.load_state(run.state_path)
    assert state["epoch"] >= 1
    step, steps = state["step_in_epoch"], run.events("start").__next__()["steps_per_epoch"]
    where = f"in epoch {state['epoch'] + 1}, at step {step} of {steps}" if step else f"after epoch {state['epoch']}"
    assert f"stopped {where}: the last checkpoint is saved in" in stderr, stderr  # where it stopped, as its state has it
    resumed = subprocess.run([sys.executable, "-m", "mnistctl", "train", "--resume", str(run.path), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert run.summary["status"] == "finished" and run.summary["epochs_run"] == 3
    starts = list(run.events("start"))
    assert [s["resumed"] for s in starts] == [False, True]


def test_augmentation_moves_each_image_differently_and_is_seeded(mnist):
    from mnistctl import data

    x = data.normalize(mnist.train_images[:64], 0.1307, 0.3081)
    assert torch.allclose(data.augment(x, 0.0, 0.0, torch.Generator().manual_seed(0)), x, atol=1e-5)
    a = data.augment(x, 15.0, 0.1, torch.Generator().manual_seed(1))
    b = data.augment(x, 15.0, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    background = x.amin()
    assert torch.allclose(a.amin(dim=(1, 2, 3)), torch.full((64,), background.item()), atol=1e-4)

    def centre(batch):
        ink = (batch - background).clamp_min(0).squeeze(1)
        cols = torch.arange(28.0)
        return (ink.sum(1) * cols).sum(1) / ink.sum((1, 2))

    moved = (centre(a) - centre(x)).abs()
    assert moved.max() > 1.0 and moved.std() > 0.3  # shifted, by a different amount per image


def test_zoom_scales_each_image_differently_and_leaves_unzoomed_runs_as_they_were(mnist):
    from mnistctl import data

    x = data.normalize(mnist.train_images[:64], 0.1307, 0.3081)
    background = x.amin()

    def spread(batch):  # the ink's root-mean-square distance from its centre of mass, in pixels
        ink = (batch - background).clamp_min(0).squeeze(1)
        grid = torch.arange(28.0)
        total = ink.sum((1, 2))
        cy, cx = (ink.sum(2) * grid).sum(1) / total, (ink.sum(1) * grid).sum(1) / total
        far = (grid[None, :, None] - cy[:, None, None]) ** 2 + (grid[None, None, :] - cx[:, None, None]) ** 2
        return ((ink * far).sum((1, 2)) / total).sqrt()

    ratio = spread(data.augment(x, 0.0, 0.0, torch.Generator().manual_seed(2), zoom=0.3)) / spread(x)
    assert ratio.min() < 0.9 and ratio.max() > 1.1 and ((ratio > 0.6) & (ratio < 1.4)).all()

    unzoomed, reference = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    data.augment(x, 15.0, 0.1, unzoomed, zoom=0.0)
    torch.rand(64, generator=reference), torch.rand(64, 2, generator=reference)  # an angle and an offset per image
    assert torch.equal(torch.rand(8, generator=unzoomed), torch.rand(8, generator=reference))


def test_elastic_distortion_bends_each_image_smoothly_and_leaves_other_runs_as_they_were(mnist):
    from mnistctl import data
    from mnistctl.data.augment import elastic_field

    field = elastic_field(256, 28, 34.0, torch.Generator().manual_seed(0)) * 14  # grid units to pixels
    neighbour = torch.corrcoef(torch.stack([field[:, :, :-1].flatten(), field[:, :, 1:].flatten()]))[0, 1]
    assert 1.0 < field.std() < 3.0 and neighbour > 0.9  # displacements of a pixel or two, smooth across the image
    weaker = elastic_field(256, 28, 17.0, torch.Generator().manual_seed(0)) * 14
    assert torch.allclose(weaker * 2, field, atol=1e-5)

    x = data.normalize(mnist.train_images[:64], 0.1307, 0.3081)
    bent = data.augment(x, 0.0, 0.0, torch.Generator().manual_seed(1), elastic=34.0)
    changed = (bent - x).abs().flatten(1).mean(1)
    assert (changed > 0.05).all() and changed.std() > 0.01  # every image, each by its own amount
    ink = lambda batch: (batch - x.amin()).clamp_min(0).sum((1, 2, 3))
    ratio = ink(bent) / ink(x)
    assert ((ratio > 0.5) & (ratio < 2)).all()  # stretched or squeezed in places, not erased

    plain, reference = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    data.augment(x, 15.0, 0.1, plain, zoom=0.0, elastic=0.0)
    torch.rand(64, generator=reference), torch.rand(64, 2, generator=reference)  # an angle and an offset per image
    assert torch.equal(torch.rand(8, generator=plain), torch.rand(8, generator=reference))


@pytest.mark.parametrize("monitor, val_acc, val_loss, expected", [
    ("val_acc", 0.91, 0.30, True),     # higher accuracy wins though the loss is worse
    ("val_loss", 0.91, 0.30, False),   # ... but not when the loss is watched
    ("val_loss", 0.89, 0.10, True),    # a lower loss wins though the accuracy is worse
    ("val_acc", 0.89, 0.10, False),
    ("val_acc", 0.90, 0.19, True),     # a tie on the monitored value goes to the other one
    ("val_loss", 0.91, 0.20, True),
    ("val_loss", 0.90, 0.20, False),   # no better on either: not an improvement
])
def test_the_monitored_value_picks_the_best_epoch(monitor, val_acc, val_loss, expected):
    best = {"epoch": 3, "val_acc": 0.90, "val_loss": 0.20}
    assert improves(best, val_acc, val_loss, monitor) is expected


def test_monitor_val_loss_keeps_the_epoch_with_the_lowest_validation_loss(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, epochs=3, monitor="val_loss", optimizer="sgd", lr=0.3, scheduler="none")
    summary = trainer.run()
    run = runs.Run(trainer.run_dir)
    assert run.config["monitor"] == "val_loss"
    assert "best by val loss" in setup_terms(run.config) and "best by val loss" not in setup_terms({**run.config, "monitor": "val_acc"})
    epochs = list(run.events("epoch"))
    lowest = min(epochs, key=lambda e: (e["val_loss"], -e["val_acc"]))
    assert summary["best_epoch"] == lowest["epoch"]
    assert [e["best"] for e in epochs] == [e["val_loss"] == min(x["val_loss"] for x in epochs[: i + 1]) for i, e in enumerate(epochs)]


@pytest.mark.parametrize("pct_start", [0.0, 1.0])
def test_a_one_cycle_whose_pct_start_leaves_a_phase_without_steps_names_pct_start(pct_start):
    import torch

    from mnistctl.plugins import schedulers

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(UsageError) as info:
        schedulers().get("onecycle").build(optimizer, 2, 430, pct_start=pct_start)
    assert f"pct_start={pct_start:g}" in info.value.message and info.value.hint == "choose pct_start from 0.00233 to 0.998, e.g. --sched-set pct_start=0.25"


def test_a_cosine_warm_up_as_long_as_the_run_is_refused():
    import torch

    from mnistctl.plugins import schedulers

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(UsageError, match=r"warmup_epochs=5 warms up for the whole run of 2 epochs") as info:
        schedulers().get("cosine").build(optimizer, 2, 10, warmup_epochs=5.0)
    assert info.value.hint == "choose warmup_epochs below 2, e.g. --sched-set warmup_epochs=0.2"
    schedulers().get("cosine").build(optimizer, 2, 10, warmup_epochs=1.5)


def test_a_one_cycle_with_few_steps_suggests_a_pct_start_within_the_range_it_gives():
    import torch

    from mnistctl.plugins import schedulers

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(UsageError) as info:
        schedulers().get("onecycle").build(optimizer, 1, 4)
    assert info.value.hint == "with 4 steps, only --sched-set pct_start=0.5 leaves 2 to each phase"
    with pytest.raises(UsageError, match=r"this run has 3 \(1 epoch of 3\)"):
        schedulers().get("onecycle").build(optimizer, 1, 3)


def test_a_one_cycle_too_short_to_warm_up_is_a_usage_error_and_writes_nothing(tmp_path, data_dir):
    with pytest.raises(UsageError, match="one-cycle needs at least 2 steps"):
        make(tmp_path, data_dir, scheduler="onecycle", epochs=1, limit=256).run()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_train_with_the_dashboard_prints_the_result_once_it_is_closed(tmp_path, data_dir, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.tui import app as dashboard

    def finish_then_quit(trainer):
        trainer.run()
        return 0

    monkeypatch.setattr(dashboard, "run_with_trainer", finish_then_quit)
    monkeypatch.setattr("mnistctl.cli.train._check_dashboard", lambda quiet: None)  # the runner's output is not a terminal
    result = CliRunner().invoke(app, ["train", "--arch", "lenet", "--epochs", "1", "--limit", "512", "--val-split", "500",
                                      "--tui", "--name", "dash", "--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    summary = runs.Run(tmp_path / "runs" / "dash").summary
    assert f"test accuracy {summary['test_acc']:.2%}" in result.stdout
    assert f"run saved in {tmp_path / 'runs' / 'dash'}" in result.stdout.replace("\n", "")


@pytest.mark.parametrize("args, tty, message", [
    (["--tui"], "", "--tui needs a terminal, but stdout is not one (run it in a terminal, or drop --tui and follow the run with mnistctl watch)"),
    (["--tui"], "1", "--tui needs a terminal, but stdin is not one (run it in a terminal, or drop --tui and follow the run with mnistctl watch)"),
    (["--tui", "--quiet"], "1", "--quiet hides the progress that --tui shows (drop one of them)"),
], ids=["stdout", "stdin", "quiet"])
def test_the_dashboard_without_a_terminal_or_with_quiet_is_refused_before_any_run(tmp_path, data_dir, args, tty, message):
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(MNISTCTL_DATA_DIR=str(data_dir), **({"TTY_COMPATIBLE": tty} if tty else {}))  # rich then takes stdout for a terminal
    command = [sys.executable, "-m", "mnistctl", "train", "--epochs", "1", "--limit", "512", "--runs-dir", str(tmp_path / "runs"), *args]
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)
    assert result.returncode == 2 and plain.splitlines() == [f"error: {message}"] and not result.stdout
    assert not (tmp_path / "runs").exists()


def test_a_run_stopped_mid_interval_logs_the_step_it_stopped_at_and_resumes(tmp_path, data_dir):
    from mnistctl.runs.reader import EventTail
    from mnistctl.tui.state import RunState

    observer = StopAt(2, 3)  # global step 11, between the step events of steps 8 and 12
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    run = runs.Run(trainer.run_dir)
    assert [(e["epoch"], e["step"]) for e in run.events("step")][-2:] == [(1, 8), (2, 11)]
    state = RunState(config=run.config)
    for event in EventTail(run.metrics_path).read().events:
        state.apply(event)
    assert (state.progress.epoch, state.progress.step_in_epoch, state.progress.step) == (1, 3, 11)
    assert run.last(Kind.END)["message"] == "stopped at epoch 2, step 3"
    assert Trainer.resume(run).run()["status"] == "finished"
    steps = [e for e in run.events("step") if e["step"] > 8]
    assert [e["step"] for e in steps] == [11, 12, 16] and all(e["images_per_s"] > 0 and e["loss"] > 0 for e in steps)


def test_the_epoch_logs_the_rate_its_last_step_used(tmp_path, data_dir):
    trainer = make(tmp_path, data_dir, epochs=3, optimizer="sgd", lr=0.1, scheduler="step", scheduler_options={"milestones": "1,2"})
    trainer.run()
    run = runs.Run(trainer.run_dir)
    assert [e["lr"] for e in run.epochs()] == [0.1, 0.01, 0.001]
    assert {e["step"]: e["lr"] for e in run.events("step")} == {4: 0.1, 8: 0.1, 12: 0.01, 16: 0.01, 20: 0.001, 24: 0.001}


class Shown(Observer):
    def __init__(self):
        self.shown = []

    def step(self, epoch, step, steps, loss, acc):
        self.shown.append((epoch, step, loss, acc))


def test_progress_shows_the_epochs_running_means_and_nothing_before_its_first_sync(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(trainer_module, "LIVE_FIGURES_EVERY", math.inf)
    observer = Shown()
    trainer = make(tmp_path, data_dir, observer)  # syncs every 4 steps, 8 to an epoch
    trainer.run()
    shown = {(epoch, step): (loss, acc) for epoch, step, loss, acc in observer.shown}
    epochs = runs.Run(trainer.run_dir).epochs()
    for epoch, event in zip((1, 2), epochs):
        assert [shown[epoch, step] for step in (1, 2, 3)] == [(None, None)] * 3
        assert None not in shown[epoch, 4] and shown[epoch, 4] == shown[epoch, 7]
        loss, acc = shown[epoch, 8]
        assert (loss, acc) == (pytest.approx(event["train_loss"], abs=1e-6), pytest.approx(event["train_acc"], abs=1e-6))


def test_an_epoch_shorter_than_the_log_interval_still_shows_running_figures(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(trainer_module, "LIVE_FIGURES_EVERY", 0.0)  # as if every step took longer than the wait
    observer = Shown()
    trainer = make(tmp_path, data_dir, observer, log_every=10_000)
    trainer.run()
    first = [(loss, acc) for epoch, step, loss, acc in observer.shown if epoch == 1]
    assert len(first) == 8 and all(loss is not None and acc is not None for loss, acc in first)
    assert first[-1] == (pytest.approx(runs.Run(trainer.run_dir).epochs()[0]["train_loss"], abs=1e-6),
                         pytest.approx(runs.Run(trainer.run_dir).epochs()[0]["train_acc"], abs=1e-6))


def test_the_progress_bar_shows_a_dash_until_there_are_figures(monkeypatch):
    import io

    from rich.console import Console

    from mnistctl.cli import progress

    monkeypatch.setattr(progress, "out", Console(file=io.StringIO(), force_terminal=True))
    bar = progress.RichProgress()
    bar.start({"epochs": 2, "steps_per_epoch": 8, "start_epoch": 0, "start_step": 0, "resumed": False, "dir": "x", "device": "cpu", "params": 1})

    def line(loss, acc):
        bar.step(1, 8, 8, loss, acc)
        screen = Console(file=io.StringIO(), width=150, color_system=None)
        screen.print(bar.progress.make_tasks_table(bar.progress.tasks))
        return screen.file.getvalue()

    try:
        assert "loss -  acc -" in line(None, None)
        assert "loss 0.0909  acc 96.94%" in line(0.0909, 0.9694)
    finally:
        bar.end({})


def test_until_an_epochs_first_sync_the_bar_shows_the_last_epochs_figures_dimmed(monkeypatch):
    import io

    from rich.console import Console

    from mnistctl.cli import progress

    monkeypatch.setattr(progress, "out", Console(file=io.StringIO(), force_terminal=True))
    bar = progress.RichProgress()
    bar.start({"epochs": 3, "steps_per_epoch": 8, "start_epoch": 0, "start_step": 0, "resumed": False, "dir": "x", "device": "cpu", "params": 1})
    epoch = {"val_loss": None, "val_acc": None, "lr": 0.1, "epoch_time": 1.0, "images_per_s": 8.0, "best": False}

    def line(styled: bool = False):
        screen = Console(file=io.StringIO(), width=150, force_terminal=True, color_system="standard")
        screen.print(bar.progress.make_tasks_table(bar.progress.tasks))
        shown = screen.file.getvalue()
        return shown if styled else re.sub(r"\x1b\[[0-9;]*m", "", shown)

    try:
        bar.step(1, 8, 8, None, None)  # an epoch shorter than the sync interval: no figures all through it
        assert "loss -  acc -" in line()
        bar.epoch({**epoch, "epoch": 1, "train_loss": 0.5123, "train_acc": 0.8765})
        assert "loss 0.5123  acc 87.65%" in line() and "\x1b[2m0.5123" in line(styled=True)
        bar.step(2, 3, 8, None, None)
        assert "loss 0.5123  acc 87.65%" in line() and "\x1b[2m0.5123" in line(styled=True)
        bar.step(2, 8, 8, 0.25, 0.9)  # the epoch's own, at its first sync
        assert "loss 0.2500  acc 90.00%" in line() and "\x1b[2m0.25" not in line(styled=True)
    finally:
        bar.end({})


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_progress_bar_fits_the_terminal_whole_and_leaves_room_for_the_echoed_ctrl_c(monkeypatch, width):
    import io

    from rich.console import Console

    from mnistctl.cli import progress

    monkeypatch.setattr(progress, "out", Console(file=io.StringIO(), force_terminal=True, width=width))
    bar = progress.RichProgress()
    bar.start({"epochs": 40, "steps_per_epoch": 430, "start_epoch": 0, "start_step": 0, "resumed": False, "dir": "x", "device": "cpu", "params": 1})
    try:
        bar.step(12, 207, 430, 1.0734, 0.6878)
        screen = Console(file=io.StringIO(), width=width, color_system=None)
        screen.print(*bar.progress.get_renderables())
        line = screen.file.getvalue().rstrip("\n")
    finally:
        bar.end({})
    assert "\n" not in line and len(line) <= width - 2  # a full line would wrap at the "^C" echoed on Ctrl-C, leaving the bar behind
    assert "…" not in line
    assert "epoch 12/40" in line and "207/430" in line and "loss 1.0734  acc 68.78%" in line and "eta" in line
    assert ("━" in line) == (width >= 80)


def test_the_progress_bar_is_hidden_after_the_last_epoch(monkeypatch):
    import io

    from rich.console import Console

    from mnistctl.cli import progress

    monkeypatch.setattr(progress, "out", Console(file=io.StringIO(), force_terminal=True))
    bar = progress.RichProgress()
    bar.start({"epochs": 2, "steps_per_epoch": 8, "start_epoch": 0, "start_step": 0, "resumed": False, "dir": "x", "device": "cpu", "params": 1})
    epoch = {"train_loss": 0.5, "train_acc": 0.9, "val_loss": None, "val_acc": None, "lr": 0.1, "epoch_time": 1.0, "images_per_s": 8.0, "best": False}
    try:
        bar.epoch({**epoch, "epoch": 1})
        assert bar.progress.tasks[0].visible and bar.progress.tasks[0].fields["epoch"] == 2
        bar.epoch({**epoch, "epoch": 2})
        assert not bar.progress.tasks[0].visible
    finally:
        bar.end({})


def test_a_stop_before_training_begins_leaves_no_stub_run(tmp_path, data_dir, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app, train
    from mnistctl.runs import writer

    def stopped(trainer):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "run_with_signals", stopped)  # Ctrl-C after the folder is claimed, before training
    args = ["train", "--arch", "lenet", "--epochs", "1", "--limit", "256", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs")]
    assert CliRunner().invoke(app, [*args, "--name", "gap"]).exit_code != 0
    monkeypatch.setattr(writer, "write_json", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))  # ... or while its config is written
    with pytest.raises(KeyboardInterrupt):
        Trainer(trainconfig.resolve({"arch": "lenet", "epochs": 1, "limit": 256, "name": "claim"}), None, tmp_path / "runs", data_dir).prepare()
    assert not any((tmp_path / "runs").iterdir())


def test_the_hint_for_a_finished_run_names_its_config_as_a_shell_word(short_run, tmp_path):
    run = runs.Run(shutil.copytree(short_run.path, tmp_path / "my runs" / "a run"))
    with pytest.raises(UsageError, match="already finished") as info:
        Trainer.resume(run)
    assert shlex.split(info.value.hint.split("--config ", 1)[1]) == [str(run.config_path)]


def test_a_run_recorded_before_monitor_and_ema_existed_resumes(tmp_path, data_dir):
    observer = StopAt(1, 3)
    trainer = observer.trainer = make(tmp_path, data_dir, observer)
    assert trainer.run()["status"] == "interrupted"
    run = runs.Run(trainer.run_dir)
    recorded = run.config
    for setting in ("monitor", "ema", "log_layers"):
        del recorded[setting]
    run.config_path.write_text(json.dumps(recorded))
    assert Trainer.resume(run).run()["status"] == "finished"


def stop_in_the_test_pass(monkeypatch, box: list) -> list:
    """predict_proba that requests a stop of ``box[0]`` once it has scored a chunk of test images; returns their counts."""
    from mnistctl.training import trainer as engine

    scored, predict = [], engine.predict_proba

    def score(model, images, *args, **kwargs):
        probs = predict(model, images, *args, **kwargs)
        if images.untyped_storage().data_ptr() == box[0].dataset.test_images.untyped_storage().data_ptr():
            scored.append(len(images))
            box[0].request_stop()
        return probs

    monkeypatch.setattr(engine, "predict_proba", score)
    return scored


def test_a_stop_in_the_test_pass_ends_it_and_keeps_the_run_complete(tmp_path, data_dir, monkeypatch):
    box = [make(tmp_path, data_dir, epochs=1)]
    scored = stop_in_the_test_pass(monkeypatch, box)
    summary = box[0].run()
    run = runs.Run(box[0].run_dir)
    assert len(scored) == 1 and scored[0] < len(box[0].dataset.test_images)  # one chunk of the test images, then it stopped
    assert summary["status"] == run.status() == Status.FINISHED and summary["test_acc"] is None and run.summary == summary
    assert not list(run.events(Kind.TEST)) and "mnistctl eval" in run.last(Kind.END)["message"]
    assert run.weights("best").is_file() and run.weights("last").is_file()
    with pytest.raises(UsageError, match="already finished"):
        Trainer.resume(run)


class StopAfterEpoch(Observer):
    def epoch(self, event):
        self.trainer.request_stop()


def test_a_stop_as_the_last_epoch_ends_leaves_the_run_complete_and_untested(tmp_path, data_dir):
    observer = StopAfterEpoch()
    trainer = observer.trainer = make(tmp_path, data_dir, observer, epochs=1)
    summary = trainer.run()
    run = runs.Run(trainer.run_dir)
    assert summary["status"] == run.status() == Status.FINISHED and summary["test_acc"] is None and trainer.test_stopped
    assert not list(run.events(Kind.TEST)) and [e["epoch"] for e in run.epochs()] == [1]


def test_ctrl_c_in_the_test_pass_exits_130_and_says_to_test_with_eval(tmp_path, data_dir, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app, train

    box = []
    stop_in_the_test_pass(monkeypatch, box)
    run_with_signals = train.run_with_signals
    monkeypatch.setattr(train, "run_with_signals", lambda trainer: run_with_signals(box.append(trainer) or trainer))
    runs_dir = tmp_path / "my runs"
    result = CliRunner().invoke(app, ["train", "--arch", "lenet", "--epochs", "1", "--limit", "512", "--val-split", "500", "--name", "t",
                                      "--runs-dir", str(runs_dir), "--data-dir", str(data_dir)])
    assert result.exit_code == 130, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"stopped in the test pass: training is complete and saved in {runs_dir / 't'}"
    assert lines[1].startswith("test it with: mnistctl eval ") and shlex.split(lines[1])[-1] == str(runs_dir / "t")
    assert "--resume" not in result.stderr and runs.Run(runs_dir / "t").status() == Status.FINISHED


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_a_run_folder_deleted_or_moved_while_training_is_not_made_again(tmp_path, data_dir, how):
    class TakeAway(Observer):
        def epoch(self, event):
            if event["epoch"] == 1:
                shutil.rmtree(trainer.run_dir) if how == "deleted" else trainer.run_dir.rename(tmp_path / "elsewhere")

    trainer = make(tmp_path, data_dir, TakeAway())
    with pytest.raises(RunError, match="was deleted or moved while it trained"):
        trainer.run()
    assert not trainer.run_dir.exists()
    if how == "moved":  # the moved run keeps what it had, and no event of the failure
        assert runs.Run(tmp_path / "elsewhere").epochs()[-1]["epoch"] == 1


def test_settings_beside_resume_are_named_as_typed_with_the_runs_config_to_start_from(tmp_path):
    (tmp_path / "my run").mkdir()
    (tmp_path / "my run" / "config.json").write_text("{}")
    result = run_mnistctl("train", "--resume", "my run", "--rotation", "5", "--log-layers-every", "10", "--runs-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr == (
        "error: --resume continues a run with its own settings, so --rotation, --log-layers-every would be ignored "
        f"(drop them, or start a new run from its settings: mnistctl train --config '{tmp_path}/my run/config.json' ...)\n"
    )
