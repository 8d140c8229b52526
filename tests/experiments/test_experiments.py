"""Every experiment end to end at the ``smoke`` profile (--profile smoke): a few steps, one seed.

CIFAR-10 is replaced by a small folder of random 32x32 PNGs in the JPEG copy's layout
(``train/<class>/``, ``test/<class>/``), so the tests need nothing from ../shared; MNIST is the full
set when ../shared/data has it, else the embedded subset. The figures do not matter here; that
the plot, the table and the page are written, and that the table holds the measured numbers, does.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from convzoo.cli import main
from convzoo.experiments import get_experiment, list_experiments, run_experiment

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    import torchvision.io as io

    root = tmp_path_factory.mktemp("fake-cifar")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 12), ("test", 6)):
        for c in CLASSES:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
                io.write_png(img, str(d / f"{i:04d}.png"))
    return root


# torchvision 0.29 warns on every PNG encode/decode (its TorchCodec migration).
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))


def _tiny(name: str, tmp_path, data_dir=None, runs=None, **kw):
    out = tmp_path / "out"
    runs = tmp_path / "runs" if runs is None else runs
    record = run_experiment(name, profile="smoke", device="cpu", out=out, runs=runs,
                            data_dir=None if data_dir is None else str(data_dir), **kw)
    for suffix in (".png", ".csv", "-table.md", ".md", ".json"):
        path = out / f"{name}{suffix}"
        assert path.is_file() and path.stat().st_size > 0, path
    assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / f"{name}.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == [h for _, h in record["columns"]]
    assert len(table) - 1 == len(record["rows"]) > 0
    page = (out / f"{name}.md").read_text()
    assert "The paper's claim" in page and f"Verdict here: {record['verdict']}" in page
    assert f"({name}.png)" in page and table[0][0] in page
    index = (out / "index.md").read_text()
    assert f"[{name}]({name}.md)" in index
    saved = json.loads((out / f"{name}.json").read_text())
    assert saved["rows"] == record["rows"] and saved["seeds"] == 1
    assert "load average" in page
    return record, table


@pytest.fixture(scope="module")
def lenet_smoke(tmp_path_factory):
    """lenet-1998-vs-modern at the smoke profile, run once for the three tests that read it:
    (folder, record, table)."""
    folder = tmp_path_factory.mktemp("lenet-smoke")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVZOO_CACHE", str(folder / "cache"))
        record, table = _tiny("lenet-1998-vs-modern", folder)
    return folder, record, table


@pytest.fixture(scope="module")
def batchnorm_runs(tmp_path_factory):
    """One runs folder for both batchnorm tests: the MNIST arms train once and the other test
    reuses them (reuse itself is tested by test_lenet_reuses_finished_runs)."""
    return tmp_path_factory.mktemp("batchnorm-runs")


def _cell_numbers(cell: str) -> list[float]:
    import re

    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", cell)]


def test_every_experiment_is_listed():
    names = [e.name for e in list_experiments()]
    assert names == ["relu-vs-tanh", "lenet-1998-vs-modern", "batchnorm", "im2col", "dropout",
                     "degradation", "architectures"]
    for e in list_experiments():
        assert {"smoke", "quick", "full"} <= set(e.profiles)


def test_lenet_1998_vs_modern(lenet_smoke):
    tmp_path, record, table = lenet_smoke
    raw = record["raw"]
    for row in table[1:]:
        err = raw[row[0]]["test_err"][0]
        assert _cell_numbers(row[2])[0] == pytest.approx(100 * err, abs=0.006)
        assert row[1] == f"{raw[row[0]]['lr']:g}" and raw[row[0]]["lr"] in (0.1, 0.2)
    # Each arm's peak lr tuned over the grid (x1, x2 of the recipe's 0.1), one run per lr.
    run_dirs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert run_dirs == ["relu-max-pool-modern-lr-0-1-s0", "relu-max-pool-modern-lr-0-2-s0",
                        "tanh-avg-pool-1998-lr-0-1-s0", "tanh-avg-pool-1998-lr-0-2-s0"]
    assert (tmp_path / "runs" / run_dirs[0] / "metrics.csv").is_file()
    preset = json.loads((tmp_path / "runs" / run_dirs[0] / "preset.json").read_text())
    assert preset["crop_padding"] == 0  # no augmentation: LeCun's 0.95% is without distortions


def test_lenet_reuses_finished_runs(lenet_smoke):
    tmp_path, first, _ = lenet_smoke
    messages: list[str] = []
    second = run_experiment("lenet-1998-vs-modern", profile="smoke", device="cpu",
                            out=tmp_path / "out", runs=tmp_path / "runs", progress=messages.append)
    assert sum("reusing" in m for m in messages) == 4
    assert second["raw"] == first["raw"]


def test_relu_vs_tanh(tmp_path, fake_cifar):
    record, table = _tiny("relu-vs-tanh", tmp_path, fake_cifar)
    assert [r[0] for r in table[1:]] == [
        "cuda-convnet relu lr 0.001", "cuda-convnet tanh lr 0.001", "modern relu lr 0.01",
        "modern tanh lr 0.01"]
    for row in table[1:]:
        assert _cell_numbers(row[4])[0] == pytest.approx(
            100 * record["raw"][row[0]]["test_err"][0], abs=0.006)
    assert {"cuda-convnet ratio_tanh_over_relu", "modern ratio_tanh_over_relu"} <= set(
        record["raw"])
    # The cuda-convnet arm: its own net and init, raw pixels minus the mean (std 1/255).
    runs = tmp_path / "runs"
    cfg = json.loads((runs / "cuda-convnet-relu-lr-0-001-s0" / "config.json").read_text())
    assert cfg["model"] == "cuda_convnet_18pct" and cfg["wd"] == 0 and cfg["momentum"] == 0.9
    preset = json.loads((runs / "cuda-convnet-relu-lr-0-001-s0" / "preset.json").read_text())
    assert preset["std"] == [pytest.approx(1 / 255)] * 3 and not preset["hflip"]
    modern = json.loads((runs / "modern-tanh-lr-0-01-s0" / "config.json").read_text())
    assert modern["model"] == "cnn4_cifar" and modern["model_args"]["activation"] == "tanh"
    page = (tmp_path / "out" / "relu-vs-tanh.md").read_text()
    assert "cuda-convnet set-up: " in page.lower() and "; modern set-up: " in page
    # the minutes depend on the thread count (--threads), so the machine line names it
    assert f"CPU, {torch.get_num_threads()} torch thread(s), torch " in record["machine"]
    assert f"from {fake_cifar}," in page  # the folder given, named on the page's Data line


def test_batchnorm(tmp_path, fake_cifar, batchnorm_runs):
    record, table = _tiny("batchnorm", tmp_path, fake_cifar, runs=batchnorm_runs)
    mnist = [r for r in table[1:] if r[0].startswith("MNIST")]
    # One sensitivity table over the init stds; each arm's lr chosen from the grid.
    assert [r[1] for r in mnist] == ["without BN, init std 0.01", "with BN, init std 0.01",
                                     "without BN, init std 0.1", "with BN, init std 0.1"]
    for row in mnist:
        raw = record["raw"][row[1]]
        assert _cell_numbers(row[3])[0] == pytest.approx(100 * raw["final_test_acc"][0],
                                                         abs=0.006)
        # the curve: one point at initialisation plus one per checkpoint (every 2 of 4 steps)
        assert raw["steps"] == [0, 2, 4]
        assert raw["lr"] in (0.5, 2.0) and row[2] == f"{raw['lr']:g} (chosen)"
        assert set(raw["lr_trials"]) == {"0.5", "2"}
    runs = sorted(p.name for p in batchnorm_runs.iterdir() if p.name.startswith("with-bn"))
    assert runs[:2] == ["with-bn-init-std-0-01-lr-0-5-s0", "with-bn-init-std-0-01-lr-2-s0"]
    cfg = json.loads((batchnorm_runs / runs[0] / "preset.json").read_text())
    assert cfg["crop_padding"] == 0  # no augmentation (§4.1 names none)
    assert len([r for r in table[1:] if r[0].startswith("CIFAR")]) == 4


def test_batchnorm_mnist_only_via_set(tmp_path, batchnorm_runs):
    record, table = _tiny("batchnorm", tmp_path, runs=batchnorm_runs, cifar=False)
    assert len(table) - 1 == 4
    assert "--set cifar=false" in record["command"]


def test_im2col(tmp_path):
    record, table = _tiny("im2col", tmp_path)
    assert [r[0] for r in table[1:]] == ["LeNet-5 C1", "LeNet-5 C3"]
    c1 = record["raw"]["LeNet-5 C1"][0]
    # C1: 1x32x32 input (28 padded by 2), 6 filters 5x5 -> im2col (25, 28*28)
    assert table[1][3] == "25 x 784"
    assert c1["blowup"] == pytest.approx(25 * 784 / 1024)
    assert c1["max_diff"] < 1e-4
    assert _cell_numbers(table[1][7])[0] == pytest.approx(c1["numpy_ms"], rel=1e-2)


def test_dropout(tmp_path, fake_cifar):
    record, table = _tiny("dropout", tmp_path, fake_cifar)
    assert [r[0] for r in table[1:]] == ["dropout 0", "dropout 0.5"]
    for row in table[1:]:
        gap = record["raw"][row[0]]["gap"][0]
        assert _cell_numbers(row[3])[0] == pytest.approx(100 * gap, abs=0.006)
    # Two steps do not overfit anything: the claim about overfitting is then not tested.
    from convzoo.experiments.dropout import OVERFIT_TRAIN_ACC

    assert record["raw"]["dropout 0"]["train_acc"][0] < OVERFIT_TRAIN_ACC
    assert record["verdict"] == "not comparable"
    page = (tmp_path / "out" / "dropout.md").read_text()
    assert "did not overfit" in page or "did not train" in page
    # Training accuracy scored in eval mode (dropout off) by the trainer at the epoch's end
    # (--eval-train; tests/engine/test_eval_train.py checks it against evaluate_model), beside
    # the running train-mode one.
    on = record["raw"]["dropout 0.5"]
    rows = [json.loads(line) for line in
            (tmp_path / "runs" / "dropout-0-5-s0" / "metrics.jsonl").read_text().splitlines()]
    assert on["train_acc"][0] == rows[-1]["train_eval_acc"] is not None
    assert on["train_acc_running"][0] == rows[-1]["train_acc"]
    assert len(on["steps_to_converge"]) == 1


def test_degradation(tmp_path, fake_cifar):
    record, table = _tiny("degradation", tmp_path, fake_cifar)
    assert [r[0] for r in table[1:]] == ["plain-20", "plain-32", "ResNet-20", "ResNet-32"]
    cfg = json.loads((tmp_path / "runs" / "plain-20-s0" / "config.json").read_text())
    assert cfg["model_args"] == {"residual": False} and cfg["recipe"] == "resnet-cifar"
    # Matched steps at a constant lr after a linear warm-up from 0.1 x lr (no lr drop).
    assert cfg["lr_scheduler"] == "constant" and cfg["lr"] == 0.1 and cfg["max_steps"] == 1
    assert cfg["lr_warmup_epochs"] == pytest.approx(0.5) and cfg["lr_warmup_decay"] == 0.1
    full = get_experiment("degradation").profiles["full"]
    assert full.schedule == "recipe" and full.steps is None and full.warmup_steps == 0


def test_architectures(tmp_path, fake_cifar):
    record, table = _tiny("architectures", tmp_path, fake_cifar)
    r18 = record["raw"]["resnet18"]
    assert r18["params"] == 11_689_512 and r18["top1"] == pytest.approx(69.758)
    assert table[1][0] == "resnet18" and table[1][2] == "11.69M"
    assert any(r[0] == "lenet" and r[7] for r in table[1:])


def test_cli_list_and_errors(capsys, tmp_path):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert "relu-vs-tanh" in out and "im2col" in out
    assert main(["experiment", "relu-vs-tahn"]) == 2
    err = capsys.readouterr().err
    assert "did you mean relu-vs-tanh" in err
    assert main(["experiment", "im2col", "--set", "nope=1", "--out", str(tmp_path)]) == 2
    assert "unknown parameter" in capsys.readouterr().err
    assert main(["experiment", "im2col", "--profile", "huge"]) == 2


def test_cli_runs_smoke_im2col(capsys, tmp_path):
    out = tmp_path / "o"
    assert main(["experiment", "im2col", "--profile", "smoke", "--device", "cpu", "--out",
                 str(out), "--runs", str(tmp_path / "r")]) == 0
    assert "verdict:" in capsys.readouterr().out
    assert os.path.isfile(out / "im2col.md")


def test_index_links_sub_folders_of_other_settings(tmp_path, fake_cifar):
    from convzoo.experiments._page import write_index

    record, _ = _tiny("dropout", tmp_path, fake_cifar)
    gpu = tmp_path / "out" / "full"
    gpu.mkdir()
    (gpu / "dropout.json").write_text(json.dumps({**record, "profile": "full",
                                                  "machine": "1x Some GPU"}))
    (gpu / "notes").mkdir()  # a folder without records is not listed
    write_index(tmp_path / "out")
    index = (tmp_path / "out" / "index.md").read_text()
    assert f"- [full/](full/dropout.md): dropout (full, 1x Some GPU): {record['verdict']}" in index
    assert "notes/" not in index


def test_every_experiment_declares_the_paper_and_run_setup_side_by_side():
    from convzoo.experiments._page import setup_columns
    from convzoo.experiments._registry import SETUP_ROWS

    for e in list_experiments():
        assert e.paper_setup is not None and e.run_setup is not None, e.name
        assert set(e.paper_setup.rows) == set(SETUP_ROWS), e.name
        assert e.paper_setup.source and all(e.paper_setup.rows.values()), e.name
        for profile, params in e.profiles.items():
            cols = setup_columns(e, params, 3)
            assert set(cols["run"]) == set(SETUP_ROWS), (e.name, profile)
            assert all(isinstance(v, str) and v for v in cols["run"].values()), (e.name, profile)


def test_page_shows_the_setup_table(lenet_smoke):
    tmp_path, record, _ = lenet_smoke
    page = (tmp_path / "out" / "lenet-1998-vs-modern.md").read_text()
    assert "| | paper | this run |" in page
    assert "| optimiser | stochastic diagonal Levenberg-Marquardt |" in page
    assert record["setup"]["run"]["seeds"] == "1"
    assert "LeCun et al. 1998" in record["setup"]["source"]
