"""Layers with explicit gradients: `<layer>_forward(...) -> (out, cache)`, `<layer>_backward(dout, cache)`.

Letters: N batch, D input/feature dim, H output width of a layer, K classes. Weights use torch's
layout, W (H, D) with out = x @ W.T + b, so minifoca and scaled state dicts convert without copies
of meaning. Each backward is derived in docs/gradients.md and checked in tests/test_layers.py
against centred finite differences and torch autograd (float64). Works for NumPy and CuPy arrays:
the array module is taken from the input.
"""
from __future__ import annotations

from .backend import array_module


# --- linear: out = x W^T (+ b) -------------------------------------------------------------------
def linear_forward(x, W, b=None):
    out = x @ W.T  # (N, H)
    if b is not None:
        out = out + b  # (N, H)
    return out, (x, W, b is not None)


def linear_backward(dout, cache):
    """-> (dx, dW, db); db is None for a layer without bias."""
    x, W, has_b = cache
    dx = dout @ W  # (N, D)
    dW = dout.T @ x  # (H, D)
    db = dout.sum(axis=0) if has_b else None  # (H,)
    return dx, dW, db


# --- ReLU ------------------------------------------------------------------------------------------
def relu_forward(x):
    out = x * (x > 0)  # (N, H); multiply rather than maximum so -0.0/NaN behave like torch
    return out, x


def relu_backward(dout, cache):
    x = cache
    return dout * (x > 0)  # (N, H)


# --- BatchNorm1d -----------------------------------------------------------------------------------
def batchnorm_forward(x, gamma, beta, running, train, momentum=0.1, eps=1e-5):
    """torch.nn.BatchNorm1d. Train mode normalises with the batch's biased variance and updates
    `running` (dict with "mean", "var") IN PLACE with the unbiased variance, as torch does;
    eval mode normalises with `running` and leaves it alone."""
    if train:
        n = x.shape[0]
        mean = x.mean(axis=0)  # (H,)
        xc = x - mean  # (N, H)
        var = (xc * xc).mean(axis=0)  # (H,) biased: what the normalisation uses
        running["mean"] = (1 - momentum) * running["mean"] + momentum * mean
        running["var"] = (1 - momentum) * running["var"] + momentum * var * (n / (n - 1))
    else:
        xc = x - running["mean"]  # (N, H)
        var = running["var"]  # (H,)
    inv_std = 1.0 / array_module(x).sqrt(var + eps)  # (H,)
    xhat = xc * inv_std  # (N, H)
    out = gamma * xhat + beta  # (N, H)
    return out, (xhat, gamma, inv_std, train)


def batchnorm_backward(dout, cache):
    """-> (dx, dgamma, dbeta). In train mode mean and variance depend on x, which adds the two
    centring terms; in eval mode they are constants."""
    xhat, gamma, inv_std, train = cache
    dgamma = (dout * xhat).sum(axis=0)  # (H,)
    dbeta = dout.sum(axis=0)  # (H,)
    dxhat = dout * gamma  # (N, H)
    if not train:
        return dxhat * inv_std, dgamma, dbeta
    dx = inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))  # (N, H)
    return dx, dgamma, dbeta


# --- softmax cross-entropy, mean over the batch ----------------------------------------------------
def softmax_ce_forward(logits, t):
    """logits (N, K), integer targets t (N,) -> mean cross-entropy (0-d array)."""
    xp = array_module(logits)
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)  # (N, K) shift for stability; loss unchanged
    logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))  # (N, K)
    loss = -logp[xp.arange(n), t].mean()
    return loss, (logp, t)


def softmax_ce_backward(dloss, cache):
    """-> dlogits (N, K) = dloss * (softmax - onehot) / N."""
    logp, t = cache
    xp = array_module(logp)
    n = logp.shape[0]
    dlogits = xp.exp(logp)  # (N, K) softmax
    dlogits[xp.arange(n), t] -= 1
    return dlogits * (dloss / n)


# --- weight decay as a loss term: 0.5 * wd * sum ||p||^2 ------------------------------------------
def weight_decay_forward(params, wd):
    """params: list of arrays. The penalty whose gradient, wd * p, torch.optim.SGD adds to each
    gradient (our SGD adds it too; this pair exists to write the objective down and test it)."""
    penalty = 0.5 * wd * sum(float((p * p).sum()) for p in params)
    return penalty, (params, wd)


def weight_decay_backward(dpenalty, cache):
    params, wd = cache
    return [dpenalty * wd * p for p in params]
