"""Small networks the papers used to make a point, for ``convzoo experiment`` (convzoo.experiments).

- ``cnn4_cifar``: the four-layer CIFAR-10 CNN of Krizhevsky, Sutskever & Hinton 2012 (NeurIPS,
  "ImageNet classification with deep convolutional neural networks"), Fig. 1: ReLU vs tanh units.
  The paper gives no layer sizes; this is cuda-convnet's ``layers-18pct`` stack (three 5x5
  convolutions of 32, 32, 64 filters, each followed by 3x3/2 pooling, then one fully connected
  layer), four weight layers, without its response normalisation. ``width`` scales the filters
  (32 = the original; the quick profile uses 16 to fit a 2-core CPU).
- ``cuda_convnet_18pct``: the same paper's Fig. 1 net as cuda-convnet's public
  ``layers-18pct.cfg`` / ``layer-params-18pct.cfg`` define it (Krizhevsky's cuda-convnet,
  example-layers/): conv 5x5 32 -> max-pool 3/2 -> act -> response norm -> conv 5x5 32 -> act ->
  avg-pool 3/2 -> response norm -> conv 5x5 64 -> act -> avg-pool 3/2 -> fc 10; weights N(0, 1e-4)
  in conv1 and N(0, 0.01) elsewhere, biases 0. cuda-convnet's pools cover the map
  (``outputsX=0``: 32 -> 16 -> 8 -> 4), hence ``ceil_mode``. Its ``rnorm`` divides each unit by
  (1 + scale/size^2 * sum of squares over a size x size window of the same map)^pow, size 3,
  scale 5e-5, pow 0.75. Differences: the paper's 0.002 learning rate for biases (twice the
  weights') is not reproduced (one rate for all parameters).
- ``mlp3_mnist``: Ioffe & Szegedy 2015 (ICML, "Batch normalization", arXiv:1502.03167), §4.1 and
  Fig. 1: 28x28 input, three fully connected hidden layers of 100 sigmoid units, weights from
  "small random Gaussian values", a 10-way output; ``batch_norm=True`` adds BN to every hidden
  layer (before the nonlinearity, as Algorithm 1 and §3.2 place it).
- ``vgg_small_cifar``: a VGG-style CIFAR net (Simonyan & Zisserman 2014: stacks of 3x3
  convolutions with 2x2 max-pooling) of three stages of two convolutions, global average pooling
  and one linear layer, with or without BN after every convolution, for Ioffe & Szegedy §4.2.1's
  claim that BN tolerates much higher learning rates (their network was Inception on ImageNet).
- ``cnn_dropout_cifar``: two 3x3 convolution stages and AlexNet's classifier pattern (two large
  fully connected layers, dropout on their inputs, Krizhevsky et al. 2012 §4.2; Srivastava et al.
  2014), small enough to overfit a reduced CIFAR-10 training set on a CPU within minutes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ._common import ZooModel
from ._registry import register_model

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def _act(name: str) -> type[nn.Module]:
    if name not in _ACT:
        raise ValueError(f"activation must be one of {sorted(_ACT)}, got {name!r}")
    return _ACT[name]


class CNN4(ZooModel):
    """conv5x5(w)-pool-conv5x5(w)-pool-conv5x5(2w)-pool-fc: (B, 3, 32, 32) -> (B, classes)."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3,
                 activation: str = "relu", width: int = 32) -> None:
        super().__init__()
        act = _act(activation)
        w = width

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # 32 -> 16 -> 8 -> 4

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, w, 5, padding=2), act(), pool(),  # (B, w, 16, 16)
            nn.Conv2d(w, w, 5, padding=2), act(), pool(),  # (B, w, 8, 8)
            nn.Conv2d(w, 2 * w, 5, padding=2), act(), pool(),  # (B, 2w, 4, 4)
        )
        self.classifier = nn.Linear(2 * w * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(torch.flatten(self.features(x), 1))


class SpatialResponseNorm(nn.Module):
    """cuda-convnet's ``rnorm``: x / (1 + scale * mean of x^2 over a size x size window of the
    same map)^pow; the window is clipped at the border (zero padding adds nothing to the sum,
    the divisor stays size^2, as cuda-convnet's scale/size^2). Not ``nn.LocalResponseNorm``,
    which normalises across channels (cuda-convnet's ``cmrnorm``)."""

    def __init__(self, size: int = 3, scale: float = 5e-5, power: float = 0.75) -> None:
        super().__init__()
        self.size, self.scale, self.power = size, scale, power

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_sq = nn.functional.avg_pool2d(x * x, self.size, stride=1, padding=self.size // 2,
                                           count_include_pad=True)  # (B, C, H, W)
        return x / (1.0 + self.scale * mean_sq).pow(self.power)


class CudaConvnet18(ZooModel):
    """layers-18pct: (B, 3, 32, 32) -> (B, classes); see the module docstring."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3,
                 activation: str = "relu") -> None:
        super().__init__()
        act = _act(activation)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 32, 5, padding=2),  # conv1 (B, 32, 32, 32)
            nn.MaxPool2d(3, stride=2, ceil_mode=True), act(),  # pool1 (B, 32, 16, 16)
            SpatialResponseNorm(),  # rnorm1
            nn.Conv2d(32, 32, 5, padding=2), act(),  # conv2 (B, 32, 16, 16)
            nn.AvgPool2d(3, stride=2, ceil_mode=True),  # pool2 (B, 32, 8, 8)
            SpatialResponseNorm(),  # rnorm2
            nn.Conv2d(32, 64, 5, padding=2), act(),  # conv3 (B, 64, 8, 8)
            nn.AvgPool2d(3, stride=2, ceil_mode=True),  # pool3 (B, 64, 4, 4)
        )
        self.classifier = nn.Linear(64 * 4 * 4, num_classes)  # fc10
        for m in self.modules():  # layers-18pct initW: 0.0001 for conv1, 0.01 for the rest
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=1e-4 if m is self.features[0] else 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(torch.flatten(self.features(x), 1))


class MLP3(ZooModel):
    """Flatten, three hidden layers Linear(-BN)-sigmoid of ``hidden`` units, Linear output."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, image_size: int = 28,
                 hidden: int = 100, depth: int = 3, batch_norm: bool = False,
                 activation: str = "sigmoid", init_std: float = 0.1) -> None:
        super().__init__()
        act = _act(activation)
        layers: list[nn.Module] = [nn.Flatten()]  # (B, C*H*W)
        width = in_chans * image_size * image_size
        for _ in range(depth):
            # With BN the layer's bias is redundant (BN's beta replaces it, §3.2).
            layers.append(nn.Linear(width, hidden, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(act())
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        for m in self.modules():  # §4.1: "small random Gaussian values"; std is ours (not given)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.net(x)


class VGGSmall(ZooModel):
    """Three stages of [conv3x3(-BN)-ReLU] x 2 + max-pool 2, global average pool, linear."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, width: int = 32,
                 batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for out in (width, 2 * width, 4 * width):
            for _ in range(2):
                layers.append(nn.Conv2d(c, out, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                c = out
            layers.append(nn.MaxPool2d(2))  # 32 -> 16 -> 8 -> 4
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)
        for m in self.modules():  # He et al. 2015 init, as torchvision's VGG
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.features(x)  # (B, 4w, 4, 4)
        return self.head(x.mean(dim=(2, 3)))  # (B, classes)


class CNNDropout(ZooModel):
    """[conv3x3-ReLU] x 2 + pool, twice; then dropout-fc-ReLU-dropout-fc-ReLU-fc (AlexNet §4.2)."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 3, width: int = 32,
                 fc: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, w, 16, 16)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 2w, 8, 8)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 2w*64)
            nn.Dropout(p=dropout),
            nn.Linear(2 * w * 64, fc), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True),
            nn.Linear(fc, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(self.features(x))


_SMALL = dict(family="experimental", input_size=(3, 32, 32), min_size=32, form="small",
              default_num_classes=10)


@register_model(paper="Krizhevsky et al. 2012, Fig. 1",
                **{**_SMALL, "min_size": 25, "max_size": 32})  # 25..32 all pool to 4x4
def cnn4_cifar(*, num_classes: int = 10, in_chans: int = 3,
               activation: Literal["relu", "tanh", "sigmoid"] = "relu", width: int = 32) -> CNN4:
    """Fig. 1's four-layer CIFAR-10 CNN (cuda-convnet layers-18pct sizes, no LRN); 89,578
    parameters at width 32 with 10 classes."""
    return CNN4(num_classes=num_classes, in_chans=in_chans, activation=activation, width=width)


@register_model(paper="Krizhevsky et al. 2012, Fig. 1; cuda-convnet layers-18pct",
                **{**_SMALL, "max_size": 39})  # 32..39 px all pool to fc10's 4x4
def cuda_convnet_18pct(*, num_classes: int = 10, in_chans: int = 3,
                       activation: Literal["relu", "tanh"] = "relu") -> CudaConvnet18:
    """cuda-convnet's layers-18pct net with its initialisation (89,578 parameters with 10
    classes); meant for raw 0-255 pixels minus the mean, as cuda-convnet fed it."""
    return CudaConvnet18(num_classes=num_classes, in_chans=in_chans, activation=activation)


@register_model(family="experimental", paper="Ioffe & Szegedy 2015, Fig. 1", input_size=(1, 28, 28),
                min_size=28, max_size=28, form="small", default_num_classes=10)
def mlp3_mnist(*, num_classes: int = 10, in_chans: int = 1, hidden: int = 100,
               batch_norm: bool = False, init_std: float = 0.1) -> MLP3:
    """Ioffe & Szegedy's 3x100 sigmoid MLP for 28x28 digits; ``batch_norm`` adds BN to each
    hidden layer. 99,710 parameters without BN (10 classes)."""
    return MLP3(num_classes=num_classes, in_chans=in_chans, hidden=hidden,
                batch_norm=batch_norm, init_std=init_std)


@register_model(paper="Simonyan & Zisserman 2014 (style); Ioffe & Szegedy 2015, §4.2.1",
                **{**_SMALL, "min_size": 8})  # three 2x2 pools
def vgg_small_cifar(*, num_classes: int = 10, in_chans: int = 3, width: int = 32,
                    batch_norm: bool = False) -> VGGSmall:
    """A six-convolution VGG-style CIFAR net with or without BN (288,298 parameters at width 32
    without BN)."""
    return VGGSmall(num_classes=num_classes, in_chans=in_chans, width=width, batch_norm=batch_norm)


@register_model(paper="Krizhevsky et al. 2012 §4.2; Srivastava et al. 2014",
                **{**_SMALL, "max_size": 35})
def cnn_dropout_cifar(*, num_classes: int = 10, in_chans: int = 3, width: int = 32, fc: int = 512,
                      dropout: float = 0.5) -> CNNDropout:
    """Four 3x3 convolutions and two dropout-regularised fc layers of ``fc`` units."""
    return CNNDropout(num_classes=num_classes, in_chans=in_chans, width=width, fc=fc,
                      dropout=dropout)
