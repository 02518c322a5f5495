"""Named specs (architectures, schedulers, optimizers) and lookup with "did you mean" hints."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from mnistctl.errors import MnistctlError, NotFoundError, UsageError


@dataclass(frozen=True)
class Spec:
    """A registered thing: its factory builds it, the rest describes it without importing torch.

    ``params`` is the parameter count at the default options (architectures only);
    a test checks it against the built model.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    params: int | None = None
    source: str = field(default="", compare=False)

    @property
    def defaults(self) -> dict[str, Any]:
        """The factory's keyword options and their default values."""
        return {
            p.name: p.default
            for p in inspect.signature(self.factory).parameters.values()
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
        }

    def build(self, *args: Any, **options: Any) -> Any:
        """Call the factory; an option it cannot work with becomes a UsageError naming the plugin."""
        try:
            return self.factory(*args, **options)
        except MnistctlError:
            raise
        except Exception as exc:
            given = " ".join(f"{k}={format_value(v)}" for k, v in options.items())
            raise UsageError(
                f"'{self.name}' cannot be built with {given or 'its defaults'}: {type(exc).__name__}: {exc}".splitlines()[0],
                "check the values given with --set, --opt-set or --sched-set",
            ) from None


class Registry:
    """Specs of one kind, by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, Spec] = {}

    def add(self, spec: Spec) -> None:
        if spec.name in self._specs:
            raise UsageError(
                f"Two plugins register the {self.kind} '{spec.name}' "
                f"({self._specs[spec.name].source} and {spec.source})",
                "uninstall one of them",
            )
        self._specs[spec.name] = spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def list(self, pattern: str = "*") -> list[Spec]:
        return [self._specs[n] for n in self.names() if fnmatch.fnmatch(n, pattern)]

    def get(self, name: str) -> Spec:
        try:
            return self._specs[name]
        except KeyError:
            raise NotFoundError(
                f"Unknown {self.kind} '{name}'", suggest(name, self.names())
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)


def format_value(value: Any) -> str:
    """An option value as it is typed on the command line: lists as ``32,64``."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def suggest(name: str, choices: list[str]) -> str:
    """A hint naming the closest choices, or all of them."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return "choose one of: " + ", ".join(choices) if choices else "none are registered"


def parse_options(spec: Spec, items: list[str] | dict[str, Any], defaults: dict[str, Any] | None = None, parse: bool = True) -> dict[str, Any]:
    """Validate ``key=value`` strings (or a dict) against the factory's options (or ``defaults``), typed by their defaults.

    ``parse=False`` leaves strings as they are: a file's values are typed already, and text for a number is refused later.
    """
    pairs = items.items() if isinstance(items, dict) else map(split_pair, items)
    defaults = spec.defaults if defaults is None else defaults
    options: dict[str, Any] = {}
    for key, value in pairs:
        key = key.replace("-", "_")
        if key not in defaults:
            valid = ", ".join(defaults) or "none"
            raise UsageError(
                f"'{spec.name}' has no option '{key}'",
                f"valid options: {valid}",
            )
        options[key] = value if isinstance(value, str) and not parse else _coerce(value, defaults[key], f"{spec.name} option '{key}'")
    return options


def split_pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"Bad option '{item}'", "write it as key=value, e.g. dropout=0.3")
    return key.strip(), value.strip()


def _coerce(value: Any, default: Any, what: str) -> Any:
    if not isinstance(value, str):
        if isinstance(default, tuple) and isinstance(value, list):
            return tuple(value)
        return value
    try:
        if isinstance(default, bool):
            lowered = value.lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError
            return lowered in {"true", "1", "yes"}
        if isinstance(default, (tuple, list)):
            kind = type(default[0]) if default else float
            return tuple(kind(v) for v in value.split(",") if v.strip())
        if isinstance(default, (int, float)):
            return type(default)(value)
        if default is None:
            for kind in (int, float):
                try:
                    return kind(value)
                except ValueError:
                    pass
            return None if value.lower() == "none" else value
        return value
    except ValueError:
        expected = type(default).__name__ if default is not None else "value"
        if isinstance(default, (tuple, list)):
            expected = "comma-separated list, e.g. 32,64"
        raise UsageError(f"Bad value '{value}' for {what}", f"expected {expected}") from None
