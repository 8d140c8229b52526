"""`convzoo train`'s flags, generated from TrainConfig's fields: every flag name that existed
still works, the flags are exactly the fields, the precedence defaults < --config < --recipe <
flags, and bad values refused in one line with exit status 2 before anything is written."""

from __future__ import annotations

import json

import pytest

import convzoo.engine
from convzoo.cli import build_parser, main
from convzoo.engine.config import TrainConfig, options

# Every flag `convzoo train` had before its flags were generated from the fields.
FLAGS_BEFORE = (
    "--recipe --data --data-dir --epochs --max-steps --batch-size --accum-steps --opt --lr "
    "--momentum --nesterov --wd --weight-decay --opt-eps --lr-scheduler --lr-step-size --lr-gamma "
    "--lr-milestones --lr-milestone-unit --lr-min --lr-warmup-epochs --lr-warmup-decay "
    "--plateau-patience --label-smoothing --clip-grad-norm --aux-loss-weight --ema --ema-decay "
    "--ema-steps --amp --channels-last --compile --deterministic --weights --reset-head "
    "--freeze-backbone --sync-bn --holdout --on-bad-file --train-split --val-split "
    "--checkpoint-every-steps --keep-checkpoints --resume --test-only --no-tensorboard --seed "
    "--device --engine --conv --num-classes --in-chans --model-arg --out --overwrite "
    "--input-size --config"
).split()
# The train arguments that are not TrainConfig fields' flags.
NOT_FIELDS = {"help", "model", "recipe", "config", "model_arg"}


def train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def test_every_flag_that_existed_still_exists():
    assert set(FLAGS_BEFORE) <= set(train_parser()._option_string_actions)


def test_the_flags_are_the_fields_with_their_choices():
    actions = {a.dest: a for a in train_parser()._actions if a.dest not in NOT_FIELDS}
    assert set(actions) == {o.name for o in options() if o.flags}
    for o in options():
        if o.flags:
            assert set(o.flags) <= set(actions[o.name].option_strings), o.name
            assert actions[o.name].choices == o.choices, o.name
            assert actions[o.name].default is None, o.name  # --config/--recipe keep their values


@pytest.mark.parametrize(("argv", "name", "value"), [
    (["--opt", "adamw"], "optimizer", "adamw"),
    (["--wd", "0.1"], "wd", 0.1),
    (["--weight-decay", "0.2"], "wd", 0.2),
    (["--lr-step-size", "3"], "lr_step_epochs", 3),
    (["--no-tensorboard"], "tensorboard", False),
    (["--lr-milestones", "2", "4"], "lr_milestones", [2, 4]),
    (["--nesterov"], "nesterov", True),
    (["--no-nesterov"], "nesterov", False),
    (["--input-size", "64"], "input_size", 64),
    (["--overwrite"], "overwrite", True),
    (["--lr-warmup-epochs", "0.5"], "lr_warmup_epochs", 0.5),
    (["--data-dir", "d"], "data_dir", "d"),
    ([], "epochs", None),
])
def test_flags_parse_onto_their_field(argv, name, value):
    args = build_parser().parse_args(["train", "lenet5", *argv])
    assert getattr(args, name) == value


@pytest.fixture
def fits(monkeypatch):
    """The configs `convzoo train` would train, without training."""
    seen: list[TrainConfig] = []
    monkeypatch.setattr(convzoo.engine, "fit", lambda cfg, reporter: seen.append(cfg))
    return seen


def test_precedence_defaults_config_recipe_flags(tmp_path, fits):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "vgg11", "lr": 0.3, "batch_size": 32,
                                  "label_smoothing": 0.2, "out": "old-run", "overwrite": True,
                                  "world_size": 4}))
    argv = ["train", "--config", str(config), "--recipe", "lenet5-mnist", "--epochs", "2",
            "--no-nesterov"]
    assert main(argv) == 0
    (cfg,) = fits
    assert cfg.epochs == 2 and cfg.nesterov is False  # flags over the recipe
    assert cfg.lr == 0.1 and cfg.batch_size == 128 and cfg.model == "lenet5"  # recipe over config
    assert cfg.label_smoothing == 0.2  # the config where the recipe is silent
    assert cfg.ema_decay == TrainConfig(model="x").ema_decay  # the default where all are silent
    assert cfg.out is None and cfg.overwrite is False  # a re-run: new directory, no overwrite
    assert main(["train", "resnet20", "--config", str(config), "--out", "new"]) == 0
    assert (fits[1].model, fits[1].lr, fits[1].out) == ("resnet20", 0.3, "new")


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--num-classes", "0"], "--num-classes must be >= 1, got 0"),
    (["--in-chans", "0"], "--in-chans must be >= 1, got 0"),
    (["--lr-warmup-epochs", "inf"], "--lr-warmup-epochs must be a finite number, got inf"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--lr", "1e308"], "--lr must be a finite number of magnitude at most 3.4e+38, got 1e+308"),
    (["--seed", "100000000000000000000000"], "--seed must be an integer that fits in 64 bits"),
    (["--seed", "-1"], "--seed must be in [0, 2**32), got -1"),
    (["--data-dir", ""], "--data-dir must be a string or null (non-empty"),
    (["--model-arg", "a=" + "[" * 9 + "]" * 9], "key 'model_args' must be a JSON object nested"),
])
def test_bad_flag_values_are_one_line_and_exit_2(tmp_path, capsys, fits, argv, fragment):
    out = tmp_path / "run"
    assert main(["train", "lenet5", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and err.startswith("convzoo train: error: ")
    assert not fits and not out.exists()


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"model": "lenet5", "epochs": "3"}', "key 'epochs' (--epochs) must be an integer"),
    ('{"model": "lenet5", "epochs": null}', "key 'epochs' (--epochs) must be an integer, got null"),
    ('{"model": "lenet5", "epochs": true}', "key 'epochs' (--epochs) must be an integer, got true"),
    ('{"model": ["lenet5"]}', "key 'model' must be a string, got ['lenet5']"),
    ('{"model": "lenet5", "model_args": "x"}', "key 'model_args' must be a JSON object"),
    ('{"model": "lenet5", "lr_milestones": 3}', "key 'lr_milestones' (--lr-milestones) must be"),
    ('{"model": "lenet5", "lr": Infinity}', "key 'lr' (--lr) must be a finite number, got inf"),
    ('{"model": "lenet5", "data": "\udcff"}', "is not valid JSON"),
    ("[" * 50_000 + "]" * 50_000, "nests its JSON too deeply"),
])
def test_bad_config_files_are_one_line_and_exit_2(tmp_path, capsys, fits, text, fragment):
    config = tmp_path / "config.json"
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and str(config) in err and err.count("\n") == 1
    assert not fits and not out.exists()


def test_a_too_deeply_nested_model_arg_is_an_argument_error(capsys, fits):
    with pytest.raises(SystemExit) as e:
        main(["train", "lenet5", "--model-arg", "depth=" + "[" * 100_000])
    assert e.value.code == 2 and "depth: the JSON value nests too deeply" in capsys.readouterr().err
    assert not fits
