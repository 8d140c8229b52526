# %% [markdown]
# # 2. LeNet-5: the slide's network, trained on MNIST here
#
# LeCun et al. 1998: two convolution + subsampling stages, then three fully connected layers.
#
# `input 1x32x32 -> conv 5x5, 6 -> pool 2 -> conv 5x5, 16 -> pool 2 -> fc 120 -> fc 84 -> fc 10`
#
# convzoo's `lenet5` takes 28x28 MNIST digits and pads them to 32x32 inside, so its first
# convolution sees what the paper's did. This notebook trains it for two epochs on the MNIST
# subset that ships with convzoo (10,000 training and 2,000 test digits: no download).

# %%
import matplotlib.pyplot as plt
import torch

import convzoo
from convzoo.analysis.summary import summarize
from convzoo.engine.progress import TqdmReporter

# %% [markdown]
# ## The network, layer by layer
#
# Output shape, parameters, multiply-adds (MACs) and receptive field (RF, in input pixels) of
# every layer, counted by PyTorch while the network runs once.

# %%
summarize("lenet5")

# %% [markdown]
# ## Training
#
# Two epochs of SGD with momentum (the defaults: lr 0.05 on a cosine schedule, batch 64, weight
# decay 5e-4). The bar shows the running loss and accuracy; the result shows the test accuracy
# and the curves of loss and error per epoch. The run is written to `runs/lenet5-notebook`.

# %%
config = convzoo.TrainConfig(model="lenet5", data="mnist", epochs=2, seed=0,
                             out="runs/lenet5-notebook", overwrite=True)
result = convzoo.fit(config, TqdmReporter())
result

# %%
assert result.final["top1_acc"] > 0.9, result.final  # two epochs: about 97% on an idle laptop

# %% [markdown]
# ## Evaluation: top-1 ... top-5 on the test digits, and per class

# %%
convzoo.evaluate(result.run_dir)

# %% [markdown]
# ## A few predictions
#
# The first 12 test digits, with the network's answer and its probability. The preprocessing is
# the run's own (`resolve_data_config` + `create_transform`, as `convzoo predict` does).

# %%
from convzoo.data import load_dataset

test = load_dataset("mnist", split="test")
transform = convzoo.create_transform(convzoo.resolve_data_config(str(result.run_dir)))
images = test.images[:12]  # uint8 (12, 1, 28, 28)
model = result.model.eval()
with torch.no_grad():
    probs = model(torch.stack([transform(img) for img in images])).softmax(1)
conf, pred = probs.max(1)

fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))
for ax, img, p, c, y in zip(axes.flat, images, pred, conf, test.labels[:12], strict=True):
    ax.imshow(img[0], cmap="gray")
    ax.set_title(f"{test.classes[p]} ({c:.2f})", color="green" if p == y else "red")
    ax.axis("off")
plt.show()
print("right:", int((pred == test.labels[:12]).sum()), "of 12")

# %% [markdown]
# ## Your turn
#
# The 1998 network used `tanh` and average pooling ("subsampling"); ReLU and max-pooling came
# later. **Which do you expect to learn faster?** The cell trains one epoch of the 1998 form:
# compare its test accuracy with epoch 1 of the run above. Then set `activation` and `pool`
# (`"relu"`/`"tanh"`, `"max"`/`"avg"`), or `lr`, and re-run. The full comparison, with the
# paper's set-up: `docs/experiments/lenet-1998-vs-modern.md`.

# %%
activation, pool, lr = "tanh", "avg", 0.05
mine = convzoo.fit(convzoo.TrainConfig(
    model="lenet5", epochs=1, seed=0, lr=lr, model_args={"activation": activation, "pool": pool},
    out=f"runs/lenet5-{activation}-{pool}", overwrite=True), TqdmReporter())
mine
