"""GoogLeNet (Inception v1), as torchvision ships it and for CIFAR-sized images.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842.

``googlenet`` is state-dict compatible with ``torchvision.models.googlenet`` (0.29): the stem and
the nine Inception modules of Table 1 (3a-3b, 4a-4e, 5a-5b), each four parallel branches
concatenated along channels (Fig. 2b), global average pooling, dropout and one linear classifier
(§5). 6,624,904 parameters with 1000 classes, 13,004,888 with the two auxiliary classifiers.
What differs from the paper, all of it as in torchvision (so that its weights load):

- every convolution is followed by batch normalization (eps 0.001, the TensorFlow default of the
  ported weights) and has no bias; the paper (2014) predates batch norm and uses no LRN here;
- the "5x5" branch uses a 3x3 convolution -- a known slip in torchvision (pytorch/vision issue
  #906) that its weights were trained with; ``googlenet_cifar`` uses the paper's 5x5;
- the auxiliary classifiers (§5) pool adaptively to 4x4 (the paper: 5x5/3 average pooling, which
  gives 4x4 at 224x224), dropout 0.7 as the paper, and they are *not* trained in the shipped
  torchvision weights;
- ``transform_input`` maps ImageNet-normalised inputs to the [-1, 1] scaling the ported weights
  expect (off by default, as torchvision's builder without weights).

Auxiliary heads are off by default and the model returns logits. Built with ``aux_logits=True`` it
returns :class:`GoogLeNetOutputs` (logits, aux_logits2, aux_logits1) -- torchvision's field order --
in training *and* evaluation mode, so its return type never depends on the mode; the heads are
computed in both modes. Train with ``loss = ce(logits) + 0.3 * (ce(aux1) + ce(aux2))`` (§5).

Initialisation: torchvision's, a normal with std 0.01 truncated at +-2 (absolute) for convolutions
and linear layers, batch-norm scale 1 and shift 0; the paper does not state its initialisation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ZooModel
from ._registry import register_model

PAPER = "Szegedy et al. 2014"

# ImageNet normalisation (mean, std) per channel; transform_input re-maps x to (x_raw - 0.5) / 0.5.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)



def imagenet_to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet mean/std normalisation and rescale to [-1, 1]: (x * std + mean - 0.5) / 0.5."""
    std = x.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    mean = x.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


class ConvBN(nn.Module):
    """Convolution without bias -> batch norm (eps 0.001) -> ReLU; keys ``conv.*``, ``bn.*``."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chans, out_chans, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chans, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Fig. 2(b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1, concatenated.

    ``k5`` is the kernel of the third branch: 5 in the paper, 3 in torchvision's weights.
    All branches keep H x W; the output has ``c1 + c3 + c5 + pool_proj`` channels.
    """

    def __init__(
        self,
        in_chans: int,
        c1: int,
        c3_reduce: int,
        c3: int,
        c5_reduce: int,
        c5: int,
        pool_proj: int,
        *,
        k5: int = 5,
    ) -> None:
        super().__init__()
        self.branch1 = ConvBN(in_chans, c1, 1)
        self.branch2 = nn.Sequential(
            ConvBN(in_chans, c3_reduce, 1), ConvBN(c3_reduce, c3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            ConvBN(in_chans, c5_reduce, 1), ConvBN(c5_reduce, c5, k5, padding=k5 // 2)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            ConvBN(in_chans, pool_proj, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)  # (B, c1 + c3 + c5 + pool_proj, H, W)


class InceptionAux(nn.Module):
    """§5's auxiliary classifier: 4x4 average pool, 1x1 conv 128, fc 1024, dropout 0.7, fc."""

    def __init__(self, in_chans: int, num_classes: int, *, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = ConvBN(in_chans, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(x, (4, 4))  # (B, C, 14, 14) -> (B, C, 4, 4)
        x = torch.flatten(self.conv(x), 1)  # (B, 2048)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))  # (B, 1024)
        return self.fc2(x)  # (B, num_classes)


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet built with ``aux_logits=True`` returns, in every mode."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor  # from the head after 4d
    aux_logits1: torch.Tensor  # from the head after 4a


# Table 1: name, input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_V1_TABLE: tuple[tuple[str, int, int, int, int, int, int, int], ...] = (
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),  # -> 256 channels, 28x28 at 224
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),  # -> 480
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),  # -> 512, 14x14
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),  # -> 512
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),  # -> 512
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),  # -> 528
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),  # -> 832
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),  # -> 832, 7x7
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),  # -> 1024
)


