"""Weights metadata and checkpoint contents drawn by hypothesis (issue 27): whatever a file
holds, reading it and using it as eval and --resume do raises ConvzooError or works; never
another exception (a traceback for the user)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import convzoo
from convzoo.errors import ConvzooError

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=8,
)
# Values near the ones convzoo writes, so that the draws reach past the first check.
SIZES = st.sampled_from([0, 1, 2, 10, 28, -5, 10**6, 10**12]) | st.integers(-2**40, 2**40)
MODEL_ARGS = st.dictionaries(
    st.sampled_from(["num_classes", "in_chans", "activation", "pool", "hidden", "width", "x"]),
    SIZES | JSON | st.sampled_from(["relu", "tanh", "max", "avg"]), max_size=3)
PRESET_KEYS = ["mean", "std", "crop_padding", "hflip", "resize_to", "crop_size", "resize_size",
               "interpolation", "rrc_scale", "scale_jitter", "lighting", "pad_to", "x"]
PRESET = st.dictionaries(st.sampled_from(PRESET_KEYS), SIZES | JSON, max_size=4)


def _text(value) -> str:
    return json.dumps(value, allow_nan=True)


ONE_KEY = {
    "model": st.sampled_from(["lenet5", "resnet20", "nope"]) | st.text(max_size=8),
    "model_args": MODEL_ARGS.map(_text) | st.text(max_size=12),
    "classes": st.lists(st.text(max_size=4), max_size=12).map(_text) | JSON.map(_text),
    "input_size": SIZES.map(str) | JSON.map(_text) | st.text(max_size=6),
    "preset": PRESET.map(_text) | JSON.map(_text),
    "data": st.sampled_from(["mnist", "cifar10", "nope"]).map(_text) | JSON.map(_text),
    "engine": JSON.map(_text),
}
# One or two keys of a run's real metadata changed: most draws are near a good file.
CHANGES = st.lists(st.one_of([st.tuples(st.just(k), v) for k, v in ONE_KEY.items()]),
                   min_size=1, max_size=2).map(dict)


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    run = root / "run"
    convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=1, max_steps=2, batch_size=8,
                                    out=str(run), device="cpu", tensorboard=False))
    return run


@FUZZ
@given(changes=CHANGES)
def test_any_weights_metadata_is_read_or_refused_in_one_line(lenet_run, tmp_path, changes):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(lenet_run / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    path = tmp_path / "w.safetensors"
    save_file(load_file(lenet_run / "model.safetensors"), path, metadata={**meta, **changes})
    try:
        loaded = convzoo.load_trained(path)
        loaded.model(torch.zeros(1, loaded.in_chans, loaded.side, loaded.side))
        event("loaded")
    except ConvzooError as e:
        event("refused")
        assert "\n" not in str(e) and len(str(e)) < 600, str(e)


# Checkpoint contents: one key (or one key of a nested dict) replaced or removed.
VALUES = (JSON | SIZES | st.just(torch.zeros(3, dtype=torch.uint8))
          | st.just(torch.full((2,), float("nan"))) | st.just([]) | st.just({}))
TOP = ["config", "run", "world_size", "model", "optimizer", "schedule", "scaler", "ema", "rng",
       "epoch", "batch", "step", "running", "rows", "best", "unevaluated"]
NESTED = {"rng": ["torch", "cuda", "numpy", "python", "aug", "order"],
          "running": ["loss_sum", "correct", "seen", "per_process", "epoch_lr", "train_time",
                      "elapsed"],
          "best": ["acc", "checkpoint"], "schedule": ["factor", "best", "bad_epochs", "drops"],
          "optimizer": ["state", "param_groups"], "config": ["model", "epochs", "lr", "seed"]}
CHANGE = st.one_of(
    st.tuples(st.sampled_from(TOP), st.none(), VALUES | st.just(...)),
    st.sampled_from(sorted(NESTED)).flatmap(lambda k: st.tuples(
        st.just(k), st.sampled_from(NESTED[k]), VALUES | st.just(...))),
)


def _changed(blob: dict, change) -> dict:
    key, sub, value = change
    blob = dict(blob)
    if sub is None:
        if value is ...:
            blob.pop(key)
        else:
            blob[key] = value
        return blob
    inner = blob[key][0] if key == "rng" else blob[key]
    inner = dict(inner)
    if value is ...:
        inner.pop(sub, None)
    else:
        inner[sub] = value
    blob[key] = [inner, *blob[key][1:]] if key == "rng" else inner
    return blob


def _resume(path: Path, blob_path: Path) -> None:
    """What `convzoo train --resume` does with a checkpoint before training on it."""
    from convzoo.engine import checkpoint as ckpt
    from convzoo.engine.config import TrainConfig
    from convzoo.engine.schedules import LRSchedule, build_optimizer
    from convzoo.engine.state import (
        TrainState,
        nothing_to_train,
        resolved_conflicts,
        resume_conflicts,
    )

    blob = ckpt.load_checkpoint(blob_path)
    cfg = TrainConfig.from_dict({**dict(blob["config"]), "out": None}).validate()
    resume_conflicts(blob, cfg, world=1)
    nothing_to_train(blob, cfg)
    resolved_conflicts(blob, {"model_args": {"num_classes": 10, "in_chans": 1},
                              "classes": [str(i) for i in range(10)], "input_size": 28})
    model = convzoo.create_model("lenet5")
    optimizer = build_optimizer(cfg, model.parameters())
    TrainState.from_checkpoint(blob, blob_path, model=model, optimizer=optimizer,
                               schedule=LRSchedule(cfg, optimizer, 10), scaler=None, ema=None)
    generator = torch.Generator()
    ckpt.set_rng_state(blob["rng"][0], generator)
    torch.Generator().set_state(blob["rng"][0]["order"])


@FUZZ
@given(change=CHANGE)
def test_any_checkpoint_content_resumes_or_is_refused_in_one_line(lenet_run, tmp_path, change):
    from convzoo.engine.checkpoint import list_checkpoints

    state = torch.get_rng_state()
    original = list_checkpoints(lenet_run / "checkpoints")[-1]
    blob = _changed(torch.load(original, weights_only=True), change)
    path = tmp_path / original.name
    torch.save(blob, path)
    try:
        _resume(lenet_run, path)
        event("resumed")
    except ConvzooError as e:
        event("refused")
        assert "\n" not in str(e) and len(str(e)) < 600, str(e)
    finally:
        torch.set_rng_state(state)
