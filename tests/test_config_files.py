"""Config files: their preset and name apply, a run's bookkeeping does not, only TOML and JSON are read, and values are typed."""

import json

import pytest

from mnistctl.errors import NotFoundError, UsageError
from mnistctl.training import config as trainconfig
from test_cli import run_mnistctl


def _write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_files_preset_applies_under_its_settings(tmp_path):
    path = _write(tmp_path, 'preset = "fast"\nepochs = 3\n')
    config = trainconfig.resolve({}, path)
    assert config["preset"] == "fast" and config["scheduler"] == "onecycle" and config["lr"] == 0.1
    assert config["arch_options"]["channels"] == [16, 24] and config["epochs"] == 3
    assert trainconfig.resolve({"epochs": 4}, path)["epochs"] == 4


@pytest.mark.parametrize("arch", ["lenet", "scratch-cnn", "strided-bn"])
def test_an_architecture_named_in_a_file_starts_from_its_own_options_not_the_presets(arch, tmp_path):
    own = trainconfig.resolve({"arch": arch})["arch_options"]
    assert trainconfig.resolve({}, _write(tmp_path, f'preset = "fast"\narch = "{arch}"\n'))["arch_options"] == own
    assert trainconfig.resolve({}, _write(tmp_path, f'arch = "{arch}"\n'), "fast")["arch_options"] == own
    assert trainconfig.resolve({"arch": arch}, None, "fast")["arch_options"] == own


def test_an_empty_preset_flag_is_refused():
    with pytest.raises(NotFoundError, match="unknown preset ''"):
        trainconfig.resolve({}, None, "")


def test_an_augmentation_flag_changes_only_its_own_amount(tmp_path):
    path = _write(tmp_path, "augment = { rotation = 20.0, zoom = 0.2, elastic = 5.0 }\n")
    assert trainconfig.resolve({"augment": {"shift": 0.05}}, path)["augment"] == {"rotation": 20.0, "shift": 0.05, "zoom": 0.2, "elastic": 5.0}
    assert trainconfig.resolve({"augment": {}}, path)["augment"] == {"rotation": 20.0, "shift": 0.1, "zoom": 0.2, "elastic": 5.0}
    assert trainconfig.resolve({"augment": {"zoom": 0.1}}, None, "best")["augment"] == {"rotation": 10.0, "shift": 0.1, "zoom": 0.1, "elastic": 0.0}
    assert trainconfig.resolve({"augment": {"shift": 0.05}})["augment"] == {"rotation": 10.0, "shift": 0.05, "zoom": 0.0, "elastic": 0.0}


@pytest.mark.parametrize("name, text", [("c.json", '{"epochs": ' + "9" * 5000 + "}"), ("c.toml", "epochs = " + "9" * 5000)])
def test_a_number_too_long_to_read_is_an_invalid_file(name, text, tmp_path):
    path = _write(tmp_path, text, name)
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, path)
    assert info.value.message == f"config file {path} is not valid {name[2:].upper()}: a number has more than 4,300 digits"


def test_a_preset_flag_wins_over_the_files(tmp_path):
    config = trainconfig.resolve({}, _write(tmp_path, 'preset = "fast"\n'), "best")
    assert config["preset"] == "best" and config["arch"] == "strided-bn"


@pytest.mark.parametrize("preset, hint", [("nope", "choose one of: fast, best"), ("fats", "did you mean 'fast'?")])
def test_an_unknown_preset_in_a_file_is_refused(preset, hint, tmp_path):
    path = _write(tmp_path, f'preset = "{preset}"\n')
    for flag in (None, "fast"):
        with pytest.raises(NotFoundError) as info:
            trainconfig.resolve({}, path, flag)
        assert info.value.message == f"config file {path} has unknown preset '{preset}'" and info.value.hint == hint


def test_a_preset_that_is_not_text_is_refused(tmp_path):
    with pytest.raises(UsageError, match="preset = 3 is not allowed"):
        trainconfig.resolve({}, _write(tmp_path, "preset = 3\n"))


def test_a_files_name_applies_and_the_name_flag_wins(tmp_path):
    path = _write(tmp_path, 'name = "myname"\n')
    assert trainconfig.resolve({}, path)["name"] == "myname"
    assert trainconfig.resolve({"name": "flagged"}, path)["name"] == "flagged"
    with pytest.raises(UsageError, match="one folder name"):
        trainconfig.resolve({}, _write(tmp_path, 'name = "../up"\n'))


