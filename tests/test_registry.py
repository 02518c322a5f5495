"""Every registered architecture, scheduler and optimizer builds and behaves; option parsing is typed."""

import math
import subprocess
import sys
from pathlib import Path

from typing import Annotated

import pytest
from annotated_types import Ge

from mnistctl.errors import NotFoundError, UsageError
from mnistctl.plugins import archs, optimizers, schedulers
from mnistctl.registry import NAME, Registry, Spec, parse_options
from mnistctl.training.schema import check_options

torch = pytest.importorskip("torch")

ARCHS = [s.name for s in archs().list()]
SCHEDULERS = [s.name for s in schedulers().list()]
OPTIMIZERS = [s.name for s in optimizers().list()]


def test_builtins_are_registered():
    assert {"lenet", "simplecnn", "deep-dropout"} <= set(ARCHS)
    assert {"step", "cosine", "onecycle"} <= set(SCHEDULERS)
    assert {"sgd", "adam", "adadelta"} <= set(OPTIMIZERS)


@pytest.mark.parametrize("name", ARCHS)
def test_arch_forward_gives_ten_logits(name):
    torch.manual_seed(0)
    model = archs().get(name).factory().eval()
    with torch.no_grad():
        logits = model(torch.rand(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ARCHS)
def test_arch_parameter_count_matches_table(name):
    spec = archs().get(name)
    model = spec.factory()
    assert spec.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ARCHS)
