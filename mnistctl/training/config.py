"""The training configuration: defaults, presets, a config file and flags, resolved and validated."""

from __future__ import annotations

import copy
import json
import platform
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mnistctl import __version__
from mnistctl.errors import NotFoundError, UsageError, parse_problem
from mnistctl.fsutil import MAX_JSON, NotRegular, open_regular
from mnistctl.registry import PRECISIONS, parse_options, suggest
from mnistctl.training import schema

DEFAULTS: dict[str, Any] = {
    "arch": "simplecnn",
    "arch_options": {},
    "optimizer": "sgd",
    "optimizer_options": {},
    "lr": None,
    "weight_decay": None,
    "scheduler": "step",
    "scheduler_options": {},
    "epochs": 12,
    "batch_size": 128,
    "ema": None,  # decay of an average of the weights, validated and saved (train --ema)
    "augment": None,
    "val_split": 5000,
    "early_stopping": None,
    "monitor": "val_acc",
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "channels_last": True,
    "checkpoint_every": 1,
    "log_every": 50,
    "log_layers": None,  # every N steps: per-layer statistics (train --log-layers)
    "limit": None,
    "name": None,
}
OPTIONS = ("arch_options", "optimizer_options", "scheduler_options")
DEFAULT_AUGMENT = {"rotation": 10.0, "shift": 0.1}
AUGMENT_KEYS = tuple(schema.Augment.model_fields)

PRESETS: dict[str, dict[str, Any]] = {
    "fast": {
        "arch": "simplecnn",
        "arch_options": {"channels": [16, 24], "dropout": 0.25},
        "optimizer": "sgd",
        "lr": 0.1,
        "scheduler": "onecycle",
        "epochs": 2,
        "batch_size": 128,
    },
    "best": {
        "arch": "strided-bn",
        "optimizer": "sgd",
        "lr": 0.05,
        "weight_decay": 5e-4,
        "scheduler": "onecycle",
        "epochs": 40,
        "batch_size": 128,
        "augment": DEFAULT_AUGMENT,
        "monitor": "val_loss",
    },
}
RATE_SETTINGS = ("lr", "weight_decay")  # settings of their own, not optimizer options; by default the optimizer factory's
RUN_FIELDS = ("data", "versions", "plugins", "created", "command", "data_dir", "study", "distributed")  # what a run's config.json records beyond its settings
FORMATS = {".toml": "TOML", ".json": "JSON"}


