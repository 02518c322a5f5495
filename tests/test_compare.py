import itertools
import json
import math
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mnistctl.cli import app
from mnistctl.errors import NotFoundError, UsageError
from mnistctl.reading import compare, split_predictions
from mnistctl.runs import Run, checkpoint
from mnistctl.tui.widgets import setup_terms

N = 20
TARGETS = torch.arange(N) % 10


def probs_for(wrong: set[int], right_conf: float, wrong_conf: float) -> torch.Tensor:
    """Probabilities that pick the target except on ``wrong`` (then target + 1), with the given confidences."""
    probs = torch.empty(N, 10)
    for i, target in enumerate(TARGETS.tolist()):
        pick, conf = ((target + 1) % 10, wrong_conf) if i in wrong else (target, right_conf)
        probs[i] = (1 - conf) / 9
        probs[i, pick] = conf
    return probs


def config(name, arch="lenet", **extra):
    return {
        "name": name, "arch": arch, "arch_options": {}, "optimizer": "adam", "optimizer_options": {},
        "lr": 0.001, "weight_decay": 0.0, "scheduler": "cosine", "scheduler_options": {}, "epochs": 3,
        "batch_size": 128, "augment": None, "val_split": 5000, "seed": 0, "data": {"mean": 0.1307, "std": 0.3081},
        **extra,
    }


