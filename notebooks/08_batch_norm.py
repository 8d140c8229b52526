# %% [markdown]
# # 8. Batch normalization
#
# Ioffe & Szegedy 2015, Algorithm 1. For each channel, over a mini-batch B of m values (for a
# convolution: every image and every position of that channel):
#
# 1. `mu_B = mean(x)`, `sigma2_B = mean((x - mu_B)^2)`
# 2. `x_hat = (x - mu_B) / sqrt(sigma2_B + eps)`
# 3. `y = gamma * x_hat + beta` (gamma and beta are learned, one per channel)
#
# In training the batch's own statistics are used, and running averages of them are kept; at
# test time those running averages replace the batch's (§3.1), so the output of an image no
# longer depends on the others in its batch.

# %%
import numpy as np
import torch

from convzoo.scratch import BatchNorm2d

rng = np.random.default_rng(0)
x = rng.normal(3.0, 2.0, size=(8, 4, 5, 5))  # (N, C, H, W), far from mean 0 / std 1
gamma, beta, eps = rng.uniform(0.5, 1.5, 4), rng.normal(0, 0.1, 4), 1e-5

# %% [markdown]
# ## The slide's algorithm, written out in NumPy, against `nn.BatchNorm2d`

# %%
mu = x.mean(axis=(0, 2, 3), keepdims=True)
var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)  # biased, as Algorithm 1
x_hat = (x - mu) / np.sqrt(var + eps)
y = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]

ref = torch.nn.BatchNorm2d(4, eps=eps, dtype=torch.float64).train()
with torch.no_grad():
    ref.weight.copy_(torch.from_numpy(gamma))
    ref.bias.copy_(torch.from_numpy(beta))
x_t = torch.from_numpy(x).requires_grad_()
y_t = ref(x_t)
print("per channel, after normalising: mean", x_hat.mean(axis=(0, 2, 3)).round(6),
      " std", x_hat.std(axis=(0, 2, 3)).round(4))
print("max |NumPy - torch| =", f"{np.abs(y - y_t.detach().numpy()).max():.1e}")
assert np.allclose(y, y_t.detach().numpy(), atol=1e-12)

# %% [markdown]
# ## The same in `convzoo.scratch`, forward and backward
#
# The backward pass has to account for `mu_B` and `sigma2_B` depending on every value of the
# batch; the NumPy layer's gradients agree with torch's autograd.

# %%
bn = BatchNorm2d(4, eps=eps, dtype=np.float64)
bn.params["weight"], bn.params["bias"] = gamma.copy(), beta.copy()
y_mine = bn(x)
grad_out = rng.standard_normal(y.shape)
dx = bn.backward(grad_out)
y_t.backward(torch.from_numpy(grad_out))
print("forward  max |scratch - torch| =", f"{np.abs(y_mine - y_t.detach().numpy()).max():.1e}")
print("dL/dx    max |scratch - torch| =", f"{np.abs(dx - x_t.grad.numpy()).max():.1e}")
print("dL/dgamma max |scratch - torch| =",
      f"{np.abs(bn.grads['weight'] - ref.weight.grad.numpy()).max():.1e}")
assert np.allclose(dx, x_t.grad.numpy(), atol=1e-10)

# %% [markdown]
# ## Train mode and eval mode
#
# Each training batch moves the running estimates by `momentum` (0.1): `running = 0.9 running +
# 0.1 batch statistic`, the variance unbiased (m/(m-1)). After 50 batches they approach the data's
# mean 3 and variance 4.

# %%
for _ in range(50):
    batch = rng.normal(3.0, 2.0, size=(8, 4, 5, 5))
    bn(batch)
    ref(torch.from_numpy(batch))
print("running mean", bn.buffers["running_mean"].round(3))
print("running var ", bn.buffers["running_var"].round(3))
assert np.allclose(bn.buffers["running_mean"], ref.running_mean.numpy())
assert np.allclose(bn.buffers["running_var"], ref.running_var.numpy())
print("running statistics: the NumPy layer and torch agree")

# %% [markdown]
# In eval mode the same image gives the same output whatever batch it comes in; in train mode it
# does not:

# %%
image = x[:1]
others_a, others_b = rng.normal(3, 2, (7, 4, 5, 5)), rng.normal(0, 1, (7, 4, 5, 5))
bn.train()
a = bn(np.concatenate([image, others_a]))[0]
b = bn(np.concatenate([image, others_b]))[0]
print("train mode: same image, two batches, max difference", f"{np.abs(a - b).max():.3f}")
bn.eval()
a = bn(np.concatenate([image, others_a]))[0]
b = bn(np.concatenate([image, others_b]))[0]
print("eval mode:  same image, two batches, max difference", f"{np.abs(a - b).max():.3f}")
assert np.array_equal(a, b)

# %% [markdown]
# ## Your turn
#
# **What happens to the running estimates with batches of 2 images, or with `momentum=0.5`?**
# Change `batch_size` and `momentum` and re-run: how far from the true mean 3 and variance 4 do
# the estimates end, and how much do they jump from batch to batch?

# %%
batch_size, momentum = 2, 0.1
layer = BatchNorm2d(4, momentum=momentum, dtype=np.float64)
means = []
for _ in range(50):
    layer(rng.normal(3.0, 2.0, size=(batch_size, 4, 5, 5)))
    means.append(layer.buffers["running_mean"][0])
print(f"running mean of channel 0 over the last 10 batches: {np.round(means[-10:], 3)}")
print(f"final running var: {layer.buffers['running_var'].round(3)}")
