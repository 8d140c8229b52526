# %% [markdown]
# # 10. DenseNet: the growth of the concatenation
#
# Huang et al. 2017 connect every layer of a *dense block* to every later one: layer l receives
# the concatenation of the block's input and all the feature maps made before it,
# `x_l = H_l([x_0, x_1, ..., x_{l-1}])` (Eq. 2), and adds only k new channels, the **growth
# rate**. So the width of a layer's input grows linearly through the block: `C_0 + (l-1) k`.
# Between blocks a *transition* (1x1 convolution, 2x2 average pooling) halves the channels
# ("compression", theta = 0.5) and the map size.
#
# DenseNet-BC with 100 layers for CIFAR-10: k = 12, three blocks of 16 layers, each layer a 1x1
# "bottleneck" to 4k channels and a 3x3 to k.

# %%
import matplotlib.pyplot as plt
import torch

import convzoo
from convzoo.models.densenet import DenseLayer, Transition


def input_channels(model, side=32):
    """The channels each dense layer and transition receives, in forward order."""
    seen = []

    def hook(module, inputs, output):
        x = inputs[0]  # a dense layer gets the list [x_0, ..., x_{l-1}]; a transition a tensor
        chans = sum(t.shape[1] for t in x) if isinstance(x, list) else x.shape[1]
        seen.append((type(module).__name__, chans, output.shape[1]))

    for m in model.modules():
        if isinstance(m, (DenseLayer, Transition)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, side, side))
    return seen


net = convzoo.create_model("densenet_bc100")
seen = input_channels(net)
layers = [(i, c) for i, (kind, c, _) in enumerate(seen) if kind == "DenseLayer"]
transitions = [(i, c, out) for i, (kind, c, out) in enumerate(seen) if kind == "Transition"]
plt.plot([i for i, _ in layers], [c for _, c in layers], ".", label="a dense layer's input")
for i, c, out in transitions:
    plt.annotate("", (i, out), (i, c), arrowprops={"arrowstyle": "->", "color": "red"})
plt.plot([], [], "r-", label="transition: channels halved")
plt.xlabel("layer (forward order)")
plt.ylabel("channels")
plt.title("densenet_bc100 (k = 12)")
plt.legend()
plt.show()

# %% [markdown]
# Within a block the input width rises by exactly k = 12 per layer, from the block's input:

# %%
k = 12
first_block = [c for _, c in layers[:16]]
print("block 1 inputs:", first_block)
assert all(b - a == k for a, b in zip(first_block, first_block[1:], strict=False))
for _, c, out in transitions:
    print(f"transition: {c} -> {out} channels")
print(f"growth rate k = {k}: each layer adds {k} channels, each output is just {k} channels wide")

# %% [markdown]
# ## What the concatenation buys
#
# Each layer is narrow (k = 12 output channels) and reuses everything before it, so DenseNet-BC
# is small for its depth: compared with the CIFAR ResNets,

# %%
for name in ("densenet_bc100", "resnet56", "resnet110"):
    info = convzoo.model_info(name)
    print(f"{name:<15} {info.num_params():>10,} parameters")

# %% [markdown]
# The price is memory: the concatenated inputs of every layer are kept for the backward pass
# (`memory_efficient=True` recomputes them instead, trading time for memory).
#
# ## Your turn
#
# **How does the width of the last layer's input depend on the growth rate?** Before running,
# compute it by hand for k = 24: the stem gives 2k channels, then 16 layers add k each, a
# transition halves, and so on. Change `k` (and `blocks`) and re-run.

# %%
from convzoo.models.densenet import DenseNet

k, blocks = 24, (16, 16, 16)
mine = DenseNet(growth_rate=k, block_config=blocks, num_init_features=2 * k, num_classes=10,
                in_chans=3, stem="cifar")
last = [c for kind, c, _ in input_channels(mine) if kind == "DenseLayer"][-1]
print(f"growth rate {k}: the last dense layer reads {last} channels; "
      f"{sum(p.numel() for p in mine.parameters()):,} parameters")
