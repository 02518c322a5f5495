"""Optimizers. Each factory takes the parameters, lr and weight decay, with its own options.

The annotations bound the options: a value outside them is refused when the settings are checked, before anything runs.
"""

import functools
import inspect
from typing import Annotated

from annotated_types import Interval, Len

from mnistctl import hookimpl
from mnistctl.registry import Spec

Momentum = Annotated[float, Interval(ge=0, lt=1)]  # 1 or more never decays: the steps grow until the loss diverges
Betas = Annotated[tuple[float, float], Len(2, 2), Interval(ge=0, lt=1)]  # two, each in [0, 1)
Decay = Annotated[float, Interval(ge=0, le=1)]

COMPILER_WRAPPED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def sgd(params, lr=0.05, weight_decay=0.0, momentum: Momentum = 0.9, nesterov=True):
    return eager("SGD")(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov)


def adam(params, lr=1e-3, weight_decay=0.0, betas: Betas = (0.9, 0.999)):
    return eager("Adam")(params, lr=lr, weight_decay=weight_decay, betas=betas)


def adamw(params, lr=1e-3, weight_decay=0.01, betas: Betas = (0.9, 0.999)):
    return eager("AdamW")(params, lr=lr, weight_decay=weight_decay, betas=betas)


def adadelta(params, lr=1.0, weight_decay=0.0, rho: Decay = 0.9):
    return eager("Adadelta")(params, lr=lr, weight_decay=weight_decay, rho=rho)


@functools.cache
def eager(name: str) -> type:
    """The torch.optim class without the wrappers it has for torch.compile, which do nothing in eager
    mode but import torch's compiler at their first call: 1.1 s of CPU, a tenth of a fast run."""
    import torch

    cls = getattr(torch.optim, name)
    step = inspect.unwrap(cls.step)

    class Eager(cls):
        @torch.no_grad()
        def step(self, closure=None):
            return step(self, closure)

    for method in COMPILER_WRAPPED:
        setattr(Eager, method, inspect.unwrap(getattr(cls, method)))
    Eager.__name__ = Eager.__qualname__ = name
    return Eager


@hookimpl
def register_optimizers(register):
    register(Spec("sgd", sgd, "SGD with (Nesterov) momentum"))
    register(Spec("adam", adam, "Adam"))
    register(Spec("adamw", adamw, "AdamW: Adam with decoupled weight decay"))
    register(Spec("adadelta", adadelta, "Adadelta, as in the PyTorch MNIST example"))
