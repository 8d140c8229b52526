"""VGG: very deep networks of 3x3 convolutions (configurations A, B, D, E), and CIFAR forms.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, arXiv:1409.1556.

``vgg11`` ... ``vgg19`` (Table 1's configurations A, B, D and E) and ``vgg11_bn`` ... ``vgg19_bn``
are state-dict compatible with torchvision 0.29's models of the same names: stacks of 3x3/1
convolutions with padding 1 and ReLU, 2x2/2 max-pooling after each stage (§2.1), then fc 4096 ->
4096 -> classes with dropout 0.5 after the two hidden layers (§3.1). What differs from the paper,
as in torchvision: an adaptive 7x7 average pool before the classifier (the identity at 224x224)
so that inputs from 32x32 up work; the ``_bn`` variants add batch normalization (Ioffe & Szegedy
2015) after every convolution, which the paper predates; the paper's dense evaluation (fc layers
turned into convolutions, §3.2) is left to the user. Initialisation: torchvision's, since the
paper's (N(0, 0.01) and pre-training the deeper nets from configuration A, §3.1) needs a staged
schedule: Kaiming-normal (fan-out, ReLU gain) convolutions, N(0, 0.01) linear layers, zero biases.

``vgg11_cifar`` ... ``vgg19_cifar`` -- the form commonly used on CIFAR-10 (e.g. kuangliu's
pytorch-cifar): the same convolution stacks *with* batch normalization (it trains the 16- and
19-layer nets from scratch without the paper's staged initialisation), the five 2x2 poolings in
ceil mode so that 28x28 inputs (28 -> 14 -> 7 -> 4 -> 2 -> 1) work like 32x32 ones, a global
average pool and a single linear classifier 512 -> classes instead of the 4096-wide fc layers,
which would hold 90% of the parameters and over-fit 50,000 images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._common import ZooModel
from ._registry import register_model

PAPER = "Simonyan & Zisserman 2014"

# Table 1 of the paper: output channels of each 3x3 convolution, "M" for a 2x2/2 max-pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # A
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),  # B
    "vgg16": (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ),  # D
    "vgg19": (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ),  # E
}



def make_features(
    config: tuple[int | str, ...], *, in_chans: int, batch_norm: bool, ceil_mode: bool = False
) -> nn.Sequential:
    """The convolution stages of one configuration: [conv3x3 (-> BN) -> ReLU]* then a 2x2 pool.

    Modules sit in one flat ``nn.Sequential`` (``features.0``, ``features.1``, ...), the layout of
    torchvision's state dicts.
    """
    layers: list[nn.Module] = []
    channels = in_chans
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=ceil_mode))  # H/2, W/2
            continue
        out = int(item)
        layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))  # (B, out, H, W)
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        channels = out
    return nn.Sequential(*layers)


def _init_weights(model: nn.Module) -> None:
    # torchvision's VGG initialisation: Kaiming-normal (He et al. 2015, fan-out, ReLU gain) for
    # convolutions, N(0, 0.01) for linear layers (the paper's §3.1 std), zero biases, BN at 1/0.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
            nn.init.zeros_(m.bias)


class VGG(ZooModel):
    """``features`` (the configuration's stacks), a 7x7 average pool, the three-layer classifier."""

    # Only fc8 depends on num_classes: reset_head re-initialises just it.
    head_prefixes = ("classifier.6.",)

    def __init__(
        self,
        config: tuple[int | str, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        self.features = make_features(config, in_chans=in_chans, batch_norm=batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # the identity at 224x224 (7x7 maps)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),  # fc6 (B, 4096)
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),  # fc7 (B, 4096)
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),  # fc8 (B, num_classes)
        )
        if init_weights:
            _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.avgpool(self.features(x))  # (B, 512, 7, 7)
        return self.classifier(torch.flatten(x, 1))


class VGGCifar(ZooModel):
    """The CIFAR form: the same stacks, ceil-mode pools, global average pool, one linear layer."""

    def __init__(
        self,
        config: tuple[int | str, ...],
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.features = make_features(
            config, in_chans=in_chans, batch_norm=batch_norm, ceil_mode=True
        )  # (B, 512, 1, 1) from 32x32 or 28x28
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # larger inputs also end at 1x1
        self.classifier = nn.Linear(512, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.avgpool(self.features(x))  # (B, 512, 1, 1)
        return self.classifier(torch.flatten(x, 1))  # (B, num_classes)


def _vgg(
    name: str,
    *,
    batch_norm: bool,
    num_classes: int,
    in_chans: int,
    dropout: float,
    init_weights: bool,
) -> VGG:
    return VGG(
        VGG_CONFIGS[name],
        num_classes=num_classes,
        in_chans=in_chans,
        batch_norm=batch_norm,
        dropout=dropout,
        init_weights=init_weights,
    )


def _imagenet(tv_name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    return register_model(
        family="vgg",
        paper=PAPER,
        input_size=(3, 224, 224),
        min_size=32,  # five 2x2/2 poolings: 32 -> 16 -> 8 -> 4 -> 2 -> 1
        torchvision_name=tv_name,
    )


def _small() -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    return register_model(
        family="vgg",
        paper=PAPER,
        input_size=(3, 32, 32),
        # Five ceil-mode poolings, each halving a map of at least 2: 17 -> 9 -> 5 -> 3 -> 2 -> 1
        min_size=17,
        form="small",
        default_num_classes=10,
    )


@_imagenet("vgg11")
def vgg11(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-11, configuration A (132,863,336 parameters with 1000 classes)."""
    return _vgg(
        "vgg11",
        batch_norm=False,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg13")
def vgg13(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-13, configuration B (133,047,848 parameters with 1000 classes)."""
    return _vgg(
        "vgg13",
        batch_norm=False,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg16")
def vgg16(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-16, configuration D (138,357,544 parameters with 1000 classes)."""
    return _vgg(
        "vgg16",
        batch_norm=False,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg19")
def vgg19(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-19, configuration E (143,667,240 parameters with 1000 classes)."""
    return _vgg(
        "vgg19",
        batch_norm=False,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg11_bn")
def vgg11_bn(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-11 with batch normalization (132,868,840 parameters with 1000 classes)."""
    return _vgg(
        "vgg11",
        batch_norm=True,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg13_bn")
def vgg13_bn(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-13 with batch normalization (133,053,736 parameters with 1000 classes)."""
    return _vgg(
        "vgg13",
        batch_norm=True,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg16_bn")
def vgg16_bn(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-16 with batch normalization (138,365,992 parameters with 1000 classes)."""
    return _vgg(
        "vgg16",
        batch_norm=True,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


@_imagenet("vgg19_bn")
def vgg19_bn(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, init_weights: bool = True
) -> VGG:
    """VGG-19 with batch normalization (143,678,248 parameters with 1000 classes)."""
    return _vgg(
        "vgg19",
        batch_norm=True,
        num_classes=num_classes,
        in_chans=in_chans,
        dropout=dropout,
        init_weights=init_weights,
    )


def _cifar(name: str, *, num_classes: int, in_chans: int, batch_norm: bool) -> VGGCifar:
    return VGGCifar(
        VGG_CONFIGS[name],
        num_classes=num_classes,
        in_chans=in_chans,
        batch_norm=batch_norm,
    )


@_small()
def vgg11_cifar(*, num_classes: int = 10, in_chans: int = 3, batch_norm: bool = True) -> VGGCifar:
    """VGG-11 for 28x28 / 32x32 images (9,231,114 parameters with 10 classes and BN).
    0.15 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).

    Changed from ``vgg11``: batch norm on by default, ceil-mode pools, global average pool and
    one linear classifier instead of fc 4096-4096 (see the module docstring).
    """
    return _cifar("vgg11", num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm)


@_small()
def vgg13_cifar(*, num_classes: int = 10, in_chans: int = 3, batch_norm: bool = True) -> VGGCifar:
    """VGG-13 for 28x28 / 32x32 images (9,416,010 parameters with 10 classes and BN).
    0.23 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).

    Changed from ``vgg13``: batch norm on by default, ceil-mode pools, global average pool and
    one linear classifier instead of fc 4096-4096 (see the module docstring).
    """
    return _cifar("vgg13", num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm)


@_small()
def vgg16_cifar(*, num_classes: int = 10, in_chans: int = 3, batch_norm: bool = True) -> VGGCifar:
    """VGG-16 for 28x28 / 32x32 images (14,728,266 parameters with 10 classes and BN).
    0.31 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).

    Changed from ``vgg16``: batch norm on by default, ceil-mode pools, global average pool and
    one linear classifier instead of fc 4096-4096 (see the module docstring).
    """
    return _cifar("vgg16", num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm)


@_small()
def vgg19_cifar(*, num_classes: int = 10, in_chans: int = 3, batch_norm: bool = True) -> VGGCifar:
    """VGG-19 for 28x28 / 32x32 images (20,040,522 parameters with 10 classes and BN).
    0.40 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).

    Changed from ``vgg19``: batch norm on by default, ceil-mode pools, global average pool and
    one linear classifier instead of fc 4096-4096 (see the module docstring).
    """
    return _cifar("vgg19", num_classes=num_classes, in_chans=in_chans, batch_norm=batch_norm)
