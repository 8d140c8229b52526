"""The NumPy LeNets have the torch models' state-dict keys, outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convzoo.registry import create_model
from convzoo.scratch import CrossEntropyLoss, create_scratch_model


@pytest.mark.parametrize("name, shape", [("lenet5", (3, 1, 28, 28)), ("lenet", (3, 3, 32, 32))])
@pytest.mark.parametrize("activation, pool", [("relu", "max"), ("tanh", "avg"),
                                              ("sigmoid", "max")])
def test_numpy_lenet_equals_torch_lenet(name, shape, activation, pool):
    torch.manual_seed(0)
    ref = create_model(name, activation=activation, pool=pool).double()
    net = create_scratch_model(name, activation=activation, pool=pool, dtype=np.float64)
    state = ref.state_dict()
    assert list(net.state_dict()) == list(state)  # same keys, same order
    net.load_state_dict({k: v.numpy() for k, v in state.items()})

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shape), rng.integers(0, 10, shape[0])
    tx = torch.from_numpy(x)
    logits_ref = ref(tx)
    F.cross_entropy(logits_ref, torch.from_numpy(y)).backward()
    loss = CrossEntropyLoss()
    logits = net.forward(x)
    loss.forward(logits, y)
    net.backward(loss.backward())

    def rel(a, b):
        b = b.detach().numpy()
        return np.abs(a - b).max() / np.abs(b).max()

    assert rel(logits, logits_ref) <= 1e-10
    grads = {p.name: p.grad for p in net.parameters()}
    assert set(grads) == {k for k, _ in ref.named_parameters()}
    for k, p in ref.named_parameters():
        assert rel(grads[k], p.grad) <= 1e-10, k


def test_unknown_numpy_model():
    with pytest.raises(KeyError, match="no NumPy build"):
        create_scratch_model("resnet50")
