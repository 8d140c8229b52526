"""AlexNet: torchvision's single-tower form, the 2012 paper's two-GPU form, and a CIFAR form.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NIPS 2012 (no arXiv id). Krizhevsky, "One weird trick for parallelizing convolutional neural
networks", arXiv:1404.5997 (2014), whose single-tower network torchvision ships as ``alexnet``.

``alexnet`` -- state-dict compatible with ``torchvision.models.alexnet`` (0.29): 64-192-384-256-256
filters, no local response normalization, an adaptive 6x6 average pool so that inputs from 63x63 up
work, dropout *before* each of the two 4096 layers. 61,100,840 parameters with 1000 classes.
Initialisation: PyTorch's default (Kaiming-uniform with a=sqrt(5)), which is what torchvision does.

``alexnet_paper`` -- the network of the 2012 paper, Fig. 2 and §3: 96-256-384-384-256 filters,
ReLU (§3.1), the two-GPU split (§3.2) expressed as ``groups=2`` on conv2, conv4 and conv5 (conv3
and the fully connected layers see both halves), local response normalization after the ReLUs of
conv1 and conv2 (§3.3), overlapping 3x3/2 max-pooling (§3.4) after both normalizations and conv5,
dropout 0.5 on the outputs of the two 4096-unit layers (§4.2). Input 224x224 with conv1 padding 2:
the paper says 224 but its arithmetic (55x55 maps after an 11x11/4 conv) needs 227 without
padding; padding 2 gives 55x55 from 224, as torchvision's form does. 60,965,224 parameters with
1000 classes. LRN: §3.3 writes b = a / (k + alpha * sum_{n maps} a^2)^beta; torch's
``nn.LocalResponseNorm`` divides alpha by n, so it is given n * alpha = 5e-4 and computes the
paper's equation as printed (tested against a float64 transcription of it). Initialisation as §5:
weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden fully connected layers, 0
elsewhere. What differs from the paper, on purpose: one device instead of two (grouped
convolutions compute the same function); an adaptive 6x6 average pool before fc6, the identity at
224x224, so that other sizes from 63x63 up work; no PCA colour augmentation (a data concern).

``alexnet_cifar`` -- for 28x28 and 32x32 inputs (see its builder): the 11x11/4 stem would shrink a
32x32 image to 7x7 at once, so conv1 is 5x5/1, the three poolings are 3x3/2 padded by 1 (32 -> 16
-> 8 -> 4, and 28 -> 14 -> 7 -> 4), and the fully connected layers are 1024 wide instead of 4096.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import ZooModel
from ._registry import register_model

PAPER = "Krizhevsky et al. 2012"



class AlexNet(ZooModel):
    """Five convolutions (``features``), a 6x6 average pool, three fully connected layers.

    Index layout of ``features`` and ``classifier`` follows torchvision's so that its state dict
    loads key for key (``features.0``, ``features.3``, ... ``classifier.1``, ``classifier.4``,
    ``classifier.6``).
    """

    # Only the last layer depends on num_classes: reset_head re-initialises just it.
    head_prefixes = ("classifier.6.",)

    def __init__(self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),  # (B, 64, 55, 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 64, 27, 27)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # (B, 192, 27, 27)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 192, 13, 13)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # (B, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 6, 6)
        )
        # Any input from 63x63 up ends as 256x6x6 here, so the classifier never changes shape.
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        # Initialisation: PyTorch's layer defaults, as torchvision's alexnet leaves them.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.avgpool(self.features(x))  # (B, 256, 6, 6)
        return self.classifier(torch.flatten(x, 1))  # (B, num_classes)


class AlexNetPaper(ZooModel):
    """The 2012 network, Fig. 2: the two GPU towers become ``groups=2`` convolutions."""

    head_prefixes = ("classifier.7.",)  # fc8, the layer that depends on num_classes

    def __init__(self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        # §3.3: b = a / (k + alpha * sum_{n neighbours} a^2)^beta with k=2, n=5, alpha=1e-4,
        # beta=0.75. torch's LocalResponseNorm divides alpha by n inside the sum, so it is given
        # n * alpha to compute the paper's equation as printed.
        lrn = dict(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 96, kernel_size=11, stride=4, padding=2),  # (B, 96, 55, 55)
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),  # §3.4 overlapping pool: (B, 96, 27, 27)
            # conv2: each GPU's 128 kernels see only its own 48 maps of conv1 (§3.2).
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # (B, 256, 27, 27)
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(**lrn),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 13, 13)
            # conv3 is the one convolution that communicates across GPUs.
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # (B, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),  # (B, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),  # (B, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 256, 6, 6)
        )
        # The identity at 224x224; other input sizes reach fc6 as 6x6 too (not in the paper).
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 9216)
            nn.Linear(256 * 6 * 6, 4096),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),  # §4.2: dropout on the outputs of the two hidden fc layers
            nn.Linear(4096, 4096),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),  # fc8
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # §5: "We initialized the weights in each layer from a zero-mean Gaussian distribution
        # with standard deviation 0.01. We initialized the neuron biases in the second, fourth, and
        # fifth convolutional layers, as well as in the fully-connected hidden layers, with the
        # constant 1 ... the remaining layers with the constant 0."
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, nn.Linear)]
        ones = {id(convs[1]), id(convs[3]), id(convs[4]), id(fcs[0]), id(fcs[1])}
        for m in convs + fcs:
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
            nn.init.constant_(m.bias, 1.0 if id(m) in ones else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(self.avgpool(self.features(x)))  # (B, num_classes)


class AlexNetCifar(ZooModel):
    """AlexNet's five convolutions and three fc layers, resized for 28x28 / 32x32 images."""

    head_prefixes = ("classifier.6.",)

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()

        def pool() -> nn.MaxPool2d:
            # Overlapping 3x3/2 as §3.4, padded by 1 so 32 -> 16 -> 8 -> 4 and 28 -> 14 -> 7 -> 4.
            return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=5, padding=2),  # (B, 64, 32, 32)
            nn.ReLU(inplace=True),
            pool(),  # (B, 64, 16, 16)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # (B, 192, 16, 16)
            nn.ReLU(inplace=True),
            pool(),  # (B, 192, 8, 8)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # (B, 384, 8, 8)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # (B, 256, 8, 8)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # (B, 256, 8, 8)
            nn.ReLU(inplace=True),
            pool(),  # (B, 256, 4, 4)
        )
        # Larger inputs (e.g. 64x64) still reach the classifier as 4x4.
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 4 * 4, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(1024, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, num_classes),
        )
        # Initialisation: PyTorch's layer defaults, as for the torchvision form.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.avgpool(self.features(x))  # (B, 256, 4, 4)
        return self.classifier(torch.flatten(x, 1))  # (B, num_classes)


