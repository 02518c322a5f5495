"""The typed schema of a training configuration: each setting's type and range, and plugin options typed by their factories.

Every value is checked here before anything runs, whether it came from a flag, a TOML or JSON file,
or a run's own config.json. A bad value becomes one UsageError naming the setting, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Optional

from annotated_types import Len
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, create_model, field_validator

from mnistctl.errors import UsageError
from mnistctl.registry import OPTION_FLAGS, Allowed, either, is_choice

MAX_EPOCHS = 100_000
MAX_SEED = 2**32 - 1
MAX_RATE = 3.4028234663852886e38  # float32's largest: the weights' type, which a rate multiplies

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Scalar = Optional[Bool | Int | Float | Str]


def _allowed(text: str, **constraints: Any) -> Any:
    return Field(description=text, **constraints)


class Augment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rotation: Float = _allowed("a number of degrees from 0 to 180", default=10.0, ge=0, le=180)
    shift: Float = _allowed("a fraction of the side from 0 to below 0.5", default=0.1, ge=0, lt=0.5)
    zoom: Float = _allowed("a fraction of the size from 0 to below 0.5", default=0.0, ge=0, lt=0.5)
    elastic: Float = _allowed("a strength in pixels from 0 to 100", default=0.0, ge=0, le=100)


class Settings(BaseModel):
    """The settings a run is made from (DEFAULTS in config.py holds their default values)."""

    model_config = ConfigDict(extra="forbid")

    arch: Str = _allowed("an architecture name (see: mnistctl list archs)", min_length=1)
    arch_options: dict[Str, Any] = _allowed("a table of architecture options, its numbers finite")
    optimizer: Str = _allowed("an optimizer name (see: mnistctl list optimizers)", min_length=1)
    optimizer_options: dict[Str, Any] = _allowed("a table of optimizer options, its numbers finite")
    lr: Optional[Float] = _allowed(f"a positive number up to {MAX_RATE:.3g}", gt=0, le=MAX_RATE)
    weight_decay: Optional[Float] = _allowed(f"a number from 0 to {MAX_RATE:.3g}", ge=0, le=MAX_RATE)
    scheduler: Str = _allowed("a scheduler name (see: mnistctl list schedulers)", min_length=1)
    scheduler_options: dict[Str, Any] = _allowed("a table of scheduler options, its numbers finite")
    epochs: Int = _allowed(f"a whole number from 1 to {MAX_EPOCHS:,}", ge=1, le=MAX_EPOCHS)
    batch_size: Int = _allowed("a whole number of 1 or more", ge=1)
    ema: Optional[Float] = _allowed("a decay above 0 and below 1, such as 0.999, or nothing", gt=0, lt=1)
    augment: Annotated[Optional[Augment], BeforeValidator(lambda on: ({} if on else None) if isinstance(on, bool) else on)] = _allowed(
        "true, false or a table with rotation, shift, zoom and elastic"
    )  # true: the default amounts
    val_split: Int = _allowed("a whole number of 0 or more", ge=0)
    early_stopping: Optional[Int] = _allowed("a whole number of 1 or more, or nothing", ge=1)
    monitor: Literal["val_acc", "val_loss"] = _allowed("val_acc or val_loss")
    seed: Int = _allowed(f"a whole number from 0 to {MAX_SEED}", ge=0, le=MAX_SEED)
    device: Str = _allowed("auto, cpu, cuda, cuda:N or mps", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    precision: Literal["auto", "fp32", "bf16"] = _allowed("auto, fp32 or bf16")
    channels_last: Bool = _allowed("true or false")
    checkpoint_every: Int = _allowed("a whole number of 1 or more", ge=1)
    log_every: Int = _allowed("a whole number of 1 or more", ge=1)
    log_layers: Optional[Int] = _allowed("a whole number of steps of 1 or more, or nothing", ge=1)
    limit: Optional[Int] = _allowed("a whole number of 1 or more, or nothing", ge=1)
    name: Optional[Str] = _allowed("one folder name", default=None)

    @field_validator("arch_options", "optimizer_options", "scheduler_options")
    @classmethod
    def _finite(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Option values are recorded in config.json, which holds no NaN or infinity; the plugins check the rest."""
        if not all(math.isfinite(v) for v in _numbers(options)):
            raise ValueError("finite numbers")
        return options

    @field_validator("name")
    @classmethod
    def _one_component(cls, name: str | None) -> str | None:
        from mnistctl.runs import validate_name

        if name is not None:
            validate_name(name)
        return name


def _numbers(value: Any) -> Iterator[float]:
    """The floats anywhere in a nest of tables and lists."""
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


