"""Named specs (architectures, schedulers, optimizers) and lookup with "did you mean" hints."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
import operator
import os
import re
from dataclasses import dataclass, field, replace
from types import UnionType
from typing import Annotated, Any, Callable, Literal, Union, get_args, get_origin

from mnistctl.errors import MnistctlError, NotFoundError, UsageError

BUILTIN = "mnistctl"  # the source of the built-in plugins: their names cannot be taken
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")  # a name is typed on the command line and becomes part of a run's folder name
PASSED = {  # what mnistctl passes a factory of each kind before its options: these are not options
    "architecture": (),
    "scheduler": ("optimizer", "epochs", "steps_per_epoch"),
    "optimizer": ("params",),
}
OPTION_FLAGS = {"architecture": "--set", "optimizer": "--opt-set", "scheduler": "--sched-set"}  # the flag of a plugin's options, by its kind
RATES = ("lr", "weight_decay")  # an optimizer factory is passed these by keyword too: settings of their own, not options
TYPES = (bool, int, float, str)  # an annotation that types an option by itself
PRECISIONS = ("fp32", "bf16")  # what --precision names besides auto


@dataclass(frozen=True)
class Spec:
    """A registered thing: its factory builds it, the rest describes it without importing torch.

    ``params`` is the parameter count at the default options (architectures only);
    a test checks it against the built model. ``precisions`` (architectures only) are those its model computes in:
    ``("fp32",)`` for one whose arithmetic is float32 whatever autocast asks (NumPy layers); ``--precision auto``
    picks among them and another is refused. ``source`` and ``kind`` are filled in when it is registered.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    params: int | None = None
    precisions: tuple[str, ...] = PRECISIONS
    source: str = field(default="", compare=False)
    kind: str = field(default="", compare=False)

    def options(self) -> list[inspect.Parameter]:
        """The factory's options: its parameters less the arguments mnistctl passes by position, and ``*args``/``**kwargs``."""
        parameters = [p for p in signature(self.factory).parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        passed = set(positional[: len(PASSED.get(self.kind, ()))])
        return [p for p in parameters if p.name not in passed]

    @property
    def defaults(self) -> dict[str, Any]:
        """The factory's keyword options and their default values."""
        return {p.name: p.default for p in self.options() if p.default is not p.empty}

    @property
    def allowed(self) -> dict[str, Allowed]:
        """What each option's annotation allows; an option annotated with a plain type takes that type, whatever its default."""
        return {p.name: allowed(p.annotation) for p in self.options()}

    @property
    def label(self) -> str:
        """The spec as a message names it: ``the scheduler 'warmpoly' from mnistctl-revplug``, ``the scheduler 'step'``."""
        kind = f"the {self.kind} " if self.kind else ""
        return f"{kind}'{self.name}'{self.provenance}"

    @property
    def provenance(self) -> str:
        """`` from mnistctl-revplug`` for a third party's spec, else nothing."""
        return f" from {self.source}" if self.source and self.source != BUILTIN else ""

    def build(self, *args: Any, **options: Any) -> Any:
        """Call the factory; an option it cannot work with becomes a UsageError naming the plugin."""
        try:
            return self.factory(*args, **options)
        except MnistctlError:
            raise
        except SystemExit as exc:  # a plugin's own exit would end mnistctl silently, even with code 0
            raise UsageError(f"{self.label} exited (code {exc.code}) instead of building", self._elsewhere) from debug_cause(exc)
        except ImportError as exc:  # a module the plugin imports lazily: not the options' fault
            raise UsageError(f"{self.label} cannot be built: {type(exc).__name__}: {exc}".splitlines()[0], self._elsewhere) from debug_cause(exc)
        except Exception as exc:
            defaults = self._defaults_or_empty()
            changed = [key for key, value in options.items() if key not in defaults or format_value(value) != format_value(defaults[key])]
            given = " ".join(f"{key}={format_value(options[key])}" for key in changed)
            flags = dict.fromkeys(f"--{key.replace('_', '-')}" if key in RATES else OPTION_FLAGS.get(self.kind, "--set") for key in changed)
            raise UsageError(  # its own defaults failing is the plugin's fault
                f"{self.label} cannot be built with {given or 'its defaults'}: {type(exc).__name__}: {exc}".splitlines()[0],
                f"check the values given with {' and '.join(flags)} or in the config file" if changed else self._elsewhere,
            ) from debug_cause(exc)

    def _defaults_or_empty(self) -> dict[str, Any]:
        try:
            return self.defaults
        except (TypeError, ValueError):  # a factory whose signature cannot be read
            return {}

    def wrong_result(self, result: Any, expected: str) -> UsageError:
        """The error for a factory that built something mnistctl cannot use."""
        return UsageError(f"{self.label} built {with_article(type(result).__name__)}, not {expected}", self._elsewhere)

    @property
    def _elsewhere(self) -> str:
        """The hint for a plugin that is broken, not used wrongly."""
        return f"choose another {self.kind or 'plugin'}" + (f", or report it to the authors of {self.source}" if self.source != BUILTIN else "")


class Registry:
    """Specs of one kind, by name. A built-in's name stays the built-in's; a name two plugins register is refused to both."""

    def __init__(self, kind: str, warn: Callable[[str], None] | None = None):
        self.kind = kind
        self._warn = warn  # says each clash when the registry is first used, unless that use is the name, whose error says it
        self._said = False
        self._specs: dict[str, Spec] = {}
        self.ambiguous: dict[str, list[str]] = {}  # a name several plugins register: their sources
        self.left_out: dict[str, UsageError] = {}  # a name registered with a spec that cannot be used: why
        self.unloaded: list[str] = []  # the plugins that failed to load, as "plugin 'x' (package) failed to load: why"
        self._by: dict[str, list[str]] = {}  # a name: the plugins (``by``) that registered it

    def add(self, spec: Spec, by: str = "") -> None:
        """Add a spec, or raise a UsageError saying why it is left out. A name a plugin registered already
        becomes ambiguous: ``get`` refuses it, naming both plugins. ``by`` names the plugin in messages,
        ``plugin 'name' (package)``; by default, ``plugin package``."""
        spec = replace(spec, kind=self.kind)
        by = by or f"plugin {spec.source or '?'}"
        if refused := _refusal(spec, by):
            if isinstance(spec.name, str):
                self.left_out[spec.name] = refused
            raise refused
        spec = replace(spec, precisions=tuple(p for p in PRECISIONS if p in spec.precisions))  # a list too, in one order
        if by in self._by.get(spec.name, []):
            raise UsageError(f"{by} registers the {self.kind} '{spec.name}' twice", "the first is kept; register each name once")
        held = self._specs.get(spec.name)
        if held is not None and held.source == BUILTIN:
            raise UsageError(f"{by} registers the {self.kind} '{spec.name}', which {BUILTIN} already has", "rename it")
        self._by.setdefault(spec.name, []).append(by)
        if spec.name in self.ambiguous:
            self.ambiguous[spec.name].append(spec.source)
        elif held is not None:
            self.ambiguous[spec.name] = [held.source, spec.source]
            del self._specs[spec.name]
        else:
            self._specs[spec.name] = spec

    def clash(self, name: str) -> UsageError:
        """The error for a name several plugins register, each source named once."""
        *others, last = dict.fromkeys(self.ambiguous[name])
        if not others:
            return UsageError(f"the {self.kind} '{name}' is registered by several plugins of {last}", f"report it to the authors of {last}")
        return UsageError(
            f"the {self.kind} '{name}' is registered by {'both ' if len(others) == 1 else ''}{', '.join(others)} and {last}",
            f"uninstall {'one' if len(others) == 1 else 'all but one'} of them to use it",
        )

    def _say_clashes(self, used: str | None = None) -> None:
        if self._said or self._warn is None:
            return
        self._said = True
        for name in self.ambiguous:
            if name != used:
                clash = self.clash(name)
                self._warn(f"{clash.message}; {clash.hint}")

    def names(self) -> list[str]:
        self._say_clashes()
        return sorted(self._specs)

    def list(self, pattern: str = "*") -> list[Spec]:
        """The specs whose names match ``pattern``; a name several plugins register, given whole, is refused as ``get`` refuses it."""
        if pattern in self.ambiguous:
            self.get(pattern)
        return [self._specs[n] for n in self.names() if fnmatch.fnmatch(n, pattern)]

    def get(self, name: str) -> Spec:
        self._say_clashes(used=name)
        if name in self.ambiguous:
            raise self.clash(name)
        if name in self.left_out and name not in self._specs:
            refused = self.left_out[name]
            raise NotFoundError(f"the {self.kind} '{name}' is left out: {refused.message}", refused.hint)
        try:
            return self._specs[name]
        except KeyError:
            hint = suggest(name, self.names())
            if self.unloaded:  # one of them may have provided it
                hint = f"{hint}; {'; '.join(self.unloaded)}"
            raise NotFoundError(f"unknown {self.kind} '{name}'", hint) from None

    def __contains__(self, name: str) -> bool:
        self._say_clashes()
        return name in self._specs

    def __len__(self) -> int:
        self._say_clashes()
        return len(self._specs)


def _refusal(spec: Spec, by: str) -> UsageError | None:
    """Why a spec cannot be registered: a name that is not simple, an option without a default,
    or a factory that cannot take what mnistctl passes it. None when it can."""
    what = f"{by} registers the {spec.kind}"
    if not isinstance(spec.name, str) or not NAME.fullmatch(spec.name):
        return UsageError(f"{what} {spec.name!r}, a name that is not allowed", "a name is lowercase letters, digits, '-', '_' and '.', starting with a letter or digit; rename it")
    if not callable(spec.factory):
        return UsageError(f"{what} '{spec.name}' with {with_article(type(spec.factory).__name__)} for a factory", "a factory is a function; it is left out")
    precisions = spec.precisions
    if not isinstance(precisions, (tuple, list)) or not precisions or not all(isinstance(p, str) and p in PRECISIONS for p in precisions):
        return UsageError(f"{what} '{spec.name}' with precisions={precisions!r}, not one or both of {' and '.join(PRECISIONS)}", "give a tuple such as precisions=('fp32',); it is left out")
    passed = PASSED.get(spec.kind, ())
    rates = RATES if spec.kind == "optimizer" else ()  # without a default, --lr and --weight-decay are needed
    takes = f"({', '.join([*passed, *rates, '**options'])})"
    try:
        options = spec.options()
    except (TypeError, ValueError):
        return UsageError(f"{what} '{spec.name}' with a factory whose parameters cannot be read", f"a {spec.kind} factory takes {takes}; it is left out")
    if required := [p.name for p in options if p.default is p.empty and p.name not in rates]:
        return UsageError(f"{what} '{spec.name}' with the option '{required[0]}', which has no default", "every option needs a default; it is left out")
    for p in options:
        if p.annotation is not p.empty and p.name not in rates and not _fits(p.default, allowed(p.annotation)):
            return UsageError(
                f"{what} '{spec.name}' with the option '{p.name}' defaulting to {p.default!r}, which its annotation {_spelled(p.annotation)} does not allow",
                "a default must be a value the option takes; it is left out",
            )
    if unheld := next((p for p in options if not _recordable(p.default)), None):
        return UsageError(
            f"{what} '{spec.name}' with the option '{unheld.name}' defaulting to {unheld.default!r}, which a run's config.json cannot hold",
            "a default is none, true or false, a finite number, text, or a list of numbers or of text, all of one type; it is left out",
        )
    try:
        signature(spec.factory).bind(*passed, **{p.name: p.default for p in options} | dict.fromkeys(rates))
    except TypeError:
        return UsageError(f"{what} '{spec.name}' with a factory that does not take {takes}", "it is left out")
    return None


def _recordable(value: Any) -> bool:
    """Whether a run's config.json holds ``value`` and gives it back as the option takes it: none, a bool, a whole or finite
    number, text, or a list of them all of the first's type (whole numbers in a list of numbers too)."""
    if isinstance(value, (list, tuple)) and value:
        first = _scalar_kind(value[0])
        takes = {first, int} if first is float else {first}
        return first is not None and all(_scalar_kind(item) in takes for item in value)
    return isinstance(value, (list, tuple)) or value is None or _scalar_kind(value) is not None


def _scalar_kind(value: Any) -> type | None:
    """bool, int, float (finite) or str, as JSON holds them; None for anything else."""
    kind = next((t for t in TYPES if isinstance(value, t)), None)
    return None if kind is float and not math.isfinite(value) else kind


def signature(factory: Callable[..., Any]) -> inspect.Signature:
    """The factory's signature, its annotations evaluated when they can be (a module with ``from __future__ import annotations``)."""
    try:
        return inspect.signature(factory, eval_str=True)
    except Exception:  # an annotation naming what the module does not define
        return inspect.signature(factory)


@dataclass(frozen=True)
class Allowed:
    """What an option's annotation allows: a ``base`` of bool, int, float or str (None: the option is typed by its default),
    the ``choices`` of a ``Literal``, None when ``optional``, within the ``bounds`` of an ``Annotated``; a list's ``item``
    type of int or float (``list[int]``), which types the items of a list defaulting to none."""

    base: Any = None
    choices: tuple = ()
    optional: bool = False
    bounds: tuple = ()
    item: Any = None


def allowed(annotation: Any) -> Allowed:
    """``Allowed(int, optional=True, bounds=(Ge(1),))`` for ``Optional[Annotated[int, Ge(1)]]`` or ``Annotated[int | None, Ge(1)]``."""
    bounds, optional = [], False
    while True:
        if get_origin(annotation) is Annotated:
            bounds += annotation.__metadata__
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
            optional, rest = True, tuple(a for a in get_args(annotation) if a is not type(None))
            annotation = rest[0] if len(rest) == 1 else Union[rest]
        else:
            break
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return Allowed(None, tuple(c for c in choices if c is not None), optional or None in choices, tuple(bounds))
    items = get_args(annotation)[:1] if get_origin(annotation) in (list, tuple) else ()
    item = items[0] if items and items[0] in (int, float) else None
    return Allowed(annotation if annotation in TYPES else None, (), optional, tuple(bounds), item)


def is_choice(value: Any, choice: Any) -> bool:
    """Whether ``value`` is a ``Literal``'s ``choice``: of its type (a whole number for a float too), so ``True`` is not ``1``."""
    return value == choice and (type(value) is type(choice) or type(choice) is float and type(value) is int)


def either(choices: tuple) -> str:
    """``max or avg``, ``1, 2 or 4``."""
    *others, last = map(format_value, choices)
    return f"{', '.join(others)} or {last}" if others else last


def _fits(default: Any, takes: Allowed) -> bool:
    """Whether a default is a value its option takes, as the schema checks one given in a file: of the annotated
    bool, int, float or str, one of a ``Literal``'s choices, and within ``Annotated`` bounds (``Gt``, ``Ge``, ``Lt``,
    ``Le``, ``Interval``; ``Len`` bounds a list's length, the others each of its items). None is taken by any option defaulting to it."""
    if default is None:
        return True
    if takes.choices and not any(is_choice(default, choice) for choice in takes.choices):
        return False
    base = takes.base
    if base is bool and not isinstance(default, bool) or base is str and not isinstance(default, str):
        return False
    if base in (int, float) and (isinstance(default, bool) or not isinstance(default, (int, float) if base is float else int)):
        return False
    if base is float and not math.isfinite(default):
        return False
    bounds = takes.bounds
    listed = isinstance(default, (list, tuple))
    try:
        for bound in bounds:
            if hasattr(bound, "min_length") or hasattr(bound, "max_length"):
                low, high = getattr(bound, "min_length", None), getattr(bound, "max_length", None)
                if low is not None and len(default) < low or high is not None and len(default) > high:
                    return False
                continue
            for value in default if listed else (default,):
                limits = {key: getattr(bound, key, None) for key in ("gt", "ge", "lt", "le")}
                if any(limit is not None and not COMPARE[key](value, limit) for key, limit in limits.items()):
                    return False
    except TypeError:  # a bound that cannot compare with the default
        return False
    return True


COMPARE = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


def _spelled(annotation: Any) -> str:
    """An annotation as it is written: ``int``, ``Annotated[int, Ge(ge=1)]``."""
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation).replace("typing.", "")


