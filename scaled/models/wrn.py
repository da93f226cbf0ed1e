"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis, 2016), pre-activation, no dropout: the trunk only.

    conv3x3(3 -> 16) -> stage(16k, stride 1) -> stage(32k, stride 2) -> stage(64k, stride 2)
    each stage: n = (d - 4) / 6 blocks  BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut

Two block variants (`block=`), which differ only where the width or the stride changes:

    "authors"    the FOCA authors' code (DensoITLab/FOCA-v1), which the paper's numbers came from:
                 the stride on the SECOND 3x3 conv, and the 1x1 projection shortcut applied to the
                 RAW block input x. The first conv of a downsampling block then runs at the full
                 resolution: WRN-28-10 costs 5.95 GMAC per 32x32 image instead of 5.24.
    "zagoruyko"  the original WRN code: the stride on the first conv, and the projection applied
                 to the pre-activated input relu(bn1(x)).

Where the block keeps width and stride the shortcut is the identity on x in both. The closing
BN-ReLU of the original network is left to the head (head.py), because Table 1 varies it. WRN-28-10 (widths 16/160/320/640, 4 blocks per
stage) has 36.47 M trunk parameters; the full network with its 10-way classifier the well-known
36.5 M. Conv weights are Kaiming-normal with fan_out (the authors' init); BN gamma 1, beta 0.

Any input size divisible by 4 works; Tiny ImageNet's 64x64 runs through the same trunk and ends in
a 16x16 map instead of 8x8, which the head's global average pooling absorbs (the usual practice for
CIFAR-style networks on 64x64 images; no extra stride or pooling in the stem).
"""
from __future__ import annotations

import torch
from torch import nn


def init_conv_bn(net: nn.Module) -> None:
    """The authors' init for both trunks: Kaiming-normal (fan_out) convs, BN gamma 1 and beta 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BLOCKS = ("authors", "zagoruyko")


class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, block: str = "authors"):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"wrn_block={block!r}: choose one of {', '.join(BLOCKS)}")
        self.authors = block == "authors"
        s1, s2 = (1, stride) if self.authors else (stride, 1)
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, s1, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, s2, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):  # x (N, C_in, H, W)
        a = torch.relu(self.bn1(x))  # (N, C_in, H, W) pre-activation
        r = self.conv2(torch.relu(self.bn2(self.conv1(a))))  # (N, C_out, H/s, W/s)
        if self.shortcut is None:
            return r + x
        return r + self.shortcut(x if self.authors else a)  # the authors project the raw input


class WideResNet(nn.Module):
    """x (N, C, H, W) -> last feature map (N, 64k, H/4, W/4), not yet BN-ReLU'd (C = in_channels, 3 for RGB)."""

    def __init__(self, depth: int, width: int, block: str = "authors", in_channels: int = 3):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth {depth}: must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...)")
        if width < 1:
            raise ValueError(f"WRN width factor {width}: must be >= 1")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks, c = [], widths[0]
        for stage, c_out in enumerate(widths[1:]):
            for i in range(n):
                blocks.append(PreActBlock(c, c_out, 2 if stage > 0 and i == 0 else 1, block))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = c
        init_conv_bn(self)

    def forward(self, x):  # x (N, C, H, W)
        return self.blocks(self.conv(x))  # (N, 64k, H/4, W/4)