def test_an_unknown_setting_is_offered_preset(tmp_path):
    path = _write(tmp_path, 'prest = "fast"\n')
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, path)
    assert info.value.message == f"config file {path} has unknown setting 'prest'" and "'preset'" in info.value.hint


@pytest.mark.parametrize("key, table", [("set", "arch_options"), ("opt-set", "optimizer_options"), ("sched_set", "scheduler_options")])
def test_a_flags_name_as_a_key_is_pointed_to_its_table(key, table, tmp_path):
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, _write(tmp_path, f'"{key}" = {{ x = 1 }}\n'))
    assert info.value.hint.startswith(f"in a config file the options are a table, e.g. {table} = {{")


def test_train_refuses_an_unknown_preset_in_a_file_before_writing_anything(tmp_path):
    path = _write(tmp_path, 'preset = "nope"\n')
    result = run_mnistctl("train", "--config", str(path), "--runs-dir", str(tmp_path / "runs"), "--epochs", "1", "--limit", "3000")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: config file {path} has unknown preset 'nope' (choose one of: fast, best)"]
    assert not (tmp_path / "runs").exists()


def test_a_runs_config_is_taken_back_with_its_name_and_preset_but_not_its_bookkeeping(short_run, data_dir, tmp_path):
    from mnistctl.training.trainer import Trainer

    recorded = json.loads(short_run.config_path.read_text())
    path = _write(tmp_path, json.dumps({**recorded, "preset": "fast", "study": {"name": "s"}, "distributed": {}}), "config.json")
    config = trainconfig.resolve({}, path)
    assert config["name"] == "short" and config["preset"] == "fast"
    assert {key: config[key] for key in trainconfig.DEFAULTS} == {key: recorded[key] for key in trainconfig.DEFAULTS}
    assert not set(config) & set(trainconfig.RUN_FIELDS)
    trainer = Trainer(trainconfig.resolve({}, short_run.config_path), None, short_run.path.parent, data_dir)
    trainer.prepare()  # the recorded name is taken: the new run is the next free one
    assert trainer.run_dir.name == "short-2"


@pytest.mark.parametrize("name", ["p.yaml", "p.yml", "p", "p.txt"])
def test_a_file_neither_toml_nor_json_is_refused_in_one_line(name, tmp_path):
    path = _write(tmp_path, "epochs: 2\n", name)
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, path)
    assert "config files are TOML (.toml) or JSON (.json)" in info.value.message and "\n" not in str(info.value)
    assert info.value.hint


def test_train_refuses_a_yaml_config(tmp_path):
    path = _write(tmp_path, "epochs: 2\n", "p.yaml")
    result = run_mnistctl("train", "--config", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "config files are TOML (.toml) or JSON (.json)" in lines[0] and "Expecting value" not in lines[0]
    assert not (tmp_path / "runs").exists()


def test_upper_case_suffixes_are_read(tmp_path):
    assert trainconfig.resolve({}, _write(tmp_path, "epochs = 3\n", "c.TOML"))["epochs"] == 3


@pytest.mark.parametrize(
    "settings, option",
    [
        ({"arch_options": {"dropout": "0.3"}}, "dropout"),
        ({"arch_options": {"channels": "16,24"}}, "channels"),
        ({"arch_options": {"hidden": "64"}}, "hidden"),
        ({"optimizer_options": {"momentum": "0.5"}}, "momentum"),
        ({"optimizer_options": {"nesterov": "true"}}, "nesterov"),
        ({"scheduler": "exponential", "scheduler_options": {"gamma": "0.5"}}, "gamma"),
    ],
)
@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_text_for_a_number_option_in_a_file_is_refused(settings, option, suffix, tmp_path):
    from test_config_schema import _toml

    path = _write(tmp_path, json.dumps(settings) if suffix == ".json" else _toml(settings), f"c{suffix}")
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, path)
    assert f"option {option} = '" in info.value.message and "is not allowed: expected" in info.value.message


def test_option_flags_are_text_and_still_parsed(tmp_path):
    path = _write(tmp_path, "[arch_options]\ndropout = 0.1\n")
    config = trainconfig.resolve({"arch_options": {"dropout": "0.3", "channels": "8,16"}, "optimizer_options": {"momentum": "0.5"}}, path)
    assert config["arch_options"]["dropout"] == 0.3 and config["arch_options"]["channels"] == [8, 16]
    assert config["optimizer_options"]["momentum"] == 0.5
    assert trainconfig.resolve({}, path)["arch_options"]["dropout"] == 0.1


