"""Learning-rate schedulers. Each factory returns a torch scheduler stepped once per optimizer step.

The annotations bound the options: a value outside them is refused when the settings are checked, before anything runs.
"""

from typing import Annotated

from annotated_types import Ge, Gt, Interval, Len

from mnistctl import hookimpl
from mnistctl.errors import UsageError
from mnistctl.registry import Spec

Factor = Annotated[float, Interval(gt=0, le=1)]
Growth = Annotated[float, Gt(0)]  # above 1 the rate grows each epoch, as in a learning-rate range test
Fraction = Annotated[float, Interval(ge=0, le=1)]
Divisor = Annotated[float, Ge(1)]
Epochs = Annotated[float, Ge(0)]
Milestones = Annotated[tuple[int, ...], Ge(1), Len(min_length=1)]  # each an epoch


def step(optimizer, epochs, steps_per_epoch, milestones: Milestones = (5, 10), gamma: Factor = 0.1):
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda s: gamma ** sum(s >= m * steps_per_epoch for m in milestones))


def cosine(optimizer, epochs, steps_per_epoch, warmup_epochs: Epochs = 0.0, min_lr_ratio: Fraction = 0.0):
    import math

    from torch.optim.lr_scheduler import LambdaLR

    if warmup_epochs >= epochs:
        raise UsageError(
            f"cosine with warmup_epochs={warmup_epochs:g} warms up for the whole run of {epochs} epoch{'s' * (epochs != 1)} and never decays",
            f"choose warmup_epochs below {epochs}, e.g. --sched-set warmup_epochs={epochs / 10:g}",
        )
    total, warmup = epochs * steps_per_epoch, int(warmup_epochs * steps_per_epoch)

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        progress = min(1.0, (s - warmup) / max(1, total - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def exponential(optimizer, epochs, steps_per_epoch, gamma: Growth = 0.8):
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda s: gamma ** (s // steps_per_epoch))


def onecycle(optimizer, epochs, steps_per_epoch, pct_start: Fraction = 0.25, div_factor: Divisor = 25.0, final_div_factor: Divisor = 1e4):
    from torch.optim.lr_scheduler import OneCycleLR

    total = epochs * steps_per_epoch
    if min(pct_start * total, (1 - pct_start) * total) < 2:
        if total >= 4:  # enough steps: pct_start leaves one phase too few of them
            raise UsageError(
                f"one-cycle with pct_start={pct_start:g} warms up for {pct_start * total:g} of its {total} steps and anneals for {(1 - pct_start) * total:g}; each needs at least 2",
                f"choose pct_start from {2 / total:.3g} to {1 - 2 / total:.3g}, e.g. --sched-set pct_start={min(max(0.25, 2 / total), 1 - 2 / total):.3g}"
                if total > 4 else "with 4 steps, only --sched-set pct_start=0.5 leaves 2 to each phase",
            )
        raise UsageError(
            f"one-cycle needs at least 2 steps to warm up and 2 to anneal; this run has {total} ({epochs} epoch{'s' * (epochs != 1)} of {steps_per_epoch})",
            "train on more images or for more epochs, or pick another --scheduler",
        )
    max_lr = [group["lr"] for group in optimizer.param_groups]
    return OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=False,
    )


def none(optimizer, epochs, steps_per_epoch):
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda s: 1.0)


@hookimpl
def register_schedulers(register):
    register(Spec("step", step, "Piecewise constant: multiply by gamma at each milestone epoch"))
    register(Spec("cosine", cosine, "Cosine decay to min_lr_ratio, with optional linear warm-up"))
    register(Spec("exponential", exponential, "Multiply by gamma after every epoch"))
    register(Spec("onecycle", onecycle, "One-cycle: warm up to --lr, then anneal far below it"))
    register(Spec("none", none, "Constant learning rate"))