def with_article(noun: str) -> str:
    """``a list``, ``an int``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def debug_cause(exc: BaseException) -> BaseException | None:
    """The cause to chain to an error made from ``exc``: itself under MNISTCTL_DEBUG=1 (the traceback shows its frames), else none."""
    return exc if os.environ.get("MNISTCTL_DEBUG") == "1" else None


def format_value(value: Any) -> str:
    """An option value as it is typed on the command line: lists as ``32,64``, None as ``none``, an empty list or text as
    ``""`` (the shell passes the empty value ``--set name=`` takes)."""
    if value is None:
        return "none"
    return (",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)) or '""'


def suggest(name: str, choices: list[str], n: int = 3) -> str:
    """A hint naming the ``n`` closest choices, or all of them."""
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return "choose one of: " + ", ".join(choices) if choices else "none are registered"


def parse_options(spec: Spec, items: list[str] | dict[str, Any], defaults: dict[str, Any] | None = None, parse: bool = True) -> dict[str, Any]:
    """Validate ``key=value`` strings (or a dict) against the factory's options (or ``defaults``), typed by their
    annotations (``dropout: float = 0`` takes 0.3, ``pool: Literal[1, 2] = 1`` takes 2), else by their defaults.

    ``parse=False`` leaves strings as they are, but ``none`` for an option that takes None: a file's values are typed
    already (TOML has no null), and text for a number is refused later.
    """
    pairs = items.items() if isinstance(items, dict) else map(split_pair, items)
    defaults = spec.defaults if defaults is None else defaults
    annotations = spec.allowed
    options: dict[str, Any] = {}
    for key, value in pairs:
        key = key.replace("-", "_")
        if key not in defaults:
            valid = ", ".join(defaults) or "none"
            raise UsageError(
                f"'{spec.name}' has no option '{key}'",
                f"valid options: {valid}",
            )
        takes = annotations.get(key, Allowed())
        if isinstance(value, str) and not parse:
            options[key] = None if takes.optional and _none(value, takes) else value
        else:
            options[key] = _coerce(value, defaults[key], takes)
    return options


def split_pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"bad option '{item}'", "write it as key=value, e.g. dropout=0.3")
    return key.strip(), value.strip()


def _none(text: str, takes: Allowed) -> bool:
    """Whether ``text`` spells None: ``none``, unless it is one of the option's choices."""
    return text.lower() == "none" and text not in takes.choices


def _coerce(value: Any, default: Any, takes: Allowed = Allowed()) -> Any:
    """A string typed as the annotation allows (its plain type, or the ``Literal`` choice it spells), else as the default is;
    a value of a file, or text that is not of that type, as it is."""
    if not isinstance(value, str):
        if isinstance(default, tuple) and isinstance(value, list):
            return tuple(value)
        return value
    if (default is None or takes.optional) and _none(value, takes):
        return None
    if takes.choices:
        return next((choice for choice in takes.choices if is_choice(_coerce(value, choice), choice)), value)
    listed = isinstance(default, (tuple, list))
    kind = takes.base or next((t for t in TYPES if isinstance(default, t)), None)
    try:
        if listed:
            item = type(default[0]) if default else takes.item or float
            return tuple(item(v) for v in value.split(",") if v.strip())
        if kind is bool:
            lowered = value.lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                return value
            return lowered in {"true", "1", "yes"}
        if kind in (int, float):
            return kind(value)
        if default is None and kind is None:
            for number in (int, float):
                try:
                    return number(value)
                except ValueError:
                    pass
        return value
    except ValueError:
        return value  # left as text: the schema refuses it, worded as a file's bad value is