def load_file(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON config file of settings, a preset and a name, as it is (a run's config.json holds :data:`RUN_FIELDS` too)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"config file {path} is a folder, not a file", "pass a TOML or JSON file, such as a run's config.json")
    kind = FORMATS.get(path.suffix.lower())
    try:
        with open_regular(path) as f:
            data = f.read(MAX_JSON + 1)
    except FileNotFoundError:
        raise NotFoundError(f"config file {path} does not exist", "check the path given to --config") from None
    except NotRegular:
        raise UsageError(f"config file {path} is not a regular file", "pass a TOML or JSON file") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read ({exc.strerror or exc})", "check its permissions") from None
    if kind is None:
        raise UsageError(f"config file {path} is neither .toml nor .json: config files are TOML (.toml) or JSON (.json)", "write the settings as TOML, e.g. epochs = 2, in a .toml file")
    if len(data) > MAX_JSON:
        raise UsageError(f"config file {path} is larger than {MAX_JSON // 2**20} MB", "a config file holds a few settings")
    try:
        loaded = tomllib.loads(data.decode("utf-8-sig")) if kind == "TOML" else json.loads(data)  # a BOM, as JSON allows
    except ValueError as exc:  # not TOML or JSON, not UTF-8, or an integer too long to read
        raise UsageError(f"config file {path} is not valid {kind}: {parse_problem(exc)}", "fix the file or pass flags instead") from None
    except RecursionError:
        raise UsageError(f"config file {path} is nested too deeply", "settings are at most a table of tables") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must hold a table of settings", "see the README for an example")
    return loaded


def resolve(flags: dict[str, Any], config_file: str | Path | None = None, preset: str | None = None) -> dict[str, Any]:
    """Defaults < preset < config file < flags, then validated against the registries. A ``preset`` (the flag)
    that all of its settings are set over would change nothing: it is refused, not recorded as if it applied."""
    from mnistctl.plugins import spec_of

    defaults = json.loads(json.dumps(DEFAULTS))
    file_settings = load_file(config_file) if config_file else {}
    recorded = {key: file_settings.pop(key) for key in RUN_FIELDS if key in file_settings}  # a run's config.json given back
    file_preset = _file_preset(file_settings.pop("preset", None), config_file)
    flagged_preset, preset = preset, preset if preset is not None else file_preset  # a --preset flag wins over the file's
    if preset is not None and preset not in PRESETS:
        raise NotFoundError(f"unknown preset '{preset}'", suggest(preset, list(PRESETS)))
    config, typed = _layered({**defaults, **PRESETS.get(preset, {})}, file_settings, flags, config_file)
    if flagged_preset is not None and _unchanged_without_preset(config, defaults, file_settings, flags, config_file):
        _refuse_hidden_preset(flagged_preset, config_file, flags, bool(recorded))
    config = schema.check(config)
    provenance = recorded.get("plugins") if isinstance(recorded.get("plugins"), dict) else {}
    from_file = {"plugins": {k: v for k, v in provenance.items() if not flags.get(k)}}  # what to install, if a plugin is gone
    arch, optimizer, scheduler = (spec_of({**config, **from_file}, setting, f"config file {config_file}") for setting in ("arch", "optimizer", "scheduler"))
    if config["precision"] not in ("auto", *arch.precisions):
        raise UsageError(f"{arch.label} computes in {' and '.join(arch.precisions)} only, not {config['precision']}", f"use --precision {arch.precisions[0]} or auto")
    flagged = {key: flags[key] if isinstance(flags.get(key), dict) else {} for key in OPTIONS}
    config["arch_options"] = {**options_of(arch, "architecture"), **plugin_options(arch, typed["arch_options"], "architecture", flagged["arch_options"])}
    optimizer_options = plugin_options(optimizer, typed["optimizer_options"], "optimizer", flagged["optimizer_options"])
    config["optimizer_options"] = {**options_of(optimizer, "optimizer"), **optimizer_options}
    for key in RATE_SETTINGS:
        config[key] = config[key] if config[key] is not None else optimizer.defaults.get(key)
    if config["lr"] is None or config["weight_decay"] is None:
        raise UsageError(f"optimizer '{optimizer.name}' has no default learning rate or weight decay", "pass --lr and --weight-decay")
    scheduler_options = plugin_options(scheduler, typed["scheduler_options"], "scheduler", flagged["scheduler_options"])
    config["scheduler_options"] = {**options_of(scheduler, "scheduler"), **scheduler_options}
    config = schema.check(config)
    if config["early_stopping"] and not config["val_split"]:
        raise UsageError("early stopping needs a validation split", "set --val-split above 0")
    config["preset"] = preset
    return _jsonable(config)


def _layered(under: dict[str, Any], file_settings: dict[str, Any], flags: dict[str, Any], config_file) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings ``under`` (the defaults with a preset's over them), a config file's over those and the flags' over all;
    with the option tables as they were before the flags (typed, where flags give text)."""
    config, file_settings = copy.deepcopy(under), copy.deepcopy(file_settings)
    if config_file:
        unknown = sorted(set(file_settings) - set(DEFAULTS))
        if unknown:
            raise UsageError(f"config file {config_file} has unknown setting '{unknown[0]}'", _setting_hint(unknown[0]))
        _new_plugins_start_afresh(config, file_settings)
        for key in OPTIONS:  # a file's table changes only the options it names, as a flag does
            if isinstance(file_settings.get(key), dict) and isinstance(config[key], dict):
                file_settings[key] = {**config[key], **file_settings[key]}
        if file_settings.get("augment") is False:  # as --no-augment: TOML has no null
            file_settings["augment"] = None
        elif file_settings.get("augment") is True:  # as --augment: the preset's amounts, else the defaults
            file_settings["augment"] = config["augment"] or {}
        config.update(file_settings)
        schema.check(config)
    _new_plugins_start_afresh(config, flags)
    typed = {key: config[key] for key in OPTIONS}  # from the preset and file, checked as they are; flags' strings are parsed
    for key, value in flags.items():
        if value is None:
            continue
        if (key.endswith("_options") or key == "augment") and isinstance(value, dict):
            config[key] = {**(config[key] or {}), **value}  # a flag changes only the amounts it names
        else:
            config[key] = value
    return config, typed


def _unchanged_without_preset(config: dict[str, Any], defaults: dict[str, Any], file_settings: dict[str, Any], flags: dict[str, Any], config_file) -> bool:
    try:
        return schema.check(_layered(defaults, file_settings, flags, config_file)[0]) == schema.check(config)
    except UsageError:  # settings valid only over the preset, or not at all: told as they are next
        return False


def _refuse_hidden_preset(preset: str, config_file, flags: dict[str, Any], a_runs_config: bool) -> None:
    """--preset under a config file (or flags) that sets every one of its settings."""
    flagged = any(flags.get(key) is not None for key in PRESETS[preset])
    if a_runs_config:
        why = f"config file {config_file} is a run's config.json, which sets every setting"
    else:
        by = f"config file {config_file}{' and the flags' * flagged}" if config_file else "the flags"
        why = f"{by} set{'' if flagged else 's'} all of its settings ({', '.join(key for key in PRESETS[preset] if key not in OPTIONS)})"
    raise UsageError(
        f"--preset {preset} would change nothing: {why}",
        f"a config file's settings go over its preset's; drop --preset, or use --preset {preset} with flags instead of --config"
        if config_file else "flags go over a preset's settings; drop --preset or some of the flags",
    )


OPTION_TABLES = {  # a flag's name used as a key: the table it is in a file, with an example
    "set": "arch_options = { dropout = 0.3 }", "opt_set": "optimizer_options = { momentum = 0.95 }", "sched_set": "scheduler_options = { gamma = 0.5 }",
}


def _setting_hint(key: str) -> str:
    table = OPTION_TABLES.get(key.replace("-", "_"))
    return f"in a config file the options are a table, e.g. {table}" if table else suggest(key, [*DEFAULTS, "preset"])


def _new_plugins_start_afresh(config: dict[str, Any], settings: dict[str, Any]) -> None:
    """An architecture, optimizer or scheduler that replaces the one so far does not inherit its options."""
    for kind in ("arch", "optimizer", "scheduler"):
        if settings.get(kind) and settings[kind] != config[kind]:
            config[f"{kind}_options"] = {}


def _file_preset(preset: Any, path: str | Path) -> str | None:
    if preset is not None and not isinstance(preset, str):
        raise UsageError(f"config file {path}: preset = {preset!r} is not allowed: expected {' or '.join(PRESETS)}", "fix the file or pass --preset")
    if preset is not None and preset not in PRESETS:
        raise NotFoundError(f"config file {path} has unknown preset '{preset}'", suggest(preset, list(PRESETS)))
    return preset


def options_of(spec, kind: str) -> dict[str, Any]:
    """A plugin's options and their defaults: its factory's, less an optimizer's lr and weight decay (settings of their own)."""
    return {key: value for key, value in spec.defaults.items() if not (kind == "optimizer" and key in RATE_SETTINGS)}


def plugin_options(spec, given: dict[str, Any], kind: str, flagged: dict[str, Any] | None = None) -> dict[str, Any]:
    """Options for a plugin, checked against its factory's defaults: ``given`` typed (a file's) as they are, ``flagged`` over them, strings parsed."""
    flagged = flagged or {}
    rates = [key.replace("-", "_") for key in [*given, *flagged] if kind == "optimizer" and key.replace("-", "_") in RATE_SETTINGS]
    if rates:
        raise UsageError(f"{rates[0]} is not an optimizer option", f"set it with --{rates[0].replace('_', '-')}, or {rates[0]} in a config or space file")
    defaults = options_of(spec, kind)
    options = {**parse_options(spec, given, defaults, parse=False), **parse_options(spec, flagged, defaults)}
    return schema.check_options(spec, options, kind)


def validate(config: dict[str, Any], source: Path) -> dict[str, Any]:
    """A run's recorded settings (its ``source``, config.json), checked as a config file is before the run is resumed."""
    from mnistctl.plugins import spec_of
    from mnistctl.runs import Run

    try:
        settings = schema.check({key: config.get(key, DEFAULTS[key]) for key in DEFAULTS if key != "name"})
        for key, kind in (("arch", "architecture"), ("optimizer", "optimizer"), ("scheduler", "scheduler")):
            plugin_options(spec_of(config, key, f"run {Run(Path(source).parent).name}"), settings[f"{key}_options"], kind)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc.message}", "the run's settings were changed or damaged; start a new run") from None
    return {**json.loads(json.dumps(DEFAULTS)), **config, "augment": settings["augment"]}  # a setting added since the run was made: its default, as checked


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=list))


