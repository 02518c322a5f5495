"""Hook specifications: a plugin implements any of these and calls ``register(spec)``."""

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("mnistctl")
hookimpl = pluggy.HookimplMarker("mnistctl")


@hookspec
def register_archs(register: Callable) -> None:
    """Register architectures: call ``register(Spec(name, factory, description, ...))``."""


@hookspec
def register_schedulers(register: Callable) -> None:
    """Register learning-rate schedulers: ``factory(optimizer, epochs, steps_per_epoch, **options)``."""


@hookspec
def register_optimizers(register: Callable) -> None:
    """Register optimizers: ``factory(params, lr, weight_decay, **options)``."""
