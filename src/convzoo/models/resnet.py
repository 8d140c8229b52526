"""ResNet: deep residual learning (He, Zhang, Ren, Sun 2016).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv:1512.03385.
A block learns a residual ``F(x)`` and outputs ``relu(F(x) + shortcut(x))`` (§3.2, Eq. 1-2), so a
deep stack can fall back to the identity; the paper's plain nets of the same depth train *worse*
as they get deeper (the degradation problem, §4.1, Fig. 1 and Fig. 4/6).

ImageNet forms (``resnet18`` ... ``resnet152``, Table 1) are key-for-key and shape-for-shape
state-dict compatible with torchvision 0.29's builders of the same name. What differs from the
paper, and why:

- Bottleneck stride. The paper (Fig. 5, §3.3) downsamples in the bottleneck's first 1x1 conv
  (3.8 GMACs for ResNet-50, Table 1); torchvision, and so this module by default, puts the stride on
  the 3x3 conv ("ResNet v1.5", 4.09 GMACs, about +0.5% top-1), which is what its weights expect.
  ``stride_in_1x1=True`` gives the paper's placement (same keys and shapes, other outputs).
- Shortcuts. The ImageNet forms use option B (§3.3): identity where shapes match, a 1x1 conv + BN
  projection where they change. The CIFAR nets of §4.2 use option A: identity with a spatial
  subsample and zero-padded channels, which adds no parameters.
- ``residual=False`` drops every shortcut, giving the paper's "plain" counterpart of any depth
  (plain-18/34 in §4.1, plain-20...56 in §4.2, Fig. 6) for the degradation experiment. It is an
  argument rather than separate ``plain*`` names so every depth has one, at no extra registry cost.
- ``zero_init_residual=True`` zeroes the last BN's scale in each block so every block starts as the
  identity (Goyal et al. 2017, arXiv:1706.02677, §5.1); off by default, as in torchvision.

Small forms, for 28x28 and 32x32 images (``in_chans=1`` gives MNIST):

- ``resnet18_cifar``/``resnet34_cifar``/``resnet50_cifar``: the ImageNet widths and depths, with
  the 7x7/2 conv + 3x3/2 max-pool stem replaced by one 3x3/1 conv and no pool. On a 32x32 image the
  ImageNet stem would leave an 8x8 map before stage 1 and 1x1 at stage 4; the 3x3/1 stem keeps
  32x32 into stage 1 and 4x4 at stage 4 (the common "kuangliu" CIFAR ResNet).
- ``resnet20``/``32``/``44``/``56``/``110``: the paper's own CIFAR-10 nets (§4.2, Table 6): a 3x3
  conv with 16 filters, then 3 stages of ``n`` basic blocks with 16, 32, 64 filters on 32x32, 16x16
  and 8x8 maps, global average pool, fc; 6n+2 weighted layers; option A shortcuts;
  0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters.

All ResNets accept any input of at least 1x1 (every conv is padded, the pool is global), so their
``min_size`` is 1; below that, or with the wrong channel count, ``forward`` raises ConvzooError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ZooModel
from ._registry import register_model

_PAPER = "He et al. 2016"



def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    # Every conv is followed by BN (§3.4), so it carries no bias.
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (§3.3, §4.2): subsample by ``stride``, zero-pad the new channels.

    (B, C_in, H, W) -> (B, C_out, H/stride, W/stride); no parameters, so a ResNet with it has
    exactly as many as its plain counterpart.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_extra = c_out - c_in
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # Pad the channel dimension at the end: F.pad's last pair applies to dim 1 here.
        return F.pad(x, (0, 0, 0, 0, 0, self.c_extra))


def _projection(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Option B shortcut (§3.3, Eq. 2): ``W_s x`` as a strided 1x1 conv followed by BN."""
    return nn.Sequential(_conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3x3 convs (Fig. 5 left), for ResNet-18/34 and the CIFAR nets.

    (B, C_in, H, W) -> (B, width, H/stride, W/stride). ``downsample`` is the shortcut used when the
    shape changes (None means identity); ``residual=False`` gives the plain block.
    """

    expansion = 1

    def __init__(
        self,
        c_in: int,
        width: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        stride_in_1x1: bool = False,  # unused: there is no 1x1 conv here
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # F(x)
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)  # F(x) + x, Eq. 1
        return self.relu(out)  # the second ReLU comes after the addition (Fig. 2)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand x4 (Fig. 5 right), for ResNet-50/101/152.

    (B, C_in, H, W) -> (B, 4 * width, H/stride, W/stride). The stride sits on the 3x3 conv
    (torchvision's "v1.5") unless ``stride_in_1x1``, the paper's placement.
    """

    expansion = 4

    def __init__(
        self,
        c_in: int,
        width: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = _conv1x1(c_in, width, s1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, s3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet(ZooModel):
    """Stem, ``len(layers)`` stages of residual blocks, global average pool, fc.

    ``stem="imagenet"``: 7x7/2 conv + 3x3/2 max-pool (Table 1, conv1 and the pool of conv2_x);
    ``stem="cifar"``: one 3x3/1 conv (§4.2). Stage ``i`` has ``layers[i]`` blocks of width
    ``widths[i]``; every stage after the first halves the map in its first block (Table 1).
    ``shortcut="B"`` projects when the shape changes, ``"A"`` zero-pads (§3.3).
    """

    def __init__(
        self,
        *,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        widths: Sequence[int],
        num_classes: int,
        in_chans: int,
        stem: Literal["imagenet", "cifar"],
        shortcut: Literal["A", "B"] = "B",
        residual: bool = True,
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B', got {shortcut!r}")
        self.in_chans = in_chans
        c = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, c, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = _conv3x3(in_chans, c)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

        stages = []
        for i, (n_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            c_out = width * block.expansion
            blocks = []
            for j in range(n_blocks):
                s = stride if j == 0 else 1
                downsample: nn.Module | None = None
                if residual and (s != 1 or c != c_out):
                    if shortcut == "B":
                        downsample = _projection(c, c_out, s)
                    else:
                        downsample = ZeroPadShortcut(c, c_out, s)
                blocks.append(
                    block(c, width, stride=s, downsample=downsample, residual=residual,
                          stride_in_1x1=stride_in_1x1)
                )
                c = c_out
            stages.append(nn.Sequential(*blocks))
        # layer1 ... layerN, the names torchvision uses for conv2_x ... conv5_x of Table 1.
        for i, stage in enumerate(stages):
            self.add_module(f"layer{i + 1}", stage)
        self.stages = len(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015 ("Delving deep", arXiv:1502.01852) normal init, fan_out as torchvision;
        # the paper cites this init for both ImageNet (§3.4) and CIFAR (§4.2). BN starts at scale 1,
        # shift 0; the fc keeps PyTorch's default (uniform) init, as torchvision does.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn().weight)  # F(x) = 0: the block starts as identity

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map, e.g. (B, 2048, 7, 7) for resnet50 at 224."""
        self.check_input(x, in_chans=self.in_chans)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, 56, 56) at 224
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x))  # (B, C, 1, 1)
        return self.fc(torch.flatten(x, 1))  # (B, num_classes)


# Variant tables. ImageNet (Table 1): block type and blocks per stage, widths 64-128-256-512.
RESNET_CONFIGS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
# CIFAR (§4.2): n basic blocks per stage, 6n+2 layers, widths 16-32-64.
CIFAR_N = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
CIFAR_WIDTHS = (16, 32, 64)


def _imagenet(name: str, **kwargs: object) -> ResNet:
    block, layers = RESNET_CONFIGS[name]
    return ResNet(block=block, layers=layers, widths=IMAGENET_WIDTHS, stem="imagenet", **kwargs)


def _cifar_imagenet_widths(name: str, **kwargs: object) -> ResNet:
    block, layers = RESNET_CONFIGS[name.removesuffix("_cifar")]
    return ResNet(block=block, layers=layers, widths=IMAGENET_WIDTHS, stem="cifar", **kwargs)


def _cifar_paper(name: str, **kwargs: object) -> ResNet:
    n = CIFAR_N[name]
    return ResNet(block=BasicBlock, layers=(n, n, n), widths=CIFAR_WIDTHS, stem="cifar",
                  shortcut="A", **kwargs)


_IMAGENET = dict(family="resnet", paper=_PAPER, input_size=(3, 224, 224), min_size=1)
_SMALL = dict(family="resnet", paper=_PAPER, input_size=(3, 32, 32), min_size=1, form="small",
              default_num_classes=10)


@register_model(**_IMAGENET, torchvision_name="resnet18")
def resnet18(
    *, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """ResNet-18 (Table 1), 11,689,512 parameters; torchvision-compatible."""
    return _imagenet("resnet18", num_classes=num_classes, in_chans=in_chans,
                     zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_IMAGENET, torchvision_name="resnet34")
def resnet34(
    *, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """ResNet-34 (Table 1), 21,797,672 parameters; torchvision-compatible."""
    return _imagenet("resnet34", num_classes=num_classes, in_chans=in_chans,
                     zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_IMAGENET, torchvision_name="resnet50")
def resnet50(
    *, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
    stride_in_1x1: bool = False, residual: bool = True,
) -> ResNet:
    """ResNet-50 (Table 1), 25,557,032 parameters; torchvision-compatible.

    Stride on the 3x3 conv (torchvision "v1.5", 4.09 GMACs at 224) unless ``stride_in_1x1=True``
    (the paper's Fig. 5 placement, 3.8 GMACs; same state-dict keys).
    """
    return _imagenet("resnet50", num_classes=num_classes, in_chans=in_chans,
                     zero_init_residual=zero_init_residual, stride_in_1x1=stride_in_1x1,
                     residual=residual)


@register_model(**_IMAGENET, torchvision_name="resnet101")
def resnet101(
    *, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
    stride_in_1x1: bool = False, residual: bool = True,
) -> ResNet:
    """ResNet-101 (Table 1), 44,549,160 parameters; ``stride_in_1x1`` as in :func:`resnet50`."""
    return _imagenet("resnet101", num_classes=num_classes, in_chans=in_chans,
                     zero_init_residual=zero_init_residual, stride_in_1x1=stride_in_1x1,
                     residual=residual)


@register_model(**_IMAGENET, torchvision_name="resnet152")
def resnet152(
    *, num_classes: int = 1000, in_chans: int = 3, zero_init_residual: bool = False,
    stride_in_1x1: bool = False, residual: bool = True,
) -> ResNet:
    """ResNet-152 (Table 1), 60,192,808 parameters; ``stride_in_1x1`` as in :func:`resnet50`."""
    return _imagenet("resnet152", num_classes=num_classes, in_chans=in_chans,
                     zero_init_residual=zero_init_residual, stride_in_1x1=stride_in_1x1,
                     residual=residual)


@register_model(**_SMALL)
def resnet18_cifar(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """ResNet-18 for 32x32: 3x3/1 stem, no max-pool (see the module docstring), 11.2M params."""
    return _cifar_imagenet_widths("resnet18_cifar", num_classes=num_classes, in_chans=in_chans,
                                  zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet34_cifar(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """ResNet-34 for 32x32: 3x3/1 stem, no max-pool, 21.3M params."""
    return _cifar_imagenet_widths("resnet34_cifar", num_classes=num_classes, in_chans=in_chans,
                                  zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet50_cifar(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    stride_in_1x1: bool = False, residual: bool = True,
) -> ResNet:
    """ResNet-50 for 32x32: 3x3/1 stem, no max-pool, 23.5M params."""
    return _cifar_imagenet_widths("resnet50_cifar", num_classes=num_classes, in_chans=in_chans,
                                  zero_init_residual=zero_init_residual,
                                  stride_in_1x1=stride_in_1x1, residual=residual)


@register_model(**_SMALL, weights={"cifar10": "resnet20-cifar10.safetensors"})
def resnet20(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """CIFAR ResNet-20 (§4.2, n=3), 0.27M params; ``residual=False`` is plain-20 (Fig. 6)."""
    return _cifar_paper("resnet20", num_classes=num_classes, in_chans=in_chans,
                        zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet32(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """CIFAR ResNet-32 (§4.2, n=5), 0.46M params; ``residual=False`` is plain-32."""
    return _cifar_paper("resnet32", num_classes=num_classes, in_chans=in_chans,
                        zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet44(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """CIFAR ResNet-44 (§4.2, n=7), 0.66M params; ``residual=False`` is plain-44."""
    return _cifar_paper("resnet44", num_classes=num_classes, in_chans=in_chans,
                        zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet56(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """CIFAR ResNet-56 (§4.2, n=9), 0.85M params; ``residual=False`` is plain-56 (Fig. 1)."""
    return _cifar_paper("resnet56", num_classes=num_classes, in_chans=in_chans,
                        zero_init_residual=zero_init_residual, residual=residual)


@register_model(**_SMALL)
def resnet110(
    *, num_classes: int = 10, in_chans: int = 3, zero_init_residual: bool = False,
    residual: bool = True,
) -> ResNet:
    """CIFAR ResNet-110 (§4.2, n=18), 1.7M params; ``residual=False`` is plain-110."""
    return _cifar_paper("resnet110", num_classes=num_classes, in_chans=in_chans,
                        zero_init_residual=zero_init_residual, residual=residual)
