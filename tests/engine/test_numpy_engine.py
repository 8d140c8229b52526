"""The NumPy engine end to end: it trains, writes the torch engine's run directory, follows the
torch engine step for step, and its weights evaluate identically under either engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import convzoo
from convzoo import TrainConfig
from convzoo.data import apply_preset, datasets, load_dataset
from convzoo.engine import Reporter
from convzoo.engine.loaded import load_trained
from convzoo.engine.numpy_engine import check_numpy_config, numpy_model
from convzoo.errors import ConvzooError
from shareddata import MNIST_DIR, needs_mnist


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Both engines on one thread: the test machine's two cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_mnist(monkeypatch):
    """The embedded subset cut to 384 train / 128 test images."""
    original = datasets.SOURCES["mnist"]

    def small(data_dir, split, **kwargs):
        ds = original(data_dir, split, **kwargs)
        return ds.subset(torch.arange(384 if split == "train" else 128))

    monkeypatch.setitem(datasets.SOURCES, "mnist", small)


def _cfg(tmp_path, name: str, **kw) -> TrainConfig:
    base = dict(model="lenet5", epochs=2, batch_size=32, lr=0.05, device="cpu",
                out=str(tmp_path / name))
    return TrainConfig(**{**base, **kw})


def _evaluate_numpy(run) -> dict:
    return convzoo.evaluate(run, engine="numpy")


def _logits_both_engines(run_dir, n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the run's weights on n test images (the run's own preset): torch model and
    NumPy model."""
    loaded = load_trained(run_dir)
    ds = load_dataset("mnist", None, "test")
    x = apply_preset(ds.images[:n], loaded.preset, train=False, in_chans=loaded.in_chans)
    with torch.no_grad():
        lt = loaded.model(x).numpy()
        ln = numpy_model(loaded)(x).numpy()
    return lt, ln


def test_numpy_engine_trains_and_writes_the_run_directory(tmp_path, small_mnist):
    result = convzoo.fit(_cfg(tmp_path, "np", engine="numpy", batch_size=16))
    run = result.run_dir
    for name in ("config.json", "metrics.csv", "final.json", "model.safetensors", "curves.png"):
        assert (run / name).is_file(), name
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3
    first, second = (dict(zip(rows[0].split(","), r.split(","), strict=True)) for r in rows[1:])
    assert float(second["train_loss"]) < float(first["train_loss"]) < 2.30  # ln 10: chance
    final = json.loads((run / "final.json").read_text())
    assert final["top1_acc"] > 0.5
    wf = convzoo.read_weights(run / "model.safetensors")
    assert wf.model == "lenet5" and wf.extra["engine"] == "numpy"
    assert wf.extra["input_size"] == 28  # MNIST's own size, as the torch engine records it
    assert isinstance(result.model, torch.nn.Module)

    # The torch engine's evaluate reproduces what the NumPy engine measured, and the NumPy
    # evaluate gives the same figures.
    ev_t, ev_n = convzoo.evaluate(run, device="cpu"), _evaluate_numpy(run)
    assert ev_n["engine"] == "numpy" and "engine" not in ev_t
    for k in range(1, 6):
        assert ev_t[f"top{k}_acc"] == ev_n[f"top{k}_acc"] == pytest.approx(final[f"top{k}_acc"])
    assert ev_n["loss"] == pytest.approx(ev_t["loss"], rel=1e-5)
    lt, ln = _logits_both_engines(run)
    assert np.abs(ln - lt).max() / np.abs(lt).max() <= 1e-5


def test_torch_trained_weights_evaluate_identically_under_numpy(tmp_path, small_mnist):
    run = convzoo.fit(_cfg(tmp_path, "torch", epochs=1)).run_dir
    ev_t, ev_n = convzoo.evaluate(run, device="cpu"), _evaluate_numpy(run)
    for k in range(1, 6):
        assert ev_n[f"top{k}_acc"] == ev_t[f"top{k}_acc"]
    assert ev_n["per_class_acc"] == ev_t["per_class_acc"]
    lt, ln = _logits_both_engines(run)
    assert np.abs(ln - lt).max() / np.abs(lt).max() <= 1e-5


def test_numpy_engine_follows_the_torch_engine(tmp_path, small_mnist):
    # Same seeded initial weights, same batches in the same order, same SGD and schedule: after
    # 24 steps the two engines' weights differ only by float32 rounding.
    kw = dict(epochs=2, lr_scheduler="step", lr_step_epochs=1, wd=1e-3)
    w_t = convzoo.read_weights(convzoo.fit(_cfg(tmp_path, "t", **kw)).run_dir
                               / "model.safetensors").state_dict
    w_n = convzoo.read_weights(convzoo.fit(_cfg(tmp_path, "n", engine="numpy", **kw)).run_dir
                               / "model.safetensors").state_dict
    assert list(w_n) == list(w_t)
    for key in w_t:
        diff = (w_n[key] - w_t[key]).abs().max() / w_t[key].abs().max()
        assert diff < 1e-3, key


