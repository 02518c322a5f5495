"""The one plugin manager: every plugin comes from the ``mnistctl`` entry points, loaded once.

The built-in plugins are the entry points of mnistctl's own distribution (pyproject.toml lists them);
they are registered first, so a third-party plugin cannot take a built-in's name. A name two third-party
plugins register is refused to both. Whatever a plugin gets wrong is a warning, and shows in ``mnistctl list plugins``.
"""

from __future__ import annotations

import functools
import inspect
import os
import traceback
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy
from mnistctl import hookspecs
from mnistctl.console import warn
from mnistctl.errors import NotFoundError, UsageError
from mnistctl.registry import BUILTIN, Registry, Spec, suggest, with_article

GROUP = "mnistctl"
KINDS = {"archs": "architecture", "schedulers": "scheduler", "optimizers": "optimizer"}
SETTINGS = {"arch": "archs", "optimizer": "optimizers", "scheduler": "schedulers"}  # the setting naming each kind in a run's config


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    package: str
    version: str
    hooks: tuple[str, ...] = ()
    error: str = ""
    loaded: bool = True  # False: it failed to load, and ``error`` says why


@functools.cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    found = sorted(entry_points(group=GROUP), key=lambda ep: _dist_name(ep) != BUILTIN)
    owners: dict[str, str] = {}
    for ep in found:
        if ep.name in owners:
            _skip(ep, f"its entry point name '{ep.name}' is taken by {owners[ep.name]}; rename it")
            continue
        if pm.is_blocked(ep.name):
            continue
        owners[ep.name] = _dist_name(ep)
        try:
            pm.register(ep.load(), name=ep.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken third-party plugin must not break the CLI, even one calling sys.exit
            _debug_traceback()
            misfit = isinstance(exc, pluggy.PluginValidationError) and _misfit_hooks(pm, exc.plugin)
            _skip(ep, misfit or _describe(exc), loading=True)
    _check_hook_names(pm)
    return pm


def _check_hook_names(pm: pluggy.PluginManager) -> None:
    """A hook whose name is mistyped would never be called: warned, and shown in ``mnistctl list plugins``."""
    hooks = [f"register_{kind}" for kind in KINDS]
    for caller in list(vars(pm.hook).values()):
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            plugin = f"plugin '{impl.plugin_name}' ({_package_of(impl.plugin)})"
            _problem(impl.plugin_name, "hooks", f"{plugin} implements {caller.name}, which is not a mnistctl hook and is never called ({suggest(caller.name, hooks, n=1)})")
    for name, plugin in pm.list_name_plugin():
        for hook in hooks:
            if inspect.isroutine(getattr(plugin, hook, None)) and pm.parse_hookimpl_opts(plugin, hook) is None:
                _problem(name, "hooks", f"plugin '{name}' ({_package_of(plugin)}) defines {hook} without @mnistctl.hookimpl, so it is never called")


def _misfit_hooks(pm: pluggy.PluginManager, plugin) -> str | None:
    """What is wrong with the first of ``plugin``'s hooks that cannot take the one argument mnistctl passes, ``register``."""
    for kind in KINDS:
        hook = f"register_{kind}"
        if inspect.isroutine(function := getattr(plugin, hook, None)) and pm.parse_hookimpl_opts(plugin, hook) is not None:
            if misfit := _misfit(function, hook):
                return misfit
    return None


def _misfit(function, hook: str) -> str | None:
    """``register_archs(reg) does not take register, ...``: a hook mnistctl cannot call with ``register=``; None when it can."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    takes = any(p.name == "register" and p.kind != p.POSITIONAL_ONLY or p.kind == p.VAR_KEYWORD for p in parameters)
    needed = [p.name for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "register"]
    if takes and not needed:
        return None
    problem = f"needs {', '.join(needed)}, which mnistctl does not pass" if takes else "does not take register, the one argument mnistctl passes"
    return f"{hook}{inspect.signature(function)} {problem}; write it as def {hook}(register)"


_failed: list[PluginInfo] = []  # the entry points that were not loaded, and why
_unloadable: list[PluginInfo] = []  # those of them that failed while loading
_problems: dict[tuple[str, str], list[str]] = {}  # (plugin, kind): what went wrong while it registered that kind


def _skip(ep, reason: str, loading: bool = False) -> None:
    """An entry point left out: ``loading``, because it failed to load."""
    info = PluginInfo(ep.name, ep.value, _dist_name(ep), _dist_version(ep), (), reason, loaded=False)
    _failed.append(info)
    if loading:
        _unloadable.append(info)
    warn(f"plugin '{ep.name}' ({info.package or ep.value}) {'failed to load and ' if loading else ''}is skipped: {reason}")


def _failure(info: PluginInfo) -> str:
    """``plugin 'x' (package) failed to load: why``."""
    return f"plugin '{info.name}' ({info.package or info.module}) failed to load: {info.error}"


@functools.cache
def registry(kind: str) -> Registry:
    """The registry of ``archs``, ``schedulers`` or ``optimizers``, filled by every plugin's hook, the built-ins' first.

    A spec that cannot be registered is left out with a warning; the plugin's other specs are registered."""
    reg = Registry(KINDS[kind], warn=warn)
    hook = getattr(manager().hook, f"register_{kind}")
    reg.unloaded = [_failure(info) for info in _unloadable]
    for key in [key for key in _problems if key[1] == kind]:
        del _problems[key]
    names_of: dict[str, list[str]] = {}  # source: its plugins' names
    for impl in sorted(hook.get_hookimpls(), key=lambda impl: _package_of(impl.plugin) != BUILTIN):
        source, name = _package_of(impl.plugin), impl.plugin_name
        names_of.setdefault(source, []).append(name)

        def register(spec: Spec, _source: str = source, _name: str = name) -> None:
            if not isinstance(spec, Spec):
                _problem(_name, kind, f"plugin '{_name}' ({_source}) registered {with_article(type(spec).__name__)}, not a Spec; it is left out (call register(Spec(name, factory, description)))")
                return
            try:
                reg.add(replace(spec, source=_source), by=f"plugin '{_name}' ({_source})")
            except UsageError as exc:
                _problem(_name, kind, f"{exc.message}; {exc.hint}")

        if misfit := _misfit(impl.function, f"register_{kind}"):
            _problem(name, kind, f"plugin '{name}' ({source}): {misfit}")
            continue
        try:
            returned = impl.function(register=register)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            _debug_traceback()
            _problem(name, kind, f"plugin '{name}' ({source}) failed while registering {kind}: {_describe(exc)}")
            continue
        if returned is not None:
            _problem(name, kind, f"plugin '{name}' ({source}): register_{kind} returned {with_article(type(returned).__name__)}, which is ignored (call register(spec) for each spec instead)")
    for spec_name in reg.ambiguous:
        clash = reg.clash(spec_name)
        for name in {name for source in reg.ambiguous[spec_name] for name in names_of.get(source, [])}:
            _problem(name, kind, f"{clash.message}; {clash.hint}", warning=False)
    return reg


def _problem(plugin: str, kind: str, message: str, warning: bool = True) -> None:
    """What went wrong while ``plugin`` registered ``kind``: warned, and kept for ``mnistctl list plugins``."""
    _problems.setdefault((plugin, kind), []).append(message)
    if warning:
        warn(message)


def archs() -> Registry:
    return registry("archs")


def schedulers() -> Registry:
    return registry("schedulers")


def optimizers() -> Registry:
    return registry("optimizers")


def plugin_infos() -> list[PluginInfo]:
    """Every plugin, loaded or not; ``error`` says what went wrong while it loaded or registered."""
    pm = manager()
    for kind in KINDS:
        registry(kind)
    infos = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(h.name for h in pm.get_hookcallers(plugin) or [] if h.spec is not None)  # a mistyped hook is warned about, not listed
        package = _package_of(plugin)
        error = "; ".join(p for kind in (*KINDS, "hooks") for p in _problems.get((name, kind), []))
        infos.append(PluginInfo(name, _module_of(plugin), package, _version(package), hooks, error))
    return sorted(infos + _failed, key=lambda i: i.name)


def provenance(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Which distribution, at which version, provides the architecture, optimizer and scheduler a config names."""
    provided = {}
    for setting, kind in SETTINGS.items():
        package = registry(kind).get(config[setting]).source
        provided[setting] = {"name": config[setting], "package": package, "version": _version(package)}
    return provided


def spec_of(config: dict[str, Any], setting: str, needed_by: str = "this run") -> Spec:
    """The spec a run's config names in ``setting`` (arch, optimizer or scheduler). One the run recorded as coming
    from a distribution that is no longer installed, or no longer has it, is a NotFoundError saying what to install,
    naming the run as the user gave it in ``needed_by`` (``run NAME``, ``config file PATH``)."""
    kind, name = SETTINGS[setting], config.get(setting)
    try:
        return registry(kind).get(name)
    except NotFoundError:
        package, version = _recorded(config, setting)
        if package is None:
            raise
        what = f"{needed_by} needs the {KINDS[kind]} '{name}' from {package}" + (f" {version}" if version else "")
        hint = f"pip install {package}=={version}" if version else f"pip install {package}"
        installed = _version(package)
        failed = next((info for info in _unloadable if info.package == package), None)
        if installed and failed:
            raise NotFoundError(
                f"{what}, and {package} {installed} is installed but failed to load: {failed.error}",
                f"MNISTCTL_DEBUG=1 shows why; install what it needs, or report it to the authors of {package}",
            ) from None
        if installed:
            raise NotFoundError(f"{what}, but {package} {installed} is installed, which has no {KINDS[kind]} '{name}'", hint) from None
        raise NotFoundError(f"{what}, which is not installed", hint) from None


def at_fault(exc: BaseException) -> str | None:
    """The third-party plugin whose code raised ``exc``, as ``plugin 'name' (package)``: the innermost one its traceback passes through."""
    if not manager.cache_info().currsize:  # no plugin was loaded, so none raised
        return None
    third_party = {_module_of(plugin).split(".")[0]: name for name, plugin in manager().list_name_plugin() if _package_of(plugin) != BUILTIN}
    tops = [frame.f_globals.get("__name__", "").split(".")[0] for frame, _ in traceback.walk_tb(exc.__traceback__)]
    culprit = next((top for top in reversed(tops) if top in third_party), None)
    return culprit and f"plugin '{third_party[culprit]}' ({_distributions().get(culprit, culprit)})"


def _recorded(config: dict[str, Any], setting: str) -> tuple[str | None, str | None]:
    """The third-party package and version a run's config records for ``setting`` (absent in older runs): (None, None)
    for a built-in or nothing recorded."""
    entry = config.get("plugins", {}).get(setting) if isinstance(config.get("plugins"), dict) else None
    package, version = (entry.get("package"), entry.get("version")) if isinstance(entry, dict) else (None, None)
    if not isinstance(package, str) or package == BUILTIN:
        return None, None
    return package, version if isinstance(version, str) else None


def changed_since(config: dict[str, Any]) -> str | None:
    """How the installed plugins differ from those a run's config recorded (``plugins``): ``trained with mnistctl-yours
    0.1.0, 0.2.0 is installed``, and what to install; None when none differs or nothing was recorded."""
    for setting in SETTINGS:
        package, version = _recorded(config, setting)
        if package is not None and version and (now := _version(package)) != version:
            installed = f"{now} is installed" if now else "it is not installed"
            return f"it was trained with {package} {version} and {installed}: pip install {package}=={version}"
    return None


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
    """The exception in one line: some (pluggy's among them) spread their message over several."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _debug_traceback() -> None:
    """Under MNISTCTL_DEBUG=1, the traceback of the exception being handled, for a plugin's author."""
    if os.environ.get("MNISTCTL_DEBUG") == "1":
        traceback.print_exc()
