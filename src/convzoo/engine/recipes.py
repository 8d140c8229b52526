"""Training recipes: the hyper-parameters each paper reports, as named presets.

A :class:`Recipe` is a frozen set of :class:`TrainConfig` values with the paper section they come
from. ``convzoo train MODEL --recipe NAME`` starts from the recipe and lets every flag override
it; the effective config (with ``recipe`` set to the name) is written to the run directory.

    >>> cfg = recipe_config("resnet-cifar", model="resnet20", epochs=20)

Where a paper gives no value the recipe says what was chosen and why. Learning rates are per
optimizer step for the batch size given; ``batch_size`` is per process (torchvision's
convention), so under DDP the global batch is ``batch_size x processes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import ConvzooError
from .config import TrainConfig, check_values


@dataclass(frozen=True)
class Recipe:
    """A named set of TrainConfig values: ``settings`` maps field names to values, each checked
    against its field's type when the recipe is made (an unknown key or a wrong type is a
    :class:`ConvzooError` at import)."""

    name: str  # what --recipe takes
    source: str  # the paper and section, or the code, the values come from
    summary: str  # one line for `convzoo recipes`
    model: str  # the model the recipe was written for (any model can use it)
    data: str  # the data set it was written for
    settings: Mapping[str, Any]  # TrainConfig field -> value, about the optimisation only

    def __post_init__(self) -> None:
        fixed = set(self.settings) & {"model", "data", "recipe"}
        if fixed:
            raise ConvzooError(f"recipe {self.name!r}: set {sorted(fixed)} as Recipe arguments")
        checked = check_values(dict(self.settings), source=f"recipe {self.name!r}")
        object.__setattr__(self, "settings", MappingProxyType(checked))

    def values(self) -> dict[str, Any]:
        """The TrainConfig values this recipe sets (model, data and the recipe's name included)."""
        return {"model": self.model, "data": self.data, **self.settings, "recipe": self.name}


LENET5_MNIST = Recipe(
    name="lenet5-mnist",
    source="convzoo's own, tuned for time to 99.0% MNIST test accuracy (benchmarks/engine.py); "
    "LeCun et al. 1998 trained 20 epochs of stochastic diagonal Levenberg-Marquardt",
    summary="LeNet-5 on MNIST: SGD Nesterov, one-cycle lr 0.1, batch 128, 4 epochs",
    model="lenet5",
    data="mnist",
    settings=dict(
        epochs=4,  # enough for >= 99.0% on the full MNIST test set (docs/engine.md)
        batch_size=128,  # images per step
        optimizer="sgd",
        lr=0.1,  # peak of the one-cycle schedule
        momentum=0.9,
        nesterov=True,
        wd=5e-4,  # L2
        lr_scheduler="onecycle",
        onecycle_pct=0.25,  # first quarter rising, then cosine down
    ),
)

LENET5_MNIST_FAST = Recipe(
    name="lenet5-mnist-fast",
    source="convzoo's own, for seconds to 99.0% MNIST test accuracy from process start "
    "(benchmarks/mnist_time_to_99.py): lenet5-mnist in 2 epochs, with label smoothing, in "
    "channels-last",
    summary="LeNet-5 on MNIST in 2 epochs: lenet5-mnist's one-cycle SGD, label smoothing 0.1, NHWC",
    model="lenet5",
    data="mnist",
    # lenet5-mnist's one-cycle SGD (batch 128, Nesterov, peak lr 0.1, wd 5e-4), 2 epochs: they end
    # at 99.20% / 99.24% (seeds 0 / 1); without label smoothing 99.05% / 98.99%, at batch 256
    # (half the steps) 98.90% (docs/engine.md).
    settings=dict(
        LENET5_MNIST.settings,
        epochs=2,  # the one cycle ends (lr 0) at the end of epoch 2
        label_smoothing=0.1,  # Szegedy et al. 2016 §7; here it also speeds the first epoch
        # NHWC: torch's oneDNN convolutions and pooling skip a layout reorder each call; LeNet-5's
        # step at batch 128 runs ~1.5x faster on the 2-core CPU (benchmarks/memory_format.py),
        # and the run ends at the same 99.22% (docs/engine.md)
        channels_last=True,
    ),
)

ALEXNET_IMAGENET = Recipe(
    name="alexnet-imagenet",
    source="Krizhevsky et al. 2012, §5",
    summary="SGD lr 0.01 m 0.9 wd 5e-4, batch 128, /10 when held-out error stalls (3x), 90 ep",
    model="alexnet",
    data="imagenet",
    settings=dict(
        epochs=90,  # §5: "roughly 90 cycles through the training set"
        batch_size=128,  # §5: "batch size of 128 examples"
        optimizer="sgd",
        lr=0.01,  # §5: "initialized at 0.01"
        momentum=0.9,  # §5
        wd=5e-4,  # §5: "weight decay of 0.0005"
        # §5: "divide the learning rate by 10 when the validation error rate stopped improving
        # with the current learning rate"
        lr_scheduler="plateau",
        lr_gamma=0.1,
        plateau_patience=2,  # the paper gives no patience; 2 epochs is our choice
        plateau_max_drops=3,  # §5: "reduced three times prior to termination"
        holdout=0.01,  # validation error is watched on 1% of train (ILSVRC val is the test split)
    ),
)

VGG_IMAGENET = Recipe(
    name="vgg-imagenet",
    source="Simonyan & Zisserman 2015, §3.1",
    summary="SGD lr 0.01 m 0.9 wd 5e-4, batch 256, /10 on held-out plateau (3x), 74 epochs",
    model="vgg16",
    data="imagenet",
    settings=dict(
        epochs=74,  # §3.1: "stopped after 370K iterations (74 epochs)"
        batch_size=256,  # §3.1
        optimizer="sgd",
        lr=0.01,  # §3.1: "initially set to 10^-2"
        momentum=0.9,  # §3.1
        wd=5e-4,  # §3.1: "L2 penalty multiplier set to 5 x 10^-4"
        # §3.1: "decreased by a factor of 10 when the validation set accuracy stopped improving
        # ... decreased 3 times"
        lr_scheduler="plateau",
        lr_gamma=0.1,
        plateau_patience=2,  # not given in the paper; our choice
        plateau_max_drops=3,
        holdout=0.01,
    ),
)

GOOGLENET_IMAGENET = Recipe(
    name="googlenet-imagenet",
    source="Szegedy et al. 2014, §5-6 (momentum, lr decay, aux weight); lr, wd and batch are "
    "not given and follow the BVLC Caffe GoogLeNet solver, scaled to batch 256",
    summary="SGD m 0.9, lr 0.08 x0.96 every 8 epochs, aux losses x0.3, batch 256",
    model="googlenet",
    data="imagenet",
    settings=dict(
        epochs=250,  # not given; about where 4%-per-8-epochs has decayed lr by 1/3.5
        batch_size=256,  # not given (DistBelief); torchvision's reference batch
        optimizer="sgd",
        lr=0.08,  # not given; 0.01 per 32 images (common Caffe value) scaled to batch 256
        momentum=0.9,  # §6: "asynchronous stochastic gradient descent with 0.9 momentum"
        wd=2e-4,  # not given; the BVLC Caffe GoogLeNet solver's value
        lr_scheduler="step",  # §6: "fixed learning rate schedule (decreasing the learning rate by
        lr_step_epochs=8,  #         4% every 8 epochs)"
        lr_gamma=0.96,
        aux_loss_weight=0.3,  # §5: "the loss of the auxiliary classifiers was weighted by 0.3"
    ),
)

INCEPTION_V3_IMAGENET = Recipe(
    name="inception_v3-imagenet",
    source="Szegedy et al. 2015 (Rethinking the Inception Architecture), §7-8; aux weight 0.4 from "
    "PyTorch's fine-tuning tutorial (the paper gives none)",
    summary="RMSProp decay 0.9 eps 1.0, lr 0.045 x0.94 every 2 ep, smoothing 0.1, clip 2.0",
    model="inception_v3",
    data="imagenet",
    settings=dict(
        epochs=100,  # §8: results "after 100 epochs" are not stated exactly; our choice
        batch_size=32,  # §8: "batch size 32 for 100 epochs" (per replica, 50 replicas)
        optimizer="rmsprop",
        lr=0.045,  # §8: "learning rate of 0.045"
        momentum=0.0,  # §8 names RMSProp only; TF's RMSProp default momentum is 0
        rmsprop_alpha=0.9,  # §8: "RMSProp with decay of 0.9"
        opt_eps=1.0,  # §8: "ε = 1.0"
        wd=4e-5,  # not given; the TF-slim inception_v3 training script's value
        lr_scheduler="step",  # §8: "decayed every two epochs using an exponential rate of 0.94"
        lr_step_epochs=2,
        lr_gamma=0.94,
        label_smoothing=0.1,  # §7: "ε = 0.1"
        clip_grad_norm=2.0,  # §8: "gradient clipping with threshold 2.0"
        aux_loss_weight=0.4,  # PyTorch's fine-tuning tutorial; the paper gives none
    ),
)

RESNET_IMAGENET = Recipe(
    name="resnet-imagenet",
    source="torchvision's classification reference (references/classification/README.md, "
    "ResNet): the recipe of its V1 weights",
    summary="SGD lr 0.1 m 0.9 wd 1e-4, batch 32 x 8 GPUs = 256, /10 every 30 ep, 90 epochs",
    model="resnet50",
    data="imagenet",
    settings=dict(
        epochs=90,
        batch_size=256,  # global 256 (the reference runs 32 per GPU on 8 GPUs)
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        wd=1e-4,
        lr_scheduler="step",
        lr_step_epochs=30,
        lr_gamma=0.1,
    ),
)

RESNET_IMAGENET_PAPER = Recipe(
    name="resnet-imagenet-paper",
    source="He et al. 2016, §3.4",
    summary="SGD lr 0.1 m 0.9 wd 1e-4, batch 256, /10 on held-out plateau, 60x10^4 iterations",
    model="resnet50",
    data="imagenet",
    settings=dict(
        epochs=120,  # 600k iterations x 256 / 1.28M images = 120 epochs
        max_steps=600_000,  # §3.4: "trained for up to 60 x 10^4 iterations"
        batch_size=256,  # §3.4: "mini-batch size of 256"
        optimizer="sgd",
        lr=0.1,  # §3.4: "starts from 0.1"
        momentum=0.9,  # §3.4
        wd=1e-4,  # §3.4: "weight decay of 0.0001"
        lr_scheduler="plateau",  # §3.4: "divided by 10 when the error plateaus"
        lr_gamma=0.1,
        plateau_patience=3,  # not given; our choice
        holdout=0.01,
    ),
)

RESNET_CIFAR = Recipe(
    name="resnet-cifar",
    source="He et al. 2016, §4.2",
    summary="SGD lr 0.1 m 0.9 wd 1e-4, batch 128, /10 at 32k and 48k iterations, stop at 64k",
    model="resnet20",
    data="cifar10",
    settings=dict(
        epochs=164,  # 64k iterations / 391 steps per epoch (50k images, batch 128)
        max_steps=64_000,  # §4.2: "terminate training at 64k iterations"
        batch_size=128,  # §4.2: "mini-batch size of 128"
        optimizer="sgd",
        lr=0.1,  # §4.2: "start with a learning rate of 0.1"
        momentum=0.9,  # §4.2
        wd=1e-4,  # §4.2: "weight decay of 0.0001"
        lr_scheduler="multistep",  # §4.2: "divide it by 10 at 32k and 48k iterations"
        lr_milestones=(32_000, 48_000),
        lr_milestone_unit="step",
        lr_gamma=0.1,
        # The paper holds out 5k images for its validation runs only; the reported runs use all 50k.
        # 4-pixel pad + 32x32 crop + flip is the cifar10 data preset's augmentation.
    ),
)

DENSENET_CIFAR = Recipe(
    name="densenet-cifar",
    source="Huang et al. 2017, §4.2",
    summary="SGD Nesterov m 0.9 lr 0.1 wd 1e-4, batch 64, 300 epochs, /10 at 50% and 75%",
    model="densenet121",
    data="cifar10",
    settings=dict(
        epochs=300,  # §4.2: "300 epochs"
        batch_size=64,  # §4.2: "batch size 64"
        optimizer="sgd",
        lr=0.1,  # §4.2: "initial learning rate is set to 0.1"
        momentum=0.9,  # §4.2: "Nesterov momentum of 0.9 without dampening"
        nesterov=True,
        wd=1e-4,  # §4.2: "weight decay of 10^-4"
        lr_scheduler="multistep",  # §4.2: "divided by 10 at 50% and 75% of the total epochs"
        lr_milestones=(150, 225),
        lr_milestone_unit="epoch",
        lr_gamma=0.1,
    ),
)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        LENET5_MNIST,
        LENET5_MNIST_FAST,
        ALEXNET_IMAGENET,
        VGG_IMAGENET,
        GOOGLENET_IMAGENET,
        INCEPTION_V3_IMAGENET,
        RESNET_IMAGENET,
        RESNET_IMAGENET_PAPER,
        RESNET_CIFAR,
        DENSENET_CIFAR,
    )
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConvzooError(
            f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)} (see `convzoo recipes`)"
        ) from None


def recipe_values(name: str, **overrides: Any) -> dict[str, Any]:
    """The recipe's values with ``overrides`` on top (the model and data are overridable too)."""
    values = get_recipe(name).values()
    values.update(overrides)
    return values


def recipe_config(name: str, **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from recipe ``name`` with ``overrides`` on top."""
    return TrainConfig.from_dict(recipe_values(name, **overrides))
