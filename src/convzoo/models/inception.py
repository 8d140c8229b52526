"""Inception v3, as torchvision ships it and for CIFAR-sized images.

Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016, arXiv:1512.00567.

``inception_v3`` is state-dict compatible with ``torchvision.models.inception_v3`` (0.29), whose
ImageNet weights are ported from the TensorFlow release, and follows that release where it differs
from the paper's Table 1 (the reason: the weights):

- stem (Table 1, first rows): 3x3/2 conv 32, 3x3 conv 32, 3x3 conv 64 (padded), 3x3/2 max-pool,
  1x1 conv 80, 3x3 conv 192, 3x3/2 max-pool -- the paper lists a 3x3 conv 80 and a 3x3/2 conv
  192 in place of the 1x1 conv and the pool; 299x299 -> 192x35x35;
- three 35x35 modules (Fig. 5 in the paper: the 5x5 factorised into two 3x3), where the release
  keeps one 5x5 branch *and* a double-3x3 branch (:class:`InceptionA`);
- grid reductions 35 -> 17 and 17 -> 8 (§5, Fig. 10): strided convolution branches in parallel
  with a strided max-pool (:class:`InceptionB`, :class:`InceptionD`);
- four 17x17 modules with 1x7 / 7x1 factorised convolutions (Fig. 6, n = 7, :class:`InceptionC`),
  and two 8x8 modules with expanded 1x3 / 3x1 filter banks (Fig. 7, :class:`InceptionE`);
- the auxiliary classifier on the last 17x17 map (§4, Fig. 8) with batch-normalised convolutions;
- every convolution is conv (no bias) -> batch norm (eps 0.001) -> ReLU, GoogLeNet's unit;
- ``transform_input`` re-scales ImageNet-normalised inputs to the [-1, 1] range of the TF weights.

27,161,264 parameters with 1000 classes and the auxiliary head, 23,834,568 without. Label
smoothing (§7) and RMSProp with epsilon 1.0 (§8) are training choices, not part of the model.

Auxiliary head off by default (plain logits). Built with ``aux_logits=True`` the model returns
:class:`InceptionOutputs` (logits, aux_logits) in training *and* evaluation mode, computing the head
in both, so the return type never depends on the mode. The head (5x5/3 average pool, then a 5x5
convolution) needs the full 17x17 grid, so with it the smallest input grows from 75x75 to 299x299,
the size the network is built for.

Initialisation: torchvision's, normal with std 0.1 truncated at +-2 (absolute) for convolutions
and linear layers, std 0.01 for the auxiliary head's 5x5 convolution and 0.001 for its linear
layer; batch-norm scale 1 and shift 0; linear biases keep PyTorch's default.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import ZooModel
from ._registry import register_model
from .googlenet import ConvBN, imagenet_to_unit_range

PAPER = "Szegedy et al. 2015"
AUX_MIN_SIZE = 299  # inception_v3's smallest input with its auxiliary head, see Inception3



def _row(in_chans: int, out_chans: int, n: int) -> ConvBN:
    """A 1xn convolution, padded to keep H x W (Fig. 6's factorisation of an nxn)."""
    return ConvBN(in_chans, out_chans, (1, n), padding=(0, n // 2))


def _col(in_chans: int, out_chans: int, n: int) -> ConvBN:
    """An nx1 convolution, padded to keep H x W."""
    return ConvBN(in_chans, out_chans, (n, 1), padding=(n // 2, 0))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    """The pooling branch's 3x3/1 average pool; padding counts as zeros, as in the TF release."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 module (Fig. 5, as released): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg -> 1x1.

    (B, C, 35, 35) -> (B, 224 + pool_features, 35, 35).
    """

    def __init__(self, in_chans: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_chans, 64, 1)
        self.branch5x5_1 = ConvBN(in_chans, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_chans, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_chans, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)  # 64
        b = self.branch5x5_2(self.branch5x5_1(x))  # 64
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # 96
        d = self.branch_pool(_avg3(x))  # pool_features
        return torch.cat((a, b, c, d), dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (§5, Fig. 10): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max-pool.

    (B, C, 35, 35) -> (B, 480 + C, 17, 17).
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(in_chans, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_chans, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)  # 384
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))  # 96
        c = F.max_pool2d(x, kernel_size=3, stride=2)  # C
        return torch.cat((a, b, c), dim=1)


class InceptionC(nn.Module):
    """17x17 module (Fig. 6, n = 7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> (7x1 -> 1x7) x 2 | avg -> 1x1.

    ``c7`` is the width inside the factorised branches. (B, C, 17, 17) -> (B, 768, 17, 17).
    """

    def __init__(self, in_chans: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_chans, 192, 1)
        self.branch7x7_1 = ConvBN(in_chans, c7, 1)
        self.branch7x7_2 = _row(c7, c7, 7)
        self.branch7x7_3 = _col(c7, 192, 7)
        self.branch7x7dbl_1 = ConvBN(in_chans, c7, 1)
        self.branch7x7dbl_2 = _col(c7, c7, 7)
        self.branch7x7dbl_3 = _row(c7, c7, 7)
        self.branch7x7dbl_4 = _col(c7, c7, 7)
        self.branch7x7dbl_5 = _row(c7, 192, 7)
        self.branch_pool = ConvBN(in_chans, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            c = layer(c)
        d = self.branch_pool(_avg3(x))
        return torch.cat((a, b, c, d), dim=1)  # 4 x 192 channels


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | 3x3/2 max-pool.

    (B, C, 17, 17) -> (B, 512 + C, 8, 8).
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(in_chans, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_chans, 192, 1)
        self.branch7x7x3_2 = _row(192, 192, 7)
        self.branch7x7x3_3 = _col(192, 192, 7)
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))  # 320
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)  # 192
        c = F.max_pool2d(x, kernel_size=3, stride=2)  # C
        return torch.cat((a, b, c), dim=1)


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (Fig. 7): the 3x3 branches fan out into parallel
    1x3 and 3x1 convolutions whose outputs are concatenated. (B, C, 8, 8) -> (B, 2048, 8, 8).
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_chans, 320, 1)
        self.branch3x3_1 = ConvBN(in_chans, 384, 1)
        self.branch3x3_2a = _row(384, 384, 3)
        self.branch3x3_2b = _col(384, 384, 3)
        self.branch3x3dbl_1 = ConvBN(in_chans, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _row(384, 384, 3)
        self.branch3x3dbl_3b = _col(384, 384, 3)
        self.branch_pool = ConvBN(in_chans, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)  # 320
        b = self.branch3x3_1(x)
        b = torch.cat((self.branch3x3_2a(b), self.branch3x3_2b(b)), dim=1)  # 768
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat((self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)), dim=1)  # 768
        d = self.branch_pool(_avg3(x))  # 192
        return torch.cat((a, b, c, d), dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 grid (§4, Fig. 8): 5x5/3 average pool, 1x1 conv 128,
    5x5 conv 768, global average, fc. ``adaptive`` pools to 5x5 whatever the map size (CIFAR form).
    """

    def __init__(self, in_chans: int, num_classes: int, *, adaptive: bool = False) -> None:
        super().__init__()
        self.adaptive = adaptive
        self.conv0 = ConvBN(in_chans, 128, 1)
        self.conv1 = ConvBN(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.adaptive:
            x = F.adaptive_avg_pool2d(x, (5, 5))
        else:
            x = F.avg_pool2d(x, kernel_size=5, stride=3)  # (B, 768, 17, 17) -> (B, 768, 5, 5)
        x = self.conv1(self.conv0(x))  # (B, 768, 1, 1)
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)  # (B, 768)
        return self.fc(x)


class InceptionOutputs(NamedTuple):
    """What an Inception v3 built with ``aux_logits=True`` returns, in every mode."""

    logits: torch.Tensor
    aux_logits: torch.Tensor


# The trunk after the stem (Table 1 as released): name, block, input channels, block argument.
INCEPTION_V3_TABLE: tuple[tuple[str, type[nn.Module], int, int | None], ...] = (
    ("Mixed_5b", InceptionA, 192, 32),  # -> 256 x 35 x 35
    ("Mixed_5c", InceptionA, 256, 64),  # -> 288
    ("Mixed_5d", InceptionA, 288, 64),  # -> 288
    ("Mixed_6a", InceptionB, 288, None),  # -> 768 x 17 x 17
    ("Mixed_6b", InceptionC, 768, 128),
    ("Mixed_6c", InceptionC, 768, 160),
    ("Mixed_6d", InceptionC, 768, 160),
    ("Mixed_6e", InceptionC, 768, 192),  # the auxiliary head reads this output
    ("Mixed_7a", InceptionD, 768, None),  # -> 1280 x 8 x 8
    ("Mixed_7b", InceptionE, 1280, None),  # -> 2048
    ("Mixed_7c", InceptionE, 2048, None),  # -> 2048
)


class Inception3(ZooModel):
    """Stem, the eleven mixed blocks, global average pool, dropout, fc (+ the auxiliary head).

    ``small=True`` gives the CIFAR stem (see ``inception_v3_cifar``); the trunk is the same.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.5,
        init_weights: bool = True,
        small: bool = False,
    ) -> None:
        super().__init__()
        if transform_input and in_chans != 3:
            raise ValueError(f"transform_input needs in_chans=3 (RGB), got in_chans={in_chans}")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        # The layers whose shape depends on num_classes (what reset_head re-initialises).
        self.head_prefixes = ("fc.", "AuxLogits.fc.") if aux_logits else ("fc.",)
        # The aux head's 5x5/3 average pool must leave 5x5 for its 5x5 convolution, i.e. the full
        # 17x17 grid of a 299x299 input; the CIFAR form's head pools adaptively (see min_size).
        self.aux_min_size = AUX_MIN_SIZE if aux_logits and not small else 1
        if small:
            pad = 1  # keep 32x32 through the stem's 3x3 convolutions
            self.Conv2d_1a_3x3 = ConvBN(in_chans, 32, 3, padding=pad)  # (B, 32, 32, 32)
        else:
            pad = 0
            self.Conv2d_1a_3x3 = ConvBN(in_chans, 32, 3, stride=2)  # (B, 32, 149, 149)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3, padding=pad)  # (B, 32, 147, 147)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)  # (B, 64, 147, 147)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)  # (B, 64, 73, 73)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)  # (B, 80, 73, 73)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3, padding=pad)  # (B, 192, 71, 71)
        # (B, 192, 35, 35); the CIFAR stem pools once only (32 -> 15).
        self.maxpool2: nn.Module = nn.Identity() if small else nn.MaxPool2d(kernel_size=3, stride=2)
        for block_name, block, chans, arg in INCEPTION_V3_TABLE:
            setattr(self, block_name, block(chans) if arg is None else block(chans, arg))
        if aux_logits:
            self.AuxLogits = InceptionAux(768, num_classes, adaptive=small)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's Inception v3 initialisation: truncated normal (cut at +-2 absolute) with
        # std 0.1, except the auxiliary head's 5x5 conv (0.01) and its fc (0.001); BN at 1 / 0.
        special: dict[int, float] = {}
        if self.aux_logits:
            special = {id(self.AuxLogits.conv1.conv): 0.01, id(self.AuxLogits.fc): 0.001}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                std = special.get(id(m), 0.1)
                nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2.0, b=2.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def min_size(self) -> int:
        """The registry's (the model without the auxiliary head), raised to 299 by
        ``inception_v3``'s auxiliary head."""
        return max(super().min_size, self.aux_min_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionOutputs:
        self.check_input(x)
        if self.transform_input:
            x = imagenet_to_unit_range(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))  # (B, 192, 71, 71)
        x = self.maxpool2(x)  # (B, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # (B, 768, 17, 17)
        aux = self.AuxLogits(x) if self.aux_logits else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # (B, 2048, 8, 8)
        x = torch.flatten(self.dropout(self.avgpool(x)), 1)  # (B, 2048)
        logits = self.fc(x)  # (B, num_classes)
        if aux is not None:
            return InceptionOutputs(logits, aux)
        return logits


@register_model(
    family="inception",
    paper=PAPER,
    input_size=(3, 299, 299),
    min_size=75,  # the 17 -> 8 reduction still gets a 3x3 map (299 with aux_logits, see above)
    torchvision_name="inception_v3",
)
def inception_v3(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = False,
    transform_input: bool = False,
    dropout: float = 0.5,
    init_weights: bool = True,
) -> Inception3:
    """Inception v3 on 299x299 inputs as torchvision has it (23,834,568 parameters; 27,161,264
    with ``aux_logits``). Smallest input 75x75, or 299x299 with ``aux_logits``.

    Use ``transform_input=True`` with torchvision's ImageNet weights, which expect it.
    """
    return Inception3(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        transform_input=transform_input,
        dropout=dropout,
        init_weights=init_weights,
    )


@register_model(
    family="inception",
    paper=PAPER,
    input_size=(3, 32, 32),
    min_size=15,
    form="small",
    default_num_classes=10,
)
def inception_v3_cifar(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.5,
) -> Inception3:
    """Inception v3 for 28x28 / 32x32 images.

    Changed from ``inception_v3``, whose stem shrinks 299x299 to 35x35 (and would leave nothing
    of a 32x32 image): the stem's 3x3 convolutions are unstrided and padded and only its first
    max-pool is kept, so the 35x35-grid modules run at 15x15, the 17x17 ones at 7x7 and the 8x8
    ones at 3x3 (13, 6 and 2 for 28x28 inputs); the auxiliary head pools adaptively to 5x5; no
    ``transform_input``. The trunk, and so most parameters, is unchanged: 21,806,058 with 10
    classes (24,371,444 with ``aux_logits``); 0.80 GMACs per 32x32 image
    (torch.utils.flop_counter, FLOPs / 2), the heaviest of the small forms. Smallest input 15x15
    (15 -> 7 -> 3 -> 1 through the three reductions).
    """
    return Inception3(
        num_classes=num_classes,
        in_chans=in_chans,
        aux_logits=aux_logits,
        dropout=dropout,
        small=True,
    )
