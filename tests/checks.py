"""Comparison helpers: every failure names the tensor, the max difference and the tolerance."""
from __future__ import annotations

import numpy as np


def rel_diff(got, want) -> float:
    """max |got - want| / max(max |want|, max |got|, 1e-30): scale-free, no blow-up at zeros."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(np.abs(want).max(initial=0.0), np.abs(got).max(initial=0.0), 1e-30)
    return float(np.abs(got - want).max(initial=0.0) / scale)


def assert_close(name: str, got, want, tol: float) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != expected {want.shape}"
    d = rel_diff(got, want)
    assert d <= tol, f"{name}: max relative difference {d:.3e} exceeds tolerance {tol:.0e}"


def numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Centred finite differences of the scalar f() with respect to the array x (changed in place
    and restored): (f(x + h e_i) - f(x - h e_i)) / 2h per element."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g
