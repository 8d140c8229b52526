# %% [markdown]
# # 1. Conv2d: every argument, its output shape and its parameter count
#
# A convolution layer slides `C_out` filters of `C_in/groups x kh x kw` weights over its input.
# Its arguments, as `torch.nn.Conv2d` names them:
#
# | argument | what it does | output side `H_out` | parameters |
# | --- | --- | --- | --- |
# | `kernel_size` k | the window | `H - k + 1` | `C_out * C_in * k * k` |
# | `stride` s | step between windows | `floor((H - k) / s) + 1` | unchanged |
# | `padding` p | zeros around the input | `H + 2p - k + 1` | unchanged |
# | `dilation` d | gaps in the window: it spans `d(k-1)+1` | `H + 2p - d(k-1)` | unchanged |
# | `groups` g | g independent convolutions side by side | unchanged | divided by g |
# | `bias` | one number per output channel | unchanged | `+ C_out` |
#
# All together: **`H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`** and
# **`params = C_out * (C_in / g) * kh * kw + C_out`**.
#
# Below, each argument is checked three ways: the formulas, PyTorch's `nn.Conv2d` (float64: the
# oracle), and `convzoo.scratch.Conv2d`, the course's NumPy layer (im2col + one matrix product,
# notebook 4).

# %%
import numpy as np
import torch

from convzoo.scratch import Conv2d, conv2d_naive

torch.manual_seed(0)


def out_side(h, k, stride=1, padding=0, dilation=1):
    return (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def n_params(c_in, c_out, k, groups=1, bias=True):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def check(c_in=8, c_out=16, kernel_size=3, h=12, **args):
    """One layer: shapes and parameter counts by formula and by torch; scratch vs torch values."""
    ref = torch.nn.Conv2d(c_in, c_out, kernel_size, dtype=torch.float64, **args)
    mine = Conv2d(c_in, c_out, kernel_size, dtype=np.float64, **args)
    mine.params["weight"] = ref.weight.detach().numpy().copy()  # the same weights in both
    if ref.bias is not None:
        mine.params["bias"] = ref.bias.detach().numpy().copy()
    x = torch.randn(2, c_in, h, h, dtype=torch.float64)
    y_ref = ref(x).detach().numpy()
    y_mine = mine(x.numpy())
    side = out_side(h, kernel_size, args.get("stride", 1), args.get("padding", 0),
                    args.get("dilation", 1))
    return {
        "arguments": ", ".join(f"{k}={v}" for k, v in args.items()) or "(defaults)",
        "output (torch)": tuple(y_ref.shape),
        "H_out formula": side,
        "params (torch)": sum(p.numel() for p in ref.parameters()),
        "params formula": n_params(c_in, c_out, kernel_size, args.get("groups", 1),
                                   args.get("bias", True)),
        "max |scratch - torch|": float(f"{np.abs(y_mine - y_ref).max():.1e}"),
    }


# %% [markdown]
# ## One argument at a time
#
# An 8-channel 12x12 input, 16 filters of 3x3 (a batch of 2 images).

# %%
rows = [check(**args) for args in [
    {},
    {"stride": 2},
    {"padding": 1},  # "same" size for a 3x3 kernel
    {"dilation": 2},  # a 3x3 kernel spanning 5x5 pixels
    {"groups": 2},
    {"groups": 8},  # depthwise: each filter sees one input channel (2 filters per channel)
    {"bias": False},
    {"stride": 2, "padding": 1, "dilation": 2, "groups": 4},
]]
widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in rows[0]}
print("  ".join(k.ljust(w) for k, w in widths.items()))
for r in rows:
    print("  ".join(str(r[k]).ljust(w) for k, w in widths.items()))

# %%
for r in rows:
    assert r["output (torch)"][2] == r["H_out formula"], r
    assert r["params (torch)"] == r["params formula"], r
    assert r["max |scratch - torch|"] < 1e-12, r
print("all", len(rows), "layers: the formulas, torch and the NumPy layer agree")

# %% [markdown]
# ## The definition, one output value at a time
#
# `conv2d_naive` is the slide's formula written as loops:
# `y[n, o, i, j] = b[o] + sum over c, p, q of w[o, c, p, q] * x[n, c, i*s + p*d, j*s + q*d]`.
# It is slow on purpose and gives the same numbers.

# %%
ref = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=torch.float64)
x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
loops = conv2d_naive(x.numpy(), ref.weight.detach().numpy(), ref.bias.detach().numpy(),
                     stride=2, padding=1)
print("output", loops.shape, " max |loops - torch| =",
      float(np.abs(loops - ref(x).detach().numpy()).max()))

# %% [markdown]
# ## Your turn
#
# AlexNet's first layer takes a 3x227x227 image with 96 filters of 11x11 at stride 4.
# **Before running the cell: what is its output size, and how many parameters does it have?**
# Then change the numbers (try `groups=2`, as the two-GPU AlexNet did in its later layers, or a
# 7x7 kernel at stride 2 with padding 3, ResNet's first layer on 224x224) and re-run.

# %%
mine = check(c_in=3, c_out=96, kernel_size=11, h=227, stride=4)
print(mine)
