"""Distributed training on torch.distributed: who this process is, its process group and device, DDP,
sharding, reductions across ranks, and the launcher behind ``train --nproc``.

A worker started by torchrun or ``mnistctl train --nproc N`` finds RANK, WORLD_SIZE and LOCAL_RANK in its
environment. Without them the world has one process and every helper here is a no-op.
"""

from __future__ import annotations

import math
import os
import sys
from datetime import timedelta
from typing import Any, Callable

from mnistctl.cpus import usable_cores
from mnistctl.errors import RunError, UsageError
from mnistctl.models import pick_device
from mnistctl.runs import Run, RunWriter
from mnistctl.runs.writer import RunLock

TIMEOUT_ENV = "MNISTCTL_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds a collective may wait for a silent rank before the run fails
SEED_STRIDE = 1_000_003  # ranks above 0 draw dropout and augmentation from seed + rank * stride + step
WORKER_MIB = 384  # the least memory a worker takes: 405-450 MiB each measured (lenet, 4 to 32 workers; torch alone 280)
USUAL_WORKER_MIB = 450  # what a worker usually takes: the count to suggest


class SilentWriter(RunWriter):
    """The writer of ranks above 0: events come back as records, nothing reaches the disk."""

    def config(self, config: dict[str, Any]) -> None: ...

    def event(self, kind, /, **fields: Any) -> dict[str, Any]:
        return {"event": str(kind), **fields}

    def summary(self, summary: dict[str, Any]) -> None: ...

    def weights(self, which: str, model, meta: dict[str, Any] | None = None) -> None: ...

    def state(self, state: dict[str, Any]) -> None: ...


