"""What one operation of a network does, in the lecture's words and with this image's numbers.

:func:`explain` takes one call of the kept forward pass (``analysis.visualize.LayerCall``: a
module or a torch function, its input and output) and answers ``{"kind", "lines"}`` plus the
numbers a view draws: the shapes arithmetic of a convolution or a pool, how many values a ReLU
zeroed, a residual add's or a concatenation's inputs. Batch normalization and dropout have their
own functions (:func:`batchnorm`, :func:`dropout`): they need a mini-batch, or the train mode.
Every number is computed here from the tensors, never copied from a table.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError


def _shape(t: torch.Tensor | None) -> str:
    return "×".join(map(str, t.shape[1:])) if t is not None else "-"


def _out_size(n: int, k: int, s: int, p: int, d: int = 1) -> str:
    """The slide's formula with its numbers: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return f"⌊({n} + 2·{p} − {d * (k - 1) + 1}) / {s}⌋ + 1 = {out}"


def _conv(m: nn.Conv2d, c) -> list[str]:
    k, s, p, d = m.kernel_size, m.stride, m.padding, m.dilation
    h = c.input.shape[2]
    lines = [f"{m.out_channels} filters, each {m.in_channels // m.groups}×{k[0]}×{k[1]}, slide "
             f"over the {_shape(c.input)} input with stride {s[0]}"
             + (f" and {p[0]} pixels of zero padding" if isinstance(p, tuple) and p[0] else "")
             + ": each output is the sum of weight × input over one window and every input "
             "channel, plus the filter's bias.",
             f"output height {_out_size(h, k[0], s[0], p[0] if isinstance(p, tuple) else 0, d[0])}"
             f"; {m.out_channels} filters give {m.out_channels} maps: {_shape(c.output)}.",
             f"parameters: {m.out_channels} × {m.in_channels // m.groups}·{k[0]}·{k[1]} weights"
             + (f" + {m.out_channels} biases" if m.bias is not None else "")
             + f" = {sum(q.numel() for q in m.parameters()):,}. Click a position of a map to see "
             "its sum."]
    return lines


def _relu(c) -> list[str]:
    x = c.input
    neg = int((x < 0).sum())
    return [f"ReLU(x) = max(0, x), value by value: {neg:,} of {x.numel():,} inputs "
            f"({100 * neg / max(x.numel(), 1):.1f}%) were negative and became 0; the others "
            "pass unchanged. Before (input) and after (output) are drawn side by side."]


def _pool(m: nn.Module, c) -> list[str]:
    k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
    s = m.stride if isinstance(m.stride, int) else (m.stride or (k,))[0]
    p = m.padding if isinstance(m.padding, int) else m.padding[0]
    what = "its largest value" if isinstance(m, nn.MaxPool2d) else "the mean of its values"
    return [f"{k}×{k} windows, stride {s}: each window keeps {what}, channel by channel "
            f"(no weights). Height {_out_size(c.input.shape[2], k, s, p)}: "
            f"{_shape(c.input)} → {_shape(c.output)}."]


def _linear(m: nn.Linear, c) -> list[str]:
    return [f"fully connected: y = W x + b, W of {m.out_features}×{m.in_features}: each of the "
            f"{m.out_features} outputs is a weighted sum of all {m.in_features} inputs "
            f"({m.out_features * m.in_features:,} weights"
            + (f" + {m.out_features} biases)." if m.bias is not None else ").")]


def _functional(c, type_: str) -> list[str]:
    ins = c.inputs or [c.input]
    if type_ == "F.pad":
        return [f"zero padding added around each map: {_shape(c.input)} → {_shape(c.output)}, "
                "so that the next convolution's windows also centre on the border pixels."]
    if type_.endswith(("add_", "add", "__add__", "__iadd__")) and len(ins) == 2:
        return [f"residual connection: out = F(x) + x, value by value: the block's branch "
                f"({_shape(ins[0])}) plus its shortcut ({_shape(ins[1])}); the gradient flows "
                "through the sum unchanged, which lets very deep networks train."]
    if type_ == "torch.cat":
        parts = " + ".join(str(t.shape[1]) for t in ins)
        return [f"concatenation along the channels: {len(ins)} inputs, {parts} = "
                f"{c.output.shape[1]} channels of {'×'.join(map(str, c.output.shape[2:]))}."]
    if type_.endswith("flatten"):
        return [f"flatten: the {_shape(c.input)} maps written as one vector of "
                f"{c.output.shape[1]:,} values (map after map, row after row), for the fully "
                "connected layers."]
    if type_.endswith("relu"):
        return _relu(c)
    return [f"{type_}: {_shape(c.input)} → {_shape(c.output)} (a function called in forward)."]


