"""The feature heads of Table 1 (2021 paper) and FeatureNet = trunk + head + linear classifier.

A trunk maps images (N, 3, H, W) to its last feature map (N, C, h, w), h = H/4 (two stride-2
stages), *before* any closing BN-ReLU: in a pre-activation network that closing BN-ReLU belongs to
what Table 1 varies. Every head ends in the FOCA feature f (N, D); the classifier is Linear(D, K).

    row  Table 1 (WRN-28-10, CIFAR-10)   head here                                    D
    A    plain FOCA          3.90        ReLU -> flatten                              C*h*w
    B    + BN                3.19        BN -> ReLU -> flatten                        C*h*w
    C    + GAP features      2.96        BN -> ReLU -> global average pool            C
    D    + GAP -> 2-LP       2.63        BN -> ReLU -> GAP -> [Linear(no bias) -> BN1d -> ReLU] x 2   128

C and D are the authors' released head exactly. A and B are our interpretation; the paper names
them only "plain FOCA" and "+ BN", cumulatively below C. Since C adds global pooling, A and B must
use the un-pooled last feature map, and since B adds BN, A must lack it; so A is the ICML 2019
setting, a weak classifier on the raw (unnormalised) last conv activations, flattened, and B puts
back the pre-activation network's closing BN before the ReLU. Each row then adds exactly one thing
to the row above, which is what a cumulative ablation table says. The flattened dimension is large
(WRN-28-10 at 32x32: 640*8*8 = 40,960), which is part of why the later rows help a weak
classifier fitted on ~10 examples per class.
"""
from __future__ import annotations

import torch
from torch import nn

HEADS = ("A", "B", "C", "D")


def _linear_init(layer: nn.Linear, std: float = 0.1):
    # docs/algorithm.md: the 2-LP's Linear layers and the classifier's W are drawn from N(0, 0.1^2).
    nn.init.normal_(layer.weight, 0.0, std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class FeatureHead(nn.Module):
    """One of Table 1's heads on a trunk output with `channels` channels and `spatial` = h*w."""

    def __init__(self, variant: str, channels: int, spatial: int, hidden: int = 128, layers: int = 2,
                 vector: bool = False):
        super().__init__()
        if variant not in HEADS:
            raise ValueError(f"head={variant!r}: choose one of {', '.join(HEADS)} (Table 1's rows)")
        if vector and variant in ("A", "B"):
            raise ValueError(f"head {variant} flattens the last feature map, but this network returns pooled "
                             f"features (N, {channels}): use --head=C or --head=D")
        self.variant = variant
        bn = nn.BatchNorm1d if vector else nn.BatchNorm2d
        self.bn = bn(channels) if variant != "A" else nn.Identity()
        mlp, d = [], channels
        if variant == "D":
            for _ in range(layers):  # no Linear bias: BN1d's beta makes it redundant
                lin = nn.Linear(d, hidden, bias=False)
                _linear_init(lin)
                mlp += [lin, nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
                d = hidden
        self.mlp = nn.Sequential(*mlp)
        self.out_dim = {"A": channels * spatial, "B": channels * spatial, "C": channels, "D": hidden}[variant]

    def forward(self, z):  # z (N, C, h, w), the trunk's last feature map, or (N, C) pooled features
        z = torch.relu(self.bn(z))  # (N, C, h, w) or (N, C)
        if z.dim() == 2:  # already pooled (heads C and D only)
            return self.mlp(z)  # (N, C) -> (N, D)
        if self.variant in ("A", "B"):
            return z.flatten(1)  # (N, C*h*w)
        return self.mlp(z.mean(dim=(2, 3)))  # (N, C) -> (N, D)


class FeatureNet(nn.Module):
    """F_phi = head(trunk(x)) and C_theta = `classifier`, an nn.Linear(D, K) with bias.

    compute_features(x) -> (N, D) features (FOCA trains these against weak classifiers)
    forward(x)          -> (N, K) logits of `classifier`, the E2E model
    feature_dim         D
    """

    def __init__(self, trunk: nn.Module, head: FeatureHead, num_classes: int):
        super().__init__()
        self.trunk, self.head = trunk, head
        self.feature_dim = head.out_dim
        self.classifier = nn.Linear(head.out_dim, num_classes)
        _linear_init(self.classifier)  # W ~ N(0, 0.1^2), b = 0: the weak classifier's init too

    def compute_features(self, x):  # x (N, C, H, W) normalised
        return self.head(self.trunk(x))  # (N, D)

    def forward(self, x):
        return self.classifier(self.compute_features(x))  # (N, K)

    def set_generator(self, generator: torch.Generator | None):
        """Route every random draw inside the network (ShakeDrop) to `generator` (on the model's device)."""
        for m in self.modules():
            if hasattr(m, "generator"):
                m.generator = generator
        return self
