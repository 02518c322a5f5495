"""Plugins: third-party distributions found through entry points, broken ones skipped, throw-away ones in-process."""

import contextlib
import json
import shutil
import textwrap

import pytest
from test_cli import run_mnistctl

from mnistctl import hookimpl, plugins
from mnistctl.errors import NotFoundError, UsageError
from mnistctl.registry import Spec

TINYNET = '''
import mnistctl
from mnistctl.registry import Spec


def tinynet(width=4, num_classes=10):
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


@mnistctl.hookimpl
def register_archs(register):
    register(Spec("tinynet", tinynet, "A tiny third-party net", params=90))
'''
BROKEN = 'raise RuntimeError("boom [/red] while importing")\n'
MISTYPED_HOOK = TINYNET.replace("def register_archs(register)", "def register_arch(register)").replace("tinynet", "typonet")
UNMARKED_HOOK = TINYNET.replace("@mnistctl.hookimpl\n", "").replace("tinynet", "plainnet")
MISNAMED_ARGUMENT = TINYNET.replace("def register_archs(register)", "def register_archs(reg)").replace("tinynet", "argnet")


def install(site, dist, module, source, entry_point, version="0.3.0"):
    """Install a one-module distribution into ``site`` the way pip lays it out."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mnistctl]\n{entry_point} = {module}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    files = [f"{module}.py", *(f"{info.name}/{n}" for n in ("METADATA", "entry_points.txt", "top_level.txt", "RECORD"))]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install(site, "mnistctl-tinynet", "mnistctl_tinynet", TINYNET, "tinynet")
    install(site, "mnistctl-broken", "mnistctl_broken", BROKEN, "brokenplug", version="1.0")
    install(site, "mnistctl-typonet", "mnistctl_typonet", MISTYPED_HOOK, "typonet")
    install(site, "mnistctl-argnet", "mnistctl_argnet", MISNAMED_ARGUMENT, "argnet")
    install(site, "mnistctl-plainnet", "mnistctl_plainnet", UNMARKED_HOOK, "plainnet")
    return site


def test_third_party_arch_is_listed_with_its_package(site):
    result = run_mnistctl("list", "archs", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tinynet"]["source"] == "mnistctl-tinynet"
    assert rows["tinynet"]["params"] == 90
    assert rows["tinynet"]["defaults"] == {"width": 4, "num_classes": 10}
    assert rows["lenet"]["source"] == "mnistctl"


def test_third_party_plugin_in_plugin_list(site):
    result = run_mnistctl("list", "plugins", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["tinynet"] == {
        "name": "tinynet",
        "module": "mnistctl_tinynet",
        "package": "mnistctl-tinynet",
        "version": "0.3.0",
        "hooks": ["register_archs"],
        "error": "",
        "loaded": True,
    }
    assert rows["brokenplug"]["package"] == "mnistctl-broken" and rows["brokenplug"]["loaded"] is False
    assert rows["brokenplug"]["error"] == "RuntimeError: boom [/red] while importing"


def test_broken_plugin_is_skipped_with_a_warning(site):
    result = run_mnistctl("list", "archs", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert {"lenet", "simplecnn", "deep-dropout", "tinynet"} <= {r["name"] for r in json.loads(result.stdout)}
    warnings = [line for line in result.stderr.splitlines() if "brokenplug" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning:")
    assert warnings[0] == "warning: plugin 'brokenplug' (mnistctl-broken) failed to load and is skipped: RuntimeError: boom [/red] while importing"
    assert "Traceback" not in result.stderr


def test_broken_plugin_shows_in_plugin_table(site):
    result = run_mnistctl("list", "plugins", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert "brokenplug" in result.stdout and "failed: RuntimeError" in result.stdout
    assert "tinynet" in result.stdout


def test_a_mistyped_hook_is_warned_with_the_hook_it_was_meant_to_be(site):
    result = run_mnistctl("list", "plugins", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    problem = "plugin 'typonet' (mnistctl-typonet) implements register_arch, which is not a mnistctl hook and is never called (did you mean 'register_archs'?)"
    listed = {r["name"]: r for r in json.loads(result.stdout)}["typonet"]
    assert listed["error"] == problem and "register_arch" not in listed["hooks"]  # not listed as if it registered something
    assert f"warning: {problem}" in result.stderr.splitlines()


def test_a_hook_without_hookimpl_is_warned_and_listed(site):
    result = run_mnistctl("list", "plugins", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    problem = "plugin 'plainnet' (mnistctl-plainnet) defines register_archs without @mnistctl.hookimpl, so it is never called"
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert listed["plainnet"]["error"] == problem and listed["plainnet"]["loaded"] and not listed["brokenplug"]["loaded"]
    assert f"warning: {problem}" in result.stderr.splitlines()
    table = run_mnistctl("list", "plugins", PYTHONPATH=str(site)).stdout
    assert "failed: RuntimeError" in table and "failed: plugin 'plainnet'" not in table  # it loaded: its problem, not a failure


def test_a_plugin_pluggy_refuses_is_one_line_of_warning(site):
    result = run_mnistctl("list", "archs", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert "argnet" not in {r["name"] for r in json.loads(result.stdout)}
    [warning] = [line for line in result.stderr.splitlines() if "argnet" in line]
    assert warning == (
        "warning: plugin 'argnet' (mnistctl-argnet) failed to load and is skipped: "
        "register_archs(reg) does not take register, the one argument mnistctl passes; write it as def register_archs(register)"
    )


def test_a_hook_taking_nothing_or_more_than_register_says_how_to_write_it(plug, capsys):
    class Plugin:
        @hookimpl
        def register_archs(self):
            pass

        @hookimpl
        def register_optimizers(self, register, extra=None):
            register(Spec("spare-sgd", lambda params, lr=0.1, weight_decay=0.0: None))

    Plugin.__module__ = "mnistctl_careful"
    plug(Plugin(), "careful")
    assert len(plugins.archs()) and "spare-sgd" in plugins.optimizers()  # a keyword with a default is fine
    warned = capsys.readouterr().err.splitlines()
    assert "warning: plugin 'careful' (mnistctl_careful): register_archs() does not take register, the one argument mnistctl passes; write it as def register_archs(register)" in warned

    def register_schedulers(register, epochs):  # pluggy refuses it; the warning says this instead
        pass

    assert plugins._misfit(register_schedulers, "register_schedulers") == (
        "register_schedulers(register, epochs) needs epochs, which mnistctl does not pass; write it as def register_schedulers(register)"
    )


class ThrowAway:
    @hookimpl
    def register_archs(self, register):
        def throwaway_net(width=3, num_classes=10):
            from torch import nn

            return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, width), nn.Linear(width, num_classes))

        register(Spec("lenet", throwaway_net, "clashes with the built-in"))
        register(Spec("throwaway-net", throwaway_net, "in-test arch", params=28 * 28 * 3 + 3 + 3 * 10 + 10))

    @hookimpl
    def register_schedulers(self, register):
        register(Spec("throwaway-sched", lambda optimizer, epochs, steps_per_epoch: None))


@contextlib.contextmanager
def registered(plugin, name: str):
    """``plugin`` registered in this process while the block runs, the registries rebuilt around it."""
    pm = plugins.manager()
    pm.register(plugin, name=name)
    plugins.registry.cache_clear()
    try:
        yield
    finally:
        pm.unregister(name=name)
        plugins.registry.cache_clear()


@pytest.fixture
def throwaway():
    with registered(ThrowAway(), "throwaway"):
        yield


CLASH = "plugin 'throwaway' (test_plugins) registers the architecture 'lenet', which mnistctl already has; rename it"


def test_registered_plugin_class_joins_the_registries(throwaway, capsys):
    torch = pytest.importorskip("torch")
    spec = plugins.archs().get("throwaway-net")
    model = spec.factory()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert spec.params == sum(p.numel() for p in model.parameters())
    assert "throwaway-sched" in plugins.schedulers()
    assert plugins.archs().get("lenet").source == "mnistctl"
    assert capsys.readouterr().err.splitlines() == [f"warning: {CLASH}"]  # one line, its other specs registered


def test_registered_plugin_class_is_listed(throwaway):
    info = {i.name: i for i in plugins.plugin_infos()}["throwaway"]
    assert info.module == __name__
    assert set(info.hooks) == {"register_archs", "register_schedulers"}
    assert info.error == CLASH


def test_unregistered_plugin_leaves_no_trace(throwaway):
    assert "throwaway-net" in plugins.archs()
    plugins.manager().unregister(name="throwaway")
    plugins.registry.cache_clear()
    try:
        assert "throwaway-net" not in plugins.archs()
        assert "throwaway-sched" not in plugins.schedulers()
        assert "throwaway" not in {i.name for i in plugins.plugin_infos()}
    finally:
        plugins.manager().register(ThrowAway(), name="throwaway")  # for the fixture to unregister


# Plugins that get something wrong: each mistake is one warning naming the plugin, and shows in `list plugins`

@pytest.fixture
def plug():
    """Registers plugin objects in this process for one test: ``plug(plugin, "name")``."""
    pm, names = plugins.manager(), []

    def add(plugin, name):
        pm.register(plugin, name=name)
        names.append(name)
        plugins.registry.cache_clear()

    yield add
    for name in names:
        pm.unregister(name=name)
    plugins.registry.cache_clear()


def _net(width=3):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def _arch_plugin(module, *specs):
    """A plugin registering ``specs`` as architectures, as if it came from the distribution ``module``."""

    class Plugin:
        @hookimpl
        def register_archs(self, register):
            for spec in specs:
                register(spec)

    Plugin.__module__ = module
    return Plugin()


@pytest.mark.parametrize("default", [float("inf"), len, {}, ((1, 2), (3, 4)), (1, 2.5), (1, True)], ids=repr)
def test_a_default_a_runs_config_cannot_hold_leaves_the_spec_out_naming_the_option(plug, capsys, default):
    from typer.testing import CliRunner

    from mnistctl.cli import app

    def clipped(max_norm=default, width=3):
        return _net(width)

    plug(_arch_plugin("mnistctl_clipped", Spec("clipped", clipped), Spec("kept", _net)), "clipped")
    assert "clipped" not in plugins.archs() and "kept" in plugins.archs()
    assert f"registers the architecture 'clipped' with the option 'max_norm' defaulting to {default!r}, which a run's config.json cannot hold" in capsys.readouterr().err
    with pytest.raises(NotFoundError, match="the architecture 'clipped' is left out"):
        plugins.archs().get("clipped")
    listed = json.loads(CliRunner().invoke(app, ["list", "--json"]).stdout, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert "clipped" not in {row["name"] for row in listed["archs"]}


def test_defaults_a_runs_config_holds_are_kept(plug):
    def held(a=None, b=True, c=3, d=0.5, e="x,y", f=(), g=(0.5, 1), h=["a", "b"], i=(True, False)):
        return _net()

    plug(_arch_plugin("mnistctl_held", Spec("held", held)), "held")
    assert "held" in plugins.archs()


@pytest.mark.parametrize("order", [("twina", "twinb"), ("twinb", "twina")])
def test_a_name_two_plugins_register_is_refused_naming_both(plug, capsys, order):
    for name in order:
        plug(_arch_plugin(f"mnistctl_{name}", Spec("twin", _net, name), Spec(f"{name}-net", _net)), name)
    with pytest.raises(UsageError) as info:
        plugins.archs().get("twin")
    assert info.value.exit_code == 2
    assert info.value.message == f"the architecture 'twin' is registered by both mnistctl_{order[0]} and mnistctl_{order[1]}"
    assert "twin" not in plugins.archs().names() and {"twina-net", "twinb-net"} <= set(plugins.archs().names())
    assert capsys.readouterr().err == ""  # using the name: its error says it, not a warning as well
    plugins.registry.cache_clear()
    assert "twin" not in plugins.archs().names() and "twin" not in plugins.archs()
    assert capsys.readouterr().err.splitlines() == [f"warning: {info.value.message}; uninstall one of them to use it"]
    errors = {i.name: i.error for i in plugins.plugin_infos()}
    assert info.value.message in errors["twina"] and info.value.message in errors["twinb"]


TWIN = TINYNET.replace('register(Spec("tinynet", tinynet, "A tiny third-party net", params=90))', 'register(Spec("twin", tinynet))')


def test_a_name_two_installed_plugins_register_is_said_once_where_it_is_used(tmp_path):
    for twin in ("twina", "twinb"):
        install(tmp_path, f"mnistctl-{twin}", f"mnistctl_{twin}", TWIN, twin)
    clash = "the architecture 'twin' is registered by both mnistctl-twina and mnistctl-twinb"
    for args in (["train", "--arch", "twin"], ["list", "archs", "twin"]):
        used = run_mnistctl(*args, PYTHONPATH=str(tmp_path), MNISTCTL_RUNS_DIR=str(tmp_path / "runs"))
        assert used.returncode == 2 and used.stderr.splitlines() == [f"error: {clash} (uninstall one of them to use it)"]
    listed = run_mnistctl("list", "archs", PYTHONPATH=str(tmp_path))
    assert listed.returncode == 0 and listed.stderr.splitlines() == [f"warning: {clash}; uninstall one of them to use it"]


def test_a_name_one_plugin_registers_twice_is_said_so_and_each_source_named_once(plug, capsys):
    plug(_arch_plugin("mnistctl_clash", Spec("twin", _net, "a"), Spec("twin", _net, "b"), Spec("solo", _net, "first"), Spec("solo", _net, "second")), "clash")
    plug(_arch_plugin("mnistctl_clash2", Spec("twin", _net)), "clash2")
    with pytest.raises(UsageError) as info:
        plugins.archs().get("twin")
    assert str(info.value) == "the architecture 'twin' is registered by both mnistctl_clash and mnistctl_clash2 (uninstall one of them to use it)"
    assert plugins.archs().get("solo").description == "first"
    twice = "plugin 'clash' (mnistctl_clash) registers the architecture '{}' twice; the first is kept; register each name once"
    assert capsys.readouterr().err.splitlines() == [f"warning: {twice.format('twin')}", f"warning: {twice.format('solo')}"]


def test_a_default_its_own_annotation_refuses_is_left_out_with_a_warning(plug, capsys):
    from typing import Annotated, Literal, Optional

    from annotated_types import Ge, Interval, Len

    def floatint(width: int = 2.5):
        return _net()

    def below(width: Annotated[int, Ge(1)] = -3):
        return _net()

    def outside(sizes: Annotated[tuple[int, ...], Ge(1)] = (4, 0)):
        return _net()

    def long(sizes: Annotated[list[int], Len(1, 2)] = (1, 2, 3)):
        return _net()

    def falsy(flag: bool = 0):
        return _net()

    def offlist(pool: Literal["max", "avg"] = "sum"):
        return _net()

    def optional_below(width: Annotated[int, Ge(1)] | None = 0):
        return _net()

    def fine(a: float = 1, b: Optional[int] = None, c: int = None, d: Literal["x", "y"] = "x", e: Annotated[float, Interval(gt=0, le=1)] = 1.0,
             f: Annotated[tuple[int, ...], Ge(1), Len(1)] = (1, 2), g: "tuple[int, int]" = (2, 3), h=-3):
        return _net()

    bad = [floatint, below, outside, long, falsy, offlist, optional_below]
    plug(_arch_plugin("mnistctl_defaults", *[Spec(f.__name__, f) for f in [*bad, fine]]), "defaults")
    assert "fine" in plugins.archs() and not {f.__name__ for f in bad} & set(plugins.archs().names())
    said = "warning: plugin 'defaults' (mnistctl_defaults) registers the architecture '{}' with the option '{}' defaulting to {}, which its annotation {} does not allow; a default must be a value the option takes; it is left out"
    assert capsys.readouterr().err.splitlines() == [
        said.format("floatint", "width", "2.5", "int"),
        said.format("below", "width", "-3", "Annotated[int, Ge(ge=1)]"),
        said.format("outside", "sizes", "(4, 0)", "Annotated[tuple[int, ...], Ge(ge=1)]"),
        said.format("long", "sizes", "(1, 2, 3)", "Annotated[list[int], Len(min_length=1, max_length=2)]"),
        said.format("falsy", "flag", "0", "bool"),
        said.format("offlist", "pool", "'sum'", "Literal['max', 'avg']"),
        said.format("optional_below", "width", "0", "Optional[Annotated[int, Ge(ge=1)]]"),
    ]
    with pytest.raises(NotFoundError, match="the architecture 'floatint' is left out: plugin 'defaults'"):
        plugins.archs().get("floatint")


CHOOSY = """
from typing import Literal, Optional