def check(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings, validated and normalised (``augment`` filled in); UsageError on the first bad value."""
    try:
        return Settings.model_validate(settings).model_dump()
    except ValidationError as exc:
        raise _usage(exc, Settings, settings) from None


FLAGS = {  # a setting's flag, where it is not --<setting>
    "arch_options": "--set", "optimizer_options": "--opt-set", "scheduler_options": "--sched-set", "augment": None,  # an amount: its own flag
    "log_layers": "--log-layers-every", "log_every": None,  # None: only a config file sets it
}


def check_options(spec, options: dict[str, Any], kind: str) -> dict[str, Any]:
    """A plugin's options, typed by their annotations when plain (``dropout: float = 0`` takes 0.3), else by their defaults:
    a tuple default of ints takes only whole numbers, and so on. ``Literal[...]`` takes only its choices, and
    ``Optional[...]`` (``int | None``) None too.

    A parameter annotated with annotated_types bounds, e.g. ``gamma: Annotated[float, Interval(gt=0, le=1)] = 0.1``,
    takes only values within them (a list, item by item; ``Len`` bounds a list's length).
    """
    annotations = spec.allowed
    fields = {key: _option_field(default, annotations.get(key, Allowed())) for key, default in spec.defaults.items()}
    model = create_model(f"{spec.name} options", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        checked = model.model_validate(options)
    except ValidationError as exc:
        raise _usage(exc, model, options, f"{kind} '{spec.name}' option ", OPTION_FLAGS.get(kind, "the option")) from None
    return {key: getattr(checked, key) for key in options}


LIMITS = {"gt": "above {}", "ge": "at least {}", "lt": "below {}", "le": "at most {}"}


def _option_field(default: Any, takes: Allowed) -> tuple[Any, Any]:
    """The option's type and default, described in words: "a number above 0 and at most 1", "a whole number", "max or avg, or none"."""
    bounds = takes.bounds
    within = " and ".join(text.format(getattr(b, key)) for b in bounds for key, text in LIMITS.items() if getattr(b, key, None) is not None)
    length = next((b for b in bounds if isinstance(b, Len)), None)
    listed = isinstance(default, (tuple, list))
    if listed:
        count = _how_many(length)
        number = "whole number" if (isinstance(default[0], int) if default else takes.item is int) else "number"
        each = f", each {within}" if within else ""
        example = f", e.g. {','.join(map(str, default))}" if default else ""
        description = f"a list of {count}{number}s{each}{example}"
    elif takes.choices:
        description = either(takes.choices)
    else:
        base = _scalar_type(default, takes.base)
        description = {Bool: "true or false", Int: "a whole number", Float: "a finite number", Str: "text"}.get(base, "a number, text, true/false or nothing")
        if within:
            description = f"a {'whole number' if base is Int else 'number'} {within}"
    if takes.optional:
        description += ", or none"
    return _type_of(default, takes), Field(default, description=description)


def _how_many(length: Len | None) -> str:
    """A list's length bounds in words, before "whole numbers": "2 ", "1 to 3 ", "one or more ", "at most 4 "."""
    low, high = (length.min_length, length.max_length) if length else (0, None)
    if high is not None:
        return f"{low} " if low == high else f"{low} to {high} " if low else f"at most {high} "
    return "one or more " if low == 1 else f"at least {low} " if low else ""


def _type_of(default: Any, takes: Allowed = Allowed()) -> Any:
    bounds = takes.bounds
    if isinstance(default, (tuple, list)):
        length = tuple(b for b in bounds if isinstance(b, Len))
        items = Allowed(bounds=tuple(b for b in bounds if not isinstance(b, Len)))
        listed = tuple[_type_of(default[0], items) if default else _scalar_type(None, takes.item or float), ...]
        listed = Annotated[listed, *length] if length else listed
        return Optional[listed] if takes.optional else listed
    if takes.choices:
        kind, bounds = Annotated[Any, AfterValidator(lambda value: _choice(value, takes.choices))], ()
    else:
        kind = _scalar_type(default, takes.base)
    kind = Optional[kind] if (default is None or takes.optional) and kind is not Scalar else kind  # `width: int = None` keeps its default
    return Annotated[kind, *bounds] if bounds else kind


def _choice(value: Any, choices: tuple) -> Any:
    """The ``Literal`` choice ``value`` is; ValueError for any other value."""
    for choice in choices:
        if is_choice(value, choice):
            return choice
    raise ValueError(f"one of {either(choices)}")


def _scalar_type(default: Any, declared: type | None) -> Any:
    """Strict bool, int, float or str: the declared (annotated) type's, else the default's; any scalar for other defaults."""
    for base, kind in ((bool, Bool), (int, Int), (float, Float), (str, Str)):
        if declared is base or (declared is None and isinstance(default, base)):
            return kind
    return Scalar


def _usage(exc: ValidationError, model: type[BaseModel], given: dict[str, Any], prefix: str = "", flag: str | None = None) -> UsageError:
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    nested = len(loc) > 1 and loc[0] == "augment"
    setting = ".".join(loc[:2]) if nested else (loc[0] if loc else "?")
    if error["type"] == "extra_forbidden":
        valid = ", ".join(Augment.model_fields if nested else model.model_fields) or "none"
        return UsageError(f"{prefix}{setting!r} is not a setting", f"valid: {valid}")  # a key is any text: quoted and escaped
    if error["type"] == "missing":
        return UsageError(f"{prefix}setting '{setting}' is missing", "every setting needs a value; see the README")
    value = _short(error.get("input") if nested or not loc else given.get(loc[0], error.get("input")))
    expected = _description(model, loc) or _expected(error)
    flag = flag or (f"--{loc[1]}" if nested and loc[1] in Augment.model_fields else FLAGS.get(loc[0], f"--{loc[0].replace('_', '-')}"))
    hint = f"fix {flag} or the config file" if flag else f"fix {setting} in the config file"
    return UsageError(f"{prefix}{setting} = {value} is not allowed: expected {expected}", hint)


def _description(model: type[BaseModel], loc: list[str]) -> str | None:
    field = model.model_fields.get(loc[0]) if loc else None
    if field is None:
        return None
    if len(loc) > 1 and loc[0] == "augment" and loc[1] in Augment.model_fields:
        return Augment.model_fields[loc[1]].description
    return field.description


def _expected(error: dict[str, Any]) -> str:
    return error["msg"].removeprefix("Input should be ").removeprefix("Value error, ")


def _short(value: Any, limit: int = 60) -> str:
    """The value as a message shows it: a list as a file writes it, ``[32, 64]``, whether a flag or a file gave it."""
    try:
        text = repr(list(value) if isinstance(value, tuple) else value)
    except RecursionError:
        text = "a deeply nested value"
    return text if len(text) <= limit else text[: limit - 3] + "..."
