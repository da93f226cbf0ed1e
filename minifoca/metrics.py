"""Feature statistics shared by minifoca, toy and scaled (the same keys everywhere).

Scatter matrices of features f (N, D) with labels t (N,), class means m_k, overall mean m:
    S_w = 1/N sum_i (f_i - m_{t_i})(f_i - m_{t_i})^T          within-class scatter (D, D)
    S_b = 1/N sum_k N_k (m_k - m)(m_k - m)^T                   between-class scatter (D, D)
    trace_ratio       = tr(S_b) / tr(S_w)            scale-free; large when classes are point-like
    fisher_eigenvalue = largest eigenvalue of S_w^+ S_b   the ICML 2019 paper's Fisher-type value
    within_spread     = sqrt(tr(S_w) / tr(S_b + S_w))    within-class spread relative to the total
All are computed on the host in float64 (NumPy), whatever backend produced the features.
"""
from __future__ import annotations

import numpy as np

from .backend import to_host


def error_rate(logits, t) -> float:
    """Fraction of rows whose arg-max is not the target."""
    return float((to_host(logits).argmax(axis=1) != to_host(t)).mean())


def scatter(f, t):
    """-> (S_w (D, D), S_b (D, D))."""
    f, t = to_host(f).astype(np.float64), to_host(t)
    m = f.mean(axis=0)  # (D,)
    s_w, s_b = np.zeros((f.shape[1],) * 2), np.zeros((f.shape[1],) * 2)
    for k in np.unique(t):
        fk = f[t == k]  # (N_k, D)
        mk = fk.mean(axis=0)  # (D,)
        s_w += (fk - mk).T @ (fk - mk)
        s_b += len(fk) * np.outer(mk - m, mk - m)
    return s_w / len(f), s_b / len(f)


def _stats(s_w, s_b) -> dict:
    tw, tb = np.trace(s_w), np.trace(s_b)
    eig = np.linalg.eigvals(np.linalg.pinv(s_w, rcond=1e-10) @ s_b).real
    return {"trace_ratio": float(tb / max(tw, 1e-300)), "fisher_eigenvalue": float(eig.max()),
            "within_spread": float(np.sqrt(tw / max(tw + tb, 1e-300)))}


def feature_stats(f, t) -> dict:
    """trace_ratio, fisher_eigenvalue and within_spread (defined above) under their metric keys.
    fisher_eigenvalue uses the pseudo-inverse of S_w so that directions in which the features do
    not vary at all (dead ReLU units) are dropped instead of divided by zero."""
    return _stats(*scatter(f, t))
