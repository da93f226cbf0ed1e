"""The networks of the PyTorch reproduction, built by name.

    from scaled.models import build_model
    net = build_model("wrn-28-10", num_classes=10, head="D")          # the paper's WRN
    net = build_model("pyramidnet-272-200", 100, shakedrop=True)       # the paper's PyramidNet
    f = net.compute_features(x)   # x (N, 3, H, W) normalised float -> f (N, D), D = 128 for head D
    logits = net(x)               # = net.classifier(f), (N, K); net.classifier is nn.Linear(D, K)

Names: "mlp-<D_in>-<H>-...-<D>" (minifoca's MLP with BN, for cross-checks and digits),
"wrn-<depth>-<k>" (depth 6n+4: wrn-28-10 the paper's, wrn-16-2, wrn-10-1 for tests) and
"pyramidnet-<depth>-<alpha>" (bottleneck, depth 9n+2: pyramidnet-272-200 the paper's,
pyramidnet-11-8 for tests). Heads "A" "B" "C" "D" are Table 1's rows (head.py says what each is;
D, the GAP -> 2-LP head, is the paper's). `image_size` only matters for heads A and B, whose
flattened feature size depends on it (32 for CIFAR, 64 for Tiny ImageNet).

Randomness: only ShakeDrop draws inside the network, from the device's default generator unless
`net.set_generator(torch.Generator(device))` is called after the model is moved to that device.

Networks from elsewhere (external.py): "torchvision:NAME", "timm:NAME" and "package.module:factory",
each with its classifier removed and Table 1's head on its last map or pooled features.
`in_channels` is the images' channel count (1 for grayscale; every network here takes any).
"""
from __future__ import annotations

import re

from .external import build_external, is_external
from .head import HEADS, FeatureHead, FeatureNet
from .mlp import IdentityHead, MLPTrunk
from .pyramidnet import PyramidNet
from .shakedrop import ShakeDrop, ShakeDropFunction, draw_shakedrop, survival_prob
from .wrn import WideResNet

__all__ = ["build_model", "build_external", "is_external", "MLPTrunk", "IdentityHead", "FeatureNet", "FeatureHead", "HEADS", "WideResNet", "PyramidNet",
           "ShakeDrop", "ShakeDropFunction", "draw_shakedrop", "survival_prob"]


def build_model(name: str, num_classes: int, head: str = "D", image_size: int = 32,
                shakedrop: bool = False, hidden: int = 128, wrn_block: str = "authors",
                shakedrop_gate: str = "batch", in_channels: int = 3) -> FeatureNet:
    """A FeatureNet by name; raises ValueError with the accepted forms for an unknown name.

    shakedrop: PyramidNet only (the "+ ShakeDrop" rows); hidden: the 2-LP width (128 in the paper);
    wrn_block: "authors" (the FOCA code's block, the default) or "zagoruyko" (wrn.py says how they
    differ); shakedrop_gate: "batch" (the authors') or "sample" (shakedrop.py).
    """
    if is_external(name):  # torchvision:NAME, timm:NAME, package.module:factory
        if shakedrop:
            raise ValueError(f"shakedrop=True is for PyramidNet, not {name}")
        return build_external(name, num_classes, head, image_size, in_channels, hidden)
    if name.lower().startswith("mlp-"):  # mlp-<D_in>-<H>-...-<D>: minifoca's MLP (head ignored)
        widths = [int(w) for w in name.split("-")[1:]]
        return FeatureNet(MLPTrunk(widths), IdentityHead(widths[-1]), num_classes)
    m = re.fullmatch(r"(wrn|pyramidnet)-(\d+)-(\d+)", name.lower())
    if m is None:
        raise ValueError(f"unknown network {name!r}: use wrn-<depth>-<k> (e.g. wrn-28-10), "
                         "pyramidnet-<depth>-<alpha> (e.g. pyramidnet-272-200), torchvision:NAME, timm:NAME "
                         "or package.module:factory")
    if image_size % 4:
        raise ValueError(f"image_size={image_size}: must be divisible by 4 (two stride-2 stages)")
    family, depth, third = m.group(1), int(m.group(2)), int(m.group(3))
    if family == "wrn":
        if shakedrop:
            raise ValueError("shakedrop=True is for PyramidNet; WRN has no ShakeDrop variant here")
        trunk = WideResNet(depth, third, wrn_block, in_channels)
    else:
        trunk = PyramidNet(depth, third, shakedrop=shakedrop, gate=shakedrop_gate, in_channels=in_channels)
    spatial = (image_size // 4) ** 2
    return FeatureNet(trunk, FeatureHead(head, trunk.out_channels, spatial, hidden), num_classes)
