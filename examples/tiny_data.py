"""Tiny datasets for the examples' --tiny mode (and the tests): a class is a bright square in its
own place on noise, so a few FOCA steps already separate the classes.

    write_imagefolder("data/shapes")   # data/shapes/{train,val}/class<k>/<i>.png, RGB 16x16
    write_arrays("data/gray.npz")      # x_train (N, 28, 28) uint8 grayscale, y_train, x_test, y_test
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def images(n: int, classes: int, size: int, channels: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """-> uint8 (n, size, size, channels) and labels (n,) in class order."""
    t = np.arange(n) % classes
    t.sort()
    x = rng.integers(0, 90, (n, size, size, channels))  # (n, H, W, C) noise
    s = size // 3
    for i, k in enumerate(t):
        y0, x0 = (k * s) % (size - s), (k * 2 * s) % (size - s)
        x[i, y0:y0 + s, x0:x0 + s] += 160  # the class's square
    return x.clip(0, 255).astype(np.uint8), t


def write_imagefolder(root, classes: int = 4, train_per_class: int = 48, val_per_class: int = 16,
                      size: int = 16, seed: int = 0) -> Path:
    from PIL import Image

    rng, root = np.random.default_rng(seed), Path(root)
    for split, per in (("train", train_per_class), ("val", val_per_class)):
        x, t = images(per * classes, classes, size, 3, rng)
        for i, (img, k) in enumerate(zip(x, t)):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


def write_arrays(path, classes: int = 4, n_train: int = 192, n_test: int = 64, size: int = 28, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x_tr, t_tr = images(n_train, classes, size, 1, rng)
    x_te, t_te = images(n_test, classes, size, 1, rng)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    perm = rng.permutation(n_train)  # arrays files are rarely sorted by class
    np.savez(path, x_train=x_tr[perm, :, :, 0], y_train=t_tr[perm], x_test=x_te[:, :, :, 0], y_test=t_te)
    return Path(path)
