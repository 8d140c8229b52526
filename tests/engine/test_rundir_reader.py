"""RunDir is the one reader of a run directory: config, preset, metrics, final results, weights
and curves of a real (tiny) training run read back as the run wrote them, and one
:class:`ConvzooError` for a missing or damaged file."""

from __future__ import annotations

import json
import shutil

import pytest

from convzoo import ConvzooError, TrainConfig, evaluate, fit, load_trained, read_weights
from convzoo.data import DataPreset
from convzoo.engine.rundir import RunDir
from engine.enginehelp import shrink_mnist

STEPS = 6  # 64 training images, batch 16: 4 steps per epoch, so the second epoch stops at 6


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reader") / "run"
    with pytest.MonkeyPatch.context() as mp:
        shrink_mnist(mp, 64, 40)  # 40 test images
        result = fit(TrainConfig(model="lenet5", epochs=2, max_steps=STEPS, batch_size=16,
                                 out=str(out), tensorboard=False, device="cpu"))
    return result


def test_config_and_preset_are_what_the_run_wrote(run):
    rd = RunDir(run.run_dir)
    assert not rd.writer
    config = rd.config()
    assert config == json.loads((run.run_dir / "config.json").read_text())
    assert (config["model"], config["data"], config["max_steps"]) == ("lenet5", "mnist", STEPS)
    preset = rd.preset()
    assert isinstance(preset, DataPreset)
    assert preset == DataPreset.from_dict(json.loads((run.run_dir / "preset.json").read_text()))
    assert preset == load_trained(run.run_dir).preset


def test_metrics_are_the_rows_of_metrics_jsonl(run):
    rows = RunDir(run.run_dir).metrics()
    written = [json.loads(line) for line in
               (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1.0, 2.0] and rows[-1]["step"] == STEPS
    for got, want in zip(rows, written, strict=True):
        assert got == {k: None if v is None else pytest.approx(float(v)) for k, v in want.items()}


def test_final_weights_and_curves(run, monkeypatch):
    rd = RunDir(run.run_dir)
    final = rd.final()
    assert final == run.final and (final["steps"], final["n"]) == (STEPS, 40)
    shrink_mnist(monkeypatch, 64, 40)  # the run's test split
    assert final["top1_acc"] == evaluate(run.run_dir, device="cpu", workers=0)["top1_acc"]
    weights = rd.weights()
    assert weights == run.run_dir / "model.safetensors"
    assert read_weights(weights).model == "lenet5"
    assert rd.curves() == run.run_dir / "curves.png"
    assert RunDir.of_weights(weights).path == run.run_dir


def test_a_weights_file_out_of_its_run_has_no_run(run, tmp_path):
    copy = shutil.copy(RunDir(run.run_dir).weights(), tmp_path / "model.safetensors")
    assert RunDir.of_weights(copy) is None


def test_an_empty_folder_reads_as_nothing_or_one_error(tmp_path):
    rd = RunDir(tmp_path)
    assert rd.config(required=False) == {} and rd.final(required=False) == {}
    assert rd.preset() is None and rd.metrics() == [] and rd.curves() is None
    with pytest.raises(ConvzooError, match=r"has no final\.json \(unfinished run\?\)"):
        rd.final()
    with pytest.raises(ConvzooError, match=r"has no config\.json"):
        rd.config()
    with pytest.raises(ConvzooError, match=r"has no model\.safetensors \(unfinished run\?\)"):
        rd.weights()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("final.json", "[1, 2]", r"run results .*final\.json must hold a JSON object"),
    ("final.json", '{"epochs": "two"}', r"'epochs' must be a number, got \"two\""),
    ("final.json", "{", r"final\.json"),
    ("config.json", "[]", r"run config .*config\.json is not a JSON object"),
    ("preset.json", '{"mean": "x"}', r"preset\.json: "),
    ("metrics.csv", "epoch,lr\n1,fast\n", r"metrics\.csv: line 2, column 'lr' holds 'fast'"),
])
def test_a_damaged_file_is_one_error_naming_it(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    rd = RunDir(tmp_path)
    read = {"final.json": rd.final, "config.json": rd.config, "preset.json": rd.preset,
            "metrics.csv": rd.metrics}[name]
    with pytest.raises(ConvzooError, match=message):
        read()