def default_name(config: dict[str, Any]) -> str:
    from mnistctl.runs import slug

    return slug(
        f"{config['arch']}-e{config['epochs']}-b{config['batch_size']}-lr{config['lr']:g}"
        f"-{config['scheduler']}-s{config['seed']}"
    )


def finish(config: dict[str, Any], dataset, device, n_train: int, n_val: int, command: str = "") -> dict[str, Any]:
    """What a new run records beyond its settings: the precision chosen for the device, its data, provenance
    (with the distribution and version providing its architecture, optimizer and scheduler)."""
    from mnistctl import plugins

    config = dict(config, precision=resolve_precision(config["precision"], device, plugins.spec_of(config, "arch").precisions))
    mean, std = dataset.stats()
    config["data"] = {
        "dir": dataset.folder,
        "dataset": dataset.name,
        "md5": dataset.md5,
        "mean": mean,
        "std": std,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": len(dataset.test_labels),
    }
    return {**config, **provenance(command), "plugins": plugins.provenance(config)}


def resolve_precision(requested: str, device, supported: tuple[str, ...] = PRECISIONS) -> str:
    """``auto``: bf16 autocast where the hardware has bf16 arithmetic (CUDA, AMX or AVX512-BF16 CPUs), else fp32;
    for an architecture that computes in one precision only (``supported``), that one.

    Measured on an AVX-512 CPU without bf16 arithmetic, bf16 autocast halved simplecnn's throughput.
    """
    if requested != "auto":
        return requested
    if len(supported) == 1:
        return supported[0]
    import torch

    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    return "fp32"


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def provenance(command: str) -> dict[str, Any]:
    import torch

    return {
        "versions": {"mnistctl": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }
