"""convzoo.scratch.SGD against torch.optim.SGD over several steps, every option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convzoo.scratch import SGD, Linear


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("momentum, nesterov, dampening, wd", [
    (0.0, False, 0.0, 0.0), (0.0, False, 0.0, 1e-2), (0.9, False, 0.0, 5e-4),
    (0.9, True, 0.0, 5e-4), (0.5, False, 0.3, 1e-3),
], ids=["plain", "wd", "momentum", "nesterov", "dampening"])
def test_sgd_matches_torch_over_steps(dtype, tol, momentum, nesterov, dampening, wd):
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, dtype=dtype, rng=rng)
    ref = [torch.tensor(layer.params[k].astype(np.float64), requires_grad=True)
           for k in ("weight", "bias")]
    opt = SGD(layer.parameters(), lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov,
              dampening=dampening)
    ref_opt = torch.optim.SGD(ref, lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov,
                              dampening=dampening)
    for step in range(6):
        lr = 0.1 * (0.7 ** step)  # a schedule changes lr between steps
        opt.lr = lr
        for group in ref_opt.param_groups:
            group["lr"] = lr
        for k, r in zip(("weight", "bias"), ref, strict=True):
            g = rng.standard_normal(r.shape)
            layer.grads[k] = g.astype(dtype)
            r.grad = torch.from_numpy(g.astype(dtype).astype(np.float64))
        opt.step()
        ref_opt.step()
        for k, r in zip(("weight", "bias"), ref, strict=True):
            want = r.detach().numpy()
            assert layer.params[k].dtype == dtype
            assert np.abs(layer.params[k] - want).max() / np.abs(want).max() <= tol, (step, k)


def test_sgd_skips_parameters_without_gradient_and_updates_in_place():
    layer = Linear(2, 2, dtype=np.float64, rng=np.random.default_rng(0))
    weight = layer.params["weight"]
    before = weight.copy()
    opt = SGD(layer.parameters(), lr=1.0)
    opt.zero_grad()
    opt.step()
    np.testing.assert_array_equal(weight, before)
    layer.grads["weight"] = np.ones((2, 2))
    opt.step()
    assert layer.params["weight"] is weight  # the layer sees the update: same array
    np.testing.assert_array_equal(weight, before - 1)


def test_sgd_rejects_nesterov_without_momentum():
    with pytest.raises(ValueError, match="nesterov"):
        SGD([], lr=0.1, nesterov=True)