def test_arch_options_are_listable_and_change_the_model(name):
    spec = archs().get(name)
    assert spec.description
    assert "num_classes" in spec.defaults
    model = spec.factory(**parse_options(spec, ["num_classes=3"])).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def _lrs_used(name, epochs=3, steps_per_epoch=4, lr=0.1, **options):
    """The learning rate of every optimizer step a run of ``epochs`` takes."""
    model = torch.nn.Linear(4, 2)
    optimizer = optimizers().get("sgd").factory(model.parameters(), lr=lr)
    scheduler = schedulers().get(name).factory(optimizer, epochs, steps_per_epoch, **options)
    used = []
    for _ in range(epochs * steps_per_epoch):
        used.append(optimizer.param_groups[0]["lr"])
        model(torch.rand(5, 4)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    return used


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_steps_with_finite_positive_lr(name):
    used = _lrs_used(name)
    assert len(used) == 12
    assert all(math.isfinite(lr) and lr > 0 for lr in used)


def test_step_scheduler_drops_by_gamma_at_epochs_5_and_10():
    per_epoch = 3
    used = _lrs_used("step", epochs=12, steps_per_epoch=per_epoch, lr=0.1, gamma=0.5)
    by_epoch = [used[e * per_epoch] for e in range(12)]
    assert all(used[e * per_epoch : (e + 1) * per_epoch] == [by_epoch[e]] * per_epoch for e in range(12))
    assert by_epoch[:5] == pytest.approx([0.1] * 5)
    assert by_epoch[5:10] == pytest.approx([0.05] * 5)
    assert by_epoch[10:] == pytest.approx([0.025] * 2)


def test_cosine_decays_and_warms_up():
    used = _lrs_used("cosine", epochs=4, steps_per_epoch=5, warmup_epochs=1.0)
    assert used[0] < used[4] == pytest.approx(0.1)
    assert used[5:] == sorted(used[5:], reverse=True)
    assert used[-1] < 0.01


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_builds_and_steps(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    before = model.weight.detach().clone()
    optimizer = optimizers().get(name).factory(model.parameters(), lr=0.01, weight_decay=0.0)
    assert optimizer.param_groups[0]["lr"] == 0.01
    model(torch.rand(8, 4)).pow(2).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)


STOCK = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adadelta": "Adadelta"}


def _trained(make_optimizer, steps=6):
    """Parameters and optimizer state after ``steps`` steps under OneCycle, saved and loaded back midway."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    optimizer = make_optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.05, total_steps=steps, cycle_momentum=False)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(torch.randn(8, 6)), torch.randint(0, 3, (8,))).backward()
        optimizer.step()
        scheduler.step()
        if step == steps // 2:
            optimizer.load_state_dict(optimizer.state_dict())
    return [p.detach() for p in model.parameters()], optimizer.state_dict()


@pytest.mark.parametrize("name", STOCK)
def test_optimizers_step_exactly_as_torch_optim_does(name):
    spec = optimizers().get(name)
    options = {"lr": 0.05, "weight_decay": 1e-3}
    ours = _trained(lambda params: spec.factory(params, **options))
    stock = _trained(lambda params: getattr(torch.optim, STOCK[name])(params, **(spec.defaults | options)))
    assert all(torch.equal(a, b) for a, b in zip(ours[0], stock[0]))
    assert str(ours[1]) == str(stock[1])


def test_training_with_an_optimizer_never_imports_the_compiler():
    code = "; ".join([
        "import sys, test_registry as t",
        "from mnistctl.plugins import optimizers",
        "[t._trained(lambda p, n=n: optimizers().get(n).factory(p)) for n in t.STOCK]",
        "print('torch._dynamo' in sys.modules)",
    ])
    found = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["False"]


def _factory(channels=(32, 64), dropout=0.5, batch_norm=True, kernel_size=3, betas=(0.9, 0.999), name=None):
    return None


SPEC = Spec("toy", _factory)


def test_parse_options_coerces_by_default_type():
    options = parse_options(
        SPEC, ["channels=16,32,64", "dropout=0.25", "batch-norm=false", "kernel_size=5", "betas=0.8,0.99", "name=x"]
    )
    assert options == {
        "channels": (16, 32, 64),
        "dropout": 0.25,
        "batch_norm": False,
        "kernel_size": 5,
        "betas": (0.8, 0.99),
        "name": "x",
    }
    assert type(options["dropout"]) is float and type(options["kernel_size"]) is int
    assert all(type(c) is int for c in options["channels"])


@pytest.mark.parametrize("text,expected", [("true", True), ("1", True), ("YES", True), ("no", False), ("0", False)])
def test_parse_options_bools(text, expected):
    assert parse_options(SPEC, [f"batch_norm={text}"]) == {"batch_norm": expected}


def test_parse_options_accepts_a_dict_from_a_config():
    assert parse_options(SPEC, {"channels": [8, 16], "dropout": 0.1}) == {"channels": (8, 16), "dropout": 0.1}
    assert parse_options(SPEC, []) == {}


def test_parse_options_unknown_option_lists_valid_ones():
    with pytest.raises(UsageError) as info:
        parse_options(SPEC, ["widht=3"])
    assert "'widht'" in info.value.message
    assert "channels, dropout, batch_norm, kernel_size, betas, name" in info.value.hint


@pytest.mark.parametrize("item", ["dropout=abc", "kernel_size=3.5", "batch_norm=maybe", "channels=32,x"])
def test_a_bad_flag_value_is_left_as_text_and_refused_as_a_files_is(item):
    key, _, value = item.partition("=")
    assert parse_options(SPEC, [item]) == {key: value}
    with pytest.raises(UsageError) as info:
        check_options(SPEC, parse_options(SPEC, [item]), "architecture")
    assert f"option {key} = '{value}' is not allowed: expected" in info.value.message


@pytest.mark.parametrize("item", ["dropout", "=3"])
def test_parse_options_needs_key_value(item):
    with pytest.raises(UsageError, match="^bad option"):
        parse_options(SPEC, [item])


@pytest.mark.parametrize(
    "registry,typo,close", [(archs, "lenett", "lenet"), (schedulers, "cosin", "cosine"), (optimizers, "adamm", "adam")]
)
def test_unknown_name_suggests_the_close_one(registry, typo, close):
    with pytest.raises(NotFoundError) as info:
        registry().get(typo)
    assert f"'{typo}'" in info.value.message
    assert f"'{close}'" in info.value.hint


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(NotFoundError) as info:
        archs().get("transformer")
    assert info.value.hint == "choose one of: " + ", ".join(archs().names())


def test_registry_filters_with_wildcards():
    reg = Registry("thing")
    reg.add(Spec("alpha", _factory, source="one"))
    reg.add(Spec("alpine", _factory, source="two"))
    assert [s.name for s in reg.list("alp*")] == ["alpha", "alpine"]
    assert [s.name for s in reg.list("*ine")] == ["alpine"]
    assert len(reg) == 2 and "alpha" in reg and "beta" not in reg


def test_a_builtins_name_stays_the_builtins_and_a_name_two_plugins_register_is_refused_to_both():
    reg = Registry("thing")
    reg.add(Spec("alpha", _factory, source="mnistctl"))
    reg.add(Spec("beta", _factory, source="one"))
    with pytest.raises(UsageError) as taken:
        reg.add(Spec("alpha", _factory, source="two"))
    assert str(taken.value) == "plugin two registers the thing 'alpha', which mnistctl already has (rename it)"
    reg.add(Spec("beta", _factory, source="two"))
    reg.add(Spec("beta", _factory, source="three"))
    with pytest.raises(UsageError) as ambiguous:
        reg.get("beta")
    assert str(ambiguous.value) == "the thing 'beta' is registered by one, two and three (uninstall all but one of them to use it)"
    assert reg.names() == ["alpha"] and reg.get("alpha").source == "mnistctl"


@pytest.mark.parametrize("name", ["", "../escape", "sub/net", "has space", "Upper", ".hidden", None])
def test_a_name_that_is_not_simple_is_refused(name):
    with pytest.raises(UsageError, match="a name that is not allowed"):
        Registry("thing").add(Spec(name, _factory, source="one"))


def test_builtin_names_are_simple():
    assert all(NAME.fullmatch(n) for n in [*ARCHS, *SCHEDULERS, *OPTIMIZERS])


def _scheduler(optimizer, epochs=3, steps_per_epoch=10, gamma=0.5, *args, **kwargs):
    return None


def _optimizer(params=None, lr=0.1, weight_decay=0.0, momentum=0.9):
    return None


def test_the_arguments_mnistctl_passes_are_not_options():
    assert Spec("s", _scheduler, kind="scheduler").defaults == {"gamma": 0.5}
    assert Spec("o", _optimizer, kind="optimizer").defaults == {"lr": 0.1, "weight_decay": 0.0, "momentum": 0.9}
    assert Spec("a", _scheduler, kind="architecture").defaults == {"epochs": 3, "steps_per_epoch": 10, "gamma": 0.5}


def intdrop(width: int = 8, dropout: float = 0, scale: Annotated[float, Ge(0)] = 1, flag: bool = 0, label: "str" = 1, any_=None):
    return None


INTDROP = Spec("intdrop", intdrop)


def test_options_are_typed_by_a_plain_annotation_before_their_default():
    options = parse_options(INTDROP, ["dropout=0.3", "scale=2.5", "width=4", "flag=yes", "label=x", "any_=2"])
    assert options == {"dropout": 0.3, "scale": 2.5, "width": 4, "flag": True, "label": "x", "any_": 2}
    assert type(options["dropout"]) is float and type(options["width"]) is int
    with pytest.raises(UsageError, match="width = '0.5' is not allowed: expected a whole number"):
        check_options(INTDROP, parse_options(INTDROP, ["width=0.5"]), "architecture")


def test_a_config_files_options_are_typed_by_the_annotation_too():
    assert check_options(INTDROP, {"dropout": 0.3, "scale": 2.5, "label": "x"}, "architecture") == {"dropout": 0.3, "scale": 2.5, "label": "x"}
    assert check_options(INTDROP, {"dropout": 0}, "architecture") == {"dropout": 0.0}
    for options, expected in [({"dropout": "abc"}, "a finite number"), ({"scale": -1.0}, "a number at least 0"), ({"width": 0.5}, "a whole number"),
                              ({"label": 3}, "text")]:
        with pytest.raises(UsageError) as info:
            check_options(INTDROP, options, "architecture")
        assert info.value.message.endswith(f"is not allowed: expected {expected}")
