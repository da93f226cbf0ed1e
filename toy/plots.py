"""The toy figures (matplotlib's object API, no pyplot: no display needed, no global state).

    toy_coadapt.png          part 1: inputs, E2E and FOCA features with boundaries, the constructed
                             co-adapted solution, both objectives and the probes against the warp
    toy_fragility.png        part 1: the probes for trained E2E, trained FOCA and the co-adapted case
    toy_collapse.png         part 2: spirals and digits features per method, per-seed trace ratios
    toy_collapse_curves.png  part 2: trace ratio and within-class spread of the test features vs step
    toy_pca.png              part 2: the paper-style 2-D PCA histograms (minifoca.plots.pca_histograms)
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from minifoca.plots import pca_histograms

COLORS = {"e2e": "tab:red", "foca": "tab:blue", "coadapted": "tab:purple"}
NAMES = {"e2e": "E2E", "foca": "FOCA", "coadapted": "co-adapted (constructed)"}
MAX_POINTS = 1000  # points drawn per scatter: enough to see the shape, small PNGs
FLOOR = 0.01  # errors (%) are drawn on a log axis; 0 is shown at this floor


def _sub(n: int) -> np.ndarray:
    return np.arange(n) if n <= MAX_POINTS else np.linspace(0, n - 1, MAX_POINTS).astype(int)


def _limits(f, pad: float = 0.1):
    """A square box around the bulk of f (0.5-99.5 percentiles): with equal axes, so shapes,
    spreads and angles in the plane are drawn true."""
    lo, hi = np.percentile(f, 0.5, axis=0), np.percentile(f, 99.5, axis=0)
    c, r = (lo + hi) / 2, (1 + pad) * (hi - lo).max() / 2
    return c - r, c + r


def scatter(ax, f, t, title: str, theta=None, weak=(), extra_thetas=()):
    """Points coloured by class; with theta, its decision regions shaded and (2 classes) its boundary
    drawn; weak: (W, b) pairs drawn as thin grey lines; extra_thetas: (theta, style) dashed lines."""
    lo, hi = _limits(f)
    if theta is not None:
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (G, 2)
        region = (grid @ theta["W"].T + theta["b"]).argmax(axis=1).reshape(gx.shape)
        ax.contourf(gx, gy, region, levels=np.arange(theta["W"].shape[0] + 1) - 0.5, cmap="tab10",
                    vmin=0, vmax=9, alpha=0.12)
    for W, b in weak:
        _line(ax, W, b, lo, hi, color="0.55", lw=0.6, alpha=0.8)
    if theta is not None and theta["W"].shape[0] == 2:
        _line(ax, theta["W"], theta["b"], lo, hi, color="k", lw=1.4)
    for th, style in extra_thetas:
        _line(ax, th["W"], th["b"], lo, hi, color="k", lw=1.0, ls=style)
    i = _sub(len(t))
    ax.scatter(f[i, 0], f[i, 1], c=t[i], cmap="tab10", vmin=0, vmax=9, s=4, alpha=0.7, linewidths=0)
    ax.set_xlim(lo[0], hi[0]), ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _line(ax, W, b, lo, hi, **style):
    """The 2-class boundary (W_1 - W_0) . f + (b_1 - b_0) = 0 inside the box [lo, hi]."""
    w, c = W[1] - W[0], b[1] - b[0]
    if abs(w[1]) > abs(w[0]):
        xs = np.array([lo[0], hi[0]])
        ax.plot(xs, -(c + w[0] * xs) / w[1], **style)
    else:
        ys = np.array([lo[1], hi[1]])
        ax.plot(-(c + w[1] * ys) / w[0], ys, **style)


def _band(ax, x, runs, color, label):
    """Mean line and a +-1 std band over seeds (runs: list of equal-length sequences)."""
    y = np.asarray(runs, dtype=np.float64)
    m, s = y.mean(axis=0), y.std(axis=0)
    ax.plot(x, m, color=color, label=label, lw=1.5)
    ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, lw=0)


def coadapt_figure(pic: dict, seeds: list[dict], path, rotated_thetas) -> None:
    """pic: the picture seed's arrays; seeds: every seed's coadapt results; rotated_thetas: the E2E
    classifier turned by +-rotate_deg (for panel d)."""
    fig = Figure(figsize=(12, 7.6))
    ax = fig.subplots(2, 3).ravel()
    t = pic["t"]
    scatter(ax[0], pic["x"], t, "(a) inputs: 2 classes (moons)")
    scatter(ax[1], pic["e2e"], t, "(b) E2E features, its boundary;\ngrey: weak classifiers on them",
            pic["theta_e2e"], pic["weak"]["e2e"])
    scatter(ax[2], pic["foca"], t, "(c) FOCA features, stage-2 boundary;\ngrey: weak classifiers on them",
            pic["theta_foca"], pic["weak"]["foca"])
    scatter(ax[3], pic["coadapted"], t, f"(d) constructed: (b) warped along the ignored\n"
            f"direction, a = {pic['warp']:g}: same E2E loss. Dashed: +-{pic['rotate_deg']:g} deg",
            pic["theta_e2e"], extra_thetas=[(th, "--") for th in rotated_thetas])
    a = seeds[0]["curve"]["a"]
    for key, name in (("e2e_objective", "E2E objective (its classifier)"),
                      ("foca_objective", "FOCA objective (E over weak classifiers)")):
        rel = [np.asarray(s["curve"][key]) / s["curve"][key][0] for s in seeds]
        _band(ax[4], a, rel, COLORS[key.split("_")[0]], name)
    ax[4].axhline(1.0, color="0.6", lw=0.6)
    ax[4].set_xlabel("warp amplitude a (stds of the used direction)")
    ax[4].set_ylabel("objective / objective at a = 0")
    ax[4].set_title(f"(e) objectives of the warped E2E solution, {len(seeds)} seeds", fontsize=9)
    ax[4].legend(fontsize=7, loc="upper left")
    for key, color in (("few_label_error", "tab:green"), ("rotated_error", "tab:orange"), ("noisy_error", "tab:gray")):
        _band(ax[5], a, [np.maximum(np.asarray(s["curve"][key]) * 100, FLOOR) for s in seeds], color,
              key.replace("_", " "))
        ax[5].axhline(100 * np.mean([s["cases"]["foca"][key] for s in seeds]), color=color, ls=":", lw=1)
    ax[5].set_yscale("log")
    ax[5].set_xlabel("warp amplitude a")
    ax[5].set_ylabel("test error (%)")
    ax[5].set_title("(f) fragility of the warped E2E solution\n(dotted: trained FOCA, mean)", fontsize=9)
    ax[5].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def fragility_figure(seeds: list[dict], path) -> None:
    """Each probe's test error for the three cases, one dot per seed and the mean as a bar."""
    probes = ("test_error", "few_label_error", "rotated_error", "noisy_error")
    cases = ("e2e", "foca", "coadapted")
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    for j, case in enumerate(cases):
        for i, p in enumerate(probes):
            v = np.maximum(100 * np.array([s["cases"][case][p] for s in seeds]), FLOOR)
            x = i + (j - 1) * 0.25
            ax.bar(x, v.mean(), width=0.22, color=COLORS[case], alpha=0.35, label=NAMES[case] if i == 0 else None)
            ax.scatter(np.full(len(v), x), v, color=COLORS[case], s=10, zorder=3)
    ax.set_xticks(range(len(probes)), ["own classifier", "re-fit on 1 label/class",
                                       "boundary rotated", "feature noise"], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"test error (%, log; 0 drawn at {FLOOR})")
    ax.set_title(f"Fragility probes on the 2-class toy ({len(seeds)} seeds; dots = seeds, bars = mean)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def collapse_figure(spiral_pic: dict, digits_pic: dict | None, per_seed: list[dict], path) -> None:
    fig = Figure(figsize=(12, 7.6))
    ax = fig.subplots(2, 3).ravel()
    t = spiral_pic["t"]
    scatter(ax[0], spiral_pic["x"], t, "(a) inputs: 3-arm spirals")
    scatter(ax[1], spiral_pic["e2e"], t, "(b) E2E features (test), seed 0")
    scatter(ax[2], spiral_pic["foca"], t, "(c) FOCA features (test), seed 0")
    e2e = [r["metrics"]["e2e"]["trace_ratio"] for r in per_seed]
    fo = [r["metrics"]["foca"]["trace_ratio"] for r in per_seed]
    ax[3].scatter(e2e, fo, color="k", s=18)
    top = 1.1 * max(e2e + fo)
    ax[3].plot([0, top], [0, top], color="0.6", lw=0.8, label="equal")
    ax[3].set_xlim(0, top), ax[3].set_ylim(0, top)
    ax[3].set_xlabel("E2E tr(S_b)/tr(S_w)"), ax[3].set_ylabel("FOCA tr(S_b)/tr(S_w)")
    ax[3].set_title(f"(d) spirals: trace ratio per seed ({len(per_seed)} seeds)", fontsize=9)
    ax[3].legend(fontsize=7)
    if digits_pic is not None:
        scatter(ax[4], digits_pic["e2e"], digits_pic["t"], "(e) digits, d = 2: E2E features (test)")
        scatter(ax[5], digits_pic["foca"], digits_pic["t"], "(f) digits, d = 2: FOCA features (test)")
    else:
        ax[4].set_axis_off(), ax[5].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def curves_figure(per_seed: list[dict], path) -> None:
    fig = Figure(figsize=(10, 3.6))
    ax = fig.subplots(1, 2)
    for m in ("e2e", "foca"):
        steps = per_seed[0]["curves"][m]["step"]
        n = min(len(r["curves"][m]["step"]) for r in per_seed)  # seeds record at the same epochs
        for a, key in zip(ax, ("trace_ratio", "within_spread")):
            _band(a, steps[:n], [r["curves"][m][key][:n] for r in per_seed], COLORS[m], NAMES[m])
    ax[0].set_yscale("log"), ax[0].set_ylabel("tr(S_b) / tr(S_w)  (higher = more point-like)")
    ax[1].set_ylabel("sqrt(tr S_w / tr S_t)  (within-class share)")
    for a in ax:
        a.set_xlabel("phi step"), a.legend(fontsize=8)
    fig.suptitle(f"Spirals, test features over training (mean +- std over {len(per_seed)} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def pca_figure(spiral_pic: dict, digits_pic: dict | None, path) -> None:
    feats = {"spirals, E2E": spiral_pic["e2e"], "spirals, FOCA": spiral_pic["foca"]}
    labels = {"spirals, E2E": spiral_pic["t"], "spirals, FOCA": spiral_pic["t"]}
    if digits_pic is not None:
        feats.update({"digits (d = 2), E2E": digits_pic["e2e"], "digits (d = 2), FOCA": digits_pic["foca"]})
        labels.update({"digits (d = 2), E2E": digits_pic["t"], "digits (d = 2), FOCA": digits_pic["t"]})
    pca_histograms(feats, labels, path, title="2-D PCA histograms of normalised test features, "
                   "in the style of the paper's CIFAR-10 figure (numbers: class means)")
