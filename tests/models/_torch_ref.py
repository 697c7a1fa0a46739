"""PyTorch re-implementations of the zoo's reference architectures (test-only oracle).

torchvision is not a test dependency, so its ResNet, VGG, AlexNet and GoogLeNet
are written out here with its module names (hence its state-dict keys).
Import this module only inside a test that has called ``torch_or_skip()``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


# ---------------------------------------------------------------- small nets
def fashion_cnn(in_channels: int = 1, num_classes: int = 10, side: int = 7) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, num_classes),
    )


def traffic_sign_cnn(in_channels: int = 3, num_classes: int = 43, hidden: int | None = None) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, 4, 5), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(4, 10, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    features = 250
    if hidden:
        layers += [nn.Linear(250, hidden), nn.ReLU()]
        features = hidden
    return nn.Sequential(*layers, nn.Linear(features, num_classes))


def lenet5(in_channels: int = 1, num_classes: int = 10, act: type = nn.Tanh, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(in_channels, 6, 5, padding=padding)), ("act1", act()), ("s2", nn.AvgPool2d(2)),
        ("c3", nn.Conv2d(6, 16, 5)), ("act3", act()), ("s4", nn.AvgPool2d(2)),
        ("c5", nn.Conv2d(16, 120, 5)), ("act5", act()), ("flatten", nn.Flatten()),
        ("f6", nn.Linear(120, 84)), ("act6", act()), ("output", nn.Linear(84, num_classes)),
    ]))


# ---------------------------------------------------------------- AlexNet, VGG (torchvision)
def alexnet(num_classes: int = 1000, device: str = "cpu") -> nn.Module:
    with torch.device(device):
        return nn.Sequential(OrderedDict([
            ("features", nn.Sequential(
                nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))),
            ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),
            ("flatten", nn.Flatten()),
            ("classifier", nn.Sequential(
                nn.Dropout(0.5), nn.Linear(9216, 4096), nn.ReLU(inplace=True),
                nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, num_classes))),
        ]))


def alexnet_2012(num_classes: int = 1000, side: int = 6, p: float = 0.5) -> nn.Sequential:
    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, 11, 4)), ("relu1", nn.ReLU()), ("norm1", lrn()),
        ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU()), ("norm2", lrn()),
        ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(256 * side * side, 4096)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(p)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(p)),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))


VGG_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def vgg(depth: int, batch_norm: bool, num_classes: int = 1000, device: str = "cpu") -> nn.Module:
    with torch.device(device):
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_CFGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(c, v, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            c = v
        return nn.Sequential(OrderedDict([
            ("features", nn.Sequential(*layers)),
            ("avgpool", nn.AdaptiveAvgPool2d((7, 7))),
            ("flatten", nn.Flatten()),
            ("classifier", nn.Sequential(
                nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, num_classes))),
        ]))


# ---------------------------------------------------------------- ResNet (torchvision)
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _layer(block, inplanes: int, planes: int, blocks: int, stride: int):
    out = planes * block.expansion
    down = None
    if stride != 1 or inplanes != out:
        down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    layers = [block(inplanes, planes, stride, down)] + [block(out, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers), out


def resnet(block, depths, num_classes: int = 1000, in_channels: int = 3) -> nn.Sequential:
    parts = [("conv1", nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)), ("bn1", nn.BatchNorm2d(64)),
             ("relu", nn.ReLU(inplace=True)), ("maxpool", nn.MaxPool2d(3, 2, 1))]
    c = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), depths)):
        stage, c = _layer(block, c, planes, n, 1 if i == 0 else 2)
        parts.append((f"layer{i + 1}", stage))
    parts += [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
              ("fc", nn.Linear(c, num_classes))]
    return nn.Sequential(OrderedDict(parts))


def cifar_resnet(n: int, num_classes: int = 10, in_channels: int = 3) -> nn.Sequential:
    parts = [("conv1", nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(16)),
             ("relu", nn.ReLU(inplace=True))]
    c = 16
    for i, planes in enumerate((16, 32, 64)):
        stage, c = _layer(BasicBlock, c, planes, n, 1 if i == 0 else 2)
        parts.append((f"layer{i + 1}", stage))
    parts += [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
              ("fc", nn.Linear(c, num_classes))]
    return nn.Sequential(OrderedDict(parts))


# ---------------------------------------------------------------- GoogLeNet (torchvision)
class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, k5: int = 3) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=k5, padding=k5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


INCEPTIONS = [
    ("inception3a", (192, 64, 96, 128, 16, 32, 32)),
    ("inception3b", (256, 128, 128, 192, 32, 96, 64)),
    ("maxpool3", None),
    ("inception4a", (480, 192, 96, 208, 16, 48, 64)),
    ("inception4b", (512, 160, 112, 224, 24, 64, 64)),
    ("inception4c", (512, 128, 128, 256, 24, 64, 64)),
    ("inception4d", (512, 112, 144, 288, 32, 64, 64)),
    ("inception4e", (528, 256, 160, 320, 32, 128, 128)),
    ("maxpool4", None),
    ("inception5a", (832, 256, 160, 320, 32, 128, 128)),
    ("inception5b", (832, 384, 192, 384, 48, 128, 128)),
]


def googlenet(num_classes: int = 1000, k5: int = 3) -> nn.Sequential:
    parts = [("conv1", BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)),
             ("maxpool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
             ("conv2", BasicConv2d(64, 64, kernel_size=1)),
             ("conv3", BasicConv2d(64, 192, kernel_size=3, padding=1)),
             ("maxpool2", nn.MaxPool2d(3, stride=2, ceil_mode=True))]
    for name, cfg in INCEPTIONS:
        if cfg is None:
            k = 3 if name == "maxpool3" else 2
            parts.append((name, nn.MaxPool2d(k, stride=2, ceil_mode=True)))
        else:
            parts.append((name, Inception(*cfg, k5=k5)))
    parts += [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten()),
              ("dropout", nn.Dropout(0.2)), ("fc", nn.Linear(1024, num_classes))]
    return nn.Sequential(OrderedDict(parts))


# ---------------------------------------------------------------- MobileNet v1, TDNN
def mobilenet_v1(num_classes: int = 1000, alpha: float = 1.0) -> nn.Sequential:
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
              (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    c = int(32 * alpha)
    parts = [("conv1", nn.Conv2d(3, c, 3, 2, 1, bias=False)), ("conv1_bn", bn(c)), ("conv1_relu", nn.ReLU6())]
    for i, (f, s) in enumerate(blocks, start=1):
        f = int(f * alpha)
        parts += [(f"conv_dw_{i}", nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False)),
                  (f"conv_dw_{i}_bn", bn(c)), (f"conv_dw_{i}_relu", nn.ReLU6()),
                  (f"conv_pw_{i}", nn.Conv2d(c, f, 1, bias=False)),
                  (f"conv_pw_{i}_bn", bn(f)), (f"conv_pw_{i}_relu", nn.ReLU6())]
        c = f
    parts += [("global_pool", nn.AdaptiveAvgPool2d(1)), ("dropout", nn.Dropout(1e-3)),
              ("conv_preds", nn.Conv2d(c, num_classes, 1)), ("reshape", nn.Flatten())]
    return nn.Sequential(OrderedDict(parts))


def tdnn(num_classes: int, in_channels: int, channels: int, pool_channels: int, embedding_dim: int):
    context = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))
    widths = (in_channels, channels, channels, channels, channels, pool_channels)
    parts = []
    for i, (k, d) in enumerate(context):
        parts.append((f"tdnn{i + 1}", nn.Sequential(OrderedDict([
            ("conv", nn.Conv1d(widths[i], widths[i + 1], k, dilation=d)),
            ("relu", nn.ReLU()), ("bn", nn.BatchNorm1d(widths[i + 1]))]))))
    parts += [("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten())]
    for name, fan_in in (("segment6", pool_channels), ("segment7", embedding_dim)):
        parts.append((name, nn.Sequential(OrderedDict([
            ("linear", nn.Linear(fan_in, embedding_dim)), ("relu", nn.ReLU()),
            ("bn", nn.BatchNorm1d(embedding_dim))]))))
    parts.append(("output", nn.Linear(embedding_dim, num_classes)))
    return nn.Sequential(OrderedDict(parts))
