"""Toy datasets in the plane, drawn from a NumPy Generator passed in (never global state).

    spirals(n, rng, arms=3)   K-arm spirals: the point-like collapse demo (3 arms) and a 2-class toy
    moons(n, rng)             two interleaved half circles: the co-adaptation demo's 2-class problem
    circles(n, rng)           two concentric rings: a second 2-class problem

Every generator returns x (N, 2) float64 and t (N,) int64 with classes as balanced as N allows,
in random order. `toy_dataset` draws train, validation and test splits from one rng and wraps
them in minifoca's Dataset, so minifoca's training functions take them unchanged.
"""
from __future__ import annotations

import numpy as np

from minifoca.data import Dataset


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)  # (N,) each class n // k or n // k + 1 times


def spirals(n: int, rng: np.random.Generator, arms: int = 3, noise: float = 0.15,
            turns: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Arm k: radius s and angle 2 pi (k / arms + turns * s) for s ~ U(0, 1), plus Gaussian noise
    of std `noise` radians on the angle (the cs231n convention, so the arms stay separable away
    from the centre and overlap only near it, where the radius is small)."""
    t = _balanced_labels(n, arms, rng)
    s = rng.uniform(0.0, 1.0, n)  # (N,) position along the arm = radius
    angle = 2 * np.pi * (t / arms + turns * s) + noise * rng.standard_normal(n)  # (N,)
    x = s[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (N, 2)
    return x, t.astype(np.int64)


def moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's make_moons (same shapes, centred), with isotropic Gaussian noise of std `noise`."""
    t = _balanced_labels(n, 2, rng)
    a = rng.uniform(0.0, np.pi, n)  # (N,) angle along the half circle
    upper = np.stack([np.cos(a), np.sin(a)], axis=1)  # (N, 2)
    lower = np.stack([1 - np.cos(a), 0.5 - np.sin(a)], axis=1)  # (N, 2)
    x = np.where(t[:, None] == 0, upper, lower) - np.array([0.5, 0.25])  # centred at the origin
    return x + noise * rng.standard_normal((n, 2)), t.astype(np.int64)


def circles(n: int, rng: np.random.Generator, noise: float = 0.1,
            factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's make_circles: class 0 on the unit circle, class 1 on radius `factor`."""
    t = _balanced_labels(n, 2, rng)
    a = rng.uniform(0.0, 2 * np.pi, n)  # (N,)
    r = np.where(t == 0, 1.0, factor)  # (N,)
    x = r[:, None] * np.stack([np.cos(a), np.sin(a)], axis=1)  # (N, 2)
    return x + noise * rng.standard_normal((n, 2)), t.astype(np.int64)


GENERATORS = {"spirals3": lambda n, rng, noise: spirals(n, rng, 3, noise),
              "spirals2": lambda n, rng, noise: spirals(n, rng, 2, noise),
              "moons": moons, "circles": circles}


def toy_dataset(name: str, n_train: int, n_test: int, noise: float, rng: np.random.Generator,
                n_val: int = 200) -> Dataset:
    """Independent train / val / test draws of one toy problem as a minifoca Dataset (host arrays;
    move them with minifoca.train.on_device). Validation is only logged, never used to choose."""
    if name not in GENERATORS:
        raise ValueError(f"unknown toy dataset {name!r}: choose {', '.join(GENERATORS)}")
    gen = GENERATORS[name]
    splits = [gen(n, rng, noise) for n in (n_train, n_val, n_test)]
    (x_tr, t_tr), (x_va, t_va), (x_te, t_te) = splits
    k = int(t_tr.max()) + 1
    return Dataset(name, x_tr, t_tr, x_va, t_va, x_te, t_te, k,
                   f"{name}: {n_train} train / {n_test} test drawn fresh per seed, noise {noise}")
