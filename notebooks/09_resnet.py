# %% [markdown]
# # 9. ResNet: plain vs residual at depth, and the shortcut
#
# He et al. 2016 observed **degradation**: a deeper plain network (convolutions stacked, batch
# norm and all) reaches a *higher training error* than a shallower one. It is not overfitting:
# the training error itself is worse. Yet the deeper net could copy the shallow one and make its
# extra layers the identity, so the optimiser fails to find that solution. A residual block
# makes it easy: it learns `F(x)` and outputs `relu(F(x) + x)`; with `F = 0` the block passes
# `x` through.
#
# ## The degradation experiment
#
# `convzoo experiment degradation` trains plain and residual networks of 20 and 56 layers on
# CIFAR-10 (the paper's Fig. 6). Its curves and verdict, from the repository's
# [docs/experiments/degradation.md](../docs/experiments/degradation.md):
#
# ![plain-20/56 vs ResNet-20/56 training error](../docs/experiments/degradation.png)
#
# Training those takes a quarter of an hour on a laptop CPU; below are the pieces that run here.

# %%
import matplotlib.pyplot as plt
import torch

import convzoo

_ = torch.manual_seed(0)

# %% [markdown]
# ## One residual block
#
# The first block of ResNet-20: two 3x3 convolutions with batch norm, and the shortcut.

# %%
resnet20 = convzoo.create_model("resnet20").eval()
block = resnet20.layer1[0]
print(block)

# %% [markdown]
# If the block's last batch norm scales `F(x)` to zero (its gamma = 0: torchvision's
# `zero_init_residual` starts every block so), the block is the identity on its input, which
# comes out of a ReLU and so is never negative:

# %%
x = torch.relu(torch.randn(2, 16, 32, 32))  # what the block receives: a ReLU's output
with torch.no_grad():
    block.bn2.weight.zero_()
    block.bn2.bias.zero_()
    y = block(x.clone())
print("block(x) == x:", torch.equal(y, x))
assert torch.equal(y, x)
block.residual = False  # the same block without its shortcut ("plain")
with torch.no_grad():
    print("without the shortcut, the block outputs", float(block(x.clone()).abs().max()),
          "everywhere: it has to learn the identity, not get it for free")
print("the shortcut makes the identity the block's easiest function")

# %% [markdown]
# ## Plain vs residual at initialisation
#
# How does the signal behave through depth? For a batch of random 32x32 images, the gradient of
# the loss with respect to each convolution's weights, from the last layer (right) to the first
# (left), in a freshly initialised network of 56 layers, with and without shortcuts.

# %%
def gradient_norms(depth, residual):
    torch.manual_seed(0)
    net = convzoo.create_model(f"resnet{depth}", residual=residual).train()
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    return [float(m.weight.grad.norm()) for m in net.modules()
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]


depth = 56
norms = {"plain": gradient_norms(depth, False), "residual": gradient_norms(depth, True)}
for label, g in norms.items():
    plt.semilogy(range(1, len(g) + 1), g, "o-", markersize=3, label=label)
plt.xlabel("3x3 convolution (1 = first)")
plt.ylabel("gradient norm of its weights")
plt.title(f"{depth} layers at initialisation, one batch")
plt.legend()
plt.show()
for label, g in norms.items():
    print(f"{label:>8}: first layer {g[0]:.3g}, last {g[-1]:.3g}, ratio {g[0] / g[-1]:.3g}")

# %% [markdown]
# Through the shortcuts every block passes the gradient of its output on unchanged (the sum
# `F(x) + x`), plus what `F` adds; without them the gradient has to cross every layer on the
# way, and its size compounds over all of them. The plain net's gradients do not vanish here (the
# paper's §4.1 says batch norm sees to that): they *grow* towards the first layers, by the ratio
# printed above, so no single learning rate suits every layer. The residual net keeps them
# within a far smaller factor.
#
# ## Your turn
#
# **Does the difference between plain and residual grow with depth?** Set `depth` to 20, 32, 44,
# 56 or 110 (the paper's CIFAR nets) and re-run. How does the first layer's gradient change?

# %%
depth = 20
mine = {"plain": gradient_norms(depth, False), "residual": gradient_norms(depth, True)}
for label, g in mine.items():
    print(f"{depth} layers, {label:>8}: first-layer gradient {g[0]:.3g}, last {g[-1]:.3g}")
