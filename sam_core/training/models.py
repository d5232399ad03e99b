"""Networks of the training lab, each built from (in_channels, image_size, num_classes).

    mlp        2 hidden layers of 512, ReLU (the fully connected net of the stability experiments)
    lenet5     LeCun et al. 1998 (ReLU, max-pool; the CIFAR LeNet of Stable SAM's Figs. 4–5)
    cnn8       a small CNN for 8×8 digits: conv3(16) → conv3(32) → pool → 64 → classes (~40k parameters)
    resnet20   He et al. 2016, CIFAR ResNet, 3 stages × 3 basic blocks, 16/32/64 channels, option-A shortcuts
    resnet56   same with 9 blocks per stage
    resnet18   the CIFAR ResNet-18 (3×3 stem, no max-pool, 64…512 channels, 1×1 projection shortcuts)
    wrn16_8    Zagoruyko & Komodakis 2016, pre-activation WideResNet, depth 16, width ×8 (davda54/sam's net)
    wrn28_10   the same at depth 28, width ×10
    fast       a small airbench-like net (conv → pool → BN → GELU groups of 64/256/256 channels,
               max-pool head scaled by 1/9) for quick comparisons on a GPU

`build_model(name, dataset_spec, seed)` returns the network with a seeded initialisation, so variants
launched with the same seed start from the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------- small nets
class MLP(nn.Module):
    def __init__(self, in_channels: int, size: int, num_classes: int, width: int = 512, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_channels * size * size
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU(inplace=True)]
            d = width
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    """conv5(6) → pool → conv5(16) → pool → 120 → 84 → classes; 28×28 inputs are padded by 2 (as in 1998).
    Inputs too small for an unpadded second conv (8×8 digits) pad it by 2 as well (8 → 8 → 4 → 4 → 2)."""

    def __init__(self, in_channels: int, size: int, num_classes: int):
        super().__init__()
        pad = 2 if size < 32 else 0
        pad2 = 2 if (size + 2 * pad - 4) // 2 < 6 else 0  # the second conv needs ≥ 5 pixels, the pool ≥ 2
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad2)
        s = ((size + 2 * pad - 4) // 2 + 2 * pad2 - 4) // 2  # spatial size after the two conv/pool stages
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    """For 8×8 digits: conv3(16) → ReLU → conv3(32) → ReLU → max-pool 2 → (4×4) → 64 → classes.
    Larger inputs are average-pooled to 4×4 after the max-pool, so the head stays the same size."""

    def __init__(self, in_channels: int, size: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        if x.shape[-1] != 4 or x.shape[-2] != 4:
            x = F.adaptive_avg_pool2d(x, 4)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


# ------------------------------------------------------------------------------------------- CIFAR ResNets
class _BlockA(nn.Module):
    """He et al.'s CIFAR basic block; option A: the shortcut subsamples and zero-pads channels (no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.extra = stride, c_out - c_in

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra:
            sc = F.pad(sc, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, depth: int, in_channels: int, num_classes: int):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for i, width in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(_BlockA(c, width, 2 if (i > 0 and j == 0) else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _BlockB(nn.Module):
    """ResNet-18 basic block with a 1×1 projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.short = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(64)
        blocks, c = [], 64
        for i, width in enumerate((64, 128, 256, 512)):
            for j in range(2):
                blocks.append(_BlockB(c, width, 2 if (i > 0 and j == 0) else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------------------- WideResNet
class _WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3-BN-ReLU-conv3×3, 1×1 shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.short = None if (stride == 1 and c_in == c_out) else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        sc = x if self.short is None else self.short(o)
        o = self.conv1(o)
        o = F.relu(self.bn2(o))
        if self.dropout:
            o = F.dropout(o, self.dropout, self.training)
        return self.conv2(o) + sc


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, c = [], widths[0]
        for i, width in enumerate(widths[1:]):
            for j in range(n):
                blocks.append(_WideBlock(c, width, 2 if (i > 0 and j == 0) else 1, dropout))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------------------------- airbench-like
class _ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = F.gelu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.bn2(self.conv2(x)))


class FastNet(nn.Module):
    """airbench-style: stem conv, three conv groups (64/256/256), global max-pool, linear ÷ 9."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, int, int] = (64, 256, 256)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.GELU())
        self.groups = nn.Sequential(
            _ConvGroup(32, widths[0]), _ConvGroup(widths[0], widths[1]), _ConvGroup(widths[1], widths[2])
        )
        self.fc = nn.Linear(widths[2], num_classes, bias=False)

    def forward(self, x):
        x = self.groups(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(x, 1), 1)) / 9.0


# ------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    build: Callable[[int, int, int], nn.Module]  # (in_channels, size, num_classes) -> module
    description: str


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        ModelInfo("mlp", "MLP (2×512)", lambda c, s, k: MLP(c, s, k), "fully connected, 2 hidden layers of 512, ReLU"),
        ModelInfo(
            "lenet5", "LeNet-5", lambda c, s, k: LeNet5(c, s, k), "2 conv + 3 fc layers, ~62k parameters on CIFAR"
        ),
        ModelInfo(
            "cnn8",
            "Small CNN (8×8)",
            lambda c, s, k: SmallCNN(c, s, k),
            "2 conv + 2 fc layers for 8×8 digits, ~38k parameters",
        ),
        ModelInfo("resnet20", "ResNet-20", lambda c, s, k: CifarResNet(20, c, k), "CIFAR ResNet, 0.27M parameters"),
        ModelInfo("resnet56", "ResNet-56", lambda c, s, k: CifarResNet(56, c, k), "CIFAR ResNet, 0.85M parameters"),
        ModelInfo("resnet18", "ResNet-18", lambda c, s, k: ResNet18(c, k), "CIFAR ResNet-18, 11M parameters"),
        ModelInfo("wrn16_8", "WRN-16-8", lambda c, s, k: WideResNet(16, 8, c, k), "WideResNet 16-8, 11M parameters"),
        ModelInfo(
            "wrn28_10", "WRN-28-10", lambda c, s, k: WideResNet(28, 10, c, k), "WideResNet 28-10, 36M parameters"
        ),
        ModelInfo(
            "fast", "Fast net (airbench-like)", lambda c, s, k: FastNet(c, k), "small fast CNN for GPU comparisons"
        ),
    ]
}


def build_model(name: str, in_channels: int, size: int, num_classes: int, seed: int = 0) -> nn.Module:
    """The network `name` with a seeded initialisation (same seed → same initial weights)."""
    try:
        info = MODELS[name]
    except KeyError:
        raise ValueError(f"model: unknown model {name!r}; choose one of {list(MODELS)}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.build(in_channels, size, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
