"""DenseNet: densely connected convolutional networks (Huang, Liu, van der Maaten, Weinberger 2017).

Huang et al., "Densely Connected Convolutional Networks", CVPR 2017, arXiv:1608.06993.
Inside a dense block, layer ``l`` sees the concatenation of the block input and every earlier
layer's output, ``x_l = H_l([x_0, x_1, ..., x_{l-1}])`` (§3, Eq. 2), and adds ``k`` new channels
(the growth rate). All models here are DenseNet-BC (§3): each ``H_l`` is BN-ReLU-Conv1x1(4k)-
BN-ReLU-Conv3x3(k) (the "B" bottleneck) and each transition halves the channels, theta = 0.5
(the "C" compression), then 2x2 average-pools.

ImageNet forms (``densenet121/161/169/201``, Table 1) are key-for-key and shape-for-shape
state-dict compatible with torchvision 0.29: a 7x7/2 conv with 2k filters and a 3x3/2 max-pool,
four dense blocks, three transitions, then BN-ReLU, global average pool and fc. DenseNet-161 uses
k=48 and a 96-filter stem (as torchvision and the authors' released model). A final BN (``norm5``)
before the pool is implied by the pre-activation order of the paper and present in the released
weights. ``memory_efficient=True`` recomputes each layer's concatenation + BN-ReLU-Conv1x1 in the
backward pass instead of storing it (torch.utils.checkpoint; Pleiss et al. 2017,
arXiv:1707.06990): the stored activations grow linearly instead of quadratically with depth, at
the cost of about one more forward of those layers. It changes no key, shape or output.

Small forms, for 28x28 and 32x32 images (``in_chans=1`` gives MNIST):

- ``densenet_bc100``: the paper's CIFAR DenseNet-BC with L=100, k=12 (§3 "Implementation
  Details", Table 2, 0.8M parameters): a 3x3 conv with 2k = 24 filters on the 32x32 image, three
  dense blocks of (100 - 4) / 6 = 16 layers on 32x32, 16x16 and 8x8 maps, two transitions, then
  BN-ReLU, global average pool, fc.
- ``densenet121_cifar``: DenseNet-121's blocks (6, 12, 24, 16) and k=32, with the 7x7/2 conv and
  3x3/2 max-pool stem replaced by one 3x3/1 conv with 2k filters, as the paper does for CIFAR: the
  ImageNet stem would shrink a 32x32 image to 8x8 before the first block and to 1x1 after the
  third transition; the 3x3/1 stem gives 32, 16, 8 and 4 pixel maps to the four blocks.

``min_size`` is the smallest square input whose map survives every 2x2 average pool: 29 for the
ImageNet forms (29 -> 15 -> 8 through the stem, then 4, 2, 1 through the three transitions), 8 for
``densenet121_cifar``, 4 for ``densenet_bc100``; below it ``forward`` raises ConvzooError.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from ._common import ZooModel
from ._registry import register_model

_PAPER = "Huang et al. 2017"



class DenseLayer(nn.Module):
    """``H_l`` of DenseNet-B (§3 "Bottleneck layers"): BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k).

    Takes the list of the block's maps so far, [(B, C_0, H, W), (B, k, H, W), ...], and returns the
    new (B, k, H, W) map; the concatenation happens inside so it can be checkpointed with the 1x1.
    """

    def __init__(
        self, c_in: int, growth_rate: int, *, bn_size: int, drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        width = bn_size * growth_rate  # 4k bottleneck channels
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, width, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def _bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        x = torch.cat(features, 1)  # [x_0, ..., x_{l-1}]: (B, C_0 + (l-1)k, H, W), Eq. 2
        return self.conv1(self.relu1(self.norm1(x)))  # (B, 4k, H, W)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and any(f.requires_grad for f in features):
            # The concatenation and the BN-ReLU-1x1 outputs are recomputed in backward.
            out = checkpoint.checkpoint(self._bottleneck, *features, use_reentrant=False)
        else:
            out = self._bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))  # (B, k, H, W)
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.Module):
    """``num_layers`` dense layers (Fig. 1): (B, C, H, W) -> (B, C + num_layers * k, H, W)."""

    def __init__(
        self, num_layers: int, c_in: int, growth_rate: int, *, bn_size: int, drop_rate: float,
        memory_efficient: bool,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(c_in + i * growth_rate, growth_rate, bn_size=bn_size,
                               drop_rate=drop_rate, memory_efficient=memory_efficient)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """Between blocks (§3 "Pooling layers", "Compression"): BN-ReLU-Conv1x1(theta*C)-AvgPool 2x2/2.

    (B, C, H, W) -> (B, floor(theta * C), H/2, W/2).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(c_in)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


