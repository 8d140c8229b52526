# %% [markdown]
# # 5. AlexNet: ReLU, dropout, SGD with momentum and weight decay
#
# Krizhevsky, Sutskever & Hinton 2012 won ILSVRC-2012 with five convolution layers and three
# fully connected ones, 61 million parameters, trained on two GPUs. Besides its size, three of its
# ingredients became standard: **ReLU** non-linearities (§3.1), **dropout** in the fully connected
# layers (§4.2), and **SGD with momentum 0.9 and weight decay 5e-4** (§5).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import convzoo
from convzoo.analysis.summary import summarize
from convzoo.engine import Reporter
from convzoo.scratch import SGD, Dropout, Linear

# %% [markdown]
# The layers (torchvision's single-GPU form; `alexnet_paper` has the paper's two-GPU groups):

# %%
summarize("alexnet")

# %% [markdown]
# ## ReLU vs tanh
#
# The paper's Fig. 1: a four-layer CNN with ReLUs reaches 25% training error on CIFAR-10 six
# times sooner than with tanh. A small version here: LeNet-5 on the MNIST subset, 150 steps of
# the same SGD, once with each non-linearity. A `Reporter` receives every optimizer step.

# %%
class StepErrors(Reporter):
    """Keeps the training error of every step's mini-batch."""

    def __init__(self):
        self.errors = []

    def step(self, info):
        self.errors.append(info.error)


curves = {}
for activation in ("relu", "tanh"):
    rec = StepErrors()
    convzoo.fit(convzoo.TrainConfig(model="lenet5", epochs=1, max_steps=150, lr=0.02, seed=0,
                                    lr_scheduler="constant",
                                    model_args={"activation": activation},
                                    out=f"runs/alexnet-nb-{activation}", overwrite=True), rec)
    curves[activation] = np.convolve(rec.errors, np.ones(10) / 10, mode="valid")  # smoothed

for activation, err in curves.items():
    plt.plot(100 * err, label=activation)
plt.xlabel("optimizer step")
plt.ylabel("training error (%), 10-step mean")
plt.legend()
plt.show()
for activation, err in curves.items():
    below = np.nonzero(err < 0.25)[0]
    print(f"{activation}: first below 25% training error at step",
          below[0] + 10 if len(below) else "(not within 150 steps)")

# %% [markdown]
# On LeNet-5 and MNIST the two are close (compare the steps printed above): a network this
# shallow, on data this easy, is not where tanh's saturation hurts. The paper's claim, tested
# with its own four-layer network on CIFAR-10, and its verdict: `docs/experiments/relu-vs-tanh.md`
# (`convzoo experiment relu-vs-tanh`).
#
# ## Dropout: train mode and eval mode
#
# In training, each unit is zeroed with probability p and the survivors are scaled by 1/(1-p)
# ("inverted" dropout), so that at test time the layer can simply pass everything through.

# %%
x = np.ones((1, 12), dtype=np.float32)
drop = Dropout(0.5, rng=np.random.default_rng(0))
print("train mode:", drop(x))
drop.eval()
print("eval mode: ", drop(x))
assert np.array_equal(drop(x), x)
torch_drop = torch.nn.Dropout(0.5).eval()
assert torch.equal(torch_drop(torch.from_numpy(x)), torch.from_numpy(x))
print("eval mode: the identity, in convzoo.scratch and in torch")

# %% [markdown]
# ## SGD with momentum and weight decay
#
# The update of §5, as torch.optim.SGD writes it: `g = grad + wd * w`, `v = momentum * v + g`,
# `w = w - lr * v`. The NumPy `convzoo.scratch.SGD` and torch's, five steps on the same layer and
# data, in float64:

# %%
rng = np.random.default_rng(0)
data = rng.standard_normal((16, 4))
mine = Linear(4, 3, dtype=np.float64, rng=rng)
ref = torch.nn.Linear(4, 3, dtype=torch.float64)
with torch.no_grad():
    ref.weight.copy_(torch.from_numpy(mine.params["weight"]))
    ref.bias.copy_(torch.from_numpy(mine.params["bias"]))
opt_mine = SGD(mine.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
for step in range(5):
    out = mine(data)
    mine.backward(2 * out / out.size)  # d mean(out^2) / d out
    opt_mine.step()
    opt_mine.zero_grad()
    opt_ref.zero_grad()
    (ref(torch.from_numpy(data)) ** 2).mean().backward()
    opt_ref.step()
    loss = float((mine(data) ** 2).mean())
    print(f"step {step + 1}: loss {loss:.6f}")
diff = np.abs(mine.params["weight"] - ref.weight.detach().numpy()).max()
print("max |scratch - torch| weight after 5 steps:", f"{diff:.1e}")
assert diff < 1e-12

# %% [markdown]
# ## Your turn
#
# **What does dropout do to the expected value of a unit in training, and why does eval mode not
# need to rescale?** Change `p` and the number of draws, and re-run: the mean of the train-mode
# output stays near 1 for any p < 1.

# %%
p, draws = 0.5, 10_000
drop = Dropout(p, rng=np.random.default_rng(1))
out = drop(np.ones((draws,), dtype=np.float64))
print(f"p = {p}: {np.mean(out == 0):.3f} of the units zeroed, mean output {out.mean():.3f}")