def test_slide_lenet_trains_on_mnist_with_the_numpy_engine(tmp_path, small_mnist):
    # The 3-channel slide net: the trainer infers in_chans=1 from MNIST and pads 28 -> 32.
    run = convzoo.fit(_cfg(tmp_path, "slide", model="lenet", epochs=1, engine="numpy")).run_dir
    wf = convzoo.read_weights(run / "model.safetensors")
    assert wf.model_args["in_chans"] == 1
    assert _evaluate_numpy(run)["top1_acc"] == convzoo.evaluate(run, device="cpu")["top1_acc"]


def test_numpy_engine_names_the_models_it_has(tmp_path, small_mnist):
    with pytest.raises(ConvzooError, match="numpy engine has no build of model 'resnet20'"):
        convzoo.fit(_cfg(tmp_path, "bad", model="resnet20", engine="numpy"))


def test_numpy_engine_stops_at_max_steps(tmp_path, small_mnist):
    # 384 images / 32 = 12 steps an epoch: --max-steps 5 ends the run inside the first epoch,
    # after 5 steps, and the lr schedule spans those 5 steps (cosine reaches 0 at the last).
    seen = []

    class Steps(Reporter):
        def step(self, info):
            seen.append((info.step, info.epoch, info.lr))

    result = convzoo.fit(_cfg(tmp_path, "max", engine="numpy", epochs=3, max_steps=5),
                         reporter=Steps())
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5] and {e for _, e, _ in seen} == {1}
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2  # one (partial) epoch evaluated
    assert seen[0][2] == pytest.approx(0.05) and seen[-1][2] < seen[-2][2] < 0.05


@pytest.mark.parametrize("option, value, flag", [
    ("amp", "bf16", "--amp"), ("channels_last", True, "--channels-last"),
    ("compile", True, "--compile"), ("ema", True, "--ema"), ("accum_steps", 2, "--accum-steps"),
    ("holdout", 0.1, "--holdout"), ("optimizer", "adamw", "--opt"),
    ("label_smoothing", 0.1, "--label-smoothing"), ("resume", "somewhere", "--resume"),
    ("weights", "mnist", "--weights"), ("clip_grad_norm", 1.0, "--clip-grad-norm"),
    ("nesterov", True, "--nesterov"), ("conv", "gemm", "--conv"), ("device", "cuda", "--device"),
])
def test_numpy_engine_refuses_what_it_does_not_implement(option, value, flag):
    cfg = TrainConfig(model="lenet5", engine="numpy", **{option: value})
    with pytest.raises(ConvzooError, match=f"--engine numpy does not implement {flag}") as e:
        check_numpy_config(cfg)
    assert "\n" not in str(e.value)
    check_numpy_config(TrainConfig(model="lenet5", engine="numpy", max_steps=3, epochs=2,
                                   lr_scheduler="step", tensorboard=False, seed=3))


def test_cli_numpy_engine_refusal_is_one_line_exit_2(tmp_path, capsys, small_mnist):
    from convzoo.cli import main

    assert main(["train", "lenet5", "--engine", "numpy", "--amp", "bf16", "--epochs", "1",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--engine numpy does not implement --amp" in err[0]
    assert not (tmp_path / "r").exists()  # refused before the run directory is made


@pytest.mark.slow
@needs_mnist
def test_numpy_lenet5_reaches_98_5_percent_on_full_mnist(tmp_path):
    cfg = TrainConfig(model="lenet5", engine="numpy", data_dir=str(MNIST_DIR), epochs=4,
                      out=str(tmp_path / "full"))
    assert convzoo.fit(cfg).final["top1_acc"] >= 0.985


def test_numpy_eval_extras_match_the_torch_engines(tmp_path, small_mnist, capsys):
    # The NumPy network goes through the same evaluation loop, so the extras work for it too.
    from convzoo.cli import main

    run = convzoo.fit(_cfg(tmp_path, "x", epochs=1)).run_dir
    out = {}
    for engine in ("torch", "numpy"):
        assert main(["eval", str(run), "--engine", engine, "--ece", "--ten-crop", "--json",
                     "--confusion", str(tmp_path / engine)]) == 0
        out[engine] = json.loads(capsys.readouterr().out)
    assert out["numpy"]["ece"] == pytest.approx(out["torch"]["ece"], abs=1e-5)
    assert out["numpy"]["multi_crop"] == pytest.approx(out["torch"]["multi_crop"], abs=1e-5)
    assert (tmp_path / "numpy.csv").read_text() == (tmp_path / "torch.csv").read_text()
    assert main(["eval", str(run), "--engine", "numpy", "--amp"]) == 2
    assert "--engine numpy computes in float32; drop --amp" in capsys.readouterr().err
