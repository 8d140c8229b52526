"""Convolution as unfold (im2col) + matrix product, inside real torch models.

The same idea as :mod:`convzoo.scratch` on torch tensors, so it runs on the CPU or a GPU and
trains any zoo model: ``convzoo.gemm.convert(model)`` swaps every ``nn.Conv2d`` for a
:class:`GemmConv2d` holding the very same parameters (the state-dict keys do not change), and
``convzoo train MODEL --conv gemm`` trains that way. docs/im2col.md explains the shapes.

Forward, for x (N, C, H, W) and weight (C_out, C/G, kh, kw) with G groups::

    cols = unfold(x)                                  # (N, C*kh*kw, L), L = OH*OW
    y    = weight.view(G, C_out/G, K) @ cols.view(N, G, K, L)   # (N, G, C_out/G, L)

where K = C/G*kh*kw.

Backward, written out (no autograd inside), with g = dL/dy viewed as (N, G, C_out/G, L)::

    dL/dweight = sum_n g[n] @ cols[n]^T     # (G, C_out/G, K), summed over n
    dL/dcols   = weight^T @ g               # (N, G, K, L), then
    dL/dx      = fold(dL/dcols)             # col2im: each column added back onto its window
    dL/dbias   = g summed over N and L

The columns are kept from the forward for the weight gradient: memory for speed, kh*kw times the
input of each layer. Not supported: double backward (``once_differentiable``).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .errors import ConvzooError

log = logging.getLogger(__name__)

__all__ = ["GemmConv2d", "conv2d", "convert"]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Conv2dGemm(torch.autograd.Function):
    """y = unfold(x) GEMM weight (+ bias); zero padding (ph, pw) on both sides of each axis."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        n, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"input of size {h}x{w} is smaller than the dilated kernel "
                             f"(padding {tuple(padding)}, dilation {tuple(dilation)})")
        cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # (N,CK,L)
        # The product is written straight into y: an output that were a view (of the matmul's
        # result) could not be modified in place afterwards, e.g. by ReLU(inplace=True).
        y = x.new_empty((n, c_out, oh, ow))
        if groups == 1:
            torch.matmul(weight.reshape(c_out, -1), cols,
                         out=y.view(n, c_out, oh * ow))  # (C_out, K) @ (N, K, L)
        else:
            k = cols.shape[1] // groups
            torch.matmul(weight.reshape(groups, c_out // groups, k), cols.view(n, groups, k, -1),
                         out=y.view(n, groups, c_out // groups, oh * ow))  # (N, G, C_out/G, L)
        if bias is not None:
            y.add_(bias.view(1, -1, 1, 1))
        ctx.save_for_backward(cols, weight)
        ctx.conf = (x.shape[-2:], stride, padding, dilation, groups, bias is not None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        (h, w), stride, padding, dilation, groups, has_bias = ctx.conf
        n, c_out = grad_out.shape[:2]
        kh, kw = weight.shape[-2:]
        k = cols.shape[1] // groups
        g = grad_out.reshape(n, groups, c_out // groups, -1)  # (N, G, C_out/G, L)
        cg = cols.view(n, groups, k, -1)  # (N, G, K, L)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            w_t = weight.reshape(groups, c_out // groups, k).transpose(1, 2)  # (G, K, C_out/G)
            grad_cols = torch.matmul(w_t, g).reshape(n, groups * k, -1)  # (N, C*kh*kw, L)
            grad_x = F.fold(grad_cols, (h, w), (kh, kw), dilation=dilation, padding=padding,
                            stride=stride)  # col2im: (N, C, H, W)
        if ctx.needs_input_grad[1]:
            # One GEMM per sample and group, then the sum over the batch: cheaper than copying
            # the columns into one (K, N*L) matrix (measured on CPU, benchmarks/scratch.py).
            grad_w = torch.matmul(g, cg.transpose(-1, -2)).sum(0)  # (G, C_out/G, K)
            grad_w = grad_w.reshape(weight.shape)
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None


def _same_padding(kernel: tuple[int, int], dilation: tuple[int, int]) -> list[int]:
    """F.pad order (left, right, top, bottom) of padding='same': the odd pixel right/bottom."""
    out: list[int] = []
    for k, d in ((kernel[1], dilation[1]), (kernel[0], dilation[0])):
        total = d * (k - 1)
        out += [total // 2, total - total // 2]
    return out


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> torch.Tensor:
    """torch.nn.functional.conv2d computed by unfold + matmul, with the backward written out.

    ``padding`` is an int, a pair, ``"same"`` (stride 1 only, as torch) or ``"valid"``. Input is
    (N, C, H, W) or unbatched (C, H, W).
    """
    if x.dim() == 3:
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected a (N, C, H, W) or (C, H, W) input, got shape {tuple(x.shape)}")
    stride, dilation = _pair(stride), _pair(dilation)
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"input has {x.shape[1]} channels, expected {weight.shape[1] * groups} "
                         f"(weight {tuple(weight.shape)}, groups {groups})")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            left, right, top, bottom = _same_padding(tuple(weight.shape[-2:]), dilation)
            if (left, top) == (right, bottom):
                padding = (top, left)
            else:  # an even dilated kernel: pad the odd pixel first (autograd handles F.pad)
                x = F.pad(x, (left, right, top, bottom))
                padding = (0, 0)
        else:
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    return _Conv2dGemm.apply(x, weight, bias, stride, _pair(padding), dilation, groups)


class GemmConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same arguments, parameters and state-dict keys) computed by
    :func:`conv2d`. ``padding_mode`` other than "zeros" pads with ``F.pad`` first, as nn.Conv2d."""

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> GemmConv2d:
        """A GemmConv2d that shares ``conv``'s parameter tensors (no copy; optimizers still see
        them)."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                  bias=conv.bias is not None, padding_mode=conv.padding_mode, device="meta",
                  dtype=conv.weight.dtype)
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        return new


def convert(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Conv2d`` of ``model`` (in place) by a :class:`GemmConv2d` with the same
    parameters; returns the model (or the replacement, when ``model`` itself is a conv).

    Only exact ``nn.Conv2d`` instances are swapped: a subclass may change what forward computes,
    so it is left as it is (and logged).
    """
    if not isinstance(model, nn.Module):
        raise ConvzooError(f"convert expects a torch.nn.Module, got {type(model).__name__}")
    if type(model) is nn.Conv2d:
        return GemmConv2d.from_conv(model)
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d:
                setattr(parent, name, GemmConv2d.from_conv(child))
                swapped += 1
            elif isinstance(child, nn.Conv2d) and not isinstance(child, GemmConv2d):
                log.info("gemm.convert: left %s (%s) as it is", name, type(child).__name__)
    log.info("gemm.convert: %d nn.Conv2d layers now compute by unfold + matmul", swapped)
    return model