class GoogLeNet(ZooModel):
    """Stem, Inception 3a-5b with max-pools between stages, average pool, dropout, fc.

    ``small=True`` gives the CIFAR stem (see ``googlenet_cifar``); the Inception stages are the
    same either way.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        init_weights: bool = True,
        small: bool = False,
    ) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise ValueError(f"transform_input needs in_chans=3 (RGB), got in_chans={in_chans}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        # The layers whose shape depends on num_classes (what reset_head re-initialises).
        self.head_prefixes = ("fc.", "aux1.fc2.", "aux2.fc2.") if aux_logits else ("fc.",)
        if small:
            # 32x32: 3x3/1 conv1 and no second pool, so Inception 3a sees 16x16 (28x28 at 224).
            self.conv1 = ConvBN(in_chans, 64, 3, padding=1)  # (B, 64, 32, 32)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (B, 64, 16, 16)
            self.maxpool2: nn.Module = nn.Identity()
        else:
            self.conv1 = ConvBN(in_chans, 64, 7, stride=2, padding=3)  # (B, 64, 112, 112)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (B, 64, 56, 56)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # after conv3: 28x28
        self.conv2 = ConvBN(64, 64, 1)  # (B, 64, 56, 56)
        self.conv3 = ConvBN(64, 192, 3, padding=1)  # (B, 192, 56, 56)
        k5 = 5 if small else 3  # torchvision's 3x3 slip in the "5x5" branch, see the docstring
        for row in INCEPTION_V1_TABLE:
            setattr(self, row[0], Inception(*row[1:], k5=k5))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 28x28 -> 14x14
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)  # 14x14 -> 7x7
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)  # after 4a
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)  # after 4d
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's GoogLeNet initialisation (the paper gives none): truncated normal,
        # std 0.01, cut at +-2 (absolute, so in effect untruncated); BN scale 1, shift 0; the
        # linear layers' biases keep PyTorch's default, as in torchvision.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2.0, b=2.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        self.check_input(x)
        if self.transform_input:
            x = imagenet_to_unit_range(x)
        x = self.maxpool1(self.conv1(x))  # (B, 64, 56, 56)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (B, 192, 28, 28)
        x = self.inception3b(self.inception3a(x))  # (B, 480, 28, 28)
        x = self.inception4a(self.maxpool3(x))  # (B, 512, 14, 14)
        aux1 = self.aux1(x) if self.aux_logits else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (B, 528, 14, 14)
        aux2 = self.aux2(x) if self.aux_logits else None
        x = self.maxpool4(self.inception4e(x))  # (B, 832, 7, 7)
        x = self.inception5b(self.inception5a(x))  # (B, 1024, 7, 7)
        x = torch.flatten(self.avgpool(x), 1)  # (B, 1024)
        logits = self.fc(self.dropout(x))  # (B, num_classes)
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits


@register_model(
    family="googlenet",
    paper=PAPER,
    input_size=(3, 224, 224),
    min_size=15,
    torchvision_name="googlenet",
)
def googlenet(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    transform_input: bool = False,
    dropout: float = 0.2,
    dropout_aux: float = 0.7,
    init_weights: bool = True,
) -> GoogLeNet:
    """GoogLeNet as torchvision has it (6,624,904 parameters; 13,004,888 with ``aux_logits``).

    Use ``transform_input=True`` with torchvision's ImageNet weights, which expect it.
    Smallest input 15x15 (15 -> 8 -> 4 -> 2 -> 1 -> 1 through conv1 and the four max-pools).
    """
    return GoogLeNet(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        transform_input=transform_input,
        dropout=dropout,
        dropout_aux=dropout_aux,
        init_weights=init_weights,
    )


@register_model(
    family="googlenet",
    paper=PAPER,
    input_size=(3, 32, 32),
    min_size=8,
    form="small",
    default_num_classes=10,
)
def googlenet_cifar(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.2,
    dropout_aux: float = 0.7,
) -> GoogLeNet:
    """GoogLeNet for 28x28 / 32x32 images.

    Changed from ``googlenet``, because its 7x7/2 conv1 and two max-pools shrink the image 8x
    before Inception 3a (32x32 -> 4x4): conv1 is 3x3/1 and the pool after conv3 is dropped, so
    3a-3b run at 16x16, 4a-4e at 8x8 and 5a-5b at 4x4 (14, 7 and 4 for 28x28 inputs); the third
    branch of each module uses the paper's 5x5 (torchvision's slip is kept only where its weights
    need it); no ``transform_input``. Parameters: 5,983,402 with 10 classes (10,333,886 with
    ``aux_logits``); 0.39 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).
    Smallest input 8x8 (8 -> 4 -> 2 -> 1 through the three max-pools).
    """
    return GoogLeNet(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        dropout=dropout,
        dropout_aux=dropout_aux,
        small=True,
    )
