"""convzoo.scratch layers against PyTorch: forward and backward, float64 and float32.

The measure is max|a - b| / max|b| with torch in float64 as the oracle: <= 1e-10 for the float64
layers, <= 1e-5 for the float32 ones (their inputs are the same float32 values). Settings are
drawn by hypothesis; a central finite-difference check covers the backward passes on their own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from convzoo.scratch import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    col2im,
    conv2d_naive,
    im2col,
)

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def rel_err(a: np.ndarray, b: np.ndarray | torch.Tensor) -> float:
    """max|a - b| / max|b| (b the oracle); 0 when both are all zeros."""
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    b = np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(np.asarray(a, dtype=np.float64) - b).max() if b.size else 0.0
    return float(diff / scale) if scale > 0 else float(diff)


def t64(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    """The oracle's copy of ``a``: the same values, in float64."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def check_layer(layer, torch_fn, x: np.ndarray, dtype, params: dict[str, np.ndarray] | None = None,
                seed: int = 0) -> None:
    """Forward, dL/dx and dL/dparams of ``layer`` equal torch_fn(x, **params) within TOL."""
    tol = TOL[dtype]
    x = x.astype(dtype)
    params = params if params is not None else layer.params
    tx = t64(x)
    tparams = {k: t64(v) for k, v in params.items()}
    ty = torch_fn(tx, **tparams)
    y = layer.forward(x)
    assert y.dtype == dtype
    assert y.shape == tuple(ty.shape)
    assert rel_err(y, ty) <= tol
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    dx = layer.backward(g)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert rel_err(dx, tx.grad) <= tol
    for k, tp in tparams.items():
        assert rel_err(layer.grads[k], tp.grad) <= tol, k


@st.composite
def conv_settings(draw):
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad_h = 0 if isinstance(padding, str) else (padding if isinstance(padding, int)
                                                else padding[0])
    pad_w = 0 if isinstance(padding, str) else (padding if isinstance(padding, int)
                                                else padding[1])
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * pad_h), 9))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pad_w), 9))
    return dict(n=draw(st.integers(1, 3)), cin=cin, cout=cout, kernel=(kh, kw), stride=stride,
                padding=padding, dilation=(dh, dw), groups=groups, bias=draw(st.booleans()),
                h=h, w=w, seed=draw(st.integers(0, 2**16)))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(s=conv_settings())
def test_conv2d_matches_torch(dtype, s):
    rng = np.random.default_rng(s["seed"])
    conv = Conv2d(s["cin"], s["cout"], s["kernel"], stride=s["stride"], padding=s["padding"],
                  dilation=s["dilation"], groups=s["groups"], bias=s["bias"], dtype=dtype, rng=rng)
    x = rng.standard_normal((s["n"], s["cin"], s["h"], s["w"]))

    def torch_conv(x, weight, bias=None):
        return F.conv2d(x, weight, bias, stride=s["stride"], padding=s["padding"],
                        dilation=s["dilation"], groups=s["groups"])

    check_layer(conv, torch_conv, x, dtype, seed=s["seed"])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@SETTINGS
