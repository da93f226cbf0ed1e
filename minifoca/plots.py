"""Figures shared by toy/ and scaled/ (matplotlib only; no torch, no cupy).

pca_histograms draws the 2021 paper's feature figure ("2D histograms of normalized CIFAR-10
features projected by PCA. FOCA exhibits well-separated, point-like distribution"): one panel per
method, each method's test features normalised, projected on their own first two principal
components, and binned into a 2-D histogram with a log colour scale, so that point-like classes show
as a few bright dots and diffuse ones as a smear. toy/ uses it for digits with 2-D features;
scaled/ for the 128-d CIFAR-10 features (pass normalise="l2" there if you want unit-norm features).
"""
from __future__ import annotations

import numpy as np

from .backend import to_host

NORMALISE = ("global", "l2", "none")


def normalise_features(f, how: str = "global") -> np.ndarray:
    """f (N, D) -> float64 host array (N, D).
    global  centre, then divide by the root mean squared norm: one scale for the whole set, so the
            shape of the distribution is kept (the choice for 2-D features, which l2 would put on a circle)
    l2      every row divided by its own norm (features of a ReLU layer: the direction carries the class)
    none    as given"""
    f = to_host(f).astype(np.float64)
    if how == "global":
        f = f - f.mean(axis=0)  # (N, D)
        return f / max(np.sqrt((f * f).sum(axis=1).mean()), 1e-300)
    if how == "l2":
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-300)
    if how == "none":
        return f
    raise ValueError(f"normalise={how!r}: choose one of {', '.join(NORMALISE)}")


def pca_2d(f) -> tuple[np.ndarray, np.ndarray]:
    """f (N, D) -> (projection on the first two principal components (N, 2), explained-variance
    fractions (2,)). The sign of each component is fixed (largest loading positive) so reruns agree."""
    f = to_host(f).astype(np.float64)
    fc = f - f.mean(axis=0)  # (N, D)
    _, s, vt = np.linalg.svd(fc, full_matrices=False)  # vt (min(N, D), D)
    vt = vt[:2] * np.sign(vt[:2][np.arange(min(2, len(vt))), np.abs(vt[:2]).argmax(axis=1)])[:, None]
    var = s ** 2 / max((s ** 2).sum(), 1e-300)
    proj = fc @ vt.T  # (N, 2)
    if proj.shape[1] == 1:  # D = 1: a second, empty axis keeps the picture 2-D
        proj, var = np.hstack([proj, np.zeros_like(proj)]), np.append(var, 0.0)
    return proj, var[:2]


def pca_histograms(features: dict, labels=None, path=None, title: str = "", bins: int | None = None,
                   normalise: str = "global", class_names=None):
    """One 2-D PCA histogram panel per entry of `features` ({method name: (N, D) array}).
    labels (N,), or {method name: (N,)} when the panels hold different data, optional: the class
    name or index is written at each class mean. bins None: about 1.5 sqrt(N) per axis (20 to 150),
    so a few hundred points do not dissolve into single counts. Each panel's range is set from its
    own data (the 0.5 and 99.5 percentiles, so a few outliers do not squeeze the picture).
    Saves to `path` (PNG) when given; returns the matplotlib Figure. Uses matplotlib's object API,
    not pyplot, so it needs no display and leaves the caller's backend alone."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not features:
        raise ValueError("pca_histograms needs at least one {method: features} entry")
    n = len(features)
    fig = Figure(figsize=(3.6 * n, 3.7))
    axes = fig.subplots(1, n, squeeze=False)
    for ax, (name, f) in zip(axes[0], features.items()):
        t = labels.get(name) if isinstance(labels, dict) else labels
        t = None if t is None else to_host(t)
        p, var = pca_2d(normalise_features(f, normalise))
        nb = bins or int(np.clip(1.5 * np.sqrt(len(p)), 20, 150))
        lo, hi = np.percentile(p, 0.5, axis=0), np.percentile(p, 99.5, axis=0)
        c, r = (lo + hi) / 2, 0.54 * (hi - lo).max() + 1e-12  # a square box: distances drawn true
        h = ax.hist2d(p[:, 0], p[:, 1], bins=nb, range=[[c[0] - r, c[0] + r], [c[1] - r, c[1] + r]],
                      norm=LogNorm(vmin=1), cmap="magma", cmin=1)[3]
        ax.set_aspect("equal")
        ax.set_facecolor("black")
        if t is not None:
            for k in np.unique(t):
                c = p[t == k].mean(axis=0)
                ax.annotate(str(class_names[k] if class_names is not None else k), c, color="cyan",
                            fontsize=8, ha="center", va="center", xytext=(6, 6), textcoords="offset points")
        ax.set_title(f"{name}\nPC1 {100 * var[0]:.0f}%, PC2 {100 * var[1]:.0f}% of variance", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        bar = fig.colorbar(h, ax=ax, fraction=0.046, pad=0.02, label="count per bin (log)")
        bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
