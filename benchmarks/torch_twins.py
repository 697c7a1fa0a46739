"""The PyTorch twins of the benchmarked striate models (same layers, same state-dict keys)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def fashion_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (conv1, bn1, relu, conv2, bn2, downsample)."""

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


def resnet20(in_channels: int = 3, num_classes: int = 10) -> nn.Sequential:
    """He et al.'s CIFAR ResNet-20 with projection shortcuts, as striate's zoo builds it."""
    parts = [("conv1", nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)),
             ("bn1", nn.BatchNorm2d(16)), ("relu", nn.ReLU(inplace=True))]
    cin = 16
    for i, planes in enumerate((16, 32, 64)):
        blocks = []
        for j in range(3):
            blocks.append(BasicBlock(cin, planes, 2 if (i > 0 and j == 0) else 1))
            cin = planes
        parts.append((f"layer{i + 1}", nn.Sequential(*blocks)))
    parts += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
              ("fc", nn.Linear(64, num_classes))]
    return nn.Sequential(OrderedDict(parts))
