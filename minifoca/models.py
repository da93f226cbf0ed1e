"""F_phi (an MLP feature extractor) and C_theta (a linear classifier with bias), explicit gradients.

F_phi = [Linear -> BN1d -> ReLU] x L with bn=True (the "2-LP" head shape of the 2021 paper:
Linear without bias, since BN's beta makes a bias redundant), or [Linear(+bias) -> ReLU] x L with
bn=False. The feature f is the output of the last ReLU. Parameters are plain dicts of arrays named
like torch's state dict (see scaled/convert.py): layer i has "W{i}" and "gamma{i}", "beta{i}"
(bn) or "b{i}" (no bn); BN running statistics live in `state` ("mean{i}", "var{i}").
"""
from __future__ import annotations

import numpy as np

from .backend import to_device
from .layers import (batchnorm_backward, batchnorm_forward, linear_backward, linear_forward,
                     relu_backward, relu_forward)


class MLP:
    """F_phi for flat inputs: widths = (D_in, H_1, ..., D) -> features (N, D)."""

    def __init__(self, widths, bn: bool, rng: np.random.Generator, xp=np, dtype=np.float64,
                 init_std: float | None = None, bn_momentum: float = 0.1, bn_eps: float = 1e-5,
                 linear_last: bool = False):
        """init_std None: He-normal N(0, 2/fan_in) (ReLU nets); a number: N(0, init_std^2), e.g. 0.1
        for the paper's 2-LP head. Weights are drawn on the host so every backend gets the same.
        linear_last: the last layer is a plain Linear with bias (no BN, no ReLU), so features can
        take any sign, e.g. the toy's 2-D features that are drawn in the plane."""
        self.widths, self.bn, self.xp, self.dtype = tuple(widths), bn, xp, dtype
        self.linear_last = linear_last
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps
        self.params, self.state = {}, {}
        for i, (d_in, h) in enumerate(zip(self.widths[:-1], self.widths[1:])):
            std = np.sqrt(2.0 / d_in) if init_std is None else init_std
            self.params[f"W{i}"] = to_device(xp, rng.normal(0.0, std, (h, d_in)), dtype)  # (H, D)
            if self._has_bn(i):  # torch's BatchNorm1d init: gamma 1, beta 0, running mean 0, running var 1
                self.params[f"gamma{i}"] = xp.ones(h, dtype)
                self.params[f"beta{i}"] = xp.zeros(h, dtype)
                self.state[f"mean{i}"], self.state[f"var{i}"] = xp.zeros(h, dtype), xp.ones(h, dtype)
            else:
                self.params[f"b{i}"] = xp.zeros(h, dtype)

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1

    def _has_bn(self, i: int) -> bool:
        return self.bn and not (self.linear_last and i == self.n_layers - 1)

    def _has_relu(self, i: int) -> bool:
        return not (self.linear_last and i == self.n_layers - 1)

    def forward(self, x, train: bool):
        """x (N, D_in) -> f (N, D), cache. train=True uses batch statistics in BN and updates the
        running averages (as torch's train mode does, also under no_grad)."""
        caches, h = [], x
        for i in range(self.n_layers):
            p = self.params
            h, c_lin = linear_forward(h, p[f"W{i}"], None if self._has_bn(i) else p[f"b{i}"])  # (N, H)
            c_bn = c_relu = None
            if self._has_bn(i):
                running = {"mean": self.state[f"mean{i}"], "var": self.state[f"var{i}"]}
                h, c_bn = batchnorm_forward(h, p[f"gamma{i}"], p[f"beta{i}"], running, train,
                                            self.bn_momentum, self.bn_eps)  # (N, H)
                self.state[f"mean{i}"], self.state[f"var{i}"] = running["mean"], running["var"]
            if self._has_relu(i):
                h, c_relu = relu_forward(h)  # (N, H)
            caches.append((c_lin, c_bn, c_relu))
        return h, caches

    def backward(self, df, caches) -> dict:
        """df (N, D) -> gradients of every parameter, named as in self.params."""
        grads, dh = {}, df
        for i in reversed(range(self.n_layers)):
            c_lin, c_bn, c_relu = caches[i]
            if self._has_relu(i):
                dh = relu_backward(dh, c_relu)  # (N, H)
            if self._has_bn(i):
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dh, c_bn)  # (N, H)
            dh, grads[f"W{i}"], db = linear_backward(dh, c_lin)  # (N, D_in)
            if not self._has_bn(i):
                grads[f"b{i}"] = db
        return grads


def init_classifier(n_features: int, n_classes: int, rng: np.random.Generator, xp=np,
                    dtype=np.float64, std: float = 0.1) -> dict:
    """C_theta: W ~ N(0, std^2) (K, D), b = 0 (K,), the weak classifier's init in docs/algorithm.md."""
    return {"W": to_device(xp, rng.normal(0.0, std, (n_classes, n_features)), dtype),
            "b": xp.zeros(n_classes, dtype)}


def classifier_forward(theta: dict, f):
    """f (N, D) -> logits (N, K), cache."""
    return linear_forward(f, theta["W"], theta["b"])


def classifier_backward(dlogits, cache):
    """-> (df (N, D), {"W": dW (K, D), "b": db (K,)})."""
    df, dW, db = linear_backward(dlogits, cache)
    return df, {"W": dW, "b": db}


def copy_params(p: dict) -> dict:
    return {k: v.copy() for k, v in p.items()}
