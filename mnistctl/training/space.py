"""The search space of a sweep: a TOML file of settings to vary, checked against the config and the registries.

    lr = { float = [0.01, 0.5], log = true }
    batch_size = { choice = [64, 128, 256] }
    epochs = { int = [2, 6] }

    [set]                       # architecture options, as --set
    dropout = { float = [0.0, 0.5] }

    [opt-set]                   # optimizer options, as --opt-set; [sched-set] for the scheduler
    momentum = { choice = [0.9, 0.95] }
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistctl.errors import MnistctlError, UsageError, parse_problem
from mnistctl.registry import suggest
from mnistctl.training import config as trainconfig
from mnistctl.training.config import AUGMENT_KEYS, RATE_SETTINGS

GROUPS = {"set": ("arch", "arch_options"), "opt-set": ("optimizer", "optimizer_options"), "sched-set": ("scheduler", "scheduler_options")}
KINDS = ("choice", "int", "float")
UNSWEPT = {"name", "arch_options", "optimizer_options", "scheduler_options", "augment"}
TYPES: dict[str, type] = {
    **{k: type(v) for k, v in trainconfig.DEFAULTS.items() if v is not None and k not in UNSWEPT},
    "lr": float, "weight_decay": float, "ema": float, "early_stopping": int, "limit": int,
    "augment": bool, **{key: float for key in AUGMENT_KEYS},
}


@dataclass(frozen=True)
class Dimension:
    """One setting to vary: ``name`` is ``lr`` or ``set.dropout``; ``values`` the choices, or (low, high)."""

    name: str
    kind: str
    values: tuple
    log: bool = False
    step: float | None = None

    @property
    def group(self) -> str | None:
        return self.name.split(".")[0] if "." in self.name else None

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[-1]

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        suggest_range = trial.suggest_int if self.kind == "int" else trial.suggest_float
        extra = {"step": self.step} if self.step is not None else {}
        return suggest_range(self.name, self.values[0], self.values[1], log=self.log, **extra)

def flag(name: str, value: Any) -> str:
    """The train option that fixes setting ``name`` (as in the space file) to ``value``; a float in full, as repr prints it."""
    group, _, key = name.rpartition(".")
    if group:
        return f"--{group} {key}={value}"
    option = key.replace("_", "-")
    if isinstance(value, bool):
        return f"--{option}" if value else f"--no-{option}"
    return f"--{option} {value}"


def apply(flags: dict[str, Any], dimensions: list[Dimension], values: dict[str, Any]) -> dict[str, Any]:
    """Training flags with the chosen values on top; ``augment`` False means augmentation off."""
    flags = copy.deepcopy(flags)
    for dim in sorted(dimensions, key=lambda d: d.name == "augment"):  # augment last: false turns off the warps drawn beside it
        value = values[dim.name]
        if dim.group:
            options = GROUPS[dim.group][1]
            flags[options] = {**(flags.get(options) or {}), dim.key: value}
        elif dim.key in AUGMENT_KEYS:
            flags["augment"] = {**(flags.get("augment") or {}), dim.key: value}
        elif dim.key == "augment":
            flags["augment"] = (flags.get("augment") or {}) if value else False
        else:
            flags[dim.key] = value
    return flags


def settings(flags: dict[str, Any], config_file=None, preset: str | None = None) -> dict[str, Any]:
    """Resolve flags as train does, honouring ``augment`` False."""
    off = flags.get("augment") is False
    resolved = trainconfig.resolve({**flags, "augment": None} if off else flags, config_file, preset)
    if off:
        resolved["augment"] = None
    return resolved


def load(path: str | Path, flags: dict[str, Any], config_file=None, preset: str | None = None) -> list[Dimension]:
    """The space file's dimensions, each checked: known setting, not fixed by a flag, right type, non-empty, resolvable."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"space file {path} is a folder, not a file", "pass a TOML file, e.g. docs/sweep-space.toml")
    if not path.exists():
        raise UsageError(f"space file {path} does not exist", "write one, e.g. lr = { float = [0.01, 0.5], log = true }")
    if not path.is_file():
        raise UsageError(f"space file {path} is not a regular file", "pass a TOML file, e.g. docs/sweep-space.toml")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # UTF-8 whatever the locale, a BOM as config files allow
    except ValueError as exc:  # not TOML, not UTF-8, or an integer too long to read
        raise UsageError(f"space file {path} is not valid TOML: {parse_problem(exc)}", "fix the file; see the README's sweep section") from None
    base = settings(flags, config_file, preset)
    dims = []
    for key, spec in table.items():
        group = key.replace("_", "-")
        if group in GROUPS and isinstance(spec, dict) and not (set(spec) & set(KINDS)):
            dims += [_dimension(path, f"{group}.{k.replace('-', '_')}", s) for k, s in spec.items()]
        else:
            dims.append(_dimension(path, key.replace("-", "_"), spec))
    if not dims:
        raise UsageError(f"space file {path} declares no setting to vary", "add one, e.g. lr = { float = [0.01, 0.5], log = true }")
    for dim in dims:
        _check_target(path, dim, dims, flags, base)
    _check_resolvable(path, dims, flags, config_file, preset)
    return dims


