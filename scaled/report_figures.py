"""The report's figures (scaled/report.py writes the tables; both read scaled/report_runs.py): 2-D
PCA histograms of test features, one panel per finished run (minifoca.plots.pca_histograms, the 2021
paper's figure: FOCA beside E2E), learning curves per run, and the fine-tuning curve; every run is
named by its folder (RunInfo.name). Matplotlib only, no torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .report_runs import RunInfo, slug

MAX_PANELS = 12  # PCA panels per figure (3.6 inches each); the rest are named below it
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def figures(name: str, runs: list, out: Path) -> list[str]:
    """Draws the figures of one report section; returns its Markdown lines."""
    lines = []
    if [r for r in runs if r.records]:
        learning_curves(runs, out / f"curves-{name}.png", name)
        lines += [f"![learning curves, {name}](curves-{name}.png)", ""]
    for dataset in sorted({str(r.config.get("dataset")) for r in runs}):
        done = [r for r in runs if str(r.config.get("dataset")) == dataset and r.summary
                and (r.path / "features_test.npz").is_file()]  # FOCA first, then E2E, each by row and seed
        done.sort(key=lambda r: r.config.get("method") != "foca")
        if not done:
            continue
        path = out / f"features-{name}-{slug(dataset)}.png"  # a dataset may be a path to an arrays file
        feature_figure(done[:MAX_PANELS], path)
        methods = {r.config.get("method") for r in done}
        lines += [f"![PCA histograms, {dataset}]({path.name})", "",
                  f"2-D PCA histograms of l2-normalised test features, one panel per finished run ({dataset}: "
                  + ", ".join(f"{_short(r)} `{r.path}`" for r in done[:MAX_PANELS]) + ")"
                  + (f"; {len(done) - MAX_PANELS} more not drawn" if len(done) > MAX_PANELS else "")
                  + ("" if methods >= {"foca", "e2e"} else
                     f"; no finished {'E2E' if 'foca' in methods else 'FOCA'} run with features to set beside")
                  + ".", ""]
    return lines


def feature_figure(runs: list, path: Path) -> None:
    from minifoca.plots import pca_histograms

    feats, labels = {}, {}
    for r in runs:
        z = np.load(r.path / "features_test.npz")
        title = f"{str(r.config.get('method')).upper()}: {_short(r)}"
        feats[title], labels[title] = z["f"].astype(np.float32), z["t"]  # (N, D) float16 on disk
    k = max(int(t.max()) + 1 for t in labels.values())
    names = CIFAR10_CLASSES if k == 10 and runs[0].config.get("dataset") == "cifar10" else None
    pca_histograms(feats, labels if k <= 20 else None, path, normalise="l2", class_names=names,
                   title="test features, l2-normalised, on their own first two principal components")


def _short(r: RunInfo) -> str:
    """A legend label: the run's name (its folder's; the tables list each row's runs by it)."""
    return r.name or r.path.name


def learning_curves(runs: list[RunInfo], path: Path, name: str) -> None:
    """Stage 1 per run: val error (FOCA: the current weak classifier's, as the authors log it) and
    training loss per epoch; FOCA's stage-2 val error as a marker at the last epoch."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(11, 4))
    ax_err, ax_loss = fig.subplots(1, 2)
    colours = {}
    for r in runs:
        s1 = [x for x in r.records if x["stage"] == 1]
        if not s1:
            continue
        c = colours.setdefault(r.row, f"C{len(colours) % 10}")
        label = _short(r) + ("" if r.summary else " (unfinished)")
        ev = [x for x in s1 if "val_error" in x]
        ax_err.plot([x["epoch"] for x in ev], [100 * x["val_error"] for x in ev], marker="o", color=c, ms=3, label=label,
                    ls="--" if r.config.get("method") == "foca" else "-")
        s2 = [x for x in r.records if x["stage"] == 2 and "val_error" in x]
        if s2:
            ax_err.plot([s1[-1]["epoch"]], [100 * s2[-1]["val_error"]], "*", color=c, ms=11)
        ax_loss.plot([x["epoch"] for x in s1], [x["train_loss"] for x in s1], color=c, label=label)
    ax_err.set_xlabel("epoch"), ax_err.set_ylabel("val error %")
    ax_err.set_title("validation error (FOCA dashed: weak classifier; star: after stage 2)", fontsize=9)
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss, stage 1 (FOCA: against its weak classifiers)", fontsize=9)
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for ax in (ax_err, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(fontsize=7)
    fig.suptitle(f"learning curves: {name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def finetune_curve(runs: list[RunInfo], path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for i, r in enumerate(runs):
        s2 = [x for x in r.records if x["stage"] == 2 and "val_error" in x]
        s3 = [x for x in r.records if x["stage"] == 3 and "val_error" in x]
        xs = ([0] if s2 else []) + [x["epoch"] for x in s3]
        ys = ([100 * s2[-1]["val_error"]] if s2 else []) + [100 * x["val_error"] for x in s3]
        ax.plot(xs, ys, "o-", ms=3, color=f"C{i % 10}", label=_short(r))
    ax.set(xlabel="fine-tuning epoch (0 = after stage 2)", ylabel="val error %",
           title="E2E fine-tuning after FOCA (stage 3)")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
