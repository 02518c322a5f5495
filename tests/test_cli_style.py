"""One style for every mistake, help that shows options as they are typed, output that fits the terminal."""

import pytest

from mnistctl.cli import options
from test_cli import run_mnistctl


@pytest.mark.parametrize(
    "args, says",
    [
        (["train", "--lr", "abc"], "invalid value for '--lr'"),
        (["train", "--set", "dropout", "0.3"], "unexpected extra argument"),
        (["bogus"], "no such command 'bogus'"),
        (["train", "--lr"], "option '--lr' requires an argument (see mnistctl train --help)"),
        (["predict"], "missing argument 'IMAGES' (see mnistctl predict --help)"),
        (["train", "--arch", "nope"], "unknown architecture 'nope'"),
        (["train", "--set", "nope=1"], "has no option 'nope'"),
        (["eval", "no-such-run"], "no run 'no-such-run'"),
        (["train", "--resume", "latest", "--epochs", "3", "--lr", "0.01"], "--lr, --epochs would be ignored"),
        (["train", "--resume", "latest", "--no-augment", "--no-channels-last"], "--no-channels-last, --no-augment would be ignored"),
        (["train", "--no-augment", "--rotation", "15"], "--no-augment turns augmentation off, so --rotation would be ignored"),
        (["visualize", "--what", "confusoin"], "did you mean 'confusion'"),
        (["compare", "--study", "s", "--top", "-1"], "invalid value for '--top'"),
        (["eval", "--run", "x"], "no such option: --run (name the run without --run: mnistctl eval RUN)"),
        (["compare", "-r", "x"], "no such option: -r (name the runs without -r: mnistctl compare RUN RUN)"),
    ],
)
def test_every_input_mistake_is_one_line_with_exit_code_2(args, says):
    result = run_mnistctl(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert not lines[0].removeprefix("error: ")[0].isupper(), result.stderr  # click's own messages too
    assert "Traceback" not in result.stderr and "╭" not in result.stderr


def test_help_shows_flags_bare_and_values_by_name():
    result = run_mnistctl("train", "--help")
    assert result.returncode == 0
    options_shown = [line for line in result.stdout.splitlines() if "--help" not in line]  # Typer adds --help itself
    assert not [line for line in options_shown if "<bool>" in line or "<list" in line]
    assert "KEY=VALUE" in result.stdout and " LR " in result.stdout
    assert "mnistctl[onnx]" in run_mnistctl("export", "--help").stdout


def test_completion_offers_runs_architectures_and_plot_kinds(tmp_path, monkeypatch):
    for name in ("lenet-a", "simple-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "other" / "far-c").mkdir(parents=True)
    (tmp_path / "other" / "far-c" / "config.json").write_text("{}")
    monkeypatch.setenv("MNISTCTL_RUNS_DIR", str(tmp_path))
    for line, offered in [("compare le", "lenet-a"), ("watch s", "simple-b"), ("eval le", "lenet-a"), (f"eval --runs-dir {tmp_path / 'other'} f", "far-c")]:
        words = ["mnistctl", *line.split()]
        result = run_mnistctl(COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1), _MNISTCTL_COMPLETE="complete_bash", MNISTCTL_RUNS_DIR=str(tmp_path))
        assert result.stdout.split() == [offered], line
    assert "lenet" in options.complete_archs("le")
    assert options.complete_plot_kinds("confusion,wr") == ["confusion,wrong"]


def test_weights_keeps_the_old_checkpoint_spelling_for_a_release(capsys):
    assert options.weights(None, "last") == "last"
    assert "deprecated" in capsys.readouterr().err
    assert options.weights("best", None) == "best"
    with pytest.raises(Exception, match="disagree"):
        options.weights("best", "last")


def test_tiny_p_values_are_printed_not_rounded_to_zero():
    from mnistctl.cli.compare import p_value
    from mnistctl.reading.compare import mcnemar_exact

    assert p_value(mcnemar_exact(0, 40)) == "1.8e-12"
    assert p_value(mcnemar_exact(0, 5000)) == "< 1e-300"
    assert p_value(mcnemar_exact(10, 3000)).endswith("e-" + p_value(mcnemar_exact(10, 3000)).split("e-")[1])


def test_epoch_lines_fit_in_90_columns():
    from mnistctl.cli.progress import epoch_line

    event = {"epoch": 12, "train_loss": 0.123456, "train_acc": 0.987654, "val_loss": 0.045678, "val_acc": 0.99123,
             "lr": 0.000123456, "epoch_time": 123.4, "images_per_s": 12345.6, "best": True}
    assert len(epoch_line(event, 12).replace("[green]", "").replace("[/]", "")) <= 90
    assert "★" in epoch_line(event, 12)


def test_a_loss_blowing_up_is_written_short_in_the_epoch_line_the_bar_and_the_summary():
    from mnistctl.cli.progress import epoch_line, figures, summary_line

    event = {"epoch": 1, "train_loss": 6.894679318527046e19, "train_acc": 0.0984, "val_loss": 3.2e5, "val_acc": 0.1074,
             "lr": 30.0, "epoch_time": 4.1, "images_per_s": 1500.0, "best": True}  # fmt: skip
    assert "train 6.89e+19 9.84%  val 3.2e+05 10.74%" in epoch_line(event, 12)
    assert figures(2.15e20, 0.1)["loss"] == "2.15e+20" and figures(0.0909, 0.9)["loss"] == "0.0909"
    summary = {"status": "finished", "test_acc": 0.101, "test_loss": 1.5e12, "best_epoch": 1, "epochs_run": 2, "wall_time": 8.0}
    assert "(loss 1.5e+12)" in summary_line(summary)


def test_a_resumed_run_names_its_epoch_counting_from_one_like_the_epoch_lines():
    from mnistctl.cli.progress import start_line

    event = {"resumed": True, "start_epoch": 1, "start_step": 24, "device": "cpu", "params": 61_706, "dir": "runs/x"}
    assert start_line(event).startswith("resuming at epoch 2, step 24: ")


@pytest.mark.parametrize("command", ["train", "sweep", "eval", "visualize", "predict", "draw", "compare", "watch", "export", "list"])
def test_help_cuts_no_option_name_or_word_at_80_columns(command):
    result = run_mnistctl(command, "--help", COLUMNS="80")
    assert result.returncode == 0 and "…" not in result.stdout, [line for line in result.stdout.splitlines() if "…" in line]


def test_watch_help_names_its_argument_and_option_values_as_the_other_commands_do():
    usage, *rest = [line.strip() for line in run_mnistctl("watch", "--help", COLUMNS="80").stdout.splitlines() if line.strip()]
    assert usage.startswith("Usage: mnistctl watch [OPTIONS] [RUN]")
    assert any(line.split()[:3] == ["│", "--stalled-after", "SECONDS"] for line in rest), rest


@pytest.mark.parametrize("args, usage, argument", [
    (["predict"], "mnistctl predict [OPTIONS] IMAGES...", "IMAGES"),
    (["list", "archs"], "mnistctl list archs [OPTIONS] [PATTERN]", "PATTERN"),
    (["eval"], "mnistctl eval [OPTIONS] [RUN]", "RUN"),
])
def test_help_names_arguments_in_capitals_as_they_are_typed(args, usage, argument):
    lines = [line.strip("│ ") for line in run_mnistctl(*args, "--help", COLUMNS="80").stdout.splitlines() if line.strip()]
    assert lines[0] == f"Usage: {usage}", lines[0]
    assert any(line.lstrip("* ").startswith(f"{argument}  ") for line in lines), lines
    assert not [line for line in lines if "<str>" in line or "{" in line], lines


def test_eval_and_visualize_help_name_what_each_option_takes():
    shown = {command: [" ".join(line.strip("│ ").split()) for line in run_mnistctl(command, "--help").stdout.splitlines()] for command in ("eval", "visualize")}
    for command, option in [("eval", "--split test|val"), ("visualize", "--split test|val"), ("visualize", "--out DIR"), ("visualize", "--image FILE"), ("visualize", "--index N"), ("visualize", "--layer NAME|N")]:
        assert any(line.startswith(f"{option} ") for line in shown[command]), (command, option)


@pytest.mark.parametrize("command", ["eval", "visualize", "compare", "export", "train"])
def test_the_data_options_have_a_panel_of_their_own_that_leaves_the_others_room(command):
    shown = run_mnistctl(command, "--help", COLUMNS="80").stdout
    data = shown[shown.index("─ Data ─"):]
    data = data[: data.index("╰")]
    assert "--data-dir" in data and "--ignore-data-mismatch" in data, shown
    assert "--ignore-data-mismatch" not in shown[shown.index("─ Options ─"):].split("╰")[0], shown


@pytest.mark.parametrize("args", [["-h"], ["eval", "-h"], ["list", "archs", "-h"]])
def test_h_shows_the_help_as_help_does(args):
    result = run_mnistctl(*args)
    assert result.returncode == 0 and result.stdout == run_mnistctl(*args[:-1], "--help").stdout, result.stderr


def test_an_early_stop_says_why_in_the_last_line(tmp_path, data_dir):
    import json

    result = run_mnistctl("train", "--arch", "lenet", "--epochs", "8", "--limit", "3000", "--early-stopping", "1", "--lr", "0.5",
                          "--runs-dir", str(tmp_path), "--name", "es", MNISTCTL_DATA_DIR=str(data_dir))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "es" / "summary.json").read_text())["status"] == "early_stopped"  # lr 0.5 stalls lenet at once
    assert "early stopped (no better val_acc for 1 epoch): test accuracy" in result.stdout