def _dimension(path: Path, name: str, spec: Any) -> Dimension:
    where = f"{path.name}: {name}"
    example = f"{name.split('.')[-1]} = {{ choice = [...] }}, {{ int = [low, high] }} or {{ float = [low, high], log = true }}"
    if not isinstance(spec, dict):
        raise UsageError(f"{where} must be a table", f"write {example}")
    kinds = [k for k in KINDS if k in spec]
    extra = set(spec) - {*KINDS, "log", "step"}
    if len(kinds) != 1 or extra:
        raise UsageError(f"{where} needs exactly one of choice, int or float" + (f" (unknown key '{sorted(extra)[0]}')" if extra else ""), f"write {example}")
    kind, values = kinds[0], spec[kinds[0]]
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: {kind} is empty", f"write {example}")
    if kind == "choice":
        if log or step is not None:
            raise UsageError(f"{where}: log and step apply to int and float ranges only", "remove them from the choice")
        if len(set(map(repr, values))) != len(values):
            raise UsageError(f"{where}: a choice is listed twice", "list each value once")
        return Dimension(name, kind, tuple(values))
    number = int if kind == "int" else (int, float)
    if len(values) != 2 or not all(isinstance(v, number) and not isinstance(v, bool) for v in values):
        raise UsageError(f"{where}: {kind} must be [low, high] of {'whole numbers' if kind == 'int' else 'numbers'}", f"e.g. {kind} = {'[2, 6]' if kind == 'int' else '[0.01, 0.5]'}")
    low, high = values
    if low > high:
        raise UsageError(f"{where}: the range [{low}, {high}] is empty", f"write it low first: [{high}, {low}]")
    if not isinstance(log, bool):
        raise UsageError(f"{where}: log must be true or false", "e.g. log = true")
    if log and low <= 0:
        raise UsageError(f"{where}: a log range must start above zero (got {low})", "raise the low end, e.g. 1e-4")
    if step is not None and (log or not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise UsageError(f"{where}: step must be a positive {kind} and cannot go with log", "remove step, or log")
    if step is not None and not math.isclose((high - low) / step, round((high - low) / step), abs_tol=1e-9):  # Optuna would shorten the range
        raise UsageError(f"{where}: step {step} does not divide the range [{low}, {high}]", f"make high - low a multiple of it, e.g. [{low}, {low + step * max(1, int((high - low) // step))}]")
    return Dimension(name, kind, (low, high) if kind == "int" else (float(low), float(high)), log, step)


TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def _check_target(path: Path, dim: Dimension, dims: list[Dimension], flags: dict[str, Any], base: dict[str, Any]) -> None:
    where = f"{path.name}: {dim.name}"
    if dim.group:
        kind, options = GROUPS[dim.group]
        if kind == "optimizer" and dim.key in RATE_SETTINGS:
            raise UsageError(f"{where}: {dim.key} is not an optimizer option", f"vary it as a setting of its own, above [{dim.group}]: {dim.key} = {{ float = [low, high] }}")
        names = next((d.values for d in dims if d.name == kind), (base[kind],))
        expected = None
        for name in names:
            defaults = trainconfig.options_of(_registry(kind).get(name), kind)
            if dim.key not in defaults:
                raise UsageError(f"{where}: {kind} '{name}' has no option '{dim.key}'", f"valid options: {', '.join(defaults) or 'none'}")
            expected = _option_type(defaults[dim.key])
        if dim.key in (flags.get(options) or {}):
            raise UsageError(f"{where} is also fixed by --{dim.group} {dim.key}=...", "drop one of them")
    else:
        if dim.key not in TYPES:
            raise UsageError(f"{where} is not a training setting", suggest(dim.key, sorted(TYPES)))
        expected = TYPES[dim.key]
        fixed = flags.get("augment") if dim.key in AUGMENT_KEYS else flags.get(dim.key)
        if dim.key in AUGMENT_KEYS:
            fixed = (fixed or {}).get(dim.key) if isinstance(fixed, dict) else None
        if fixed is not None and not (dim.key == "augment" and fixed == {}):
            given = f"--{dim.key.replace('_', '-')}"
            if dim.key == "augment":  # fixed by the warps given, or turned off
                given = " ".join(f"--{k}" for k in fixed) if isinstance(fixed, dict) else "--no-augment" if fixed is False else given
            raise UsageError(f"{where} is also fixed on the command line ({given})", "drop one of them")
    _check_type(where, dim, expected)


def _option_type(default: Any) -> type | None:
    if isinstance(default, (tuple, list)):
        return str
    return None if default is None else type(default)


def _check_type(where: str, dim: Dimension, expected: type | None) -> None:
    if expected is None:
        return
    if dim.kind != "choice" and expected not in (int, float):
        raise UsageError(f"{where} takes a {expected.__name__}, not a range", "use choice = [...]")
    if dim.kind == "float" and expected is int:
        raise UsageError(f"{where} takes whole numbers", "use int = [low, high] or choice = [...]")
    if dim.kind == "choice":
        for value in dim.values:
            ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                kind = TYPE_WORDS.get(expected, f"a {expected.__name__}")
                hint = 'write lists as strings, e.g. "32,64"' if dim.group and expected is str else f"each choice must be {kind}"
                raise UsageError(f"{where}: choice {value!r} is not {kind}", hint)


def _registry(kind: str):
    from mnistctl.plugins import archs, optimizers, schedulers

    return {"arch": archs, "optimizer": optimizers, "scheduler": schedulers}[kind]()


def _check_resolvable(path: Path, dims: list[Dimension], flags: dict[str, Any], config_file, preset) -> None:
    """Resolve every choice and range end (the others at their first value) so that no trial fails on its settings."""
    from mnistctl.models import build_model

    first = {d.name: d.values[0] for d in dims}
    for dim in dims:
        for value in dim.values:
            try:
                resolved = settings(apply(flags, dims, {**first, dim.name: value}), config_file, preset)
            except MnistctlError as exc:
                if " is not allowed: " in exc.message:  # names the setting and value refused, which the space file gave
                    raise UsageError(f"{path.name}: {exc.message}", "change its range or choices in the space file") from None
                raise UsageError(f"{path.name}: {dim.name} = {value!r}: {exc.message}", exc.hint) from None
            if dim.name == "val_split" and not resolved["val_split"]:
                raise UsageError(f"{path.name}: val_split = {value!r} leaves no validation images: a sweep's objective is the validation accuracy", "keep every value of val_split above 0")
            if dim.name == "arch" or dim.name.startswith("set."):  # the architecture is built with it, as a trial would
                try:
                    build_model(resolved)
                except MnistctlError as exc:
                    raise UsageError(f"{path.name}: {dim.name} = {value!r}: {exc.message}", "change its range or choices in the space file") from None
