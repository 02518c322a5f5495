"""Plugins: third-party distributions found through entry points, broken ones skipped, throw-away ones in-process."""

import json
import textwrap

import pytest
from test_cli import run_mnistctl

from mnistctl import hookimpl, plugins
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
    }
    assert rows["brokenplug"]["package"] == "mnistctl-broken"
    assert rows["brokenplug"]["error"] == "RuntimeError: boom [/red] while importing"


def test_broken_plugin_is_skipped_with_a_warning(site):
    result = run_mnistctl("list", "archs", "--json", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert {"lenet", "simplecnn", "deep-dropout", "tinynet"} <= {r["name"] for r in json.loads(result.stdout)}
    warnings = [line for line in result.stderr.splitlines() if "brokenplug" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning:")
    assert "mnistctl_broken" in warnings[0] and "boom [/red] while importing" in warnings[0]
    assert "Traceback" not in result.stderr


def test_broken_plugin_shows_in_plugin_table(site):
    result = run_mnistctl("list", "plugins", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert "brokenplug" in result.stdout and "failed: RuntimeError" in result.stdout
    assert "tinynet" in result.stdout


class ThrowAway:
    @hookimpl
    def register_archs(self, register):
        def throwaway_net(width=3, num_classes=10):
            from torch import nn

            return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, width), nn.Linear(width, num_classes))

        register(Spec("throwaway-net", throwaway_net, "in-test arch", params=28 * 28 * 3 + 3 + 3 * 10 + 10))
        register(Spec("lenet", throwaway_net, "clashes with the built-in"))

    @hookimpl
    def register_schedulers(self, register):
        register(Spec("throwaway-sched", lambda optimizer, epochs, steps_per_epoch: None))


@pytest.fixture
def throwaway():
    pm = plugins.manager()
    pm.register(ThrowAway(), name="throwaway")
    plugins.registry.cache_clear()
    yield
    pm.unregister(name="throwaway")
    plugins.registry.cache_clear()


def test_registered_plugin_class_joins_the_registries(throwaway, capsys):
    torch = pytest.importorskip("torch")
    spec = plugins.archs().get("throwaway-net")
    model = spec.factory()
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert spec.params == sum(p.numel() for p in model.parameters())
    assert "throwaway-sched" in plugins.schedulers()
    assert plugins.archs().get("lenet").source == "mnistctl"
    warning = capsys.readouterr().err
    assert "plugin 'throwaway' failed while registering archs" in warning
    assert "Two plugins register the architecture 'lenet'" in warning


def test_registered_plugin_class_is_listed(throwaway):
    info = {i.name: i for i in plugins.plugin_infos()}["throwaway"]
    assert info.module == __name__
    assert set(info.hooks) == {"register_archs", "register_schedulers"}
    assert not info.error


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
