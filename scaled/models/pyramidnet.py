"""PyramidNet (Han et al., 2017), bottleneck, additive widening, optional ShakeDrop: the trunk only.

    conv3x3(3 -> 16) -> BN -> 3 stages of n = (depth - 2) / 9 bottleneck blocks (strides 1, 2, 2)
    block l of L = 3n:  width_l = 16 + alpha * l / L  (rounded), output 4 * width_l channels
        BN -> conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1(x4) -> BN [-> ShakeDrop]
        + shortcut: 2x2 average pool where the stride is 2, then zeros for the new channels

This is the authors' CIFAR network (their `PyramidNet(bottleneck=True)`); PyramidNet-272 with
alpha = 200 has 26.2 M trunk parameters (26,200,464; the PyramidNet paper says 26.0 M).
The closing BN-ReLU-pool is left to the head (head.py).
With `shakedrop=True` block l's branch goes through ShakeDrop with survival probability
p_l = 1 - (l / L) * 0.5 (shakedrop.py), its gate drawn per mini-batch (`gate="batch"`, the
authors') or per sample; the shortcut is added out of place on its output.
Conv weights are Kaiming-normal with fan_out (the authors' N(0, 2 / (k*k*C_out))).
64x64 inputs (Tiny ImageNet) run through the same trunk and end in a 16x16 map (see wrn.py).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .shakedrop import ShakeDrop, survival_prob
from .wrn import init_conv_bn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int, p_survive: float | None, gate: str = "batch"):
        super().__init__()
        c_out = width * self.expansion
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.Conv2d(c_in, width, 1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shakedrop = ShakeDrop(p_survive, gate) if p_survive is not None else None
        self.stride, self.pad_channels = stride, c_out - c_in
        if self.pad_channels < 0:
            raise ValueError(f"PyramidNet block narrows {c_in} -> {c_out} channels; alpha must be >= 0")

    def forward(self, x):  # x (N, C_in, H, W)
        r = self.branch(x)  # (N, C_out, H/s, W/s)
        if self.shakedrop is not None:
            r = self.shakedrop(r)
        s = F.avg_pool2d(x, 2, 2, ceil_mode=True) if self.stride == 2 else x  # (N, C_in, H/s, W/s)
        s = F.pad(s, (0, 0, 0, 0, 0, self.pad_channels))  # (N, C_out, H/s, W/s) zero channels appended
        return r + s  # out of place: r may be ShakeDrop's output


class PyramidNet(nn.Module):
    """x (N, C, H, W) -> last feature map (N, 4 * (16 + alpha), H/4, W/4), not yet BN-ReLU'd (C = in_channels)."""

    def __init__(self, depth: int, alpha: float, shakedrop: bool = False, p_last: float = 0.5,
                 gate: str = "batch", in_channels: int = 3):
        super().__init__()
        if depth < 11 or (depth - 2) % 9:
            raise ValueError(f"bottleneck PyramidNet depth {depth}: must be 9n + 2 with n >= 1 (11, 20, ..., 272)")
        n = (depth - 2) // 9
        num_blocks = 3 * n
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        blocks, c, w = [], 16, 16.0
        for l in range(1, num_blocks + 1):
            w += alpha / num_blocks  # additive widening: the width grows by alpha over the whole net
            stride = 2 if l in (n + 1, 2 * n + 1) else 1
            p = survival_prob(l, num_blocks, p_last) if shakedrop else None
            blocks.append(Bottleneck(c, int(round(w)), stride, p, gate))
            c = int(round(w)) * Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = c
        init_conv_bn(self)

    def forward(self, x):  # x (N, C, H, W)
        return self.blocks(self.stem(x))  # (N, 4 * (16 + alpha), H/4, W/4)