@given(s=conv_settings())
def test_conv2d_naive_is_the_definition(s):
    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal((s["n"], s["cin"], s["h"], s["w"]))
    w = rng.standard_normal((s["cout"], s["cin"] // s["groups"], *s["kernel"]))
    b = rng.standard_normal(s["cout"]) if s["bias"] else None
    y = conv2d_naive(x, w, b, s["stride"], s["padding"], s["dilation"], s["groups"])
    ty = F.conv2d(t64(x), t64(w), None if b is None else t64(b), stride=s["stride"],
                  padding=s["padding"], dilation=s["dilation"], groups=s["groups"])
    assert rel_err(y, ty) <= 1e-10


@SETTINGS
@given(s=conv_settings())
def test_col2im_is_the_adjoint_of_im2col(s):
    # <im2col(x), c> = <x, col2im(c)> for all x, c: col2im is exactly im2col's transpose.
    from convzoo.scratch.im2col import pair, resolve_padding

    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal((s["n"], s["cin"], s["h"], s["w"]))
    kernel, stride, dil = s["kernel"], pair(s["stride"]), pair(s["dilation"])
    pad = resolve_padding(s["padding"], kernel, stride, dil)
    cols, (oh, ow) = im2col(x, kernel, stride, pad, dil)
    assert cols.shape == (s["cin"] * kernel[0] * kernel[1], s["n"] * oh * ow)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, kernel, stride, pad, dil)
    assert back.shape == x.shape
    assert abs(np.vdot(cols, c) - np.vdot(x, back)) <= 1e-10 * max(1.0, abs(np.vdot(cols, c)))


def test_conv2d_rejects_bad_arguments():
    with pytest.raises(ValueError, match="divisible by groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        Conv2d(1, 1, 5)(np.zeros((1, 1, 3, 3), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=st.integers(1, 4), fin=st.integers(1, 12), fout=st.integers(1, 12), bias=st.booleans(),
       extra=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_matches_torch(dtype, n, fin, fout, bias, extra, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(fin, fout, bias=bias, dtype=dtype, rng=rng)
    x = rng.standard_normal((n, 3, fin) if extra else (n, fin))
    check_layer(layer, F.linear, x, dtype, seed=seed)


@st.composite
def pool_settings(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h, w = draw(st.integers(kh, 10)), draw(st.integers(kw, 10))
    return dict(kernel=(kh, kw), stride=stride, padding=(ph, pw), shape=(
        draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w), seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(s=pool_settings())
def test_maxpool2d_matches_torch(dtype, s):
    x = np.random.default_rng(s["seed"]).standard_normal(s["shape"])
    layer = MaxPool2d(s["kernel"], s["stride"], s["padding"])
    check_layer(layer, lambda x: F.max_pool2d(x, s["kernel"], s["stride"], s["padding"]), x,
                dtype, params={}, seed=s["seed"])


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(s=pool_settings(), count_include_pad=st.booleans())
def test_avgpool2d_matches_torch(dtype, s, count_include_pad):
    x = np.random.default_rng(s["seed"]).standard_normal(s["shape"])
    layer = AvgPool2d(s["kernel"], s["stride"], s["padding"], count_include_pad=count_include_pad)

    def torch_pool(x):
        return F.avg_pool2d(x, s["kernel"], s["stride"], s["padding"],
                            count_include_pad=count_include_pad)

    check_layer(layer, torch_pool, x, dtype, params={}, seed=s["seed"])


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 4), ow=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_adaptive_avgpool2d_matches_torch(dtype, h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    check_layer(AdaptiveAvgPool2d((oh, ow)), lambda x: F.adaptive_avg_pool2d(x, (oh, ow)), x,
                dtype, params={}, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer, torch_fn", [
    (ReLU(), torch.relu), (Tanh(), torch.tanh), (Sigmoid(), torch.sigmoid),
    (Flatten(), lambda x: torch.flatten(x, 1)),
], ids=["relu", "tanh", "sigmoid", "flatten"])
def test_elementwise_layers_match_torch(dtype, layer, torch_fn):
    x = np.random.default_rng(1).standard_normal((3, 4, 5, 6)) * 4
    x[0, 0, 0, :3] = [0.0, 40.0, -40.0]  # the kink of ReLU, saturated tanh / sigmoid
    check_layer(layer, torch_fn, x, dtype, params={})


def test_maxpool_course_example():
    # The slide: 2x2 max-pool with stride 2 keeps the largest value of each 2x2 block.
    x = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]],
                 dtype=np.float64).reshape(1, 1, 4, 4)
    pool = MaxPool2d(2, stride=2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[20, 30], [112, 37]])
    dx = pool.backward(np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[0, 2], expected[3, 0], expected[2, 2] = 1, 2, 3, 4  # the arg-maxes
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool_ties_go_to_the_first_maximum_like_torch():
    x = np.zeros((1, 1, 4, 4))
    tx = t64(x)
    F.max_pool2d(tx, 2).sum().backward()
    pool = MaxPool2d(2)
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 2, 2))), tx.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, shape", [(BatchNorm2d, (4, 3, 5, 6)), (BatchNorm1d, (8, 5)),
                                        (BatchNorm1d, (4, 5, 7))], ids=["2d", "1d", "1d-seq"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_matches_torch(dtype, cls, shape, training):
    rng = np.random.default_rng(3)
    c = shape[1]
    bn = cls(c, eps=1e-3, momentum=0.2, dtype=dtype)
    bn.params["weight"][:] = rng.uniform(0.5, 2, c)
    bn.params["bias"][:] = rng.standard_normal(c)
    bn.buffers["running_mean"][:] = rng.standard_normal(c)
    bn.buffers["running_var"][:] = rng.uniform(0.5, 2, c)
    bn.train(training)
    rm, rv = t64(bn.buffers["running_mean"], False), t64(bn.buffers["running_var"], False)
    x = rng.standard_normal(shape) * 3 + 1

    def torch_bn(x, weight, bias):
        return F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=0.2, eps=1e-3)

    check_layer(bn, torch_bn, x, dtype)
    assert rel_err(bn.buffers["running_mean"], rm) <= TOL[dtype]
    assert rel_err(bn.buffers["running_var"], rv) <= TOL[dtype]


