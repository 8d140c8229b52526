"""Learning-rate schedules and optimizers: the multiplier at chosen steps, by hand."""

import math

import pytest
import torch

from convzoo import TrainConfig
from convzoo.engine.schedules import LRSchedule, build_optimizer, lr_lambda
from convzoo.errors import ConvzooError

SPE = 10  # optimizer steps per epoch


def cfg(**kw):
    return TrainConfig(model="lenet5", lr=0.1, epochs=10, **kw).validate()


def test_cosine_with_linear_warmup():
    f = lr_lambda(cfg(lr_scheduler="cosine", lr_warmup_epochs=2, lr_warmup_decay=0.1), SPE)
    assert f(0) == pytest.approx(0.1)  # warmup starts at lr x decay
    assert f(10) == pytest.approx(0.1 + 0.9 * 10 / 20)  # halfway through the 20 warmup steps
    assert f(20) == pytest.approx(1.0)  # cosine starts at its peak after the warmup
    assert f(60) == pytest.approx(0.5)  # middle of the 80 cosine steps
    assert f(100) == pytest.approx(0.0, abs=1e-12)


def test_step_multistep_exponential():
    f = lr_lambda(cfg(lr_scheduler="step", lr_step_epochs=3, lr_gamma=0.5), SPE)
    assert [f(s) for s in (0, 29, 30, 59, 60)] == pytest.approx([1, 1, 0.5, 0.5, 0.25])
    f = lr_lambda(
        cfg(lr_scheduler="multistep", lr_milestones=(15, 25), lr_milestone_unit="step"), SPE
    )
    assert [f(s) for s in (14, 15, 24, 25)] == pytest.approx([1, 0.1, 0.1, 0.01])
    f = lr_lambda(cfg(lr_scheduler="multistep", lr_milestones=(5, 8)), SPE)  # epochs
    assert [f(s) for s in (49, 50, 80)] == pytest.approx([1, 0.1, 0.01])
    f = lr_lambda(cfg(lr_scheduler="exponential", lr_gamma=0.94), SPE)
    assert f(35) == pytest.approx(0.94**3)


def test_onecycle_rises_then_falls():
    f = lr_lambda(cfg(lr_scheduler="onecycle", onecycle_pct=0.25), SPE)
    values = [f(s) for s in range(100)]
    assert values[0] == pytest.approx(1 / 25)
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 25
    assert values[-1] < 1e-3 and all(a >= b for a, b in zip(values[25:], values[26:], strict=False))


def test_plateau_drops_after_patience_and_stops_at_max():
    c = cfg(
        lr_scheduler="plateau", holdout=0.1, plateau_patience=1, lr_gamma=0.1, plateau_max_drops=2
    )
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s = LRSchedule(c, opt, SPE)
    dropped = [s.end_epoch(e) for e in (0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4)]
    # better, better, stall 1, stall 2 -> drop, stall 1, stall 2 -> drop, then no more drops
    assert dropped == [False, False, False, True, False, True, False, False]
    assert s.set(0) == pytest.approx(0.1 * 0.01)
    s2 = LRSchedule(c, opt, SPE)
    s2.load_state_dict(s.state_dict())
    assert s2.lr_at(5) == s.lr_at(5)


def test_plateau_needs_a_holdout_not_the_test_split():
    with pytest.raises(ConvzooError, match="--holdout"):
        TrainConfig(model="lenet5", lr_scheduler="plateau").validate()


def test_optimizers():
    p = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(cfg(nesterov=True), p)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    rms = build_optimizer(cfg(optimizer="rmsprop", momentum=0.0), p)
    assert isinstance(rms, torch.optim.RMSprop)
    assert rms.defaults["eps"] == 1.0 and rms.defaults["alpha"] == 0.9  # Inception v3 §8
    adamw = build_optimizer(cfg(optimizer="adamw", wd=0.05), p)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.05


def test_numpy_engine_hook_is_a_plain_function():
    f = lr_lambda(cfg(), SPE)
    assert f(0) == 1.0 and math.isclose(f(50), 0.5)