def test_a_config_file_that_is_not_a_regular_file_is_named_so_without_waiting(tmp_path):
    import os

    from mnistctl.training.config import load_file

    fifo = tmp_path / "settings.toml"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="is not a regular file"):
        load_file(fifo)  # opening a FIFO to read would wait for a writer


def test_a_files_option_table_changes_only_the_options_it_names_over_its_preset(tmp_path):
    path = _write(tmp_path, 'preset = "fast"\n[arch_options]\ndropout = 0.1\n[scheduler_options]\npct_start = 0.5\n')
    config = trainconfig.resolve({}, path)
    assert config["arch_options"]["channels"] == [16, 24] and config["arch_options"]["dropout"] == 0.1
    assert config["scheduler_options"]["pct_start"] == 0.5 and config["optimizer_options"]["nesterov"] is True
    assert trainconfig.resolve({}, _write(tmp_path, '[arch_options]\ndropout = 0.1\n'), "fast")["arch_options"]["channels"] == [16, 24]


@pytest.mark.parametrize("name", ["c.toml", "c.json"])
def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + (b"epochs = 3\r\n" if name.endswith(".toml") else b'{"epochs": 3}'))
    assert trainconfig.resolve({}, path)["epochs"] == 3


def test_augment_false_in_a_file_turns_its_presets_augmentation_off_as_no_augment_does(tmp_path):
    assert trainconfig.resolve({}, _write(tmp_path, 'preset = "best"\naugment = false\n'))["augment"] is None
    assert trainconfig.resolve({"augment": {"zoom": 0.1}}, _write(tmp_path, "augment = false\n"), "best")["augment"]["zoom"] == 0.1


@pytest.mark.parametrize("name, text", [("c.toml", "augment = true\n"), ("c.json", '{"augment": true}')])
def test_augment_true_in_a_file_turns_augmentation_on_as_augment_does(name, text, tmp_path):
    path = _write(tmp_path, text, name)
    for preset in (None, "fast", "best"):
        assert trainconfig.resolve({}, path, preset)["augment"] == trainconfig.resolve({"augment": {}}, None, preset)["augment"] == {
            "rotation": 10.0, "shift": 0.1, "zoom": 0.0, "elastic": 0.0}
    assert trainconfig.resolve({"augment": {"zoom": 0.1}}, path)["augment"]["zoom"] == 0.1
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, _write(tmp_path, 'augment = "yes"\n'))
    assert info.value.message == "augment = 'yes' is not allowed: expected true, false or a table with rotation, shift, zoom and elastic"


def test_a_preset_flag_under_a_runs_config_would_change_nothing_and_is_refused_before_any_run(short_run, tmp_path):
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, short_run.config_path, "best")
    assert info.value.message == f"--preset best would change nothing: config file {short_run.config_path} is a run's config.json, which sets every setting"
    assert info.value.hint == "a config file's settings go over its preset's; drop --preset, or use --preset best with flags instead of --config"
    result = run_mnistctl("train", "-c", str(short_run.config_path), "--preset", "best", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and result.stderr.startswith("error: --preset best would change nothing") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    assert trainconfig.resolve({}, short_run.config_path)["arch"] == "lenet"  # the file alone: its settings


def test_a_preset_flag_applies_under_a_file_that_sets_some_of_its_settings_and_is_refused_under_one_that_sets_all(tmp_path):
    config = trainconfig.resolve({}, _write(tmp_path, 'arch = "simplecnn"\n'), "best")
    assert (config["preset"], config["arch"], config["lr"], config["monitor"], config["augment"]["rotation"]) == ("best", "simplecnn", 0.05, "val_loss", 10.0)
    path = _write(tmp_path, 'arch = "lenet"\noptimizer = "sgd"\nlr = 0.1\nscheduler = "step"\nepochs = 1\nbatch_size = 64\n')
    with pytest.raises(UsageError) as info:
        trainconfig.resolve({}, path, "fast")
    assert info.value.message == f"--preset fast would change nothing: config file {path} sets all of its settings (arch, optimizer, lr, scheduler, epochs, batch_size)"
    assert trainconfig.resolve({"epochs": None}, path, "best")["weight_decay"] == 5e-4
    flags = {"arch": "lenet", "optimizer": "sgd", "lr": 0.1, "scheduler": "step", "epochs": 1, "batch_size": 64}
    with pytest.raises(UsageError, match=r"^--preset fast would change nothing: the flags set all of its settings \(arch, "):
        trainconfig.resolve(flags, None, "fast")