def explain(c, type_: str) -> dict[str, Any]:
    """``{"kind", "lines"}`` for call ``c`` of the kept pass (``type_``: its summary row's type);
    ``before_after``: draw the input beside the output (ReLU)."""
    m = c.module
    if isinstance(m, nn.Conv2d):
        return {"kind": "conv", "lines": _conv(m, c)}
    if isinstance(m, (nn.ReLU, nn.ReLU6, nn.LeakyReLU)):
        return {"kind": "relu", "lines": _relu(c), "before_after": True}
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return {"kind": "pool", "lines": _pool(m, c)}
    if isinstance(m, nn.Linear):
        return {"kind": "linear", "lines": _linear(m, c)}
    if isinstance(m, nn.BatchNorm2d):
        return {"kind": "batchnorm", "lines": [
            "batch normalization: each channel's values, x̂ = (x − μ) / √(σ² + ε), then "
            "y = γ x̂ + β (γ, β learned). In training μ, σ² are the mini-batch's mean and "
            "variance; in evaluation the running averages gathered in training. Both are worked "
            "out below for one channel."]}
    if isinstance(m, nn.Dropout):
        return {"kind": "dropout", "lines": [
            f"dropout, p = {m.p}: in training each value is zeroed with probability p and the "
            f"others scaled by 1/(1 − p) = {1 / (1 - m.p):.3g} (inverted dropout, so the "
            "expected value is unchanged); in evaluation, as here, it passes everything "
            "unchanged."]}
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return {"kind": "pool", "lines": [
            f"adaptive pooling to {_shape(c.output)}: the windows are chosen so that any input "
            f"size ({_shape(c.input)} here) gives that output; at 1×1 each map's mean."]}
    if isinstance(m, nn.Flatten) or m is None:
        kind = "relu" if type_.endswith("relu") else "function"
        out = {"kind": kind, "lines": _functional(c, type_)}
        if kind == "relu":
            out["before_after"] = True
        return out
    return {"kind": "module", "lines": [
        f"{type(m).__name__}: {_shape(c.input)} → {_shape(c.output)}."]}


def batchnorm(m: nn.BatchNorm2d, x_batch: torch.Tensor, channel: int, at: tuple[int, int]
              ) -> dict[str, Any]:
    """Batch normalization of ``channel`` as the slide writes it, in float64: train mode on the
    mini-batch ``x_batch`` (N, C, H, W: the layer's inputs for N images, the current image
    first), eval mode with the running statistics, both at position ``at`` of the current
    image. ``torch``: ``F.batch_norm``'s answers there, to compare."""
    if not 0 <= channel < m.num_features:
        raise ConvzooError(f"channel {channel} is out of range 0..{m.num_features - 1}")
    xb = x_batch.double()
    g = m.weight.detach().double() if m.weight is not None else torch.ones(m.num_features)
    b = m.bias.detach().double() if m.bias is not None else torch.zeros(m.num_features)
    mu_b = xb[:, channel].mean()
    var_b = xb[:, channel].var(unbiased=False)
    x = float(xb[0, channel, at[0], at[1]])
    x_hat_b = (x - mu_b) / (var_b + m.eps).sqrt()
    rm, rv = float(m.running_mean[channel]), float(m.running_var[channel])
    x_hat_e = (x - rm) / (rv + m.eps) ** 0.5
    train = F.batch_norm(xb, None, None, g, b, training=True, eps=m.eps)
    evald = F.batch_norm(xb[:1], m.running_mean.double(), m.running_var.double(), g, b,
                         training=False, eps=m.eps)
    return {
        "channel": channel, "at": list(at), "batch": int(xb.shape[0]),
        "values_per_channel": int(xb[:, channel].numel()), "eps": m.eps,
        "gamma": float(g[channel]), "beta": float(b[channel]), "x": x,
        "train": {"mean": float(mu_b), "var": float(var_b), "x_hat": float(x_hat_b),
                  "y": float(g[channel] * x_hat_b + b[channel]),
                  "torch": float(train[0, channel, at[0], at[1]])},
        "eval": {"mean": rm, "var": rv, "x_hat": x_hat_e,
                 "y": float(g[channel]) * x_hat_e + float(b[channel]),
                 "torch": float(evald[0, channel, at[0], at[1]])}}


def dropout(p: float, x: torch.Tensor, *, seed: int = 0, count: int = 12) -> dict[str, Any]:
    """Inverted dropout on the first ``count`` values of ``x`` (its layer's input), in train
    mode with a seeded mask, beside evaluation mode (unchanged)."""
    v = x.flatten().double()[:count]
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(v.shape, generator=gen, dtype=torch.float64) >= p
    train = torch.where(keep, v / (1 - p), torch.zeros_like(v))
    big = x.flatten().double()
    mask = torch.rand(big.shape, generator=torch.Generator().manual_seed(seed + 1),
                      dtype=torch.float64) >= p
    return {"p": p, "scale": 1 / (1 - p), "input": v.tolist(), "kept": keep.tolist(),
            "train": train.tolist(), "eval": v.tolist(),
            "mean_input": float(big.mean()),
            "mean_train": float(torch.where(mask, big / (1 - p), 0).mean())}
