"""An MLP trunk, so scaled runs minifoca's problems (digits as 1x8x8 images) with the same engine.

    build_model("mlp-64-256-256-32", 10)   # flatten -> [Linear -> BN1d -> ReLU] x 3, D = 32

The layers are minifoca.models.MLP's with bn=True, in the same order and with the same init
(He normal, N(0, 2/fan_in)), so scaled/convert.py maps parameters one to one: layer i's Linear is
`trunk.layers.{3i}`, its BatchNorm1d `trunk.layers.{3i+1}`. The "head" is the identity: the MLP's
last ReLU output is the feature f (N, D).
"""
from __future__ import annotations

import math

from torch import nn


class MLPTrunk(nn.Module):
    """x (N, C, H, W) or (N, D_in) -> f (N, D) = [Linear(no bias) -> BN1d -> ReLU] x L."""

    def __init__(self, widths):
        super().__init__()
        layers = []
        for d_in, h in zip(widths[:-1], widths[1:]):
            lin = nn.Linear(d_in, h, bias=False)  # BN's beta makes a bias redundant
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0 / d_in))  # minifoca's He init
            layers += [lin, nn.BatchNorm1d(h), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x):
        return self.layers(x.flatten(1))  # (N, D)


class IdentityHead(nn.Module):
    """The MLP's output is already the feature."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = dim

    def forward(self, z):
        return z