import mnistctl
from mnistctl.registry import Spec


def choosy(pool: Literal["max", "avg"] = "max", groups: Literal[1, 2, 4] = 1, width: Optional[int] = None, depth: int | None = 2,
           act: Literal["relu", "gelu"] | None = None):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


@mnistctl.hookimpl
def register_archs(register):
    register(Spec("choosy", choosy))
"""


def test_literal_and_optional_options_take_only_what_their_annotations_allow(plug, tmp_path):
    from mnistctl.training import config as trainconfig

    source = {}
    exec(CHOOSY, source)
    plug(_arch_plugin("mnistctl_choosy", Spec("choosy", source["choosy"])), "choosy")

    def resolved(config_file=None, **options):
        return trainconfig.resolve({"arch": "choosy", "arch_options": options}, config_file)["arch_options"]

    def refused(config_file=None, **options):
        with pytest.raises(UsageError) as info:
            resolved(config_file, **options)
        assert info.value.exit_code == 2
        return info.value.message

    assert resolved() == {"pool": "max", "groups": 1, "width": None, "depth": 2, "act": None}
    assert resolved(pool="avg", groups="4", width="8", depth="none", act="gelu") == {"pool": "avg", "groups": 4, "width": 8, "depth": None, "act": "gelu"}
    assert resolved(width="None", act="none")["act"] is None
    for option, value, expected in [("pool", "sum", "max or avg"), ("groups", "3", "1, 2 or 4"), ("groups", "true", "1, 2 or 4"),
                                    ("width", "abc", "a whole number, or none"), ("act", "tanh", "relu or gelu, or none")]:
        assert refused(**{option: value}) == f"architecture 'choosy' option {option} = '{value}' is not allowed: expected {expected}"
    toml = tmp_path / "choosy.toml"
    toml.write_text('arch = "choosy"\n[arch_options]\ngroups = 2\ndepth = "none"\npool = "avg"\n')  # TOML has no null
    assert resolved(toml) == {"pool": "avg", "groups": 2, "width": None, "depth": None, "act": None}
    for table, message in [("groups = 2.0", "groups = 2.0 is not allowed: expected 1, 2 or 4"), ("act = 1", "act = 1 is not allowed: expected relu or gelu, or none")]:
        toml.write_text(f'arch = "choosy"\n[arch_options]\n{table}\n')
        assert refused(toml) == f"architecture 'choosy' option {message}"



def test_a_list_option_defaulting_to_none_takes_the_items_its_annotation_names(plug, tmp_path):
    from mnistctl.training import config as trainconfig

    def listy(extra: list[int] = [], scales: list[float] = []):  # noqa: B006
        from torch import nn

        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    plug(_arch_plugin("mnistctl_listy", Spec("listy", listy)), "listy")

    def resolved(config_file=None, **options):
        return trainconfig.resolve({"arch": "listy", "arch_options": options}, config_file)["arch_options"]

    assert resolved(extra="64,32", scales="1,2") == {"extra": [64, 32], "scales": [1.0, 2.0]}
    assert type(resolved(extra="64")["extra"][0]) is int
    with pytest.raises(UsageError) as info:
        resolved(extra="a")
    assert info.value.message.endswith("expected a list of whole numbers"), info.value.message
    toml = tmp_path / "listy.toml"
    toml.write_text('arch = "listy"\n[arch_options]\nextra = [64, 32]\n')
    assert resolved(toml)["extra"] == [64, 32]

def test_a_value_outside_a_literal_is_one_line_naming_the_choices_and_list_shows_the_defaults(tmp_path):
    install(tmp_path, "mnistctl-choosy", "mnistctl_choosy", CHOOSY, "choosy")
    listed = run_mnistctl("list", "archs", "choosy", "--json", PYTHONPATH=str(tmp_path))
    assert json.loads(listed.stdout)[0]["defaults"] == {"pool": "max", "groups": 1, "width": None, "depth": 2, "act": None}
    table = run_mnistctl("list", "archs", "choosy", PYTHONPATH=str(tmp_path)).stdout
    assert all(f" {option} " in table for option in ("pool=max", "width=none", "depth=2", "act=none"))  # as --set takes them
    refused = run_mnistctl("train", "--arch", "choosy", "--set", "pool=sum", PYTHONPATH=str(tmp_path), MNISTCTL_RUNS_DIR=str(tmp_path / "runs"))
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        "error: architecture 'choosy' option pool = 'sum' is not allowed: expected max or avg (fix --set or the config file)"
    ]


def test_list_shows_what_a_literal_option_takes_in_the_table_and_in_json(tmp_path):
    install(tmp_path, "mnistctl-choosy", "mnistctl_choosy", CHOOSY, "choosy")
    listed = json.loads(run_mnistctl("list", "archs", "choosy", "--json", PYTHONPATH=str(tmp_path)).stdout)[0]
    assert listed["choices"] == {"pool": ["max", "avg"], "groups": [1, 2, 4], "act": ["relu", "gelu", None]}
    everything = json.loads(run_mnistctl("list", "--json", PYTHONPATH=str(tmp_path)).stdout)
    assert {row["name"]: row["choices"] for row in everything["archs"]}["simplecnn"] == {}  # every row has them
    table = run_mnistctl("list", "archs", "choosy", PYTHONPATH=str(tmp_path)).stdout
    assert all(f" {option} " in table for option in ("pool=max (max|avg)", "groups=1 (1|2|4)", "act=none (relu|gelu|none)", "width=none"))
    narrow = run_mnistctl("list", "archs", "choosy", PYTHONPATH=str(tmp_path), COLUMNS="30").stdout.splitlines()
    cells = [line.split("│")[2].strip() for line in narrow if line.count("│") >= 3]
    assert cells[cells.index("act=none") + 1] == "(relu|gelu|none)"  # a default too wide with its choices: they go below it, whole


def test_an_empty_default_is_listed_as_the_command_line_takes_it(plug):
    import re
    import shlex

    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.registry import parse_options

    def bare(hidden=(), label="", width=3):
        return _net(width)

    spec = Spec("bare", bare)
    plug(_arch_plugin("mnistctl_bare", spec), "bare")
    result = CliRunner().invoke(app, ["list", "archs", "bare"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = re.findall(r"\b(?:hidden|label|width)=\S*", result.stdout)
    assert shown == ['hidden=""', 'label=""', "width=3"]
    assert parse_options(spec, [shlex.split(option)[0] for option in shown]) == spec.defaults  # as a shell passes them to --set


def test_an_architecture_declares_the_precisions_it_computes_in_and_a_wrong_declaration_is_left_out(plug, capsys):
    plug(_arch_plugin("mnistctl_exact", Spec("exact", _net, precisions=["fp32"]), Spec("both", _net), Spec("fp16net", _net, precisions=("fp16",)),
                      Spec("wordnet", _net, precisions="fp32"), Spec("nonenet", _net, precisions=())), "exact")
    assert plugins.archs().get("exact").precisions == ("fp32",) and plugins.archs().get("both").precisions == ("fp32", "bf16")
    assert not {"fp16net", "wordnet", "nonenet"} & set(plugins.archs().names())
    assert capsys.readouterr().err.splitlines() == [
        f"warning: plugin 'exact' (mnistctl_exact) registers the architecture '{name}' with precisions={given!r}, not one or both of fp32 and bf16; "
        "give a tuple such as precisions=('fp32',); it is left out"
        for name, given in (("fp16net", ("fp16",)), ("wordnet", "fp32"), ("nonenet", ()))
    ]


def test_an_fp32_only_architecture_trains_in_fp32_by_default_refuses_bf16_and_list_says_so(plug, monkeypatch):
    import torch
    from typer.testing import CliRunner

    from mnistctl.cli import app
    from mnistctl.training import config as trainconfig

    monkeypatch.setattr(trainconfig, "cpu_has_bf16", lambda: True)
    plug(_arch_plugin("mnistctl_exact", Spec("exact", _net, "float32 arithmetic", precisions=("fp32",))), "exact")
    precisions = plugins.archs().get("exact").precisions
    assert trainconfig.resolve_precision("auto", torch.device("cpu"), precisions) == "fp32"
    assert trainconfig.resolve_precision("auto", torch.device("cpu")) == "bf16"  # what any other architecture gets here
    assert trainconfig.resolve({"arch": "exact", "precision": "fp32"})["precision"] == "fp32"
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({"arch": "exact", "precision": "bf16"})
    assert (info.value.message, info.value.hint, info.value.exit_code) == (
        "the architecture 'exact' from mnistctl_exact computes in fp32 only, not bf16", "use --precision fp32 or auto", 2)
    listed = CliRunner().invoke(app, ["list", "archs", "--json"]).stdout
    assert {row["name"]: row["precisions"] for row in json.loads(listed)}["exact"] == ["fp32"]
    assert {row["name"]: row["precisions"] for row in json.loads(listed)}["lenet"] == ["fp32", "bf16"]
    assert "float32 arithmetic (fp32 only)" in CliRunner().invoke(app, ["list", "archs", "exact"], env={"COLUMNS": "200"}).stdout
    assert "only)" not in CliRunner().invoke(app, ["list", "archs", "lenet"], env={"COLUMNS": "200"}).stdout


def test_an_unknown_name_mentions_the_plugins_that_failed_to_load(plug, monkeypatch):
    failed = plugins.PluginInfo("gone", "mnistctl_gone", "mnistctl-gone", "1.0", (), "ModuleNotFoundError: No module named 'some_missing_dep'")
    monkeypatch.setattr(plugins, "_unloadable", [failed])
    plug(_arch_plugin("mnistctl_nothing"), "nothing")  # clears the registries now and after the test
    with pytest.raises(NotFoundError) as info:
        plugins.archs().get("yournet")
    assert info.value.message == "unknown architecture 'yournet'"
    assert info.value.hint.endswith("; plugin 'gone' (mnistctl-gone) failed to load: ModuleNotFoundError: No module named 'some_missing_dep'")


def test_a_run_whose_installed_plugin_failed_to_load_says_so(plug, monkeypatch):
    failed = plugins.PluginInfo("gone", "mnistctl_gone", "mnistctl-gone", "0.1.0", (), "ModuleNotFoundError: No module named 'some_missing_dep'")
    monkeypatch.setattr(plugins, "_unloadable", [failed])
    monkeypatch.setattr(plugins, "_version", lambda package: "0.1.0" if package == "mnistctl-gone" else "")
    plug(_arch_plugin("mnistctl_nothing"), "nothing")
    config = {"arch": "yournet", "plugins": {"arch": {"name": "yournet", "package": "mnistctl-gone", "version": "0.1.0"}}}
    with pytest.raises(NotFoundError) as info:
        plugins.spec_of(config, "arch", "run y1")
    assert str(info.value) == (
        "run y1 needs the architecture 'yournet' from mnistctl-gone 0.1.0, and mnistctl-gone 0.1.0 is installed but failed to load: "
        "ModuleNotFoundError: No module named 'some_missing_dep' (MNISTCTL_DEBUG=1 shows why; install what it needs, or report it to the authors of mnistctl-gone)"
    )


BAD_NAMES = ["", "../escape", "sub/net", "has space", "Upper", "-dash", 7]


def test_names_that_are_not_simple_are_left_out_with_a_warning_each(plug, capsys):
    plug(_arch_plugin("mnistctl_names", *[Spec(n, _net) for n in BAD_NAMES], Spec("fine-name_2.0", _net)), "names")
    assert "fine-name_2.0" in plugins.archs()
    assert not set(BAD_NAMES) & set(plugins.archs().names())
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == len(BAD_NAMES)
    for name, warning in zip(BAD_NAMES, warnings):
        assert warning.startswith(f"warning: plugin 'names' (mnistctl_names) registers the architecture {name!r}, a name that is not allowed")


def test_an_option_without_a_default_is_refused_at_registration(plug, capsys):
    def nodefault(width, dropout=0.1):
        return _net(width)

    def keyword_only(*, depth, width=3):
        return _net(width)

    plug(_arch_plugin("mnistctl_opts", Spec("nodefault", nodefault), Spec("kwonly", keyword_only), Spec("kept", _net)), "opts")
    assert "kept" in plugins.archs() and "nodefault" not in plugins.archs() and "kwonly" not in plugins.archs()
    with pytest.raises(NotFoundError) as info:
        plugins.archs().get("nodefault")
    assert info.value.message == ("the architecture 'nodefault' is left out: plugin 'opts' (mnistctl_opts) registers the architecture 'nodefault' "
                                  "with the option 'width', which has no default")
    assert capsys.readouterr().err.splitlines() == [
        "warning: plugin 'opts' (mnistctl_opts) registers the architecture 'nodefault' with the option 'width', which has no default; every option needs a default; it is left out",
        "warning: plugin 'opts' (mnistctl_opts) registers the architecture 'kwonly' with the option 'depth', which has no default; every option needs a default; it is left out",
    ]


class PassedArguments:
    """A scheduler and an optimizer whose arguments from mnistctl have defaults, and a scheduler that cannot take them."""

    @hookimpl
    def register_schedulers(self, register):
        def clashsched(optimizer, epochs=3, steps_per_epoch=10, gamma=0.5):
            from torch.optim.lr_scheduler import LambdaLR

            return LambdaLR(optimizer, lambda s: gamma ** (s // steps_per_epoch))

        def short(optimizer, gamma=0.5):
            return None

        register(Spec("clashsched", clashsched))
        register(Spec("short", short))

    @hookimpl
    def register_optimizers(self, register):
        def clashopt(params=None, lr=0.01, weight_decay=0.0, momentum=0.9):
            from torch.optim import SGD

            return SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)

        register(Spec("clashopt", clashopt))


def test_arguments_mnistctl_passes_are_not_options(plug, capsys):
    from mnistctl.training import config as trainconfig

    torch = pytest.importorskip("torch")
    plug(PassedArguments(), "passed")
    scheduler, optimizer = plugins.schedulers().get("clashsched"), plugins.optimizers().get("clashopt")
    assert scheduler.defaults == {"gamma": 0.5}
    assert optimizer.defaults == {"lr": 0.01, "weight_decay": 0.0, "momentum": 0.9}
    config = trainconfig.resolve({"scheduler": "clashsched", "optimizer": "clashopt", "scheduler_options": {"gamma": "0.3"}})
    assert config["scheduler_options"] == {"gamma": 0.3} and config["optimizer_options"] == {"momentum": 0.9}
    built = optimizer.build(torch.nn.Linear(2, 2).parameters(), lr=config["lr"], weight_decay=config["weight_decay"], **config["optimizer_options"])
    stepped = scheduler.build(built, 2, 5, **config["scheduler_options"])
    built.step()
    stepped.step()
    with pytest.raises(UsageError, match="'clashsched' has no option 'epochs'"):
        trainconfig.resolve({"scheduler": "clashsched", "scheduler_options": {"epochs": "3"}})
    assert "short" not in plugins.schedulers()
    assert capsys.readouterr().err.splitlines() == [
        "warning: plugin 'passed' (test_plugins) registers the scheduler 'short' with a factory that does not take (optimizer, epochs, steps_per_epoch, **options); it is left out"
    ]


class Careless:
    """Returns its specs instead of registering them, registers a tuple, and fails in a hook."""

    @hookimpl
    def register_archs(self, register):
        return [Spec("returned", _net)]

    @hookimpl
    def register_schedulers(self, register):
        register(("tupled", _net, "a tuple"))

    @hookimpl
    def register_optimizers(self, register):
        raise SystemExit("no optimizers today")


def test_a_careless_plugin_is_warned_and_listed_with_its_problems(plug, capsys):
    plug(Careless(), "careless")
    info = {i.name: i for i in plugins.plugin_infos()}["careless"]  # fills every registry
    assert "returned" not in plugins.archs() and "tupled" not in plugins.schedulers()
    problems = [
        "plugin 'careless' (test_plugins): register_archs returned a list, which is ignored (call register(spec) for each spec instead)",
        "plugin 'careless' (test_plugins) registered a tuple, not a Spec; it is left out (call register(Spec(name, factory, description)))",
        "plugin 'careless' (test_plugins) failed while registering optimizers: SystemExit: no optimizers today",
    ]
    assert info.error == "; ".join(problems)
    assert capsys.readouterr().err.splitlines() == [f"warning: {p}" for p in problems]


def test_list_plugins_shows_what_a_loaded_plugin_registers_beside_its_problems(plug, monkeypatch):
    from typer.testing import CliRunner

    from mnistctl.cli import app

    plug(Careless(), "careless")
    monkeypatch.setenv("COLUMNS", "400")
    row = next(line for line in CliRunner().invoke(app, ["list", "plugins"]).stdout.splitlines() if "careless" in line)
    assert "archs, optimizers, schedulers (plugin 'careless'" in row and "failed:" not in row


def test_debug_shows_the_traceback_of_a_failing_hook(plug, capsys, monkeypatch):
    monkeypatch.setenv("MNISTCTL_DEBUG", "1")
    plug(Careless(), "careless")
    plugins.optimizers()
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise SystemExit("no optimizers today")' in err


@pytest.mark.parametrize("code", [0, 4, None])
def test_a_factory_that_exits_is_a_usage_error_not_a_silent_exit(code):
    def leaving(width=3):
        raise SystemExit(code)

    with pytest.raises(UsageError, match=rf"exited \(code {code}\) instead of building"):
        Spec("leaving", leaving).build()


def test_a_factory_failing_at_its_defaults_or_an_import_is_the_plugins_fault_not_the_users():
    def lazy(width=8):
        import importlib

        importlib.import_module("some_missing_dep")  # a module the plugin imports when it builds

    def picky(width=8, depth=2):
        raise ValueError("width and depth do not fit")

    elsewhere = "choose another architecture, or report it to the authors of mnistctl-lazy"
    with pytest.raises(UsageError) as imported:
        Spec("lazy", lazy, source="mnistctl-lazy", kind="architecture").build(width=4)
    assert str(imported.value) == f"the architecture 'lazy' from mnistctl-lazy cannot be built: ModuleNotFoundError: No module named 'some_missing_dep' ({elsewhere})"
    spec = Spec("picky", picky, source="mnistctl-lazy", kind="architecture")
    for options in ({}, {"width": 8}, {"width": 8, "depth": 2}):  # a run's config holds every option, the defaults too
        with pytest.raises(UsageError) as defaults:
            spec.build(**options)
        assert defaults.value.message == "the architecture 'picky' from mnistctl-lazy cannot be built with its defaults: ValueError: width and depth do not fit"
        assert defaults.value.hint == elsewhere
    with pytest.raises(UsageError) as given:
        spec.build(width=8, depth=3)
    assert given.value.message == "the architecture 'picky' from mnistctl-lazy cannot be built with depth=3: ValueError: width and depth do not fit"
    assert given.value.hint == "check the values given with --set or in the config file"

    def fussy(params, lr=0.1, weight_decay=0.0, momentum=0.9):
        raise ValueError("lr and momentum do not fit")

    with pytest.raises(UsageError) as rates:
        Spec("fussy", fussy, kind="optimizer").build([], lr=0.5, weight_decay=0.0, momentum=0.99)
    assert rates.value.message == "the optimizer 'fussy' cannot be built with lr=0.5 momentum=0.99: ValueError: lr and momentum do not fit"
    assert rates.value.hint == "check the values given with --lr and --opt-set or in the config file"


def test_debug_keeps_the_cause_of_a_factory_failure(monkeypatch):
    def broken(width=3):
        raise ValueError("width must be even")

    spec = Spec("broken", broken)
    with pytest.raises(UsageError) as quiet:
        spec.build()
    assert quiet.value.__cause__ is None and quiet.value.__suppress_context__
    monkeypatch.setenv("MNISTCTL_DEBUG", "1")
    with pytest.raises(UsageError) as debug:
        spec.build()
    assert isinstance(debug.value.__cause__, ValueError)


# Distributions that get something wrong

SYSEXIT = 'import sys\nsys.exit("this plugin refuses to load")\n'
EPNAME = """
import mnistctl
from mnistctl.registry import Spec


def epnet(width=3):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


@mnistctl.hookimpl
def register_archs(register):
    register(Spec("epnet", epnet, "a plugin whose entry point is called lenet"))
"""


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("bad-site")
    install(site, "mnistctl-sysexit", "mnistctl_sysexit", SYSEXIT, "sysexit")
    install(site, "mnistctl-epname", "mnistctl_epname", EPNAME, "lenet")
    return site


def test_a_plugin_exiting_at_import_is_skipped_and_an_entry_point_named_like_a_builtin_is_warned(bad_site):
    result = run_mnistctl("list", "plugins", "--json", PYTHONPATH=str(bad_site))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stderr.splitlines()) == [
        "warning: plugin 'lenet' (mnistctl-epname) is skipped: its entry point name 'lenet' is taken by mnistctl; rename it",
        "warning: plugin 'sysexit' (mnistctl-sysexit) failed to load and is skipped: SystemExit: this plugin refuses to load",
    ]
    rows = {(r["name"], r["package"]): r for r in json.loads(result.stdout)}
    assert rows[("lenet", "mnistctl")]["error"] == ""
    assert rows[("lenet", "mnistctl-epname")]["error"] == "its entry point name 'lenet' is taken by mnistctl; rename it"
    assert rows[("sysexit", "mnistctl-sysexit")]["error"] == "SystemExit: this plugin refuses to load"


def test_debug_shows_the_traceback_of_a_plugin_failing_to_import(site):
    result = run_mnistctl("list", "archs", PYTHONPATH=str(site), MNISTCTL_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "Traceback" in result.stderr and "mnistctl_broken.py" in result.stderr


# Training with a plugin that builds the wrong thing: refused as bad input before the run folder is made

class Shapes:
    @hookimpl
    def register_archs(self, register):
        from torch import nn

        class Pair(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return self.fc(x.flatten(1)), x

        class Asserting(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                assert x.shape[-1] == 32, "expects 32x32 input"
                return self.fc(x.flatten(1))

        def five(width=8):
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 5))

        def eleven(width=8):
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 11))

        def fourd(width=8):
            return nn.Conv2d(1, 10, 1)

        register(Spec("five", five))
        register(Spec("eleven", eleven))
        register(Spec("fourd", fourd))
        register(Spec("pair", lambda width=8: Pair()))
        register(Spec("asserting", lambda width=8: Asserting()))
        register(Spec("notmodule", lambda width=8: {"width": width}))

    @hookimpl
    def register_optimizers(self, register):
        register(Spec("listopt", lambda params, lr=0.1, weight_decay=0.0: list(params)))

    @hookimpl
    def register_schedulers(self, register):
        class Duck:
            def step(self):
                pass

        register(Spec("floatsched", lambda optimizer, epochs, steps_per_epoch, gamma=0.5: gamma))
        register(Spec("ducksched", lambda optimizer, epochs, steps_per_epoch: Duck()))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from test_data import write_set

    folder = tmp_path_factory.mktemp("small-data")
    write_set(folder, n_train=200, n_test=20)
    return folder


@pytest.mark.parametrize("settings, message", [
    ({"arch": "five"}, "the architecture 'five' from test_plugins gives a tensor of shape (2, 5) for 2 images, not scores of shape (2, 10)"),
    ({"arch": "eleven"}, "the architecture 'eleven' from test_plugins gives a tensor of shape (2, 11) for 2 images, not scores of shape (2, 10)"),
    ({"arch": "fourd"}, "the architecture 'fourd' from test_plugins gives a tensor of shape (2, 10, 28, 28) for 2 images, not scores of shape (2, 10)"),
    ({"arch": "pair"}, "the architecture 'pair' from test_plugins gives a value of type tuple for 2 images, not scores of shape (2, 10)"),
    ({"arch": "asserting"}, "the architecture 'asserting' from test_plugins does not fit 28x28 images: AssertionError: expects 32x32 input"),
    ({"arch": "notmodule"}, "the architecture 'notmodule' from test_plugins built a dict, not a torch.nn.Module"),
    ({"arch": "lenet", "arch_options": {"num_classes": "11"}}, "the architecture 'lenet' with num_classes=11 gives a tensor of shape (2, 11) for 2 images"),
    ({"arch": "simplecnn", "arch_options": {"hidden": "0"}}, "the architecture 'simplecnn' with hidden=0 has a layer without weights (classifier.1.weight)"),
    ({"arch": "lenet", "arch_options": {"channels": "0,0"}}, "the architecture 'lenet' with channels=0,0 has a layer without weights (features.0.weight)"),
    ({"optimizer": "listopt"}, "the optimizer 'listopt' from test_plugins built a list, not a torch.optim.Optimizer"),
    ({"scheduler": "floatsched"}, "the scheduler 'floatsched' from test_plugins built a float, not a scheduler with step(), state_dict() and load_state_dict()"),
    ({"scheduler": "ducksched"}, "the scheduler 'ducksched' from test_plugins built a Duck, not a scheduler with step()"),
])
def test_a_plugin_building_the_wrong_thing_is_refused_before_the_run_folder(plug, small_data, tmp_path, settings, message):
    from mnistctl.training import config as trainconfig
    from mnistctl.training.trainer import Trainer

    plug(Shapes(), "shapes")
    quick = {"arch": "lenet", "epochs": 1, "limit": 128, "batch_size": 64, "val_split": 0, "precision": "fp32", "scheduler": "none", "lr": 0.01}
    trainer = Trainer(trainconfig.resolve({**quick, **settings}), None, tmp_path / "runs", small_data)
    with pytest.raises(UsageError) as info:
        trainer.prepare()
    assert info.value.message.startswith(message) and info.value.exit_code == 2
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


# A run remembers which distribution provided its plugins

def test_a_run_names_the_distribution_it_needs_once_that_is_uninstalled(site, small_data, tmp_path):
    runs_dir, plain = tmp_path / "runs", {"MNISTCTL_DATA_DIR": str(small_data), "MNISTCTL_RUNS_DIR": str(tmp_path / "runs")}
    trained = run_mnistctl("train", "--arch", "tinynet", "--epochs", "1", "--limit", "128", "--val-split", "0", "--scheduler", "none",
                           "--name", "tiny1", "--quiet", PYTHONPATH=str(site), **plain)
    assert trained.returncode == 0, trained.stderr
    recorded = json.loads((runs_dir / "tiny1" / "config.json").read_text())["plugins"]
    assert recorded["arch"] == {"name": "tinynet", "package": "mnistctl-tinynet", "version": "0.3.0"}
    assert recorded["scheduler"] == {"name": "none", "package": "mnistctl", "version": recorded["scheduler"]["version"]}
    evaluated = run_mnistctl("eval", "tiny1", **plain)
    assert evaluated.returncode == 2
    assert evaluated.stderr.splitlines() == [
        "error: run tiny1 needs the architecture 'tinynet' from mnistctl-tinynet 0.3.0, which is not installed (pip install mnistctl-tinynet==0.3.0)"
    ]
    resumed = run_mnistctl("train", "--resume", "tiny1", **plain)
    assert resumed.returncode == 2
    assert "needs the architecture 'tinynet' from mnistctl-tinynet 0.3.0" in resumed.stderr
    again = run_mnistctl("train", "--config", str(runs_dir / "tiny1" / "config.json"), **plain)
    assert again.returncode == 2
    assert again.stderr.startswith(f"error: config file {runs_dir / 'tiny1' / 'config.json'} needs the architecture 'tinynet' from mnistctl-tinynet 0.3.0")
    shutil.copytree(runs_dir / "tiny1", tmp_path / "copied")  # named by the folder given, not by the name its config.json keeps
    for args in (["eval", str(tmp_path / "copied")], ["train", "--resume", str(tmp_path / "copied")]):
        copied = run_mnistctl(*args, **plain)
        assert copied.returncode == 2 and copied.stderr.startswith("error: run copied needs the architecture 'tinynet' from mnistctl-tinynet 0.3.0")
    other = run_mnistctl("train", "--config", str(runs_dir / "tiny1" / "config.json"), "--arch", "nosuchnet", **plain)
    assert other.returncode == 2 and other.stderr.startswith("error: unknown architecture 'nosuchnet'")  # not tinynet's package


FLAKY = """
import mnistctl
from mnistctl.registry import Spec
from torch import nn


class Flaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.net, self.calls = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 0

    def forward(self, x):
        self.calls += self.training
        if self.calls > 1:
            raise ValueError("the flaky layer gave up")
        return self.net(x)


@mnistctl.hookimpl
def register_archs(register):
    register(Spec("flaky", Flaky, "fails on its second training step"))
"""


def test_a_plugin_failing_mid_training_is_named_and_the_run_kept_as_failed(small_data, tmp_path):
    site = tmp_path / "site"
    install(site, "mnistctl-flaky", "mnistctl_flaky", FLAKY, "flaky")
    plain = {"MNISTCTL_DATA_DIR": str(small_data), "MNISTCTL_RUNS_DIR": str(tmp_path / "runs"), "PYTHONPATH": str(site)}
    trained = run_mnistctl("train", "--arch", "flaky", "--epochs", "1", "--limit", "128", "--batch-size", "32", "--val-split", "0",
                           "--name", "flaky", "--quiet", **plain)
    assert trained.returncode == 1
    assert trained.stderr.splitlines() == [
        "error: plugin 'flaky' (mnistctl-flaky) failed: ValueError: the flaky layer gave up (report it to its authors; MNISTCTL_DEBUG=1 shows where)"
    ]
    end = json.loads((tmp_path / "runs" / "flaky" / "metrics.jsonl").read_text().splitlines()[-1])
    assert (end["event"], end["status"], end["step"]) == ("end", "failed", 1)
    debug = run_mnistctl("train", "--arch", "flaky", "--epochs", "1", "--limit", "128", "--batch-size", "32", "--val-split", "0", "--quiet",
                         MNISTCTL_DEBUG="1", **plain)
    assert "Traceback" in debug.stderr and "mnistctl_flaky.py" in debug.stderr


def test_a_run_recorded_before_plugins_were_recorded_still_says_unknown(throwaway):
    from mnistctl.errors import NotFoundError
    from mnistctl.models import build_model

    with pytest.raises(NotFoundError, match="unknown architecture 'widenet'"):
        build_model({"name": "old", "arch": "widenet", "arch_options": {}})
    assert build_model({"name": "old", "arch": "throwaway-net", "arch_options": {}}) is not None


def test_a_run_whose_plugin_changed_its_options_since_names_both_versions(small_data, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    install(old, "mnistctl-tinynet", "mnistctl_tinynet", TINYNET, "tinynet", version="0.1.0")
    install(new, "mnistctl-tinynet", "mnistctl_tinynet", TINYNET.replace("width", "channels"), "tinynet", version="0.2.0")
    plain = {"MNISTCTL_DATA_DIR": str(small_data), "MNISTCTL_RUNS_DIR": str(tmp_path / "runs")}
    trained = run_mnistctl("train", "--arch", "tinynet", "--set", "width=3", "--epochs", "1", "--limit", "128", "--val-split", "0",
                           "--scheduler", "none", "--name", "t", "--quiet", PYTHONPATH=str(old), **plain)
    assert trained.returncode == 0, trained.stderr
    drawn = run_mnistctl("visualize", "t", "--what", "filters", PYTHONPATH=str(new), **plain)
    assert drawn.returncode == 1 and "has no option 'width'" in drawn.stderr
    assert "(it was trained with mnistctl-tinynet 0.1.0 and 0.2.0 is installed: pip install mnistctl-tinynet==0.1.0)" in drawn.stderr
