# %% [markdown]
# # 3. Max pooling: the slide's 4x4 example, forward and backward
#
# A 2x2 max-pool with stride 2 keeps the largest value of each window: it halves the height and
# width, has no parameters, and makes the output insensitive to where in the window a feature
# was. Backward, the gradient of each output goes to the one input that was the maximum; the
# other three inputs of the window get zero.

# %%
import numpy as np
import torch

from convzoo.scratch import AvgPool2d, MaxPool2d

x = np.array([[1, 1, 2, 4],
              [5, 6, 7, 8],
              [3, 2, 1, 0],
              [1, 2, 3, 4]], dtype=np.float64)[None, None]  # (N=1, C=1, 4, 4)

# %% [markdown]
# ## Forward
#
# `convzoo.scratch.MaxPool2d` is NumPy; PyTorch's `F.max_pool2d` (float64) is the oracle.

# %%
pool = MaxPool2d(2, stride=2)
y = pool(x)
print("input\n", x[0, 0], "\n2x2 max-pool, stride 2\n", y[0, 0])

x_t = torch.tensor(x, requires_grad=True)
y_t = torch.nn.functional.max_pool2d(x_t, 2, stride=2)
assert np.array_equal(y, y_t.detach().numpy())
assert y[0, 0].tolist() == [[6, 8], [3, 4]]  # the slide's answer

# %% [markdown]
# ## Backward
#
# Say the loss's gradient with respect to the four outputs is `[[1, 2], [3, 4]]`. Each one is
# routed to the position of its window's maximum:

# %%
grad_out = np.array([[1, 2], [3, 4]], dtype=np.float64)[None, None]
grad_in = pool.backward(grad_out)
print(grad_in[0, 0])

y_t.backward(torch.tensor(grad_out))
assert np.array_equal(grad_in, x_t.grad.numpy())
print("the same as torch's autograd")

# %% [markdown]
# Average pooling, for comparison, spreads each output's gradient evenly (1/4 each) over its
# window: LeNet's "subsampling" was a (trainable) average.

# %%
avg = AvgPool2d(2, stride=2)
print("forward\n", avg(x)[0, 0], "\nbackward\n", avg.backward(grad_out)[0, 0])

# %% [markdown]
# ## Overlapping pooling
#
# AlexNet pools 3x3 windows at stride 2 (§3.4): neighbouring windows share a row or column, so
# one input can be the maximum of two windows and then receives both their gradients.

# %%
x2 = np.random.default_rng(0).integers(0, 10, (1, 1, 5, 5)).astype(np.float64)
over = MaxPool2d(3, stride=2)
y2 = over(x2)
g2 = over.backward(np.ones_like(y2))
x2_t = torch.tensor(x2, requires_grad=True)
torch.nn.functional.max_pool2d(x2_t, 3, stride=2).sum().backward()
print("input\n", x2[0, 0], "\noutput\n", y2[0, 0], "\ngradient of the sum of outputs\n", g2[0, 0])
assert np.array_equal(g2, x2_t.grad.numpy())

# %% [markdown]
# ## Your turn
#
# **What happens to the gradient when a window holds two equal maxima?** Put two 8s in the
# top-right window (or change `kernel`, `stride`) and re-run: the NumPy layer and torch must
# still agree (the first maximum in row-major order takes the gradient).

# %%
mine = np.array([[1, 1, 8, 8], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float64)[None, None]
kernel, stride = 2, 2
layer = MaxPool2d(kernel, stride=stride)
out = layer(mine)
grad = layer.backward(np.ones_like(out))
t = torch.tensor(mine, requires_grad=True)
torch.nn.functional.max_pool2d(t, kernel, stride=stride).sum().backward()
print("output\n", out[0, 0], "\ngradient\n", grad[0, 0], "\nagrees with torch:",
      np.array_equal(grad, t.grad.numpy()))
