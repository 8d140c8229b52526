"""An interrupted experiment resumes where it stopped when the same command runs again."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from convzoo.cli import main
from convzoo.experiments import _training
from convzoo.experiments._training import StepRecorder

NAME = "lenet-1998-vs-modern"  # two arms (one lr each) on MNIST; smoke: 2 steps an epoch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))


def _argv(tmp_path, folder):
    return ["experiment", NAME, "--profile", "smoke", "--device", "cpu", "--set", "epochs=3",
            "--set", "max_steps=6", "--set", "lr_grid=[1.0]", "--out",
            str(tmp_path / folder / "out"), "--runs", str(tmp_path / folder / "runs")]


def test_interrupted_experiment_resumes_where_it_stopped(tmp_path, capsys, monkeypatch):
    assert main(_argv(tmp_path, "straight")) == 0
    capsys.readouterr()

    real_step = StepRecorder.step
    calls = []

    def step(self, info):  # SIGINT during the second arm's step 3 (of 6, 2 an epoch)
        real_step(self, info)
        calls.append(info.step)
        if len(calls) == 6 + 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(StepRecorder, "step", step)
    assert main(_argv(tmp_path, "cut")) == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "convzoo train --resume" not in err
    assert f"experiment {NAME}, relu-max-pool-modern-lr-0-1 seed 0: stopped by SIGINT" in err
    assert "again to resume where it stopped" in err and "--runs" in err
    monkeypatch.setattr(StepRecorder, "step", real_step)

    assert main(_argv(tmp_path, "cut")) == 0
    out = capsys.readouterr().out
    assert "tanh-avg-pool-1998-lr-0-1 seed 0: reusing" in out
    stopped = int(re.search(r"relu-max-pool-modern-lr-0-1 seed 0: resuming .* from step (\d+)",
                            out)[1])
    assert 3 <= stopped < 6
    runs = sorted(p.name for p in (tmp_path / "cut" / "runs").iterdir())
    for run in runs:  # the same per-step curve and numbers as the uninterrupted experiment
        cut = json.loads((tmp_path / "cut" / "runs" / run / _training._STEPS_FILE).read_text())
        straight = json.loads((tmp_path / "straight" / "runs" / run /
                               _training._STEPS_FILE).read_text())
        assert cut["steps"] == straight["steps"] == list(range(1, 7)), run
        assert cut["loss"] == pytest.approx(straight["loss"], rel=1e-6)
        assert cut["final"]["top1_acc"] == straight["final"]["top1_acc"]
        assert not (tmp_path / "cut" / "runs" / run / _training._PARTIAL_FILE).exists()


def test_every_experiment_has_a_smoke_profile(capsys):
    from convzoo.experiments import PROFILES, list_experiments

    assert PROFILES[0] == "smoke"
    for exp in list_experiments():
        assert set(PROFILES) <= set(exp.profiles), exp.name
        assert exp.default_seeds["smoke"] == 1


def test_a_run_saved_before_a_new_option_is_still_reused():
    # A finished run's config.json lacks fields TrainConfig gained since (e.g. eval_train): at
    # their default they match, so adding an option does not retrain every finished run.
    import json

    from convzoo.engine import TrainConfig
    from convzoo.experiments._training import _same_config

    cfg = TrainConfig(model="lenet5", data="mnist")
    saved = json.loads(json.dumps(cfg.to_dict()))
    saved.pop("eval_train")
    assert _same_config(saved, cfg)
    assert not _same_config(saved, cfg.replace(eval_train=5))
    assert not _same_config({**saved, "lr": 9.0}, cfg)
