"""The NumPy engine end to end: it trains, writes the torch engine's run directory, follows the
torch engine step for step, and its weights evaluate identically under either engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import convzoo
from convzoo import TrainConfig
from convzoo.data import datasets, load_dataset, preset_for
from convzoo.engine.evaluate import load_trained
from convzoo.engine.numpy_engine import evaluate_numpy, load_numpy_trained
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


def _logits_both_engines(run_dir, n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the run's weights on n test images: torch model and NumPy model."""
    net_t, wf, _ = load_trained(run_dir)
    net_n, _, _ = load_numpy_trained(run_dir)
    ds = load_dataset("mnist", None, "test")
    preset = preset_for("mnist", in_chans=wf.model_args["in_chans"], image_size=28,
                        model_size=convzoo.model_info(wf.model).input_size[1])
    from convzoo.data import apply_preset

    x = apply_preset(ds.images[:n], preset, train=False, in_chans=wf.model_args["in_chans"])
    with torch.no_grad():
        lt = net_t.eval()(x).numpy()
    return lt, net_n.eval().forward(x.numpy())


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
    assert isinstance(result.model, torch.nn.Module)

    # The torch engine's evaluate reproduces what the NumPy engine measured, and the NumPy
    # evaluate gives the same figures.
    ev_t, ev_n = convzoo.evaluate(run, device="cpu"), evaluate_numpy(run)
    for k in range(1, 6):
        assert ev_t[f"top{k}_acc"] == ev_n[f"top{k}_acc"] == pytest.approx(final[f"top{k}_acc"])
    assert ev_n["loss"] == pytest.approx(ev_t["loss"], rel=1e-5)
    lt, ln = _logits_both_engines(run)
    assert np.abs(ln - lt).max() / np.abs(lt).max() <= 1e-5


def test_torch_trained_weights_evaluate_identically_under_numpy(tmp_path, small_mnist):
    run = convzoo.fit(_cfg(tmp_path, "torch", epochs=1)).run_dir
    ev_t, ev_n = convzoo.evaluate(run, device="cpu"), evaluate_numpy(run)
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
    assert evaluate_numpy(run)["top1_acc"] == convzoo.evaluate(run, device="cpu")["top1_acc"]


def test_numpy_engine_names_the_models_it_has(tmp_path, small_mnist):
    with pytest.raises(ConvzooError, match="numpy engine has no build of model 'resnet20'"):
        convzoo.fit(_cfg(tmp_path, "bad", model="resnet20", engine="numpy"))


@pytest.mark.slow
@needs_mnist
def test_numpy_lenet5_reaches_98_5_percent_on_full_mnist(tmp_path):
    cfg = TrainConfig(model="lenet5", engine="numpy", data_dir=str(MNIST_DIR), epochs=4,
                      out=str(tmp_path / "full"))
    assert convzoo.fit(cfg).final["top1_acc"] >= 0.985
