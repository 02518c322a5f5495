"""The training engine: from a resolved config to a complete run directory, reporting events as it goes."""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from mnistctl import data, runs
from mnistctl.allocator import release_freed_memory
from mnistctl.cpus import KNOWS_AFFINITY, usable_cores
from mnistctl.errors import RunError, TrainingDiverged, UsageError
from mnistctl.models import build_model, loss_and_accuracy, predict_proba
from mnistctl.runs import Kind, Run, RunWriter, Status, checkpoint
from mnistctl.training import config as trainconfig
from mnistctl.training.averaging import WeightAverage
from mnistctl.training.distributed import World
from mnistctl.training.layerstats import LayerStats

DIVERGED = re.compile(r"the loss became \S+ at epoch (?P<epoch>\d+), step (?P<step>\d+)(, at a learning rate of (?P<lr>[^ ;]+))?")  # how a diverged run's end message begins
TEST_CHUNK = 1024  # test images between looks at a stop request: whole batches of predict_proba, so the same figures
LIVE_FIGURES_EVERY = 1.0  # seconds: between sparse log intervals, a sync this often keeps the bar's figures live


class Observer:
    """Receives the run's events as they are written; the default shows nothing."""

    def start(self, event: dict[str, Any]) -> None: ...

    def step(self, epoch: int, step: int, steps: int, loss: float | None, acc: float | None) -> None:
        """After each step: the epoch's running mean loss and accuracy as of the last sync, None before its first."""

    def epoch(self, event: dict[str, Any]) -> None: ...

    def end(self, summary: dict[str, Any]) -> None: ...