@pytest.mark.parametrize("momentum", [0.1, None], ids=["ema", "cumulative"])
def test_batchnorm_running_stats_over_steps(momentum):
    # Several training batches, then eval: running_mean, the *unbiased* running_var and
    # num_batches_tracked follow torch.nn.BatchNorm2d's exactly; eval uses them.
    rng = np.random.default_rng(4)
    bn = BatchNorm2d(3, momentum=momentum, dtype=np.float64)
    ref = nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(4):
        x = rng.standard_normal((2, 3, 3, 2)) * rng.uniform(0.5, 3) + rng.standard_normal()
        bn.forward(x)
        ref(torch.from_numpy(x))
    for key in ("running_mean", "running_var"):
        assert rel_err(bn.buffers[key], ref.state_dict()[key]) <= 1e-10, key
    assert int(bn.buffers["num_batches_tracked"]) == int(ref.num_batches_tracked) == 4
    x = rng.standard_normal((2, 3, 3, 2))
    assert rel_err(bn.eval().forward(x), ref.eval()(torch.from_numpy(x))) <= 1e-10
    assert sorted(bn.state_dict()) == sorted(ref.state_dict())


def test_batchnorm_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(4).forward(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_torch(dtype, reduction, smoothing):
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((7, 5)) * 3).astype(dtype)
    z[0] = [1e4, -1e4, 0, 5, 1e4]  # huge logits: the stable log-softmax stays finite
    y = rng.integers(0, 5, 7)
    loss = CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)
    tz = t64(z)
    tl = F.cross_entropy(tz, torch.from_numpy(y), reduction=reduction, label_smoothing=smoothing)
    out = loss.forward(z, y)
    assert np.all(np.isfinite(out))
    assert rel_err(out, tl) <= TOL[dtype]
    g = rng.standard_normal(tl.shape)
    tl.backward(torch.from_numpy(np.asarray(g)))
    assert rel_err(loss.backward(g), tz.grad) <= TOL[dtype]


def test_dropout_is_inverted_and_backward_uses_the_same_mask():
    x = np.ones((200, 50), np.float32)
    drop = Dropout(0.3, rng=np.random.default_rng(0))
    y = drop.forward(x)
    kept = y != 0
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs(kept.mean() - 0.7) < 0.01  # 10,000 draws: 4.6 standard deviations
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(g), g * y)
    np.testing.assert_array_equal(drop.eval().forward(x), x)
    np.testing.assert_array_equal(Dropout(1.0).forward(x), 0)


def finite_difference_check(layer, x: np.ndarray, eps: float = 1e-6, seed: int = 0) -> None:
    """Backward of L = sum(R * layer(x)) against central differences, for x and every param."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(layer.forward(x).shape)

    def loss() -> float:
        return float(np.sum(r * layer.forward(x)))

    layer.forward(x)
    dx = layer.backward(r)
    checks = [("x", x, dx)] + [(p.name, p.value, p.grad.copy()) for p in layer.parameters()]
    assert len(checks) > 1 or not layer.parameters()
    for name, arr, analytic in checks:
        numeric = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + eps
            up = loss()
            arr[i] = old - eps
            down = loss()
            arr[i] = old
            numeric[i] = (up - down) / (2 * eps)
        assert rel_err(analytic, numeric) <= 1e-6, name


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, dtype=np.float64,
                    rng=np.random.default_rng(0)), (2, 4, 6, 5)),
    (lambda: Conv2d(2, 3, (2, 3), padding="same", dilation=2, dtype=np.float64,
                    rng=np.random.default_rng(0)), (1, 2, 5, 6)),
    (lambda: Linear(5, 3, dtype=np.float64, rng=np.random.default_rng(0)), (4, 5)),
    (lambda: MaxPool2d(3, 2, 1), (2, 2, 6, 5)),
    (lambda: AvgPool2d(3, 2, 1, count_include_pad=False), (2, 2, 6, 5)),
    (lambda: AdaptiveAvgPool2d((2, 3)), (2, 2, 5, 7)),
    (lambda: BatchNorm2d(3, dtype=np.float64), (3, 3, 2, 2)),
    (lambda: Sequential(Conv2d(2, 3, 3, dtype=np.float64, rng=np.random.default_rng(1)),
                        Tanh(), Sigmoid(), Flatten(),
                        Linear(3 * 3 * 3, 2, dtype=np.float64, rng=np.random.default_rng(2))),
     (2, 2, 5, 5)),
], ids=["conv-grouped-strided", "conv-same-dilated", "linear", "maxpool", "avgpool",
        "adaptive", "batchnorm", "sequential"])
def test_finite_differences(make, shape):
    layer = make()
    finite_difference_check(layer, np.random.default_rng(7).standard_normal(shape))


def test_finite_differences_cross_entropy():
    rng = np.random.default_rng(8)
    z, y = rng.standard_normal((4, 6)), rng.integers(0, 6, 4)
    loss = CrossEntropyLoss()
    loss.forward(z, y)
    analytic = loss.backward()
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += 1e-6
        zm[i] -= 1e-6
        numeric[i] = (loss.forward(zp, y) - loss.forward(zm, y)) / 2e-6
    assert rel_err(analytic, numeric) <= 1e-6
