# %% [markdown]
# # 6. ILSVRC and top-k error
#
# The ImageNet Large Scale Visual Recognition Challenge (2010-2017) scored a classifier on 1000
# classes by **top-5 error**: a test image counts as right when its true class is among the
# network's five highest-scoring guesses. Many images hold several objects, and some classes are
# hard to tell apart even for people (120 dog breeds), so one guess would punish sensible
# answers. Top-1 error is the strict version. AlexNet: 15.3% top-5 error (2012); ResNet: 3.57%
# (an ensemble, 2015).
#
# ## The worked example
#
# Four images, six classes. Each row holds a network's scores; the true class is marked.

# %%
from pathlib import Path

import torch

import convzoo
from convzoo.analysis.predict import predict

classes = ["cat", "dog", "fox", "car", "ship", "plane"]
scores = torch.tensor([
    [3.2, 5.1, 2.0, -1.0, 0.1, 0.3],   # a cat the network takes for a dog
    [0.2, 4.0, 3.9, -2.0, 0.0, 0.5],   # a dog: right
    [1.0, 0.9, 0.8, 0.2, 0.5, 2.0],    # a ship: 5th guess
    [4.0, 3.0, 2.0, 1.0, 0.5, -1.0],   # a plane: last of all six
])
labels = torch.tensor([0, 1, 4, 5])

ranks = (scores > scores[torch.arange(4), labels][:, None]).sum(1) + 1  # 1 = the best guess
for i, (row, y, r) in enumerate(zip(scores, labels, ranks, strict=True)):
    guesses = [classes[j] for j in row.argsort(descending=True)[:5]]
    print(f"image {i}: true {classes[y]:<5} rank {r}  top-5 guesses {guesses}")

# %% [markdown]
# By hand: top-1 right for image 1 only (1/4: top-1 error 75%); top-5 right for images 0, 1
# and 2 (3/4: top-5 error 25%). `convzoo.topk_accuracy` computes it for any k:

# %%
acc = convzoo.topk_accuracy(scores, labels, ks=(1, 2, 5))
for k, a in acc.items():
    print(f"top-{k} accuracy {a:.2f}, top-{k} error {1 - a:.2f}")
assert acc[1] == 0.25 and acc[5] == 0.75
print("top-5 error of the worked example: 25%, as by hand")

# %% [markdown]
# ## A pretrained network on a real photo
#
# The photo: Chelsea the cat from scikit-image's sample data, if scikit-image is installed
# (`pip install 'convzoo[explore]'`), else a test digit of the MNIST subset.

# %%
from PIL import Image

try:
    from skimage import data as skimage_data

    photo = Path("chelsea.png")
    Image.fromarray(skimage_data.chelsea()).save(photo)
except ImportError:
    from convzoo.data import load_dataset

    photo = Path("digit.png")
    Image.fromarray(load_dataset("mnist", split="test").images[0, 0].numpy()).save(photo)
print("photo:", photo)

# %% [markdown]
# AlexNet with torchvision's ImageNet weights (233 MB, fetched once into torch's hub cache).
# Where they cannot be fetched (no network), the cell says how to get them and goes on with the
# weights that ship inside convzoo: ResNet-20 trained on CIFAR-10 (whose 10 classes include "cat")
# for the photo, LeNet-5 trained on MNIST for a digit.

# %%
fallback = "resnet20:cifar10" if photo.name == "chelsea.png" else "lenet5:mnist"
try:
    result = predict("alexnet:imagenet", [photo])
    source = "alexnet:imagenet"
except convzoo.ConvzooError as e:
    print(f"no ImageNet weights here ({e}).\nTo get them, with network access, run once:\n"
          f"    convzoo weights fetch alexnet:imagenet\nand re-run this cell. Going on with "
          f"{fallback}, shipped with convzoo.")
    result = predict(fallback, [photo])
    source = fallback
result

# %%
top = result.predictions[0].top
print(f"{source}: top-1 {top[0][0]!r}; top-5 {[name for name, _ in top]}")

# %% [markdown]
# ## Your turn
#
# **Is the top-5 of a 10-class network as informative as the top-5 of a 1000-class one?** Change
# `k` and re-run: at k = 10 every CIFAR-10 or MNIST answer is "right". Or save a photo of your own
# next to this notebook and put its name in `photo`.

# %%
k = 3
result = predict(source, [photo], topk=k)
print([name for name, _ in result.predictions[0].top])
result