def make_run(root, name, val_accs, probs=None, status="finished", summary=None, **cfg):
    """A run directory with known metrics; with ``probs``, saved test predictions and the matching test result."""
    path = root / name
    (path / "weights").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config(name, **cfg)))
    now = time.time()
    events = [{"event": "start", "time": now - 100, "run": name, "epochs": 3, "steps_per_epoch": 10, "start_epoch": 0, "resumed": False}]
    for epoch, acc in enumerate(val_accs, 1):
        events.append({"event": "epoch", "time": now - 90 + epoch, "epoch": epoch, "train_loss": 0.5, "train_acc": 0.8,
                       "val_loss": 1.0 - acc, "val_acc": acc, "lr": 0.001, "epoch_time": 10.0, "elapsed": 10.0 * epoch,
                       "images_per_s": 1000.0 * epoch, "best": acc == max(val_accs[:epoch])})
    test = None
    if probs is not None:
        checkpoint.save(path / "weights" / "best.safetensors", {"w": torch.zeros(1)})
        digest = checkpoint.read(path / "weights" / "best.safetensors").digest  # the predictions are of these weights
        split_predictions.save(Run(path), "test", "best", probs, TARGETS, digest=digest)
        test = {"test_acc": (probs.argmax(1) == TARGETS).float().mean().item(), "test_loss": 0.3}
        events.append({"event": "test", "time": now - 50, "checkpoint": "best", "epoch": 2, **test})
    if status != "running":
        events.append({"event": "end", "time": now - 40, "status": status, "message": ""})
        best = max(range(len(val_accs)), key=lambda i: val_accs[i])
        base = {"status": status, "best_epoch": best + 1, "best_val_acc": val_accs[best], "epochs_run": len(val_accs),
                "wall_time": 10.0 * len(val_accs), "images_per_s": 2000.0, **(test or {"test_acc": None, "test_loss": None})}
        (path / "summary.json").write_text(json.dumps({**base, **(summary or {})}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture
def fixture_runs(tmp_path):
    """a: 18/20 right, b: 12/20, c: same predictions as a, d: still running, e: failed."""
    root = tmp_path / "runs"
    make_run(root, "a", [0.95, 0.97, 0.96], probs_for({0, 1}, 0.9, 0.6), summary={"params": 1234, "wall_time": 30.0})
    make_run(root, "b", [0.90, 0.93, 0.94], probs_for(set(range(2, 10)), 0.99, 0.52), arch="simplecnn",
             summary={"test_loss": 0.2, "wall_time": 20.0, "images_per_s": 3000.0}, augment={"rotation": 10, "shift": 0.1})
    make_run(root, "c", [0.95, 0.96, 0.975], probs_for({0, 1}, 0.9, 0.6), arch_options={"channels": [4, 8]}, optimizer="sgd", lr=0.05)
    make_run(root, "d", [0.99], status="running")
    make_run(root, "e", [0.5], status="failed")
    return root


def test_rows_are_sorted_best_first_with_status_of_unfinished_runs(fixture_runs):
    result = compare.compare([], fixture_runs, all_runs=True)
    rows = {r["name"]: r for r in result.rows}
    assert [r["name"] for r in result.rows] == ["c", "a", "b", "d", "e"]  # test acc, then val acc; untested last
    assert rows["a"]["test_acc"] == pytest.approx(0.9) and rows["b"]["test_acc"] == pytest.approx(0.6)
    assert rows["a"]["val_acc"] == 0.97 and rows["a"]["best_epoch"] == 2 and rows["a"]["epochs"] == 3
    assert rows["d"]["status"] == "running" and rows["d"]["test_acc"] is None and rows["d"]["val_acc"] == 0.99
    assert rows["e"]["status"] == "failed" and rows["e"]["test_acc"] is None
    assert rows["b"]["augment"] == "rot 10° shift 0.1" and rows["a"]["augment"] == "none"
    assert rows["c"]["optimizer"] == "sgd lr=0.05" and rows["c"]["arch"] == "lenet channels=4,8"


def test_params_come_from_summary_registry_or_the_built_model(fixture_runs):
    from mnistctl.plugins import archs

    rows = {r["name"]: r for r in compare.compare([], fixture_runs, all_runs=True, stats=False).rows}
    assert rows["a"]["params"] == 1234
    assert rows["b"]["params"] == archs().get("simplecnn").params
    built = archs().get("lenet").factory(channels=(4, 8))
    assert rows["c"]["params"] == sum(p.numel() for p in built.parameters()) != archs().get("lenet").params


@pytest.mark.parametrize(
    "column, first",
    [("test_loss", "b"), ("time", "d"), ("val_acc", "d"), ("throughput", "b"), ("name", "a"), ("best-val-acc", "d")],
)
def test_sort_by_column_puts_the_best_first(fixture_runs, column, first):
    result = compare.compare([], fixture_runs, all_runs=True, sort=column, stats=False)
    assert result.rows[0]["name"] == first


def test_unknown_sort_column_suggests_the_closest():
    with pytest.raises(UsageError, match="unknown column 'tset_acc'") as info:
        compare.column_key("tset_acc")
    assert "test_acc" in info.value.hint


def test_best_values_are_highlighted(fixture_runs):
    from rich.console import Console

    from mnistctl.cli.compare import runs_table

    result = compare.compare([], fixture_runs, all_runs=True)
    best = compare.best_values(result.rows)
    # d (still running, 99% after one epoch) and e (failed after 10 s) do not compete for accuracy or time
    assert best["test_acc"] == pytest.approx(0.9) and best["test_loss"] == 0.2 and best["val_acc"] == 0.975
    assert best["time"] == 20.0 and "epochs" not in best and "name" not in best
    console = Console(record=True, width=400, color_system="standard", force_terminal=True)
    console.print(runs_table(result))
    plain = console.export_text(clear=False).splitlines()
    styled = console.export_text(styles=True).splitlines()
    lines = {line.split()[1]: styled[i] for i, line in enumerate(plain) if line.startswith("│")}
    bold_green = "\x1b[1;32m"
    assert bold_green + "0.2000" in lines["b"] and bold_green + "90.00%" in lines["a"]
    assert bold_green + "60.00%" not in lines["b"] and bold_green + "0.3000" not in lines["a"]


def test_mcnemar_exact_against_hand_computed_cases():
    assert compare.mcnemar_exact(0, 0) == 1.0  # identical predictions
    assert compare.mcnemar_exact(1, 0) == 1.0
    assert compare.mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert compare.mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert compare.mcnemar_exact(2, 8) == compare.mcnemar_exact(8, 2)
    assert compare.mcnemar_exact(50, 50) == 1.0
    assert compare.mcnemar_exact(0, 1000) == 2.0**-999  # exact integers: no overflow, no rounding to 0
    normal = math.erfc((abs(3000 - 3100) - 1) / math.sqrt(6100) / math.sqrt(2))  # large n: continuity-corrected z test
    assert compare.mcnemar_exact(3000, 3100) == pytest.approx(normal, abs=1e-3)


def test_mcnemar_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(3, 17), (40, 61), (120, 90), (7, 7)]:
        assert compare.mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_pairs_and_ensemble_from_saved_predictions(fixture_runs):
    result = compare.compare([], fixture_runs, all_runs=True)
    pairs = {(p["run_a"], p["run_b"]): p for p in result.pairs}
    assert set(pairs) == {("c", "a"), ("c", "b"), ("a", "b")}  # in table order
    same = pairs[("c", "a")]
    assert (same["b"], same["c"], same["p_value"], same["significant"]) == (0, 0, 1.0, False)
    assert (pairs[("a", "b")]["b"], pairs[("a", "b")]["c"]) == (8, 2)
    assert pairs[("a", "b")]["p_value"] == pytest.approx(0.109375)
    assert set(result.ensemble["runs"]) == {"a", "b", "c"}
    assert result.ensemble["test_acc"] == pytest.approx(0.9)  # a and c agree, so they outvote b on samples 0 and 1


def test_ensemble_loss_is_the_cross_entropy_of_the_mean_probabilities(fixture_runs):
    result = compare.compare(["a", "b"], fixture_runs)
    mean = (probs_for({0, 1}, 0.9, 0.6) + probs_for(set(range(2, 10)), 0.99, 0.52)) / 2
    expected = -sum(math.log(mean[i, t]) for i, t in enumerate(TARGETS.tolist())) / N
    assert result.ensemble["test_loss"] == pytest.approx(expected, rel=1e-5)
    assert result.ensemble["test_acc"] == 1.0  # each run's confident answers outvote the other's unsure mistakes
    assert [r["name"] for r in result.rows] == ["a", "b"]


def test_a_run_with_scores_for_other_than_ten_classes_is_the_one_named_and_left_out(fixture_runs):
    eleven = torch.cat([probs_for(set(), 0.9, 0.6), torch.zeros(N, 1)], dim=1)  # right everywhere: sorted first
    make_run(fixture_runs, "wide11", [0.99], eleven)
    result = compare.compare(["wide11", "a", "b"], fixture_runs)
    assert [r["name"] for r in result.rows] == ["wide11", "a", "b"]
    assert result.warnings == [f"wide11 has predictions of shape ({N}, 11), not ({N}, 10) (a probability for each digit of each test image)"
                               "; it is left out of the p-values and ensemble"]
    assert result.ensemble["runs"] == ["a", "b"] and [(p["run_a"], p["run_b"]) for p in result.pairs] == [("a", "b")]


def test_the_scheduler_column_shows_the_options_that_differ_from_its_defaults(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "plain", [0.9], scheduler="step", scheduler_options={"milestones": [5, 10], "gamma": 0.1})
    make_run(root, "tuned", [0.9], scheduler="step", scheduler_options={"milestones": [3, 6], "gamma": 0.1})
    make_run(root, "gone", [0.9], scheduler="warmpoly", scheduler_options={"power": 1.5})
    rows = {r["name"]: r["scheduler"] for r in compare.compare([], root, all_runs=True, stats=False).rows}
    assert rows == {"plain": "step", "tuned": "step milestones=3,6", "gone": "warmpoly power=1.5"}


def test_broken_runs_are_skipped_with_one_warning_each(fixture_runs, tmp_path):
    (fixture_runs / "corrupt").mkdir()
    (fixture_runs / "corrupt" / "config.json").write_text("{not json")
    (fixture_runs / "no-config").mkdir()
    (fixture_runs / "no-config" / "metrics.jsonl").write_text("")
    (fixture_runs / "a" / "summary.json").write_text('{"status": "fin')
    (fixture_runs / "b" / "weights" / "best.safetensors").unlink()
    result = compare.compare([], fixture_runs, all_runs=True)
    assert [r["name"] for r in result.rows] == ["c", "b", "d", "e"]
    assert len(result.warnings) == 4 and all("\n" not in w for w in result.warnings)
    assert any("corrupt" in w and "config.json" in w for w in result.warnings)
    assert any("no-config" in w for w in result.warnings)
    assert any("summary.json" in w and "corrupt" in w for w in result.warnings)
    assert any(w.startswith("b is left out") and "weights" in w for w in result.warnings)
    assert result.ensemble is None and result.pairs == []


def test_a_named_run_that_does_not_exist_is_bad_input_with_a_hint(fixture_runs):
    result = compare.compare(["a", str(fixture_runs / "b")], fixture_runs)
    assert [r["name"] for r in result.rows] == ["a", "b"] and result.warnings == []
    with pytest.raises(NotFoundError, match="no run 'bb'") as info:
        compare.compare(["a", "bb"], fixture_runs)
    assert info.value.exit_code == 2 and "did you mean b?" in info.value.hint
    with pytest.raises(UsageError):
        compare.compare([], fixture_runs)


def test_runs_named_with_a_comma_are_told_to_be_named_apart(fixture_runs):
    result = CliRunner().invoke(app, ["compare", "a,b", "--runs-dir", str(fixture_runs)])
    assert isinstance(result.exception, UsageError) and result.exception.message == "no run 'a,b'"
    assert result.exception.hint == "name the runs with spaces between them: mnistctl compare a b"
    (fixture_runs / "a").rename(fixture_runs / "a,b")  # a run whose name has a comma is still compared
    assert CliRunner().invoke(app, ["compare", "a,b", "b", "--runs-dir", str(fixture_runs), "--no-stats"]).exit_code == 0


def test_a_summary_value_that_is_not_a_number_is_warned_with_where_the_value_shown_comes_from(tmp_path):
    make_run(tmp_path, "a", [0.95], probs_for({0, 1}, 0.9, 0.6), summary={"test_acc": "abc", "wall_time": "x"})
    make_run(tmp_path, "b", [0.9], summary={"test_loss": "?"})
    result = compare.compare([], tmp_path, all_runs=True, stats=False)
    rows = {r["name"]: r for r in result.rows}
    assert rows["a"]["test_acc"] == pytest.approx(0.9) and rows["a"]["time"] == 10.0 and rows["b"]["test_loss"] is None
    a, b = sorted(result.warnings)
    assert "test_acc='abc'" in a and "test_acc from metrics.jsonl; wall_time from metrics.jsonl" in a and "missing" not in a
    assert b.endswith("shown: test_loss as missing")


def test_an_infinite_summary_value_is_warned_as_not_a_number_and_the_table_still_prints(tmp_path):
    make_run(tmp_path, "a", [0.95], summary={"wall_time": float("-inf")})
    make_run(tmp_path, "b", [0.9])
    result = CliRunner().invoke(app, ["compare", "--all", str(tmp_path), "--no-stats"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "wall_time=-inf" in result.output and "Runs, best first" in result.stdout



def test_a_test_loss_that_blew_up_is_shown_in_three_significant_digits(tmp_path):
    make_run(tmp_path, "blown", [0.1], summary={"test_acc": 0.098, "test_loss": 6.8946793185270456e19})
    result = CliRunner().invoke(app, ["compare", "--all", str(tmp_path), "--no-stats"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "6.89e+19" in result.stdout and "68946793" not in result.stdout

def test_cli_json(fixture_runs):
    result = CliRunner().invoke(app, ["compare", "--all", str(fixture_runs), "--json", "--sort", "test_loss"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["runs"]][0] == "b"
    assert {"run_a", "run_b", "b", "c", "p_value", "significant"} <= set(data["pairs"][0])
    assert data["ensemble"]["test_acc"] == pytest.approx(0.9)


def test_json_has_the_settings_the_labels_print_as_numbers(tmp_path):
    augment = {"rotation": 10.0, "shift": 0.1, "zoom": 0.0, "elastic": 0.0}
    make_run(tmp_path, "a", [0.9], summary={"test_acc": 0.91, "test_loss": 0.3}, optimizer="sgd", lr=0.05, weight_decay=1e-4,
             ema=0.999, batch_size=64, augment=augment, scheduler="onecycle", scheduler_options={"pct_start": 0.3})
    make_run(tmp_path, "b", [0.8])
    result = CliRunner().invoke(app, ["compare", "--all", str(tmp_path), "--json", "--no-stats"])
    assert result.exit_code == 0, result.output
    a, b = json.loads(result.stdout)["runs"]
    assert a["optimizer"] == "sgd lr=0.05 wd=0.0001 ema=0.999" and a["augment"] == "rot 10° shift 0.1"  # the table's text stays
    assert (a["lr"], a["weight_decay"], a["ema"], a["batch_size"]) == (0.05, 0.0001, 0.999, 64)
    assert a["augment_options"] == augment and a["scheduler_options"] == {"pct_start": 0.3} and a["arch_options"] == {}
    numbers = ("params", "epochs", "best_epoch", "val_acc", "test_acc", "test_loss", "time", "throughput")
    assert all(type(a[key]) in (int, float) for key in numbers), a
    assert (b["lr"], b["ema"], b["augment"], b["augment_options"]) == (0.001, None, "none", {})


def test_the_settings_json_gives_as_numbers_sort_and_pick_the_table(tmp_path):
    make_run(tmp_path, "fast", [0.9], lr=0.1, weight_decay=1e-4, batch_size=256)
    make_run(tmp_path, "slow", [0.95], lr=0.001, batch_size=64)
    make_run(tmp_path, "mid", [0.8], lr=0.01, weight_decay=5e-4, batch_size=128)
    result = CliRunner().invoke(app, ["compare", "--all", str(tmp_path), "--no-stats", "--sort", "lr", "--columns", "weight-decay,batch_size"],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in result.stdout.splitlines() if line.startswith("│")]
    header = next(line for line in result.stdout.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == ["run", "weight decay", "batch size", "lr"]
    assert rows == [["slow", "0", "64", "0.001"], ["mid", "0.0005", "128", "0.01"], ["fast", "0.0001", "256", "0.1"]]
    assert "lr, weight_decay, batch_size" in " ".join(CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "300"}).stdout.split())


def test_cli_tables_and_plot(fixture_runs, tmp_path):
    png = tmp_path / "out" / "curves.png"
    result = CliRunner().invoke(app, ["compare", "a", "b", "d", "--runs-dir", str(fixture_runs), "--plot", str(png)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "McNemar" in result.stdout and "ensemble" in result.stdout and "running" in result.stdout
    assert "0.109" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        assert image.width > 800 and image.height > 300
    wrong = CliRunner().invoke(app, ["compare", "a", "--runs-dir", str(fixture_runs), "--plot", str(tmp_path / "c.jpg")])
    assert isinstance(wrong.exception, UsageError) and not (tmp_path / "c.jpg").exists()


def test_predictions_computed_on_the_fly(tmp_path, data_dir, mnist):
    from mnistctl.plugins import archs

    root = tmp_path / "runs"
    for seed in (1, 2):
        path = make_run(root, f"untrained-{seed}", [0.1], data={"dir": str(data_dir), "mean": 0.1307, "std": 0.3081})
        torch.manual_seed(seed)
        checkpoint.save_model(path / "weights" / "best.safetensors", archs().get("lenet").factory())
        summary = json.loads((path / "summary.json").read_text())
        (path / "summary.json").write_text(json.dumps({**summary, "test_acc": 0.1, "test_loss": 2.3}))
    result = compare.compare([], root, all_runs=True)
    saved = [checkpoint.load(split_predictions.path(Run(root / f"untrained-{s}"), "test"))[0] for s in (1, 2)]
    assert all(t["probs"].shape == (10_000, 10) and torch.equal(t["targets"], mnist.test_labels) for t in saved)
    right = [t["probs"].argmax(1) == mnist.test_labels for t in saved]
    pair = result.pairs[0]
    assert {pair["run_a"], pair["run_b"]} == {"untrained-1", "untrained-2"}
    only = {"untrained-1": int((right[0] & ~right[1]).sum()), "untrained-2": int((right[1] & ~right[0]).sum())}
    assert (pair["b"], pair["c"]) == (only[pair["run_a"]], only[pair["run_b"]])
    mean = (saved[0]["probs"] + saved[1]["probs"]) / 2
    assert result.ensemble["test_acc"] == pytest.approx((mean.argmax(1) == mnist.test_labels).float().mean().item())


def test_runs_trained_without_a_validation_split_compare_draw_their_curves_and_say_so(train_run, tmp_path):
    run = train_run(arch="lenet", epochs=2, limit=256, batch_size=128, val_split=0, precision="fp32", name="noval")
    other = train_run(arch="lenet", epochs=2, limit=256, batch_size=128, val_split=0, precision="fp32", seed=1, name="noval-1")
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(run.path), str(other.path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["val_acc"] for r in rows["runs"]] == [None, None] and rows["ensemble"]["test_acc"] > 0
    result = runner.invoke(app, ["visualize", str(run.path), "--what", "curves", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "no validation" in setup_terms(run.config)


def test_a_running_run_shows_the_epoch_of_its_best_checkpoint_as_monitor_picked_it(tmp_path):
    by_loss = make_run(tmp_path, "by-loss", [0.95, 0.97, 0.96], status="running", monitor="val_loss")
    no_val = make_run(tmp_path, "no-val", [0.5, 0.5], status="running", val_split=0)
    for path, accs, marks in ((by_loss, [0.95, 0.97, 0.96], [True, False, True]), (no_val, [None, None], [True, True])):
        events = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        epochs = [e for e in events if e["event"] == "epoch"]
        for event, acc, best in zip(epochs, accs, marks):
            event.update(val_acc=acc, best=best, val_loss=None if acc is None else 0.5 - event["epoch"] / 10)
        (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = {r["name"]: r for r in compare.compare(["by-loss", "no-val"], tmp_path, stats=False).rows}
    assert (rows["by-loss"]["best_epoch"], rows["by-loss"]["val_acc"]) == (3, 0.96)  # the lowest validation loss
    assert (rows["no-val"]["best_epoch"], rows["no-val"]["val_acc"]) == (2, None)  # without validation, the last epoch


def test_a_running_run_counts_its_throughput_over_its_time_so_far_as_its_summary_will(tmp_path):
    path = make_run(tmp_path, "running", [0.9, 0.95], status="running")
    events = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for event in events:
        if event["event"] == "epoch":  # 10 s of training and 15 s of validation each, at 1,000 then 3,000 images/s
            event.update(epoch_time=10.0, elapsed=25.0 * event["epoch"], images_per_s=1000.0 + 2000.0 * (event["epoch"] - 1))
    (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    row = compare.compare(["running"], tmp_path, stats=False).rows[0]
    assert row["throughput"] == pytest.approx(40_000 / 50)


def test_a_plot_file_that_appears_while_it_is_drawn_is_kept(fixture_runs, tmp_path):
    png = tmp_path / "curves.png"
    png.write_text("mine")  # after the command checked that the name was free
    with pytest.raises(UsageError, match="appeared while it was being written"):
        compare.plot([Run(fixture_runs / "a")], png)
    assert png.read_text() == "mine" and sorted(tmp_path.iterdir()) == [png, tmp_path / "runs"]


def cells(text):
    """{run: {header: cell}} of the runs table printed in ``text``."""
    lines = text.splitlines()
    headers = [h.strip() for h in next(line for line in lines if line.startswith("┃")).strip("┃").split("┃")]
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    return {row[0]: dict(zip(headers, row)) for row in rows}


def expected_cells(root, names):
    from rich.text import Text

    from mnistctl.cli.compare import cell

    return {r["name"]: {c.header: Text.from_markup(cell(c.key, r[c.key])).plain for c in compare.COLUMNS} for r in compare.compare(names, root, stats=False).rows}


@pytest.mark.parametrize("width", ["40", "100"])
def test_wide_shows_every_column_whole_however_narrow_the_terminal(fixture_runs, width):
    result = CliRunner().invoke(app, ["compare", "a", "b", "c", "--runs-dir", str(fixture_runs), "--wide", "--no-stats"], env={"COLUMNS": width})
    assert result.exit_code == 0, result.output
    expected = expected_cells(fixture_runs, ["a", "b", "c"])
    assert cells(result.stdout) == expected and expected["a"]["params"] == "1,234"


@pytest.mark.parametrize("width, least", [("30", 2), ("60", 4), ("250", 14)])
def test_the_default_view_drops_columns_to_fit_rather_than_cut_values(fixture_runs, width, least):
    result = CliRunner().invoke(app, ["compare", "a", "b", "c", "--runs-dir", str(fixture_runs), "--no-stats"], env={"COLUMNS": width})
    assert result.exit_code == 0, result.output
    shown, expected = cells(result.stdout), expected_cells(fixture_runs, ["a", "b", "c"])
    assert set(shown) == {"a", "b", "c"} and len(shown["a"]) >= least
    assert all(shown[name] == {h: expected[name][h] for h in shown[name]} for name in shown)
    assert max(map(len, result.stdout.splitlines()[:-1])) <= int(width)


def test_title_and_footer_of_a_narrow_table_are_whole_lines(fixture_runs):
    result = CliRunner().invoke(app, ["compare", "a", "b", "--runs-dir", str(fixture_runs), "--columns", "name", "--no-stats"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Runs, best first" and lines[-1] == f"green: best in its column; {len(compare.COLUMNS) - 1} more columns with --wide or --columns"


def test_the_column_sorted_by_is_shown_beside_the_columns_asked_for(fixture_runs):
    result = CliRunner().invoke(app, ["compare", "a", "b", "--runs-dir", str(fixture_runs), "--columns", "test_acc", "--sort", "test_loss", "--no-stats"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "test acc" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == ["run", "test acc", "test loss"]


def test_help_shows_that_compare_takes_several_runs():
    result = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "100"})
    assert "Usage: mnistctl compare [OPTIONS] [RUN]..." in result.stdout


@pytest.mark.parametrize("args, says", [
    (["a", "b", "--top", "3"], "--top picks the best runs of a --study"),
    (["a", "--wide", "--columns", "test_acc"], "--wide shows every column, so --columns would be ignored"),
    (["a", "--json", "--columns", "test_acc"], "--json holds every column, so --columns would be ignored"),
    (["a", "--columns", "tset_acc"], "unknown column 'tset_acc'"),
    (["a", "--columns", ""], "--columns '' names no column"),
    (["a", "--columns", ", "], "--columns ', ' names no column"),
])
def test_options_that_would_be_ignored_are_refused_before_any_work(fixture_runs, monkeypatch, args, says):
    monkeypatch.setattr(compare, "compare", lambda *a, **k: pytest.fail("the work started"))
    result = CliRunner().invoke(app, ["compare", *args, "--runs-dir", str(fixture_runs)])
    assert isinstance(result.exception, UsageError) and says in str(result.exception)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, a folder no one can write to")
def test_a_plot_in_a_folder_that_cannot_be_written_names_the_plot(fixture_runs):
    with pytest.raises(OSError) as info:
        compare.plot([Run(fixture_runs / "a")], Path("/proc/c.png"))
    assert info.value.filename == "/proc/c.png"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc, a folder no one can write to")
def test_a_plot_in_a_folder_that_cannot_be_written_is_refused_before_any_work(fixture_runs, monkeypatch):
    monkeypatch.setattr(compare, "compare", lambda *a, **k: pytest.fail("the work started"))
    result = CliRunner().invoke(app, ["compare", "a", "--plot", "/proc/c.png", "--runs-dir", str(fixture_runs)])
    assert isinstance(result.exception, UsageError) and "--plot /proc/c.png cannot be written" in str(result.exception)


def test_the_optimizer_column_names_a_weight_average():
    from mnistctl.reading.compare import optimizer_label

    assert optimizer_label({"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4, "ema": 0.999}) == "sgd lr=0.05 wd=0.0005 ema=0.999"
    assert optimizer_label({"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4}) == "sgd lr=0.05 wd=0.0005"


@pytest.mark.parametrize("options", [{"dropout": "x"}, {"channels": ["16", "24"]}])
def test_a_config_whose_options_cannot_build_its_model_shows_no_parameter_count(options, tmp_path):
    root = tmp_path / "runs"
    make_run(root, "good", [0.95], arch="simplecnn")
    make_run(root, "damaged", [0.96], arch="simplecnn", arch_options=options)
    rows = {row["name"]: row for row in compare.compare(["good", "damaged"], root, stats=False).rows}
    assert rows["good"]["params"] > 0 and rows["damaged"]["params"] is None


def test_run_names_that_look_like_markup_are_shown_as_they_are(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "[red]z", [0.95, 0.97], probs_for({0, 1}, 0.9, 0.6))
    make_run(root, "[bold]q", [0.90, 0.93], probs_for(set(range(2, 10)), 0.99, 0.52))
    plot = tmp_path / "cmp [v2] x[/].png"
    result = CliRunner().invoke(app, ["compare", "[red]z", "[bold]q", "--runs-dir", str(root), "--plot", str(plot)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    pairs = result.stdout[result.stdout.index("McNemar"):]
    assert "[red]z" in pairs and "[bold]q" in pairs
    assert f"curves written to {plot}" in result.stdout and plot.is_file()


def test_the_pairs_table_wraps_long_run_names_whole_instead_of_cutting_them(tmp_path):
    root = tmp_path / "runs"
    names = [f"simplecnn-e1-b128-lr0.05-step-s{seed}" for seed in (0, 1)]
    make_run(root, names[0], [0.95, 0.97], probs_for({0, 1}, 0.9, 0.6))
    make_run(root, names[1], [0.90, 0.93], probs_for(set(range(2, 10)), 0.99, 0.52))
    result = CliRunner().invoke(app, ["compare", *names, "--runs-dir", str(root)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    pairs = result.stdout[result.stdout.index("McNemar"):]
    assert "…" not in pairs and "significant" in pairs
    cells = [line.split("│")[1:3] for line in pairs.splitlines() if line.startswith("│") and "run A" not in line]
    assert ["".join(column).replace(" ", "") for column in zip(*cells)] == names


@pytest.mark.parametrize("width", [80, 120, 160, 250])
def test_the_runs_table_keeps_every_column_that_fits_and_the_one_sorted_by(fixture_runs, width):
    def table(*args):
        result = CliRunner().invoke(app, ["compare", "a", "b", "c", "--no-stats", "--runs-dir", str(fixture_runs), *args], env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        return lines[2], max(len(line) for line in lines)

    header, widest = table()
    assert widest <= width
    shown = [h for h in ("run", "architecture", "optimizer", "test acc", "val acc") if h in header]
    assert len(shown) >= (5 if width >= 160 else 3), header
    header, widest = table("--sort", "test_loss")
    assert "test loss" in header and widest <= max(width, 80)


def test_runs_in_folders_of_the_same_name_are_told_apart_by_their_paths(tmp_path):
    here, there = tmp_path / "runs", tmp_path / "elsewhere"
    make_run(here, "fast", [0.95, 0.97], probs_for({0, 1}, 0.9, 0.6))
    make_run(there, "fast", [0.90, 0.93], probs_for(set(range(2, 10)), 0.99, 0.52))
    make_run(here, "b", [0.90, 0.93], probs_for({3}, 0.99, 0.52))
    names = [str(here / "fast"), str(there / "fast"), "b"]
    result = compare.compare(names, here)
    assert sorted(row["name"] for row in result.rows) == sorted(names)
    assert {frozenset((p["run_a"], p["run_b"])) for p in result.pairs} == {frozenset(pair) for pair in itertools.combinations(names, 2)}


def test_a_run_named_twice_is_compared_once_and_said_so(fixture_runs):
    result = compare.compare(["a", str(fixture_runs / "a"), "b"], fixture_runs, stats=False)
    assert [row["name"] for row in result.rows] == ["a", "b"]
    assert f"{fixture_runs / 'a'} is the run a again; it is compared once" in result.warnings


def test_the_plot_names_the_runs_without_a_curve(fixture_runs, tmp_path, monkeypatch):
    from mnistctl.reading import figures

    make_run(fixture_runs, "z", [], status="running")
    drawn = []
    monkeypatch.setattr(figures, "save", lambda figure, path, replace: drawn.append(figure) or Path(path))
    compare.plot([Run(fixture_runs / "a"), Run(fixture_runs / "z")], tmp_path / "curves.png")
    title = drawn[0]._suptitle.get_text()
    assert "1 of 2 runs" in title and "z (running)" in title


def test_a_run_stopped_in_its_test_pass_is_compared_with_the_test_result_eval_kept(fixture_runs):
    import os

    from mnistctl.reading import evaluate

    path = make_run(fixture_runs, "untested", [0.9, 0.92])  # finished, but no test event and a summary without test figures
    run = Run(path)
    probs = probs_for({0, 1, 2}, 0.9, 0.6)
    checkpoint.save(run.weights_path("best"), {"w": torch.ones(1)})
    split_predictions.save(run, "test", "best", probs, TARGETS, digest=checkpoint.read(run.weights_path("best")).digest)
    evaluate.save(run, {"run": "untested", "split": "test", "checkpoint": "best", "epoch": 2, **evaluate.metrics(probs, TARGETS)})
    result = compare.compare(["a", "untested"], fixture_runs)
    row = next(r for r in result.rows if r["name"] == "untested")
    assert row["test_acc"] == pytest.approx(17 / 20) and row["test_loss"] > 0
    assert set(result.ensemble["runs"]) == {"a", "untested"} and len(result.pairs) == 1
    later = run.weights_path("best").stat().st_mtime + 10  # weights newer than the report: it is of other weights
    os.utime(run.weights_path("best"), (later, later))
    assert next(r for r in compare.compare(["untested"], fixture_runs, stats=False).rows)["test_acc"] is None


def test_runs_stopped_in_their_test_pass_are_hinted_once_under_the_table_to_be_tested_with_eval(fixture_runs):
    import shlex

    from mnistctl.reading import evaluate

    def shown(*names):
        result = CliRunner().invoke(app, ["compare", *names, "--runs-dir", str(fixture_runs), "--no-stats"], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    path = make_run(fixture_runs, "untested one", [0.9, 0.92])  # finished, but no test event and a summary without test figures
    lines = shown("a", "untested one")
    assert lines[-2].startswith("green: best in its column")
    assert lines[-1].startswith("untested one has no test result: mnistctl eval ") and lines[-1].endswith(" tests its best weights")
    assert shlex.split(lines[-1].split("mnistctl eval ")[1])[0] == str(path)
    make_run(fixture_runs, "untested two", [0.9])
    lines = shown("a", "untested one", "untested two", "d")
    assert [line for line in lines if "no test result" in line] == ["untested one, untested two have no test result: mnistctl eval RUN tests the best weights of each"]
    checkpoint.save(Run(path).weights_path("best"), {"w": torch.ones(1)})
    evaluate.save(Run(path), {"run": "untested one", "split": "test", "checkpoint": "best", "epoch": 2, **evaluate.metrics(probs_for({0}, 0.9, 0.6), TARGETS)})
    assert not any("no test result" in line for line in shown("a", "untested one", "d"))


def test_the_footer_counts_one_column_left_out_in_the_singular(fixture_runs):
    from mnistctl.cli.compare import footer

    shown = [c for c in compare.COLUMNS if c.key != "throughput"]
    assert footer(shown).endswith("; 1 more column with --wide or --columns")
    assert footer(shown[:-1]).endswith("; 2 more columns with --wide or --columns")


@pytest.mark.parametrize("width", [80, 120])
def test_columns_with_one_value_for_every_run_are_dropped_first_and_named_under_the_table(tmp_path, width):
    make_run(tmp_path, "fast", [0.95, 0.97], arch="simplecnn", arch_options={"channels": [16, 24]}, optimizer="sgd", lr=0.1, scheduler="onecycle")
    make_run(tmp_path, "simple", [0.90], epochs=1, lr=0.05, scheduler="step")
    result = CliRunner().invoke(app, ["compare", "fast", "simple", "--runs-dir", str(tmp_path), "--no-stats"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    end = lines.index(next(line for line in lines if line.startswith("└")))
    header, note = lines[2], " ".join(line.strip() for line in lines[end + 1:end + 3])
    assert max(map(len, lines[:end + 3])) <= width and "status" not in header and "batch size" not in header
    assert "same for all: status finished, weight decay 0, batch size 128, augment none" in note
    assert ("scheduler" in header or "optimizer" in header) and ("architecture" in header) == (width >= 120)


def test_many_pairs_are_held_to_the_significance_level_together_by_holms_correction():
    from mnistctl.reading.compare import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])  # statsmodels' multipletests(method="holm")
    assert holm([0.04]) == [0.04] and holm([]) == []
    assert holm([0.5, 0.6, 0.9]) == pytest.approx([1.0, 1.0, 1.0])


def test_the_pairs_table_shows_holm_adjusted_p_values_and_says_so():
    from rich.console import Console

    from mnistctl.cli.compare import _pairs_table

    pairs = [{"run_a": "a", "run_b": "b", "b": 45, "c": 25, "p_value": 0.03}, {"run_a": "a", "run_b": "c", "b": 40, "c": 22, "p_value": 0.04}]
    for pair, adjusted in zip(pairs, compare.holm([p["p_value"] for p in pairs])):
        pair.update(p_holm=adjusted, significant=adjusted < compare.SIGNIFICANCE)
    console = Console(width=120, record=True)
    console.print(_pairs_table(pairs, 0, None))
    shown = console.export_text()
    assert "Holm-adjusted for 2 pairs" in shown and shown.count("0.060") == 2  # each alone would be significant
    assert shown.count("not significant") == 2


def column_cells(stdout: str, header: str) -> list[str]:
    """The non-blank lines of the runs table's column ``header``, top to bottom."""
    lines = stdout.splitlines()
    column = [h.strip() for h in lines[2].split("┃")].index(header)
    end = lines.index(next(line for line in lines if line.startswith("└")))
    return [cell for line in lines[4:end] if (cell := line.split("│")[column].strip())]


@pytest.mark.parametrize("width", [80, 200])
def test_an_architecture_that_differs_wraps_one_option_a_line_rather_than_be_dropped(tmp_path, width):
    make_run(tmp_path, "fast", [0.95, 0.97], arch="simplecnn", arch_options={"channels": [16, 24], "dropout": 0.25}, optimizer="sgd", lr=0.1, scheduler="onecycle")
    make_run(tmp_path, "simple", [0.90, 0.93], optimizer="sgd", lr=0.05, scheduler="step")
    result = CliRunner().invoke(app, ["compare", "fast", "simple", "--runs-dir", str(tmp_path), "--no-stats"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert max(map(len, result.stdout.splitlines()[:-1])) <= width  # the table; the last line says the runs have no test result
    whole = ["simplecnn channels=16,24 dropout=0.25", "lenet"]
    assert column_cells(result.stdout, "architecture") == (whole if width == 200 else ["simplecnn", "channels=16,24", "dropout=0.25", "lenet"])
    assert "test acc" in result.stdout.splitlines()[2]


def test_columns_asked_for_too_wide_for_the_terminal_wrap_their_options(tmp_path):
    make_run(tmp_path, "fast", [0.95, 0.97], arch="simplecnn", arch_options={"channels": [16, 24], "dropout": 0.25}, optimizer="sgd", lr=0.1)
    make_run(tmp_path, "simple", [0.90, 0.93], optimizer="sgd", lr=0.05)
    args = ["compare", "fast", "simple", "--runs-dir", str(tmp_path), "--no-stats", "--columns", "arch,optimizer,params,val_acc,test_acc,time"]
    wrapped = CliRunner().invoke(app, args, env={"COLUMNS": "90"})
    assert wrapped.exit_code == 0, wrapped.output
    assert column_cells(wrapped.stdout, "optimizer") == ["sgd", "lr=0.1", "sgd", "lr=0.05"]
    assert max(map(len, wrapped.stdout.splitlines()[:-1])) <= 90
    assert column_cells(CliRunner().invoke(app, args, env={"COLUMNS": "200"}).stdout, "optimizer") == ["sgd lr=0.1", "sgd lr=0.05"]


def test_an_option_a_sweep_drew_is_labelled_in_six_significant_digits():
    config = {"arch": "simplecnn", "arch_options": {"dropout": 0.31300544925529544, "channels": [16, 24]}}
    assert compare.arch_label(config) == "simplecnn dropout=0.313005 channels=16,24"
