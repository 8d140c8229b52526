# %% [markdown]
# # 4. Convolution as im2col + GEMM
#
# Every output value of a convolution is a dot product of one filter with one window of the
# input. **im2col** copies every window into one column of a matrix; the filters, each flattened
# into a row, form a second matrix; then all the dot products of the layer are **one matrix
# product** (a GEMM), the operation BLAS libraries and GPUs run fastest:
#
# `Y (C_out, N*OH*OW) = W (C_out, C_in*kh*kw) @ cols (C_in*kh*kw, N*OH*OW)`
#
# Here it is on a real layer: the second convolution (C3) of the trained LeNet-5 that ships with
# convzoo, on a real test digit.

# %%
import time

import numpy as np
import torch

import convzoo
from convzoo.data import load_dataset
from convzoo.scratch import Conv2d, conv2d_naive, im2col

model = convzoo.create_model("lenet5:mnist").eval()  # the shipped weights
test = load_dataset("mnist", split="test")
transform = convzoo.create_transform(convzoo.resolve_data_config("lenet5:mnist"))
digit = transform(test.images[0])[None]  # (1, 1, 28, 28), normalised as in training

c3 = model.features[3]  # nn.Conv2d(6, 16, kernel_size=5)
seen = {}
c3.register_forward_hook(lambda m, inputs, output: seen.update(x=inputs[0], y=output))
with torch.no_grad():
    model(digit)
x, y = seen["x"].double().numpy(), seen["y"].double().numpy()
print("C3:", c3, "\ninput", x.shape, "-> output", y.shape)

# %% [markdown]
# ## The two matrices and their product

# %%
cols, (oh, ow) = im2col(x, c3.kernel_size)  # one column per output position
W = c3.weight.detach().double().numpy().reshape(c3.out_channels, -1)  # one row per filter
b = c3.bias.detach().double().numpy()
Y = W @ cols + b[:, None]
print(f"W    {W.shape}   (C_out, C_in*kh*kw) = (16, 6*5*5)")
print(f"cols {cols.shape}  (C_in*kh*kw, N*OH*OW) = (150, 1*10*10)")
print(f"Y    {Y.shape}  -> reshaped to (N, C_out, OH, OW) = (1, 16, {oh}, {ow})")
err = np.abs(Y.reshape(16, 1, oh, ow).transpose(1, 0, 2, 3) - y).max()
print("max |GEMM - the layer's output| =", f"{err:.1e}")
assert err < 1e-4  # the layer ran in float32

# %% [markdown]
# Column `j` of `cols` is the window under output position `j`: here position (0, 0), the
# 6x5x5 patch in the top-left corner of the input.

# %%
assert np.array_equal(cols[:, 0], x[0, :, 0:5, 0:5].ravel())
print("GEMM column 0 is the 6x5x5 patch at (0, 0); its dot product with filter 3 is",
      f"{W[3] @ cols[:, 0] + b[3]:.4f}, the layer's output y[0, 3, 0, 0] = {y[0, 3, 0, 0]:.4f}")

# %% [markdown]
# ## The price: memory. The gain: speed
#
# `cols` holds every input pixel up to kh*kw = 25 times. In exchange, loops over output values
# become one call to an optimised matrix product. Three ways to compute the same layer on a batch
# of 8 inputs: the definition as Python loops (`conv2d_naive`), im2col + one NumPy GEMM
# (`convzoo.scratch.Conv2d`), and PyTorch's own convolution.

# %%
batch = np.random.default_rng(0).standard_normal((8, 6, 14, 14))
layer = Conv2d(6, 16, 5, dtype=np.float64)
layer.params["weight"] = c3.weight.detach().double().numpy()
layer.params["bias"] = b
ref = torch.nn.Conv2d(6, 16, 5, dtype=torch.float64)
ref.load_state_dict(c3.state_dict())


def seconds(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


t_loops = seconds(lambda: conv2d_naive(batch, layer.params["weight"], b), repeat=1)
t_gemm = seconds(lambda: layer(batch))
with torch.no_grad():
    t_torch = seconds(lambda: ref(torch.from_numpy(batch)))
assert np.allclose(conv2d_naive(batch, layer.params["weight"], b), layer(batch))
print(f"loops        {1e3 * t_loops:8.2f} ms")
print(f"im2col+GEMM  {1e3 * t_gemm:8.2f} ms  ({t_loops / t_gemm:.0f}x faster than the loops)")
print(f"torch        {1e3 * t_torch:8.2f} ms")

# %% [markdown]
# The measured ratio depends on the machine; `convzoo experiment im2col` measures it properly
# (`docs/experiments/im2col.md`). `convzoo.gemm.convert(model)` swaps every `nn.Conv2d` of a
# real torch model for an im2col + matmul layer with the same weights, and it trains:
# `convzoo train lenet5 --conv gemm`.

# %%
from convzoo.gemm import convert

gemm_model = convert(convzoo.create_model("lenet5:mnist").eval())
with torch.no_grad():
    print("same logits:", torch.allclose(gemm_model(digit), model(digit), atol=1e-5))

# %% [markdown]
# ## Your turn
#
# AlexNet's second layer: 96 input channels, 256 filters of 5x5 with padding 2, on 27x27 maps.
# **Before running: what are the shapes of W and cols for a batch of 4, and how many times
# larger than the input is cols?** Change the numbers and re-run (the shapes only: nothing big is
# allocated).

# %%
n, c_in, side, c_out, k, pad = 4, 96, 27, 256, 5, 2
out_side = side + 2 * pad - k + 1
print("W", (c_out, c_in * k * k), " cols", (c_in * k * k, n * out_side * out_side),
      f" cols / input = {c_in * k * k * n * out_side**2 / (n * c_in * side**2):.1f}x")
