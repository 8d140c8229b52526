"""NumPy layers named and parametrized like torch.nn, each with its backward pass.

Shapes follow torch: images (N, C, H, W), features (N, F). Every layer works in float32 or float64
(the dtype of its parameters, see ``dtype=`` and :meth:`Module.astype`). Initialisation follows
torch.nn's defaults (uniform in +-1/sqrt(fan_in) for conv and linear weights and biases), drawn
from a NumPy generator (``rng=``), so a scratch model trains on its own; the engine instead copies
a seeded torch model's initial weights so that both engines start from the same point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .im2col import (
    Pad4,
    col2im,
    conv_out_size,
    pad2d,
    pair,
    resolve_padding,
    windows,
)
from .module import Module

__all__ = [
    "Conv2d", "Linear", "ReLU", "Tanh", "Sigmoid", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "BatchNorm1d", "BatchNorm2d", "Dropout", "Flatten",
]


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2d(Module):
    """2-D convolution by im2col + one GEMM per group (see :mod:`convzoo.scratch.im2col`).

    weight (C_out, C_in/groups, kh, kw), bias (C_out,). ``padding`` takes an int, a pair, "same"
    or "valid" like torch.nn.Conv2d. ``input_grad=False`` skips dx in backward (the first layer
    of a network has no use for it) and makes backward return None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True, *,
                 dtype=np.float32, rng: np.random.Generator | None = None,
                 input_grad: bool = True) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = padding
        self.pad: Pad4 = resolve_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.input_grad = input_grad
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        rng = rng or np.random.default_rng()
        bound = 1.0 / np.sqrt(fan_in)
        self.params["weight"] = _uniform(rng, bound, (out_channels, in_channels // groups, kh, kw),
                                         dtype)
        if bias:
            self.params["bias"] = _uniform(rng, bound, (out_channels,), dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} input channels, got {c}")
        g = self.groups
        view = windows(pad2d(x, self.pad), self.kernel_size, self.stride, self.dilation)
        _, kh, kw, _, oh, ow = view.shape  # (C, kh, kw, N, OH, OW), a view
        k = c // g * kh * kw
        cols = view.reshape(g, k, n * oh * ow)  # the im2col copy: (G, C/G*kh*kw, N*OH*OW)
        wmat = self.params["weight"].reshape(g, self.out_channels // g, k)  # (G, C_out/G, K)
        y = np.matmul(wmat, cols)  # one GEMM per group: (G, C_out/G, N*OH*OW)
        y = y.reshape(self.out_channels, n, oh, ow)
        if "bias" in self.params:
            y += self.params["bias"].reshape(-1, 1, 1, 1)
        self._cache = (x.shape, cols)
        return y.transpose(1, 0, 2, 3)  # (N, C_out, OH, OW), a view in (C_out, N, ...) memory

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        x_shape, cols = self._cache
        g = self.groups
        n, c_out, oh, ow = grad_out.shape
        # (N, C_out, OH, OW) -> (G, C_out/G, N*OH*OW): the layout of the forward GEMM's output
        gmat = np.ascontiguousarray(grad_out.transpose(1, 0, 2, 3)).reshape(g, c_out // g, -1)
        w = self.params["weight"]
        # dL/dW = dL/dY @ cols^T: every window weighted by the gradient of its output (G GEMMs)
        self.grads["weight"] = np.matmul(gmat, cols.transpose(0, 2, 1)).reshape(w.shape)
        if "bias" in self.params:
            self.grads["bias"] = gmat.sum(axis=2).reshape(-1)
        if not self.input_grad:
            return None
        # dL/dcols = W^T @ dL/dY, then col2im adds each column back onto its window's pixels.
        dcols = np.matmul(w.reshape(g, c_out // g, -1).transpose(0, 2, 1), gmat)
        return col2im(dcols.reshape(-1, dcols.shape[-1]), x_shape, self.kernel_size,
                      self.stride, self.pad, self.dilation)


class Linear(Module):
    """y = x W^T + b; weight (out_features, in_features). x (..., in) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        rng = rng or np.random.default_rng()
        bound = 1.0 / np.sqrt(in_features)
        self.params["weight"] = _uniform(rng, bound, (out_features, in_features), dtype)
        if bias:
            self.params["bias"] = _uniform(rng, bound, (out_features,), dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._x.reshape(-1, self._x.shape[-1])
        g = grad_out.reshape(-1, grad_out.shape[-1])
        self.grads["weight"] = g.T @ x
        if "bias" in self.params:
            self.grads["bias"] = g.sum(axis=0)
        return grad_out @ self.params["weight"]


class ReLU(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._mask  # 0 where x <= 0, as torch (the subgradient at 0 is 0)


class Tanh(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (1 - self._y * self._y)


class Sigmoid(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        # 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0: never exp of a large positive number
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self._y * (1 - self._y)


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), like torch.nn.Flatten(start_dim=1)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        end = self.end_dim % x.ndim
        return x.reshape(*x.shape[:self.start_dim], -1, *x.shape[end + 1:])

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self._shape)


class _Pool2d(Module):
    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None,
                 padding: int | Sequence[int]) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
        self.padding = pair(padding, "padding")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(f"pad should be at most half of the kernel size, got padding "
                             f"{padding} and kernel_size {kernel_size}")

    def _offsets(self, xp: np.ndarray):
        """Yield (p, q, view (N, C, OH, OW)) for each kernel offset: xp[.., i*s+p, j*s+q]."""
        kh, kw = self.kernel_size
        sh, sw = self.stride
        oh = conv_out_size(xp.shape[2], kh, sh, 0, 1)
        ow = conv_out_size(xp.shape[3], kw, sw, 0, 1)
        for p in range(kh):
            for q in range(kw):
                yield p, q, xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]


class MaxPool2d(_Pool2d):
    """Max over each window; backward routes the gradient to the arg-max (first one on ties).

    Padding is with -inf, so a padded pixel is never the maximum (as torch).
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0) -> None:
        super().__init__(kernel_size, stride, padding)

    def forward(self, x: np.ndarray) -> np.ndarray:
        ph, pw = self.padding
        xp = pad2d(x, (ph, ph, pw, pw), value=-np.inf)
        out = None
        # kh*kw strided slices, one elementwise max each: no copy of the windows.
        for _, _, v in self._offsets(xp):
            if out is None:
                out = v.copy()
            else:
                np.maximum(out, v, out=out)
        self._cache = (x.shape, xp, out)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, xp, out = self._cache
        dxp = np.zeros_like(xp, dtype=grad_out.dtype)  # keeps xp's memory order (see Conv2d)
        free = np.ones(out.shape, dtype=bool)  # windows whose gradient is not routed yet
        # Windows that tile the input (stride = kernel) share no pixel: each offset's slice of
        # dxp is written once, so it can be assigned rather than added to.
        tiled = self.stride == self.kernel_size
        # Offsets in row-major window order: the first pixel equal to the max takes the gradient.
        for (_, _, v), (_, _, d) in zip(self._offsets(xp), self._offsets(dxp), strict=True):
            hit = v == out
            hit &= free
            free ^= hit  # hit is within free: this clears the windows just routed
            if tiled:
                np.multiply(grad_out, hit, out=d)  # d is a view into dxp: in place
            else:
                d += grad_out * hit
        ph, pw = self.padding
        return dxp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]


class AvgPool2d(_Pool2d):
    """Mean over each window. ``count_include_pad`` as torch: whether zeros of the padding count."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def _divisor(self, h: int, w: int, dtype) -> np.ndarray | float:
        kh, kw = self.kernel_size
        ph, pw = self.padding
        if self.count_include_pad or (ph == 0 and pw == 0):
            return float(kh * kw)
        ones = pad2d(np.ones((1, 1, h, w), dtype=dtype), (ph, ph, pw, pw))
        return sum(v for _, _, v in self._offsets(ones))  # real pixels in each window

    def forward(self, x: np.ndarray) -> np.ndarray:
        ph, pw = self.padding
        xp = pad2d(x, (ph, ph, pw, pw))
        total = None
        for _, _, v in self._offsets(xp):
            total = v.copy() if total is None else total + v
        div = self._divisor(x.shape[2], x.shape[3], x.dtype)
        self._cache = (x.shape, xp.shape, div)
        return total / div

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_shape, xp_shape, div = self._cache
        g = grad_out / div
        dxp = np.zeros(xp_shape, dtype=grad_out.dtype)
        for _, _, v in self._offsets(dxp):
            v += g  # in place on a view of dxp: each pixel gets 1/|window| of the gradient
        ph, pw = self.padding
        return dxp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]


class AdaptiveAvgPool2d(Module):
    """Average into a fixed (OH, OW) grid; bin i spans [floor(i*H/OH), ceil((i+1)*H/OH)), as
    torch."""

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(
            output_size)

    def _bins(self, size: int, out: int) -> list[tuple[int, int]]:
        return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        oh, ow = (s if s is not None else d for s, d in zip(self.output_size, (h, w), strict=True))
        self._cache = (x.shape, oh, ow)
        if h % oh == 0 and w % ow == 0:  # equal bins: a reshape and one mean
            return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
        y = np.empty((n, c, oh, ow), dtype=x.dtype)
        for i, (y0, y1) in enumerate(self._bins(h, oh)):  # a loop over the (few) output bins
            for j, (x0, x1) in enumerate(self._bins(w, ow)):
                y[:, :, i, j] = x[:, :, y0:y1, x0:x1].mean(axis=(2, 3))
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        (n, c, h, w), oh, ow = self._cache
        dx = np.zeros((n, c, h, w), dtype=grad_out.dtype)
        for i, (y0, y1) in enumerate(self._bins(h, oh)):
            for j, (x0, x1) in enumerate(self._bins(w, ow)):
                dx[:, :, y0:y1, x0:x1] += (grad_out[:, :, i, j] / ((y1 - y0) * (x1 - x0))
                                           )[:, :, None, None]
        return dx


class _BatchNorm(Module):
    """Batch normalisation, Ioffe & Szegedy 2015, Algorithm 1 (the slide).

    Training: mu_B and the biased sigma^2_B of the batch (over N and the spatial axes) normalise
    x_hat = (x - mu_B) / sqrt(sigma^2_B + eps), then y = gamma x_hat + beta (``weight``, ``bias``).
    The running estimates move by ``momentum``: running_var takes the *unbiased* m/(m-1) sigma^2_B
    (§3.1, inference with population statistics). Eval: the running estimates replace mu_B,
    sigma^2_B. ``momentum=None`` is torch's cumulative average (1/num_batches_tracked).
    """

    _axes: tuple[int, ...]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype=np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.track_running_stats = track_running_stats
        if affine:
            self.params["weight"] = np.ones(num_features, dtype=dtype)
            self.params["bias"] = np.zeros(num_features, dtype=dtype)
        if track_running_stats:
            self.buffers["running_mean"] = np.zeros(num_features, dtype=dtype)
            self.buffers["running_var"] = np.ones(num_features, dtype=dtype)
            self.buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _bshape(self, x: np.ndarray) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector over (N, C, ...)

    def _check(self, x: np.ndarray) -> None:
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__} expects {self.num_features} features, "
                             f"got input of shape {x.shape}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = self._bshape(x)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            m = x.size // x.shape[1]  # values per channel in the batch
            if m < 2:
                raise ValueError(f"expected more than 1 value per channel when training, got "
                                 f"input of shape {x.shape}")
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(shape)
            var = (xc * xc).mean(axis=axes)  # biased: normalises the batch (Algorithm 1)
            if self.training and self.track_running_stats:
                nbt = self.buffers["num_batches_tracked"]
                nbt += 1
                f = self.momentum if self.momentum is not None else 1.0 / float(nbt)
                rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
                rm *= 1 - f
                rm += f * mean.astype(rm.dtype)
                rv *= 1 - f
                rv += f * (var * (m / (m - 1))).astype(rv.dtype)  # unbiased into running_var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xc = x - mean.reshape(shape)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = xc * inv_std.reshape(shape)
        self._cache = (x_hat, inv_std, use_batch, axes)
        if "weight" in self.params:
            return x_hat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)
        return x_hat

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat, inv_std, use_batch, axes = self._cache
        shape = self._bshape(grad_out)
        if "weight" in self.params:
            self.grads["weight"] = (grad_out * x_hat).sum(axis=axes)
            self.grads["bias"] = grad_out.sum(axis=axes)
            g = grad_out * self.params["weight"].reshape(shape)  # dL/dx_hat
        else:
            g = grad_out
        if not use_batch:  # running statistics are constants
            return g * inv_std.reshape(shape)
        # mu_B and sigma^2_B depend on every x of the channel: the two mean terms below.
        mean_g = g.mean(axis=axes).reshape(shape)
        mean_gx = (g * x_hat).mean(axis=axes).reshape(shape)
        return (g - mean_g - x_hat * mean_gx) * inv_std.reshape(shape)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W): statistics per channel over N, H and W."""

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d expects (N, C, H, W) input, got shape {x.shape}")
        super()._check(x)


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L): statistics per feature over N (and L)."""

    def _check(self, x: np.ndarray) -> None:
        if x.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d expects (N, C) or (N, C, L) input, got shape {x.shape}")
        super()._check(x)


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014): zero with probability p, scale the rest by 1/(1-p)
    in training, so eval is the identity."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.rng = rng or np.random.default_rng()

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._scale = None
            return x
        if self.p == 1:
            self._scale = np.zeros_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.p
            self._scale = keep.astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self._scale

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out if self._scale is None else grad_out * self._scale