class Trainer:
    """One training run. ``prepare()`` claims the run directory, ``run()`` trains, ``request_stop()`` stops."""

    def __init__(self, config: dict[str, Any], observer: Observer | None = None, runs_dir=None, data_dir=None, command: str = "", resume: Run | None = None, ignore_data_mismatch: bool = False):
        self.config = dict(config)
        self.observer = observer or Observer()
        self.runs_dir = runs.runs_dir(runs_dir)
        self.data_dir = data_dir
        self.command = command
        self.target: Run | None = resume
        self.resuming = resume is not None
        self.ignore_data_mismatch = ignore_data_mismatch
        self.writer: RunWriter | None = None
        self.dataset = self.device = None
        self.train_x = self.train_y = self.val_x = self.val_y = None
        self.model = self.net = self.optimizer = self.scheduler = self.aug_rng = None
        self.average: WeightAverage | None = None
        self.world = World.detect()
        self.mean, self.std = 0.0, 1.0
        self.params = self.steps_per_epoch = 0
        self.epoch = self.step_in_epoch = self.global_step = self.bad_epochs = 0
        self.best = {"epoch": 0, "val_acc": -1.0, "val_loss": math.inf}
        self.elapsed = self.epoch_time = 0.0  # the run so far (validation and checkpoints too); the epoch's steps alone
        self._run_start: float | None = None  # set when training starts
        self.running = {"loss": 0.0, "correct": 0, "seen": 0}
        self._pending: list[tuple[Any, Any, int, float]] = []  # each step's loss, correct count, images and learning rate
        self._interval = {"start": 0.0, "loss": 0.0, "steps": 0}
        self._step_lr: float | None = None  # the rate the last step used
        self._saved_step: int | None = None
        self._lock = None
        self._stop = threading.Event()
        self._stop_status = Status.INTERRUPTED
        self.test_stopped = False  # a stop came in the test pass, after training completed

    @classmethod
    def resume(cls, run: Run, observer: Observer | None = None, data_dir=None, ignore_data_mismatch: bool = False, device: str | None = None) -> "Trainer":
        """``device``: continue on another device than the run's own (exact on the same kind of device)."""
        config = trainconfig.validate(run.config, run.config_path)
        if device is not None:
            config["device"] = device
        _check_recorded_data(run)
        World.detect().lock(run).release()  # refused at once while another process trains into it
        status = run.status(stalled_after=math.inf)
        if status.completed:
            done = "finished" if status == Status.FINISHED else "stopped early: its validation figure no longer improved"
            raise UsageError(f"run {run.name} has already {done}; there is nothing to resume", f"start a new run, e.g. with --config {shlex.quote(str(run.config_path))}")
        if status == Status.FAILED:
            _refuse_diverged(run)
        if not run.state_path.is_file():
            raise RunError(f"run {run.name} has no resume state", "it stopped before its first checkpoint; start a new run")
        return cls(config, observer, run.path.parent, data_dir, resume=run, ignore_data_mismatch=ignore_data_mismatch)

    @property
    def run_dir(self) -> Path | None:
        return self.target.path if self.target else None

    def request_stop(self, status: Status = Status.INTERRUPTED) -> None:
        """Stop after the current step: ``interrupted`` (resumable, the Ctrl-C path) or ``pruned``.
        An interrupt after the last epoch stops the test pass: training is complete."""
        self._stop_status = Status(status)
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def prepare(self) -> Path:
        """Check (bad input fails here), then claim the run directory, or lock the resumed one and load its state
        (a bad state fails here, leaving the run as it was)."""
        if self.model is not None:
            return self.run_dir
        self.check()
        if self.resuming:
            self._lock = self.world.lock(self.target)
            try:
                self._load_state()
            except BaseException:
                self._unlock()
                raise
        else:
            self.target = Run(self.world.share_text(self._claim))
            self.config["name"] = self.target.name
        return self.run_dir

    def check(self, on_cpu: bool = False) -> None:
        """Load the data and build the model and optimizer: what fails on bad input, before anything is written.
        A launcher checks so before it starts its workers, which would each fail the same way: ``on_cpu``,
        leaving the GPUs to them."""
        if self.resuming:
            self.dataset = self.target.dataset(self.data_dir, self.ignore_data_mismatch)
        else:
            self.dataset = data.load(self.data_dir)
        config = self.config
        self.device = self.world.pick_device("cpu" if on_cpu else config["device"])
        self.world.start(self.device)
        self.world.check_batch(config["batch_size"], resuming=self.resuming)
        n = self.dataset.n_train
        if not self.resuming and config["val_split"] >= n:
            raise UsageError(f"--val-split {config['val_split']:,} leaves no training images: the data set has {n:,}", f"choose --val-split {n - 1:,} or less")
        train_idx, val_idx = data.run_split(n, config)
        if not self.resuming:
            self.config = config = trainconfig.finish(config, self.dataset, self.device, len(train_idx), len(val_idx), self.command)
            if self.world.launched:
                config["distributed"] = self.world.describe(self.device)
        if config["batch_size"] > config["data"]["n_train"]:
            n = config["data"]["n_train"]
            raise UsageError(f"batch_size {config['batch_size']:,} is larger than the {n:,} training images", f"choose --batch-size {n:,} or less")
        self._build(train_idx, val_idx, warn=not on_cpu)

    def _claim(self) -> str:
        """Create the run directory, lock it and write its config (rank 0 only)."""
        self.target = Run(runs.create(self.runs_dir, self.config.get("name") or trainconfig.default_name(self.config)))
        try:
            self._lock = self.world.lock(self.target)
            RunWriter(self.target).config({**self.config, "name": self.target.name})
        except BaseException:
            self.abandon()
            raise
        return str(self.target.path)

    def abandon(self) -> None:
        """Remove the run directory this trainer claimed, if training never wrote an event in it
        (stopped between claiming it and starting): no stub is left to become the latest run."""
        if not self.resuming and self.world.is_main and self.target is not None and not self.target.metrics_path.exists():
            self._unlock()
            shutil.rmtree(self.target.path, ignore_errors=True)

    def _build(self, train_idx, val_idx, warn: bool = True) -> None:
        """``warn``: show what the run's settings do not do (not again in a launcher's check before its workers)."""
        import torch

        from mnistctl.plugins import spec_of

        config = self.config
        if "OMP_NUM_THREADS" not in os.environ and KNOWS_AFFINITY:  # elsewhere torch's own count stands
            torch.set_num_threads(usable_cores())
        torch.manual_seed(config["seed"])
        ds = self.dataset
        self.train_x = ds.train_images[train_idx].to(self.device)
        self.train_y = ds.train_labels[train_idx].to(self.device)
        self.val_x, self.val_y = ds.train_images[val_idx], ds.train_labels[val_idx]
        self.mean, self.std = config["data"]["mean"], config["data"]["std"]
        self.steps_per_epoch = self.world.steps(len(self.train_x), config["batch_size"])
        self.model = fitting_model(config).to(self.device)
        if config["channels_last"]:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.params = sum(p.numel() for p in self.model.parameters())
        optimizer, scheduler = spec_of(config, "optimizer"), spec_of(config, "scheduler")
        self.optimizer = optimizer.build(self.model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], **config["optimizer_options"])
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise optimizer.wrong_result(self.optimizer, "a torch.optim.Optimizer")
        if warn and self.world.is_main and (ignored := _ignored_rates(self.optimizer, config)):
            from mnistctl.console import warn as show

            show(f"{optimizer.label} {ignored}")
        self.scheduler = scheduler.build(self.optimizer, config["epochs"], self.steps_per_epoch, **config["scheduler_options"])
        if not all(callable(getattr(self.scheduler, method, None)) for method in ("step", "state_dict", "load_state_dict")):  # training and resuming call them
            raise scheduler.wrong_result(self.scheduler, "a scheduler with step(), state_dict() and load_state_dict()")
        if needed := _required_arguments(self.scheduler.step):
            raise UsageError(
                f"{scheduler.label} built {type(self.scheduler).__name__}, whose step() needs {', '.join(needed)}: "
                "mnistctl calls step() once per batch with no arguments",
                scheduler._elsewhere,
            )
        self.aug_rng = torch.Generator().manual_seed(config["seed"] + 1)
        self.average = WeightAverage(self.model, config["ema"]) if config.get("ema") else None
        self.world.reseed(config["seed"], 0, self.aug_rng)
        self.net = self.world.wrap(self.model)

    @property
    def kept_model(self):
        """The weights validated and saved as best and last: the model's average with --ema, else the model."""
        return self.average.module if self.average else self.model

    def run(self) -> dict[str, Any]:
        try:
            self.prepare()
        except BaseException:
            self.abandon()
            raise
        self.writer = self.world.writer(self.target)
        try:
            if not self.resuming:
                self.writer.weights("initial", self.model)
            return self._train()
        except TrainingDiverged as exc:
            self._finish(Status.FAILED, message=exc.message, step=exc.step, at_once=True)
            raise
        except (KeyboardInterrupt, SystemExit) as exc:  # a second Ctrl-C, or its output pipe closed: resumable
            self._finish(Status.INTERRUPTED, message=f"stopped at once ({type(exc).__name__}); resume continues from the last checkpoint", at_once=True)
            raise
        except BaseException as exc:
            self._finish(Status.FAILED, message=f"{type(exc).__name__}: {exc}", at_once=True)
            raise
        finally:
            self.writer.close()
            self.world.close()
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _train(self) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        config, model = self.config, self.net
        augment = config["augment"]
        bf16 = config["precision"] == "bf16"
        batch_size = self.world.local_batch(config["batch_size"])
        start = self.writer.event(
            Kind.START, run=self.target.name, dir=str(self.run_dir), epochs=config["epochs"], steps_per_epoch=self.steps_per_epoch,
            start_epoch=self.epoch, start_step=self.step_in_epoch, resumed=self.resuming, device=str(self.device), params=self.params,
            world_size=self.world.size,
        )
        self.observer.start(start)
        layer_stats = LayerStats(self.model, config.get("log_layers"), self.writer, last=config["epochs"] * self.steps_per_epoch)
        self._interval["start"] += time.perf_counter()  # was minus the seconds a resumed interval ran before
        self._run_start = time.perf_counter() - self.elapsed  # a resumed run counts its time before, not the time it lay idle
        status = Status.FINISHED
        group = self.optimizer.param_groups[0]
        while self.epoch < config["epochs"]:
            loss_value, acc = self._sync()
            synced = time.perf_counter()
            epoch_start = synced - self.epoch_time  # a resumed epoch counts its time before the interruption
            model.train()
            order = self.world.shard(torch.randperm(len(self.train_x), generator=torch.Generator().manual_seed(config["seed"] * 100_003 + self.epoch)))
            while self.step_in_epoch < self.steps_per_epoch:
                idx = order[self.step_in_epoch * batch_size : (self.step_in_epoch + 1) * batch_size].to(self.device)
                x = data.normalize(self.train_x[idx], self.mean, self.std)
                if augment:
                    x = data.augment(x, generator=self.aug_rng, **augment)
                if config["channels_last"]:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = self.train_y[idx]
                layer_stats.begin(self.global_step + 1, self.epoch + 1)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                layer_stats.before_step()
                self.optimizer.step()
                layer_stats.after_step()
                if self.average:
                    self.average.update(self.global_step)
                self._step_lr = group["lr"]
                self.scheduler.step()
                self.step_in_epoch += 1
                self.global_step += 1
                self._pending.append((loss.detach(), (logits.detach().argmax(1) == y).sum(), len(idx), self._step_lr))
                if self.global_step % config["log_every"] == 0:
                    loss_value, acc = self._sync()
                    self._log_interval()
                    synced = time.perf_counter()
                elif time.perf_counter() - synced > LIVE_FIGURES_EVERY:
                    loss_value, acc = self._sync()
                    synced = time.perf_counter()
                self.observer.step(self.epoch + 1, self.step_in_epoch, self.steps_per_epoch, loss_value, acc)
                if self._stopping():
                    self._sync()
                    if self._interval["steps"]:
                        self._log_interval()  # the step it stopped at, for every reader of the events
                    self._clock(epoch_start)
                    self._save_last()
                    return self._finish(self._stop_status, message=f"stopped at epoch {self.epoch + 1}, step {self.step_in_epoch}")
            self._sync()
            self._clock(epoch_start)
            if self._end_epoch():
                status = Status.EARLY_STOPPED
                break
            if self._stopping():
                if self.epoch == config["epochs"] and self._stop_status == Status.INTERRUPTED:
                    break  # training is complete: the stop ends the test pass instead
                self._save_last()
                return self._finish(self._stop_status, message=f"stopped after epoch {self.epoch}")
        self._save_last()
        return self._finish(status)

    def _clock(self, epoch_start: float | None = None) -> None:
        """Bring the run's time, and the epoch's unless it has ended, up to now."""
        now = time.perf_counter()
        self.elapsed = now - self._run_start
        if epoch_start is not None:
            self.epoch_time = now - epoch_start

    def _stopping(self) -> bool:
        """A stop requested on any rank, agreed by all of them at the same step."""
        return self.world.any(self._stop.is_set())

    def _sync(self) -> tuple[float | None, float | None]:
        """One host sync for the steps since the last: the divergence guard, the running totals and their means.

        Steps queue their loss and correct count on the device, so the loop never waits for them;
        a non-finite loss still stops the run, naming its step, before anything more is saved.
        """
        import torch

        if self._pending:
            losses = torch.stack([p[0] for p in self._pending]).tolist()
            corrects = torch.stack([p[1] for p in self._pending]).tolist()
            first_step = self.step_in_epoch - len(self._pending)
            for i, (loss, correct, (_, _, n, lr)) in enumerate(zip(losses, corrects, self._pending)):
                if not math.isfinite(loss):
                    step = self.global_step - len(self._pending) + i + 1
                    self._pending = []
                    rate, hint = self._diverged_at(lr)
                    raise TrainingDiverged(f"the loss became {loss} at epoch {self.epoch + 1}, step {first_step + i + 1}, {rate}; {self._kept()}", hint, step=step)
                self.running["loss"] += loss * n
                self.running["correct"] += int(correct)
                self.running["seen"] += n
            self._interval["loss"] += sum(losses)
            self._interval["steps"] += len(losses)
            self._pending = []
        seen = self.running["seen"]
        return (self.running["loss"] / seen, self.running["correct"] / seen) if seen else (None, None)

    def _log_interval(self) -> None:
        """A step event: the loss averaged over the interval and the ranks, the global images/s."""
        interval, now = self._interval, time.perf_counter()
        self.writer.event(
            Kind.STEP, epoch=self.epoch + 1, step=self.global_step, loss=self.world.mean(interval["loss"] / interval["steps"]),
            lr=self._lr(), images_per_s=round(interval["steps"] * self.config["batch_size"] / (now - interval["start"]), 1),
        )
        self._interval = {"start": now, "loss": 0.0, "steps": 0}

    def _diverged_at(self, lr: float) -> tuple[str, str]:
        """The learning rate a diverging step used, in words, and what to change: the scheduler's settings if it raised the rate."""
        from mnistctl.plugins import spec_of
        from mnistctl.registry import format_value

        configured, scheduler = self.config["lr"], self.config["scheduler"]
        lower = f"lower the learning rate, --lr {configured:g}, and start a new run"
        if math.isclose(lr, configured, rel_tol=1e-6):
            return f"at a learning rate of {lr:g}", lower
        rate = f"at a learning rate of {lr:g} (the {scheduler} scheduler's, from --lr {configured:g})"
        if lr < configured:
            return rate, lower
        defaults = spec_of(self.config, "scheduler").defaults
        options = self.config["scheduler_options"]
        changed = {key: value for key, value in options.items() if value != defaults.get(key)} or options
        settings = " ".join(f"--sched-set {key}={format_value(value)}" for key, value in changed.items())
        return rate, f"the {scheduler} scheduler raised it: start a new run with other settings than {settings or 'its own'}, or another scheduler"

    def _kept(self) -> str:
        """What a diverged run leaves on disk to go back to."""
        if self.target.weights_path("last").is_file():
            return "the last checkpoint on disk is from before it diverged"
        if self.target.weights_path("best").is_file():
            return "the best checkpoint on disk is from before it diverged"
        if self.target.weights_path("initial").is_file():
            return "no checkpoint was written yet: it diverged in the first epoch, so only the initial weights are on disk"
        return "no weights were written yet"

    def _end_epoch(self) -> bool:
        """Validate, keep the best weights, log the epoch; True when early stopping says stop."""
        self.running = self.world.total(self.running)
        config, seen = self.config, max(1, self.running["seen"])
        val_loss = val_acc = None
        if len(self.val_x):
            val_loss, val_acc = self.world.from_main(lambda: loss_and_accuracy(predict_proba(self.kept_model, self.val_x, self.mean, self.std), self.val_y), 2)
        improved = improves(self.best, val_acc, val_loss, config["monitor"])
        self.epoch += 1
        if improved:
            self.best = {"epoch": self.epoch, "val_acc": val_acc if val_acc is not None else -1.0, "val_loss": val_loss if val_loss is not None else math.inf}
            self.bad_epochs = 0
            self.writer.weights("best", self.kept_model, {"epoch": self.epoch, "val_acc": val_acc})
        else:
            self.bad_epochs += 1
        self._clock()  # the epoch's event counts its validation, so watch's clock runs on from it
        event = self.writer.event(
            Kind.EPOCH, epoch=self.epoch, train_loss=self.running["loss"] / seen, train_acc=self.running["correct"] / seen,
            val_loss=val_loss, val_acc=val_acc, lr=self._lr(), epoch_time=round(self.epoch_time, 3),
            elapsed=round(self.elapsed, 3), images_per_s=round(self.running["seen"] / self.epoch_time, 1), best=improved,
        )
        if improved:
            self.writer.event(Kind.CHECKPOINT, epoch=self.epoch, kind="best", val_acc=val_acc, val_loss=val_loss)
        self.step_in_epoch, self.epoch_time = 0, 0.0
        self.running = {"loss": 0.0, "correct": 0, "seen": 0}
        stop = bool(config["early_stopping"]) and self.bad_epochs >= config["early_stopping"]
        if self.epoch % config["checkpoint_every"] == 0 or stop or self.epoch == config["epochs"]:
            self._save_last()
        self.observer.epoch(event)
        release_freed_memory()
        if stop:
            self.writer.event(Kind.EARLY_STOP, epoch=self.epoch, patience=config["early_stopping"], best_epoch=self.best["epoch"])
        return stop

    def _lr(self) -> float:
        """The rate the last step used: the scheduler has already moved the optimizer's on."""
        lr = self.optimizer.param_groups[0]["lr"] if self._step_lr is None else self._step_lr
        return float(f"{lr:.6g}")

    def _save_last(self) -> None:
        """The last weights and the resume state, once per step."""
        import torch

        if self._saved_step == self.global_step:
            return
        self._saved_step = self.global_step
        interval = {"loss": self.world.mean(self._interval["loss"]), "steps": self._interval["steps"], "seconds": time.perf_counter() - self._interval["start"]}
        self.writer.weights("last", self.kept_model, {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch})
        rng = {"torch": torch.get_rng_state(), "aug": self.aug_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        self.writer.state({
            "model": self.model.state_dict(),
            **({"average": self.average.module.state_dict()} if self.average else {}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "elapsed": self.elapsed,
            "epoch_time": self.epoch_time,
            "running": self.world.total(self.running),
            "interval": interval,
            "step_lr": self._step_lr,
            **({} if self.world.launched else {"threads": torch.get_num_threads()}),
        })
        self.writer.event(Kind.CHECKPOINT, epoch=self.epoch, kind="last", val_acc=None)

    def _load_state(self) -> None:
        """Continue from the resume state; a state that does not fit this run is a RunError naming the file."""
        import torch

        path = self.target.state_path
        try:
            try:
                state = checkpoint.load_state(path)
            except RunError as exc:  # damaged: --resume has no other state to take
                raise exc if isinstance(exc.__context__, PermissionError) else RunError(exc.message, self._no_resume_hint()) from None
            if problem := self._state_problem(state):
                raise self._not_a_state(problem)
            self.model.load_state_dict(state["model"])
            if self.average:
                self.average.module.load_state_dict(state["average"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"]["torch"])
            self.aug_rng.set_state(state["rng"]["aug"])
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
            for key in ("epoch", "step_in_epoch", "global_step", "best", "bad_epochs", "elapsed"):
                setattr(self, key, state[key])
            self.step_in_epoch = min(self.step_in_epoch, self.steps_per_epoch)  # an epoch done on fewer processes, which leave out none of its images
            self.running = self.world.own_share(state["running"])
            interval = state.get("interval", {"loss": 0.0, "steps": 0, "seconds": 0.0})  # absent in states of older versions
            self._interval = {"start": -interval["seconds"], "loss": interval["loss"], "steps": interval["steps"]}
            self.epoch_time = state.get("epoch_time", 0.0)
            self._step_lr = state.get("step_lr")
            threads = state.get("threads")  # absent in states of older versions and of several processes
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise self._not_a_state(f"{type(exc).__name__}: {_first_line(exc)}") from None
        self._saved_step = self.global_step
        self.world.reseed(self.config["seed"], self.global_step, self.aug_rng)
        self._train_on_threads(threads)

    def _train_on_threads(self, threads: Any) -> None:
        """Continue on as many CPU threads as the run trained on: their number changes how sums are split,
        so the weights. Said when it cannot be (OMP_NUM_THREADS set otherwise, fewer cores)."""
        import torch

        have = torch.get_num_threads()
        if type(threads) is not int or threads < 1 or threads == have or self.device.type != "cpu" or self.world.launched:
            return
        if "OMP_NUM_THREADS" not in os.environ and threads <= usable_cores():
            torch.set_num_threads(threads)
            return
        from mnistctl.console import warn

        pinned = os.environ.get("OMP_NUM_THREADS")
        why, fix = (f"OMP_NUM_THREADS={pinned}", "unset OMP_NUM_THREADS") if pinned is not None else (f"{usable_cores()} usable cores", f"resume it where it has {threads} cores")
        warn(f"run {self.target.name} trained on {threads} CPU threads and continues on {have} ({why}), so not bit for bit as without the stop; {fix} for an exact resume")

    def _not_a_state(self, why: str) -> RunError:
        return RunError(f"{self.target.state_path} is not a resume state of run {self.target.name} ({why})", f"it is damaged or from another run; {self._no_resume_hint()}")

    def _no_resume_hint(self) -> str:
        """What is left to do with a run whose resume state is lost: a new run from its settings, and its best weights if they are intact."""
        run = self.target
        hint = f"start a new run from its settings: mnistctl train --config {shlex.quote(str(run.config_path))}"
        try:
            checkpoint.read(run.weights_path("best"))
        except RunError:
            return hint
        return f"{hint}; its best weights still work: mnistctl eval {shlex.quote(str(run.path))}, or export"

    def _state_problem(self, state: dict[str, Any]) -> str | None:
        """What a resume state's counters and times hold that this run cannot have reached, or None.
        Each range comes from the values checked before it."""
        from mnistctl.runs.events import MAX_STEPS  # a bound for totals

        def count(name: str, value: Any, low: int, high: int) -> str | None:
            return None if type(value) is int and low <= value <= high else f"{name} = {value!r}, not a whole number from {low:,} to {high:,}"

        def amount(name: str, value: Any, high: float = math.inf) -> str | None:
            if type(value) in (int, float) and 0 <= value <= high and math.isfinite(value):
                return None
            return f"{name} = {value!r}, not a {'finite number of 0 or more' if high == math.inf else f'number from 0 to {high:g}'}"

        epoch, step, best, running = state["epoch"], state["step_in_epoch"], state["best"], state["running"]
        interval = state.get("interval", {"loss": 0.0, "steps": 0, "seconds": 0.0})
        most = math.ceil(len(self.train_x) / self.config["batch_size"])  # steps of an epoch on one process; on more, at most one fewer
        return (
            count("epoch", epoch, 0, self.config["epochs"])
            or count("step_in_epoch", step, 0, most)
            or count("global_step", state["global_step"], epoch * (most - 1) + step, epoch * most + step)
            or count("bad_epochs", state["bad_epochs"], 0, epoch)
            or count("best.epoch", best["epoch"], 0, epoch)
            or count("running.seen", running["seen"], 1 if step else 0, MAX_STEPS if step else 0)  # the totals of this epoch's steps
            or count("running.correct", running["correct"], 0, running["seen"])
            or count("interval.steps", interval["steps"], 0, state["global_step"])
            or amount("elapsed", state["elapsed"]) or amount("epoch_time", state.get("epoch_time", 0.0))
            or amount("running.loss", running["loss"]) or amount("interval.loss", interval["loss"]) or amount("interval.seconds", interval["seconds"])
            or (None if best["val_acc"] == -1 else amount("best.val_acc", best["val_acc"], high=1))  # -1 and infinity: no epoch validated yet
            or (None if best["val_loss"] == math.inf else amount("best.val_loss", best["val_loss"]))
            or (None if state.get("step_lr") is None else amount("step_lr", state["step_lr"]))
        )

    def _finish(self, status: Status, message: str = "", step: int | None = None, at_once: bool = False) -> dict[str, Any]:
        """The summary and the end event; ``at_once`` for a run stopped by an exception, its time counted up to now."""
        if at_once and self._run_start is not None:
            self._clock()
        step = self.global_step if step is None else step
        summary = {
            "status": str(status),
            "test_acc": None,
            "test_loss": None,
            "best_epoch": self.best["epoch"] or None,
            "best_val_acc": self.best["val_acc"] if self.best["val_acc"] >= 0 else None,
            "epochs_run": self.epoch,
            "wall_time": round(self.elapsed, 3),
            "images_per_s": round(step * self.config["batch_size"] / self.elapsed, 1) if self.elapsed else None,
            "params": self.params,
        }
        if status.completed and self.world.is_main:
            summary.update(self._test())
            if self.test_stopped:
                message = "stopped in the test pass: training is complete; mnistctl eval gives the test figures"
        self.writer.summary(summary)
        tested = {k: summary[k] for k in ("test_acc", "test_loss") if summary[k] is not None}
        self.writer.event(Kind.END, status=str(status), message=message, step=step, **tested)
        self.observer.end(summary)
        return summary

    def _test(self) -> dict[str, Any]:
        """Test the best checkpoint: reported, never used for a choice. A stop request ends it between chunks,
        untested ({}): training is complete, ``eval`` tests it later."""
        import torch

        tensors, _ = checkpoint.load(self.target.weights_path("best"))
        self.model.load_state_dict(tensors)
        images, chunks = self.dataset.test_images, []
        for start in range(0, len(images), TEST_CHUNK):
            if self._stop.is_set():
                self.test_stopped = True
                return {}
            chunks.append(predict_proba(self.model, images[start : start + TEST_CHUNK], self.mean, self.std))
        test_loss, test_acc = loss_and_accuracy(torch.cat(chunks), self.dataset.test_labels)
        self.writer.event(Kind.TEST, checkpoint="best", epoch=self.best["epoch"], test_loss=test_loss, test_acc=test_acc)
        return {"test_acc": test_acc, "test_loss": test_loss}


def _refuse_diverged(run: Run) -> None:
    """A run that diverged would diverge again at the same step if resumed: training is deterministic."""
    end = run.last(Kind.END) or {}
    where = DIVERGED.match(str(end.get("message", "")))
    if where is None:
        return
    kept = f"; mnistctl eval {shlex.quote(str(run.path))} tests its best weights" if run.weights_path("best").is_file() else ""
    raised = where["lr"] is not None and float(where["lr"]) > run.config.get("lr", math.inf) * (1 + 1e-6)
    change = "its scheduler raised the learning rate: start a new run with other scheduler settings" if raised else "start a new run with a lower learning rate"
    raise UsageError(
        f"run {run.name} diverged at epoch {where['epoch']}, step {where['step']}: resuming would repeat it, as training is deterministic",
        f"{change}, e.g. mnistctl train --config {shlex.quote(str(run.config_path))} {'--sched-set' if raised else '--lr'} ...{kept}",
    )


def _check_recorded_data(run: Run) -> None:
    """What a resumed run reads from the data its config.json recorded: its normalization and its number of training images."""
    data = run.config.get("data")
    if not isinstance(data, dict):
        raise RunError(f"{run.config_path} records no data table (mean, std, n_train)", "the run directory is damaged")
    run.normalization  # raises for a damaged mean or std
    n_train = data.get("n_train")
    if n_train is not None and (type(n_train) is not int or n_train < 1):
        raise RunError(f"{run.config_path}: data.n_train = {n_train!r} is not a whole number of 1 or more", "the run directory is damaged")


def fitting_model(config: dict[str, Any], classes: int = 10):  # MNIST's ten digits
    """The untrained model, tried on two blank 28x28 images: options that build a model that cannot run on them,
    or that gives anything but one score per class for each image, are bad input. The images run through it
    as training will, under bf16 autocast when the run's precision is bf16; the first run materializes lazy layers.

    Warnings of building are shown only for a model that fits.
    """
    import torch

    from mnistctl.plugins import spec_of
    from mnistctl.registry import BUILTIN, debug_cause, format_value

    spec = spec_of(config, "arch")
    defaults = spec.defaults
    options = ", ".join(f"{k}={format_value(v)}" for k, v in config["arch_options"].items() if format_value(v) != format_value(defaults.get(k)))
    label = f"{spec.label}{' with ' + options if options else ''}"

    def without_weights(model) -> None:
        # a width of 0; not inputs a kernel left none of. A lazy layer has no shape before the model first runs.
        empty = [name for name, p in model.named_parameters() if not torch.nn.parameter.is_lazy(p) and p.dim() and p.shape[0] == 0]
        if empty:
            raise UsageError(f"{label} has a layer without weights ({empty[0]})", "give every width and channel count 1 or more")

    def scores_of(model, bf16: bool):
        with torch.no_grad(), torch.random.fork_rng(devices=[]), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model.eval()(torch.zeros(2, 1, 28, 28))

    def failed(exc: Exception, bf16_only: bool = False) -> UsageError:
        plain = isinstance(exc, (RuntimeError, ValueError))  # a shape that does not fit: the usual cause
        reason = _first_line(exc) if plain or not str(exc).strip() else f"{type(exc).__name__}: {_first_line(exc)}"
        if bf16_only:
            return UsageError(f"{label} fails under bf16 precision: {reason}", "train it with --precision fp32")
        return UsageError(
            f"{label} does not fit 28x28 images: {reason}",
            "choose smaller kernels or fewer blocks" if plain else "it failed on two blank images; MNISTCTL_DEBUG=1 shows where",
        )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model(config)
        without_weights(model)
        try:
            scores = scores_of(model, bf16=False)
        except Exception as exc:
            without_weights(model)  # a lazy layer made without weights fails in its first run
            raise failed(exc) from debug_cause(exc)
        without_weights(model)
        if config.get("precision") == "bf16":
            try:
                scores_of(model, bf16=True)
            except Exception as exc:
                raise failed(exc, bf16_only=True) from debug_cause(exc)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (2, classes):
        got = f"a tensor of shape {tuple(scores.shape)}" if isinstance(scores, torch.Tensor) else f"a value of type {type(scores).__name__}"
        changed = "num_classes" in config["arch_options"] and config["arch_options"]["num_classes"] != classes
        raise UsageError(
            f"{label} gives {got} for 2 images, not scores of shape (2, {classes})",
            f"set num_classes={classes}" if changed else f"an architecture gives a score for each of the {classes} digits, a tensor of batch x {classes}"
            + (f"; report it to the authors of {spec.source}" if spec.source != BUILTIN else ""),
        )
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model.train()


def _ignored_rates(optimizer, config: dict[str, Any]) -> str:
    """How the optimizer a factory built disregards --lr or --weight-decay ("" when it does not): no parameter group
    holds the configured value (a group of its own, such as biases without weight decay, is no sign)."""
    ignored = []
    for key, flag in (("weight_decay", "--weight-decay"), ("lr", "--lr")):
        held = [float(group[key]) for group in optimizer.param_groups if key in group]
        want = float(config[key])
        if held and not any(math.isclose(value, want, rel_tol=1e-6, abs_tol=0.0) for value in held):
            have = ", ".join(dict.fromkeys(f"{value:g}" for value in held))
            ignored.append(f"ignores {flag} {want:g} (its parameter groups have {have})")
    return "; it ".join(ignored)


def _required_arguments(method) -> list[str]:
    """The parameters ``method`` cannot be called without."""
    import inspect

    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # no signature to read, as of some builtins: assumed callable as it is
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def improves(best: dict[str, Any], val_acc: float | None, val_loss: float | None, monitor: str) -> bool:
    """Whether this epoch's validation beats the best so far on ``monitor`` (the other value breaks ties)."""
    if val_acc is None:
        return True
    if monitor == "val_loss":
        return val_loss < best["val_loss"] or (val_loss == best["val_loss"] and val_acc > best["val_acc"])
    return val_acc > best["val_acc"] or (val_acc == best["val_acc"] and val_loss < best["val_loss"])

