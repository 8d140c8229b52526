"""BatchParallel: the batch cut into slices computed by threads gives the whole batch's outputs
and gradients (PyTorch float64 the oracle), and net keeps them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convzoo.registry import create_model
from convzoo.scratch import SGD, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Sequential, lenet5
from convzoo.scratch.parallel import BatchParallel, replicate


def _rel(a: np.ndarray, b: torch.Tensor) -> float:
    ref = b.detach().numpy()
    return float(np.abs(a - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("threads, n", [(1, 5), (2, 5), (3, 7), (4, 3)])
def test_batch_parallel_lenet5_equals_torch(threads, n):
    torch.manual_seed(0)
    ref = create_model("lenet5").double()
    net = lenet5(dtype=np.float64)
    net.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(threads)
    x, y = rng.standard_normal((n, 1, 28, 28)), rng.integers(0, 10, n)
    logits_ref = ref(torch.from_numpy(x))
    F.cross_entropy(logits_ref, torch.from_numpy(y)).backward()

    par = BatchParallel(net, threads)
    loss = CrossEntropyLoss()
    logits = par.forward(x)
    loss.forward(logits, y)
    assert par.backward(loss.backward()) is None  # C1 computes no input gradient
    par.close()
    assert _rel(logits, logits_ref) <= 1e-10
    grads = {p.name: p.grad for p in net.parameters()}
    for k, p in ref.named_parameters():
        assert _rel(grads[k], p.grad) <= 1e-10, k


def test_replicas_share_parameters_and_follow_steps():
    net = lenet5(seed=0, dtype=np.float64)
    par = BatchParallel(net, 2)
    opt = SGD(net.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 1, 28, 28)), rng.integers(0, 10, 6)
    loss = CrossEntropyLoss()
    for _ in range(2):  # the second step runs on the weights the first one changed
        loss.forward(par.forward(x), y)
        par.backward(loss.backward())
        opt.step()
    serial = lenet5(seed=0, dtype=np.float64)
    sopt = SGD(serial.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        loss.forward(serial.forward(x), y)
        serial.backward(loss.backward())
        sopt.step()
    for k, v in serial.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[k], v, rtol=1e-12, atol=1e-14, err_msg=k)
    rep = par.replicas[1]
    assert rep.features[0].params["weight"] is net.features[0].params["weight"]
    assert rep.features is not net.features and rep.grads is not net.grads
    par.close()


def test_input_gradient_of_the_slices_is_the_batch_one():
    rng = np.random.default_rng(1)
    conv = Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    x, g = rng.standard_normal((5, 2, 6, 6)), rng.standard_normal((5, 3, 6, 6))
    expected_y, expected_dx = conv.forward(x), conv.backward(g)
    expected_dw = conv.grads["weight"].copy()
    par = BatchParallel(conv, 2)
    np.testing.assert_allclose(par.forward(x), expected_y, rtol=1e-12)
    np.testing.assert_allclose(par.backward(g), expected_dx, rtol=1e-12)
    np.testing.assert_allclose(conv.grads["weight"], expected_dw, rtol=1e-12)
    par.close()


@pytest.mark.parametrize("layer", [BatchNorm2d(2), Dropout(0.5)])
def test_layers_needing_the_whole_batch_are_refused_in_training(layer):
    net = Sequential(Conv2d(1, 2, 3), layer)
    par = BatchParallel(net, 2)
    x = np.zeros((4, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match="whole batch"):
        par.forward(x)
    net.eval()
    assert par.forward(x).shape == (4, 2, 3, 3)  # eval: the replicas follow net's mode
    par.close()


def test_replicate_redirects_child_attributes():
    net = lenet5(seed=0)
    rep = replicate(net)
    assert rep.classifier is rep._children["classifier"]
    assert rep.classifier[1].params is net.classifier[1].params


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads"):
        BatchParallel(lenet5(seed=0), 0)
