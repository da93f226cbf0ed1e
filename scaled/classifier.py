"""C_theta's initial draw, the one piece that foca.py (the eager ComputeClassifier, stage 2) and
weak_graph.py (the same steps as a CUDA graph) share; its own module so that neither imports the
other. The cross-checks replace foca.init_classifier (the name foca.py calls) to hand in the host's
draws, so foca.py keeps calling it through its own namespace."""
from __future__ import annotations

import torch


def init_classifier(n_features: int, n_classes: int, std: float, gen, device, dtype=torch.float32) -> dict:
    """C_theta's init (minifoca.models.init_classifier): W ~ N(0, std^2) (K, D), b = 0 (K,)."""
    return {"W": torch.randn(n_classes, n_features, generator=gen, device=device, dtype=dtype) * std,
            "b": torch.zeros(n_classes, device=device, dtype=dtype)}
