# %% [markdown]
# # 7. VGG, GoogLeNet, Inception v3: depth, width and cost
#
# After AlexNet, ILSVRC-2014 was won by going deeper in two ways. **VGG** (Simonyan & Zisserman)
# stacks only 3x3 convolutions, 16-19 layers. **GoogLeNet** (Szegedy et al.) is 22 layers of
# *Inception modules*: parallel 1x1, 3x3, 5x5 and pooling branches whose outputs are
# concatenated, with 1x1 convolutions to cut the channels first. **Inception v3** (2015) factorises
# the larger kernels further. What each costs, side by side:

# %%
import torch
from torch import nn

import convzoo
from convzoo.analysis.summary import summarize

names = ["alexnet", "vgg16", "googlenet", "inception_v3", "resnet50"]
summaries = {name: summarize(name) for name in names}  # shapes only: nothing is computed
print(f"{'model':<14}{'input':>10}{'parameters':>14}{'multiply-adds':>16}{'receptive field':>17}")
for name, s in summaries.items():
    side = "x".join(map(str, s.input_shape[2:]))
    print(f"{name:<14}{side:>10}{s.params / 1e6:>12.1f} M{s.macs / 1e9:>14.2f} G"
          f"{s.rf[0]:>14} px")

# %% [markdown]
# VGG-16 has 2.3x AlexNet's parameters and 21x its multiply-adds; GoogLeNet is deeper than
# VGG-16 with a twentieth of its parameters. (Receptive fields are theoretical and larger than
# the input; `docs/zoo_comparison.md` adds speed and published accuracy.)
#
# ## VGG: why 3x3
#
# Two stacked 3x3 convolutions see a 5x5 window, three see 7x7, with fewer weights than one large
# kernel (27C^2 against 49C^2 for three 3x3 against one 7x7, C channels in and out) and a
# non-linearity between each.

# %%
C = 64
three_3x3 = nn.Sequential(*[nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU())
                            for _ in range(3)])
one_7x7 = nn.Conv2d(C, C, 7, padding=3)
for label, net in (("three 3x3", three_3x3), ("one 7x7", one_7x7)):
    s = summarize(net, (C, 32, 32))
    print(f"{label}: receptive field {s.rf[0]}x{s.rf[1]}, {s.params:,} parameters")

# %% [markdown]
# ## GoogLeNet: one Inception module
#
# Module 3a takes 192 channels of 28x28 and runs four branches side by side; each keeps the
# 28x28 size, so their outputs can be concatenated along the channels.

# %%
googlenet = convzoo.create_model("googlenet").eval()
module = googlenet.inception3a
shapes = {}
for name in ("branch1", "branch2", "branch3", "branch4"):
    getattr(module, name).register_forward_hook(
        lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
with torch.no_grad():
    out = module(torch.randn(1, 192, 28, 28))
for name, branch in (("branch1", "1x1"), ("branch2", "1x1 -> 3x3"),
                     ("branch3", "1x1 -> 3x3 (paper: 5x5)"), ("branch4", "3x3 max-pool -> 1x1")):
    params = sum(p.numel() for p in getattr(module, name).parameters())
    print(f"{branch:<26} {shapes[name]}  {params:>7,} parameters")
print(f"{'concatenated':<26} {tuple(out.shape)}")
assert out.shape[1] == sum(s[1] for s in shapes.values())

# %% [markdown]
# The 1x1 "reductions" are what keep this cheap: a 5x5 convolution straight from 192 to 32
# channels needs 153,600 weights, through a 1x1 to 16 channels first 3,072 + 12,800.

# %%
direct = 192 * 32 * 5 * 5
reduced = 192 * 16 + 16 * 32 * 5 * 5
print(f"Inception module 5x5 branch: direct {direct:,} weights, with the 1x1 reduction "
      f"{reduced:,} ({direct / reduced:.1f}x fewer)")

# %% [markdown]
# ## Inception v3: factorised kernels
#
# §3 of Szegedy et al. 2015: a 5x5 becomes two 3x3 (as VGG), and an n x n becomes a 1 x n followed
# by an n x 1. The 17x17 modules of Inception v3 use 1x7 and 7x1 pairs:

# %%
with torch.device("meta"):  # the layers' shapes only: no memory, no initialisation
    inception_v3 = convzoo.create_model("inception_v3")
kernels = sorted({tuple(m.kernel_size) for m in inception_v3.Mixed_6b.modules()
                  if isinstance(m, nn.Conv2d)})
print("kernel shapes in Mixed_6b (a 17x17 module):", kernels)
c = 192
print(f"7x7: {49 * c * c:,} weights; 1x7 + 7x1: {14 * c * c:,} for {c} channels in and out")

# %% [markdown]
# ## Your turn
#
# **Which does more work per parameter, VGG or ResNet, and why?** (Hint: where are VGG's
# parameters?) Put other models in the list (any of `convzoo.list_models()`, e.g.
# `densenet121`, `googlenet`, `alexnet_paper`) and re-run.

# %%
mine = {name: summarize(name) for name in ["vgg11", "vgg19", "resnet18"]}
for name, s in mine.items():
    print(f"{name:<10} {s.params / 1e6:6.1f} M parameters  {s.macs / 1e9:6.2f} G multiply-adds  "
          f"{s.macs / s.params:6.0f} multiply-adds per parameter")
