"""The one plugin manager: every plugin comes from the ``mnistctl`` entry points, loaded once.

The built-in plugins are the entry points of mnistctl's own distribution (pyproject.toml lists them);
they are registered first, so a third-party plugin cannot take a built-in's name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

import pluggy
from rich.markup import escape

from mnistctl import hookspecs
from mnistctl.console import warn
from mnistctl.registry import Registry, Spec

GROUP = "mnistctl"
KINDS = {"archs": "architecture", "schedulers": "scheduler", "optimizers": "optimizer"}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    package: str
    version: str
    hooks: tuple[str, ...] = ()
    error: str = ""


@functools.cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    found = sorted(entry_points(group=GROUP), key=lambda ep: _dist_name(ep) != "mnistctl")
    for ep in found:
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            _failed[ep.name] = PluginInfo(ep.name, ep.value, _dist_name(ep), _dist_version(ep), (), _describe(exc))
            warn(escape(f"plugin '{ep.name}' ({ep.value}) failed to load and is skipped: {_describe(exc)}"))
    return pm


_failed: dict[str, PluginInfo] = {}


@functools.cache
def registry(kind: str) -> Registry:
    """The registry of ``archs``, ``schedulers`` or ``optimizers``, filled by every plugin's hook."""
    reg = Registry(KINDS[kind])
    hook = getattr(manager().hook, f"register_{kind}")
    for impl in hook.get_hookimpls():
        source = _package_of(impl.plugin)

        def register(spec: Spec, _source: str = source) -> None:
            reg.add(Spec(spec.name, spec.factory, spec.description, spec.params, _source))

        try:
            impl.function(register=register)
        except Exception as exc:
            warn(escape(f"plugin '{impl.plugin_name}' failed while registering {kind}: {_describe(exc)}"))
    return reg


def archs() -> Registry:
    return registry("archs")


def schedulers() -> Registry:
    return registry("schedulers")


def optimizers() -> Registry:
    return registry("optimizers")


def plugin_infos() -> list[PluginInfo]:
    pm = manager()
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(h.name for h in pm.get_hookcallers(plugin) or [])
        package = _package_of(plugin)
        infos.append(PluginInfo(name, _module_of(plugin), package, _version(package), hooks))
    return sorted(infos + list(_failed.values()), key=lambda i: i.name)


def _module_of(plugin) -> str:
    """A module plugin's name, or the module defining a plugin class or instance."""
    return plugin.__name__ if isinstance(plugin, ModuleType) else plugin.__module__


def _package_of(plugin) -> str:
    top = _module_of(plugin).split(".")[0]
    return _distributions().get(top, top)


@functools.cache
def _distributions() -> dict[str, str]:
    """Top-level module to distribution, for the distributions offering plugins (scanning all is slow)."""
    return {ep.module.split(".")[0]: ep.dist.name for ep in entry_points(group=GROUP) if ep.dist}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _dist_name(ep) -> str:
    return ep.dist.name if ep.dist else ""


def _dist_version(ep) -> str:
    return ep.dist.version if ep.dist else ""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
