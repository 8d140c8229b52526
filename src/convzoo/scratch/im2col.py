"""Convolution as one matrix product: im2col, col2im, and the definition they replace.

A 2-D convolution (cross-correlation, as in every deep-learning library) of x (N, C, H, W) with
w (C_out, C, kh, kw) is, for every output element,

    y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * x[n, c, i*s + p*d, j*s + q*d]

(s: stride, d: dilation, x zero-padded first). :func:`conv2d_naive` is that formula, one Python loop
iteration per output element. :func:`im2col` lays every window out as one column of a matrix
(C*kh*kw, N*OH*OW), so that all the dot products become a single GEMM

    y (C_out, N*OH*OW) = w.reshape(C_out, C*kh*kw) @ cols (C*kh*kw, N*OH*OW)

and :func:`col2im` is its adjoint (the scatter-add of columns back onto the image), which the
backward pass needs. docs/im2col.md draws the shapes for a real layer.

The column layout is (C, kh, kw, N, OH, OW): the row index of ``cols`` runs over (c, p, q) in the
same order as ``w.reshape(C_out, -1)``, and its innermost axis (OW) is unit-stride in the padded
input when s = 1, so building ``cols`` is a copy of long contiguous runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

Pair = tuple[int, int]
Pad4 = tuple[int, int, int, int]  # (top, bottom, left, right), in pixels


def pair(v: int | Sequence[int], name: str = "value") -> Pair:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``, as torch.nn accepts either."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def conv_out_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int) -> int:
    """Output length along one axis: floor((size + pad - d*(k-1) - 1) / s) + 1."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def resolve_padding(padding: int | Sequence[int] | str, kernel: Pair, stride: Pair,
                    dilation: Pair) -> Pad4:
    """Padding as (top, bottom, left, right), accepting torch.nn.Conv2d's forms.

    ``"same"`` pads d*(k-1) in total per axis, the odd pixel at the bottom/right (as torch does);
    it needs stride 1. ``"valid"`` is no padding.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return ph, ph, pw, pw


def pad2d(x: np.ndarray, pad: Pad4, value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) padded with ``value`` to (N, C, H+top+bottom, W+left+right)."""
    top, bottom, left, right = pad
    if not any(pad):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """A read-only strided *view* (C, kh, kw, N, OH, OW) of every window of padded xp (N, C, H, W).

    view[c, p, q, n, i, j] = xp[n, c, i*s + p*d, j*s + q*d]; nothing is copied.
    """
    n, c, h, w = xp.shape
    kh, kw = kernel
    oh = conv_out_size(h, kh, stride[0], 0, dilation[0])
    ow = conv_out_size(w, kw, stride[1], 0, dilation[1])
    if oh < 1 or ow < 1:
        raise ValueError(
            f"input of size {h}x{w} (padded) is smaller than the dilated kernel "
            f"{dilation[0] * (kh - 1) + 1}x{dilation[1] * (kw - 1) + 1}"
        )
    sn, sc, sh, sw = xp.strides
    return as_strided(
        xp,
        shape=(c, kh, kw, n, oh, ow),
        strides=(sc, sh * dilation[0], sw * dilation[1], sn, sh * stride[0], sw * stride[1]),
        writeable=False,
    )


def im2col(x: np.ndarray, kernel: Pair, stride: Pair = (1, 1), pad: Pad4 = (0, 0, 0, 0),
           dilation: Pair = (1, 1)) -> tuple[np.ndarray, tuple[int, int]]:
    """x (N, C, H, W) -> (cols (C*kh*kw, N*OH*OW), (OH, OW)): one copy of a strided view."""
    view = windows(pad2d(x, pad), kernel, stride, dilation)  # (C, kh, kw, N, OH, OW)
    c, kh, kw, n, oh, ow = view.shape
    return view.reshape(c * kh * kw, n * oh * ow), (oh, ow)  # reshape of a view: the one copy


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel: Pair,
           stride: Pair = (1, 1), pad: Pad4 = (0, 0, 0, 0), dilation: Pair = (1, 1)
           ) -> np.ndarray:
    """The adjoint of :func:`im2col`: sum every column entry back onto the pixel it came from.

    cols (C*kh*kw, N*OH*OW) -> (N, C, H, W). One strided add per kernel offset (p, q): the slice
    xp[:, :, p*d : p*d + s*OH : s, q*d : q*d + s*OW : s] receives cols[c, p, q] for every n, i, j.
    Overlapping windows (s < k) make a pixel receive several terms, hence add, not assign.
    """
    n, c, h, w = x_shape
    kh, kw = kernel
    top, bottom, left, right = pad
    hp, wp = h + top + bottom, w + left + right
    oh = conv_out_size(hp, kh, stride[0], 0, dilation[0])
    ow = conv_out_size(wp, kw, stride[1], 0, dilation[1])
    g = cols.reshape(c, kh, kw, n, oh, ow)
    # Accumulate in (C, N, H, W), the order of the columns' leading axes, then transpose once.
    xp = np.zeros((c, n, hp, wp), dtype=cols.dtype)
    sh, sw = stride
    for p in range(kh):
        y0 = p * dilation[0]
        for q in range(kw):
            x0 = q * dilation[1]
            dst = xp[:, :, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw]
            np.add(dst, g[:, p, q], out=dst)  # in place (``xp[...] += g`` would copy twice)
    return xp[:, :, top:top + h, left:left + w].transpose(1, 0, 2, 3)


def conv2d_naive(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1) -> np.ndarray:
    """The definition of a convolution, one output element (n, o, i, j) at a time.

    x (N, C, H, W), weight (C_out, C/groups, kh, kw) -> (N, C_out, OH, OW). Slow on purpose: it is
    the formula of the slide written as loops, for reading and as a test oracle.
    """
    n, c, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    xp = pad2d(x, resolve_padding(padding, (kh, kw), s, d))
    oh = conv_out_size(xp.shape[2], kh, s[0], 0, d[0])
    ow = conv_out_size(xp.shape[3], kw, s[1], 0, d[1])
    out_per_group = c_out // groups
    y = np.zeros((n, c_out, oh, ow), dtype=np.result_type(x, weight))
    for b in range(n):
        for o in range(c_out):
            g = o // out_per_group  # the group of input channels output channel o sees
            x_g = xp[b, g * c_per_group:(g + 1) * c_per_group]
            for i in range(oh):
                for j in range(ow):
                    window = x_g[:, i * s[0]:i * s[0] + d[0] * (kh - 1) + 1:d[0],
                                 j * s[1]:j * s[1] + d[1] * (kw - 1) + 1:d[1]]
                    y[b, o, i, j] = np.sum(window * weight[o])
            if bias is not None:
                y[b, o] += bias[o]
    return y