class World:
    """This process's place among the training processes; a world of one unless launched."""

    def __init__(self, rank: int = 0, size: int = 1, local_rank: int = 0, local_size: int = 1):
        self.rank, self.size, self.local_rank, self.local_size = rank, size, local_rank, local_size
        self.device = None

    @classmethod
    def detect(cls) -> "World":
        env = os.environ
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return cls()
        size = int(env["WORLD_SIZE"])
        return cls(int(env["RANK"]), size, int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", size)))

    @property
    def launched(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # setup
    def pick_device(self, requested: str):
        """The device for this rank: one GPU per process (cuda:LOCAL_RANK), else the CPU."""
        import torch

        device = pick_device(requested)
        if not self.launched:
            return device
        refuse_unshared(device, self.local_size)
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def backend(self, device) -> str:
        return "nccl" if device.type == "cuda" else "gloo"

    def start(self, device) -> None:
        """Join the process group (once); a collective that waits longer than the timeout fails the run."""
        import torch.distributed as dist

        self.device = device
        if not self.launched or dist.is_initialized():
            return
        timeout = timedelta(seconds=collective_timeout())
        dist.init_process_group(self.backend(device), timeout=timeout, device_id=device if device.type == "cuda" else None)

    def close(self) -> None:
        import torch.distributed as dist

        if self.launched and dist.is_initialized():
            dist.destroy_process_group()

    def describe(self, device) -> dict[str, Any] | None:
        """What config.json records about the world, or None for one process."""
        return {"world_size": self.size, "backend": self.backend(device)} if self.launched else None

    def writer(self, run: Run) -> RunWriter:
        return RunWriter(run) if self.is_main else SilentWriter(run)

    def lock(self, run: Run) -> RunLock:
        """The run's lock, taken by rank 0, the one process that writes the run."""
        lock = RunLock(run)
        return lock.acquire() if self.is_main else lock

    def wrap(self, model):
        """The model under DistributedDataParallel; checkpoints keep using the bare model (no ``module.`` prefix)."""
        if not self.launched:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)

    def reseed(self, seed: int, step: int, aug_rng) -> None:
        """Ranks above 0 get their own dropout and augmentation streams, derived from the seed, rank and step."""
        if self.rank == 0:
            return
        import torch

        derived = seed + SEED_STRIDE * self.rank + step
        torch.manual_seed(derived)
        aug_rng.manual_seed(derived + 1)

    # sharding
    def check_batch(self, batch_size: int, size: int | None = None, resuming: bool = False) -> None:
        size = size or self.size
        if batch_size % size:
            hint = f"resume it on a number of processes that divides {batch_size}" if resuming else f"pass a --batch-size that is a multiple of {size}"
            raise UsageError(f"the batch size {batch_size} does not split evenly across {size} processes", hint)

    def local_batch(self, batch_size: int) -> int:
        """``--batch-size`` is the global batch: each rank takes its share."""
        return batch_size // self.size

    def steps(self, n: int, batch_size: int) -> int:
        """Steps per epoch over the images :meth:`shard` hands out (the same on every rank)."""
        return math.ceil((n - n % self.size) / batch_size)

    def shard(self, order):
        """This rank's part of the epoch's permutation: every size-th index from its rank on.

        Local batch k of every rank together is exactly global batch k of one process; the last
        ``n % size`` images of the permutation are left out so every rank takes as many steps.
        """
        if not self.launched:
            return order
        return order[self.rank : len(order) - len(order) % self.size : self.size]

    # reductions
    def total(self, counts: dict[str, float]) -> dict[str, float]:
        """Sums over ranks of a dict of numbers (kept as ints where they were ints)."""
        if not self.launched:
            return counts
        summed = self._all_reduce([float(v) for v in counts.values()], "sum")
        return {k: type(v)(s) for (k, v), s in zip(counts.items(), summed)}

    def own_share(self, counts: dict[str, float]) -> dict[str, float]:
        """Restored totals stay with rank 0 so that :meth:`total` does not count them twice."""
        return counts if self.is_main else {k: type(v)(0) for k, v in counts.items()}

    def mean(self, value: float) -> float:
        return self._all_reduce([value], "sum")[0] / self.size if self.launched else value

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: how a stop request reaches all ranks at the same step."""
        return bool(self._all_reduce([float(flag)], "max")[0]) if self.launched else flag

    def from_main(self, compute: Callable[[], tuple[float, ...]], n: int) -> tuple[float, ...]:
        """Rank 0 computes ``n`` numbers, every rank receives them: validation runs once."""
        if not self.launched:
            return compute()
        import torch
        import torch.distributed as dist

        values = torch.tensor(compute() if self.is_main else [0.0] * n, dtype=torch.float64, device=self.device)
        dist.broadcast(values, 0)
        return tuple(values.tolist())

    def share_text(self, make: Callable[[], str]) -> str:
        """Rank 0 makes a string (e.g. claims the run directory), every rank receives it."""
        if not self.launched:
            return make()
        import torch
        import torch.distributed as dist

        raw = make().encode() if self.is_main else b""
        length = torch.tensor([len(raw)], dtype=torch.int64, device=self.device)
        dist.broadcast(length, 0)
        buffer = torch.tensor(list(raw) if self.is_main else [0] * int(length), dtype=torch.uint8, device=self.device)
        dist.broadcast(buffer, 0)
        return bytes(buffer.cpu().tolist()).decode()

    def _all_reduce(self, values: list[float], op: str) -> list[float]:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor.tolist()


def refuse_unshared(device, processes: int) -> None:
    """Refuse a device that ``processes`` on this machine cannot train on together: one GPU each, or the CPU."""
    import torch

    if device.type == "cuda":
        if processes > torch.cuda.device_count():
            raise UsageError(f"{processes} processes on this machine but only {torch.cuda.device_count()} GPUs", "start one process per GPU, or pass --device cpu")
    elif device.type != "cpu":
        raise UsageError(f"distributed training runs on cpu or cuda, not {device.type}", "pass --device cpu")


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank went away (gloo or NCCL says so in words only)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(words in text for words in ("Connection reset by peer", "Connection closed by peer", "Broken pipe"))


def peer_silent(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that gave up waiting for a silent rank after :func:`collective_timeout`."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(words in text for words in ("Timed out waiting", "collective operation timeout"))


def collective_timeout() -> float:
    """Seconds a collective may wait for a silent rank: MNISTCTL_DIST_TIMEOUT, a number above 0, else the default."""
    given = os.environ.get(TIMEOUT_ENV, "").strip()
    if not given:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"{TIMEOUT_ENV}={given} is not a number of seconds above 0", f"set it to e.g. 600, or unset it for {DEFAULT_TIMEOUT:g}")
    return seconds


def available_mib() -> int | None:
    """The memory this machine can give new processes (MemAvailable), or None where it cannot be read (macOS, Windows)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(nproc: int) -> None:
    """Refuse ``nproc`` workers that cannot all fit in the available memory, even at the least each takes."""
    available = available_mib()
    if available is None or nproc * WORKER_MIB <= available:
        return
    fits = available // USUAL_WORKER_MIB
    raise UsageError(
        f"--nproc {nproc} needs at least {nproc * WORKER_MIB / 1024:.1f} GiB of memory ({WORKER_MIB} MiB a process), "
        f"but {available / 1024:.1f} GiB is available",
        f"pass --nproc {fits} or fewer: a process usually takes {USUAL_WORKER_MIB} MiB" if fits > 1 else "train in one process: leave --nproc out",
    )


def launch(nproc: int, args: list[str], on_cpu: bool = True) -> int:
    """Run ``python -m mnistctl ARGS`` in ``nproc`` processes on this machine through torch's elastic launcher.

    Returns 0 when every rank finished, 130 when the run was stopped (Ctrl-C, SIGTERM); a rank that fails
    makes the launcher stop the others (no restarts) and raises a one-line RunError.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    collective_timeout()  # a bad value is refused once, here, not by every rank
    check_memory(nproc)
    if on_cpu and nproc > (cores := usable_cores()):
        from mnistctl.console import warn

        warn(f"--nproc {nproc} starts more processes than the {cores} CPU cores here: training is slower than with --nproc {cores}")
    if os.environ.get("MNISTCTL_DEBUG") != "1":  # torch gives each of its modules' loggers a level of its own
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cores() // nproc))
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"mnistctl-{os.getpid()}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "mnistctl", *args)
    except SignalException:
        return 130
    except ChildFailedError as exc:
        rank, failure = _root_cause(exc.failures)
        if failure.exitcode == 130:
            return 130
        raise _failed(rank, failure, nproc) from None
    return 0


def _failed(rank: int, failure, nproc: int) -> RunError:
    """The error of a rank that failed; SIGKILL is what the kernel sends when memory runs out."""
    import signal

    if failure.exitcode == -signal.SIGKILL:
        return RunError(
            f"rank {rank} (pid {failure.pid}) was killed (SIGKILL), usually by the system running out of memory; the launcher stopped the other ranks",
            f"train with fewer processes, e.g. --nproc {max(1, nproc // 2)}" if nproc > 2 else "train in one process: leave --nproc out",
        )
    how = f"was killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exited with code {failure.exitcode}"
    return RunError(f"rank {rank} (pid {failure.pid}) {how}; the launcher stopped the other ranks", "its own error, if any, is printed above")




def _root_cause(failures: dict) -> tuple[int, Any]:
    """The rank that caused the failure: one killed by a signal, then one that exited with an error (its peers
    exit when it vanishes), then one the launcher stopped with SIGTERM; the earliest of a kind."""
    import signal

    def kind(code: int) -> int:
        return 2 if code == -signal.SIGTERM else 1 if code >= 0 else 0

    rank = min(failures, key=lambda r: (kind(failures[r].exitcode), failures[r].timestamp, r))
    return rank, failures[rank]