class DenseNet(ZooModel):
    """Stem, dense blocks separated by transitions, BN-ReLU, global average pool, fc.

    ``stem="imagenet"``: 7x7/2 conv, BN-ReLU, 3x3/2 max-pool (Table 1); ``stem="cifar"``: one 3x3/1
    conv, whose output the first dense layer normalises (§3 "Implementation Details").
    """

    def __init__(
        self,
        *,
        growth_rate: int,
        block_config: Sequence[int],
        num_init_features: int,
        num_classes: int,
        in_chans: int,
        stem: Literal["imagenet", "cifar"],
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.in_chans = in_chans
        num_transitions = len(block_config) - 1

        c = num_init_features
        if stem == "imagenet":
            layers: list[tuple[str, nn.Module]] = [
                ("conv0", nn.Conv2d(in_chans, c, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(c)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        else:
            layers = [("conv0", nn.Conv2d(in_chans, c, kernel_size=3, padding=1, bias=False))]
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, c, growth_rate, bn_size=bn_size, drop_rate=drop_rate,
                               memory_efficient=memory_efficient)
            layers.append((f"denseblock{i + 1}", block))
            c += num_layers * growth_rate
            if i < num_transitions:
                c_out = int(c * compression)
                layers.append((f"transition{i + 1}", Transition(c, c_out)))
                c = c_out
        layers.append((f"norm{len(block_config) + 1}", nn.BatchNorm2d(c)))  # norm5 on ImageNet
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(c, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He et al. 2015 normal init (fan_in) for the convs, as torchvision; the authors' Torch code
        # uses the same He normal family. BN scale 1, shift 0; fc bias 0, weight PyTorch's default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last block's normalised map, (B, 1024, 7, 7) for densenet121."""
        self.check_input(x, in_chans=self.in_chans)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.forward_features(x), inplace=True)  # the ReLU after the final BN
        x = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        return self.classifier(torch.flatten(x, 1))  # (B, num_classes)


# Variant table: (growth rate k, layers per block, stem filters). ImageNet: Table 1.
DENSENET_CONFIGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
    "densenet121_cifar": (32, (6, 12, 24, 16), 64),
    "densenet_bc100": (12, (16, 16, 16), 24),  # L = 100: 3 blocks x 16 layers x 2 convs + 4
}


def _densenet(name: str, *, stem: Literal["imagenet", "cifar"], **kwargs: object) -> DenseNet:
    k, blocks, c0 = DENSENET_CONFIGS[name]
    return DenseNet(growth_rate=k, block_config=blocks, num_init_features=c0, stem=stem,
                    **kwargs)


_IMAGENET = dict(family="densenet", paper=_PAPER, input_size=(3, 224, 224), min_size=29)


@register_model(**_IMAGENET, torchvision_name="densenet121")
def densenet121(
    *, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """DenseNet-121 (k=32, Table 1), 7,978,856 parameters; torchvision-compatible."""
    return _densenet("densenet121", stem="imagenet", num_classes=num_classes, in_chans=in_chans,
                     memory_efficient=memory_efficient, drop_rate=drop_rate)


@register_model(**_IMAGENET, torchvision_name="densenet161")
def densenet161(
    *, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """DenseNet-161 (k=48, 96-filter stem), 28,681,000 parameters; torchvision-compatible."""
    return _densenet("densenet161", stem="imagenet", num_classes=num_classes, in_chans=in_chans,
                     memory_efficient=memory_efficient, drop_rate=drop_rate)


@register_model(**_IMAGENET, torchvision_name="densenet169")
def densenet169(
    *, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """DenseNet-169 (k=32, Table 1), 14,149,480 parameters; torchvision-compatible."""
    return _densenet("densenet169", stem="imagenet", num_classes=num_classes, in_chans=in_chans,
                     memory_efficient=memory_efficient, drop_rate=drop_rate)


@register_model(**_IMAGENET, torchvision_name="densenet201")
def densenet201(
    *, num_classes: int = 1000, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """DenseNet-201 (k=32, Table 1), 20,013,928 parameters; torchvision-compatible."""
    return _densenet("densenet201", stem="imagenet", num_classes=num_classes, in_chans=in_chans,
                     memory_efficient=memory_efficient, drop_rate=drop_rate)


@register_model(family="densenet", paper=_PAPER, input_size=(3, 32, 32), min_size=8, form="small",
                default_num_classes=10)
def densenet121_cifar(
    *, num_classes: int = 10, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """DenseNet-121 for 32x32: one 3x3/1 stem conv, no max-pool (see the module docstring), 7.0M."""
    return _densenet("densenet121_cifar", stem="cifar", num_classes=num_classes,
                     in_chans=in_chans, memory_efficient=memory_efficient, drop_rate=drop_rate)


@register_model(family="densenet", paper=_PAPER, input_size=(3, 32, 32), min_size=4, form="small",
                default_num_classes=10)
def densenet_bc100(
    *, num_classes: int = 10, in_chans: int = 3, memory_efficient: bool = False,
    drop_rate: float = 0.0,
) -> DenseNet:
    """The paper's CIFAR DenseNet-BC, L=100, k=12 (Table 2), 0.8M parameters.

    The paper trains it without dropout on augmented data and with dropout 0.2 after every conv
    but the first on unaugmented data (§4.2 "Training"); ``drop_rate`` drops after each layer's
    3x3 conv only, as torchvision does.
    """
    return _densenet("densenet_bc100", stem="cifar", num_classes=num_classes, in_chans=in_chans,
                     memory_efficient=memory_efficient, drop_rate=drop_rate)
