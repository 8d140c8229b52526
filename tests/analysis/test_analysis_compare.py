"""compare: overlaid curves, the settings that differ, one accuracy axis per data set, output
under --out (by default beside the runs, never the current folder)."""

from __future__ import annotations

import json
import shutil

import pytest

from convzoo.analysis.compare import accuracy_figure, curves_overlay_figure, differing_settings
from convzoo.cli import main


@pytest.fixture(scope="module")
def two_runs(tiny_run, tmp_path_factory):
    import convzoo

    root = tmp_path_factory.mktemp("compare-runs")
    a = root / "a"
    shutil.copytree(tiny_run, a)
    b = root / "b"
    convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=2, max_steps=4, batch_size=64,
                                    lr=0.01, out=str(b), device="cpu", tensorboard=False))
    return a, b


def test_compare_lists_differing_settings_and_writes_beside_the_runs(two_runs, tmp_path, capsys,
                                                                     monkeypatch):
    a, b = two_runs
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing in the current folder
    folder = a.parent / "compare"
    assert {p.name for p in folder.iterdir()} == {"curves.png", "accuracy.png", "compare.json"}
    settings = out.split("settings that differ:")[1].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in settings[1:] if line.strip()
            and not line.startswith("written")}
    assert rows["lr"] == ["0.05", "0.01"] and rows["epochs"] == ["1", "2"]
    assert rows["max_steps"] == ["8", "4"]
    assert "momentum" not in rows and "out" not in rows and "argv" not in rows
    saved = json.loads((folder / "compare.json").read_text())
    assert saved["settings"]["lr"] == [0.05, 0.01] and len(saved["runs"]) == 2

    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["a", "b"]
    assert (tmp_path / "cmp" / "curves.png").stat().st_size > 1000


def test_differing_settings():
    assert differing_settings([{"lr": 0.1, "wd": 0, "out": "x"}, {"lr": 0.2, "wd": 0, "out": "y"},
                               {"wd": 0, "out": "z"}]) == {"lr": [0.1, 0.2, None]}


def test_one_accuracy_axis_per_data_set():
    rows = [{"data": "mnist", "gmacs": 0.0004, "top1_acc": 0.99},
            {"data": "cifar10", "gmacs": 0.04, "top1_acc": 0.91},
            {"data": "mnist", "gmacs": 0.0007, "top1_acc": 0.98}]
    fig = accuracy_figure(["a", "b", "c"], rows)
    assert [ax.get_title() for ax in fig.axes] == ["mnist", "cifar10"]
    assert [len(ax.collections) for ax in fig.axes] == [2, 1]
    lo, hi = fig.axes[0].get_ylim()
    assert 97 < lo and hi < 100  # each axis fits its own data set's accuracies


def test_curves_are_overlaid_one_colour_per_run():
    def rows(scale):
        return [{"epoch": e, "lr": 0.1 / e, "train_loss": scale / e, "test_loss": scale,
                 "test_top1_err": scale / 10} for e in (1, 2, 3)]

    fig = curves_overlay_figure(["a", "b"], [rows(1.0), rows(2.0)])
    err, loss, lr = fig.axes
    assert len(err.lines) == 2 and len(loss.lines) == 4 and len(lr.lines) == 2
    assert err.lines[0].get_color() != err.lines[1].get_color()
    assert [t.get_text() for t in err.get_legend().get_texts()] == ["a", "b"]