@register_model(
    family="alexnet",
    paper="Krizhevsky 2014 (torchvision)",
    input_size=(3, 224, 224),
    min_size=63,  # 63 -> conv1 15 -> pool 7 -> conv2 7 -> pool 3 -> convs 3 -> pool 1
    torchvision_name="alexnet",
)
def alexnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """torchvision's single-tower AlexNet (61,100,840 parameters with 1000 classes)."""
    return AlexNet(num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(  # min_size: torchvision's form's geometry, 63 -> 15 -> 7 -> 3 -> 1
    family="alexnet", paper=PAPER, input_size=(3, 224, 224), min_size=63
)
def alexnet_paper(
    *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5
) -> AlexNetPaper:
    """The 2012 paper's AlexNet on 224x224 inputs (60,965,224 parameters with 1000 classes)."""
    return AlexNetPaper(num_classes=num_classes, in_chans=in_chans, dropout=dropout)


@register_model(
    family="alexnet",
    paper=PAPER,
    input_size=(3, 32, 32),
    min_size=25,  # 25 -> 13 -> 7 -> 4: the 4x4 map the classifier is sized for
    form="small",
    default_num_classes=10,
)
def alexnet_cifar(
    *, num_classes: int = 10, in_chans: int = 3, dropout: float = 0.5
) -> AlexNetCifar:
    """AlexNet for 28x28 / 32x32 images: conv1 5x5/1, 3x3/2 pools padded by 1, fc 1024-1024.

    Changed from the ImageNet form because an 11x11/4 stem and three 3x3/2 pools would leave a
    32x32 image at 1x1 after conv2; the five convolutions keep torchvision's widths. 7,706,442
    parameters with 10 classes; 0.23 GMACs per 32x32 image (torch.utils.flop_counter, FLOPs / 2).
    """
    return AlexNetCifar(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
