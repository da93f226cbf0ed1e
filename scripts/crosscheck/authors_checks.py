"""The authors' cross-check beyond the step-by-step rows (authors.py): the normalisation statistics,
the official hyperparameter defaults against the authors'-mode presets, and the learning-rate
schedule, each against the authors' own code (authors_ref.py loads it); and `authors_rows`, all of
them for scripts/crosscheck's table.
"""
from __future__ import annotations

import ast
import math
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from minifoca.config import apply_overrides
from minifoca.optim import lr_at
from scaled.augment import PRESETS as AUGMENT
from scaled.data import channel_stats
from scaled.engine import Run
from scaled.presets import PRESETS

from . import authors_ref
from .authors import PAIR, parity_rows, tiny_npz
from .trace import TOL, Row, rel_diff


# --- data statistics ------------------------------------------------------------------------------------
TOL_STATS = 1e-7  # scaled keeps the statistics in float32 (what normalize uses): ~6e-8 relative
TOL_THEIR_STATS = 1e-5  # theirs: float32 torch.mean / torch.std over 50,000 x 40 x 40 pixels per channel


def their_stats_formula(x_train: np.ndarray, pad: int = 4) -> tuple:
    """Their get_dataset's statistics in float64: /255, zero-pad `pad` px, torch.mean and torch.std
    per channel over the padded images (their function itself needs all 50,000 CIFAR images:
    `their_stats_on` runs it)."""
    x = torch.from_numpy(x_train).double() / 255  # (N, 3, H, W)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (N, 3, H + 2P, W + 2P)
    return ([float(torch.mean(padded[:, c])) for c in range(3)], [float(torch.std(padded[:, c])) for c in range(3)])


class _TorchStats:  # stands for `torch` inside their train.py while get_dataset runs: logs mean / std
    def __init__(self):
        self.means, self.stds = [], []

    def mean(self, t, *a, **k):
        self.means.append(float(torch.mean(t, *a, **k)))
        return torch.mean(t, *a, **k)

    def std(self, t, *a, **k):
        self.stds.append(float(torch.std(t, *a, **k)))
        return torch.std(t, *a, **k)

    def zeros(self, *a, device=None, **k):  # their gather buffers ask for a GPU: CPU here
        return torch.zeros(*a, **k)

    def __getattr__(self, name):
        return getattr(torch, name)


def their_stats_on(x_train: np.ndarray, y_train: np.ndarray) -> tuple:
    """Their get_dataset on these 50,000 CIFAR-10 images, written as the official pickles in a
    temporary folder: the per-channel mean and std it computes (float32, as theirs), and seconds."""
    ref, tic = authors_ref.load(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="foca_v1_data_") as tmp:
        folder = Path(tmp) / "dataset" / "cifar10" / "cifar-10-batches-py"  # their hard-coded ./../dataset/...
        folder.mkdir(parents=True)
        for i in range(5):
            part = slice(i * 10000, (i + 1) * 10000)
            with open(folder / f"data_batch_{i + 1}", "wb") as fh:
                pickle.dump({"data": x_train[part].reshape(10000, -1), "labels": y_train[part].tolist()}, fh)
        with open(folder / "test_batch", "wb") as fh:  # read but not used by the statistics
            pickle.dump({"data": x_train[:10000].reshape(10000, -1), "labels": y_train[:10000].tolist()}, fh)
        (Path(tmp) / "work").mkdir()
        cwd, proxy, saved = os.getcwd(), _TorchStats(), ref.train.torch
        os.chdir(Path(tmp) / "work")
        ref.train.torch = proxy
        try:
            with warnings.catch_warnings():  # their torch.tensor(list of arrays) warns that it is slow
                warnings.simplefilter("ignore", UserWarning)
                ref.train.get_dataset(authors_ref.default_args(ref), None)
        finally:
            ref.train.torch = saved
            os.chdir(cwd)
    # per channel their loop takes mean and std of the training tensor twice (valid first, then train)
    return proxy.means[1::2], proxy.stds[1::2], time.perf_counter() - tic


def stats_rows(full: bool = False, overrides: tuple = ()) -> list[Row]:
    """scaled's statistics in authors' mode against theirs: on the tiny problem (their formula in
    float64), and with full=True their own get_dataset on the 50,000 shared CIFAR-10 images.
    overrides: --key=value for scaled's run (a test shows --norm_stats=clean is caught)."""
    with tempfile.TemporaryDirectory(prefix="crosscheck_authors_") as tmp:
        cfg = apply_overrides(PRESETS["wrn28-c10-foca"][0], [f"--dataset={tiny_npz(Path(tmp))}", "--device=cpu",
                                                            "--precision=fp64", "--channels_last=false", "--n_f=8",
                                                            "--stage2_batch=8", *overrides])
        run = Run(cfg)
    mean, std = their_stats_formula(run.data.x_train.numpy())
    diff = max(rel_diff(run.data.mean.numpy(), mean), rel_diff(run.data.std.numpy(), std))
    rows = [Row("tiny problem: normalisation statistics (their get_dataset's formula, float64)", PAIR, diff,
                TOL_STATS, "mean and std over the zero-padded 40x40 images")]
    if not full:
        return rows
    from scaled.data import load_dataset
    try:
        d = load_dataset("cifar10", val=False)
    except Exception as e:  # noqa: BLE001 - no shared data: the row says so
        return rows + [Row("CIFAR-10: normalisation statistics (their get_dataset)", PAIR, math.nan, TOL_THEIR_STATS,
                           skipped=f"no CIFAR-10 training set ({e})")]
    if len(d.y_train) != 50000:
        return rows + [Row("CIFAR-10: normalisation statistics (their get_dataset)", PAIR, math.nan, TOL_THEIR_STATS,
                           skipped=f"their get_dataset needs all 50,000 training images, not {len(d.y_train)}")]
    m, s, secs = their_stats_on(d.x_train.numpy(), d.y_train.numpy())
    ours = channel_stats(d.x_train, pad=4, unbiased=True)
    diff = max(rel_diff(ours[0].numpy(), m), rel_diff(ours[1].numpy(), s))
    return rows + [Row("CIFAR-10, 50,000 images: normalisation statistics (their get_dataset, float32)", PAIR, diff,
                       TOL_THEIR_STATS, f"theirs {np.round(m, 6).tolist()} / {np.round(s, 6).tolist()} ({secs:.0f} s)")]


# --- the official defaults and the schedule -----------------------------------------------------------------
def their_dataset_constants(ref) -> dict:
    """{"cifar10": {"sizeBatch_clf": 100, "co_length": 8}, "cifar100": {...}}: the constants their
    get_dataset assigns in each dataset's branch, read from its source (running it needs the data)."""
    tree = ast.parse((ref.dir / "train.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_dataset")
    out = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                isinstance(node.test.comparators[0], ast.Constant) and str(node.test.comparators[0].value).startswith("cifar"):
            consts = {}
            for st in node.body:
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Subscript) and \
                        isinstance(st.value, ast.Constant):
                    consts[st.targets[0].slice.value] = st.value.value
            out[node.test.comparators[0].value] = consts
    return out


FOCA_PRESETS = [p for p, (c, _) in PRESETS.items() if c.method == "foca" and c.dataset in ("cifar10", "cifar100")
                and not p.startswith(("smoke", "budget", "cpu"))]  # cpu-*: issue 20's 10-epoch CPU study, not an authors' row


def official_defaults_diff() -> list[tuple]:
    """(preset, field, value found in the preset, value of the official defaults) for every field
    both have; empty when every authors'-mode CIFAR FOCA preset equals them. Presets: FOCA_PRESETS."""
    from scaled.models import build_model

    ref = authors_ref.load()
    a, consts = authors_ref.default_args(ref), their_dataset_constants(ref)
    out = []
    for name in FOCA_PRESETS:
        cfg, aug = PRESETS[name][0], AUGMENT[PRESETS[name][0].augment]
        c = consts[cfg.dataset]
        with torch.device("meta"):
            hidden = build_model(cfg.model, 10, cfg.head).feature_dim if cfg.head == "D" else a.numNeuron
        want = {"lr": a.init_lr_fet, "milestones (epochs)": list(a.lr_step_schedule), "lr_gamma": a.lr_drop_rate,
                "schedule": "cosine" if a.flgCosineSchedule else "step", "epochs": a.numEpoch_1st,
                "n_f": a.sizeBatch, "stage2_batch": a.sizeBatch, "n_c": c["sizeBatch_clf"], "weak_steps": a.numTrainClf,
                "refresh": a.numTrainFet, "wd": a.wdr_fet, "weak_wd": a.wdr_clf, "momentum": a.mr,
                "weak_momentum": a.mr, "weak_lr": a.lr_clf, "weak_init_std": a.init_std, "stage2_lr": a.lr_clf_2nd,
                "stage2_epochs": a.numEpoch_2nd, "head width": a.numNeuron}
        have = {**{k: getattr(cfg, k) for k in want if hasattr(cfg, k)},
                "milestones (epochs)": [round(m * cfg.epochs) for m in cfg.milestones], "head width": hidden}
        if cfg.model.startswith("wrn"):
            want["model"], have["model"] = f"wrn-{a.depth}-{a.factor}", cfg.model
        if cfg.augment.endswith("-re"):
            want["random erasing"], have["random erasing"] = True, aug.erase  # their --flgRandomErasing rows
        else:
            want["cutout"], have["cutout"] = 2 * c["co_length"], aug.cutout  # a square of side 2 x co_length
        out += [(name, k, have[k], v) for k, v in want.items() if have[k] != v]
    return out


def defaults_rows() -> list[Row]:
    try:
        bad = official_defaults_diff()
    except authors_ref.ReferenceMissing as e:
        return [Row("official defaults vs presets", PAIR, math.nan, 0.0, skipped=str(e))]
    what = (f"{len(FOCA_PRESETS)} presets" if not bad else
            "; ".join(f"{p}: {k} = {h!r}, official {w!r}" for p, k, h, w in bad[:3]))
    return [Row("official defaults (set_args, get_dataset) vs the authors'-mode FOCA presets: fields that differ",
                "authors vs presets", float(len(bad)), 0.0, what)]


def schedule_rows() -> list[Row]:
    """Their lr_schedule with the official defaults against lr_at for each FOCA preset, every epoch."""
    try:
        ref = authors_ref.load()
    except authors_ref.ReferenceMissing as e:
        return [Row("learning rate per epoch", PAIR, math.nan, TOL, skipped=str(e))]
    a, rows = authors_ref.default_args(ref), []
    opt = {"fet": torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)}
    theirs = []
    for epoch in range(a.numEpoch_1st):
        ref.train.lr_schedule(a, opt, epoch)
        theirs.append(opt["fet"].param_groups[0]["lr"])
    worst = max(FOCA_PRESETS, key=lambda p: rel_diff(_ours_lr(p), theirs))
    rows.append(Row(f"learning rate at each of {a.numEpoch_1st} epochs (their lr_schedule) vs lr_at, "
                    f"{len(FOCA_PRESETS)} FOCA presets", PAIR, rel_diff(_ours_lr(worst), theirs), TOL, worst))
    return rows


def _ours_lr(preset: str) -> list[float]:
    c = PRESETS[preset][0]
    return [lr_at(e, c.lr, c.schedule, c.epochs, c.milestones, c.lr_gamma) for e in range(c.epochs)]


def authors_rows(full: bool = False) -> list[Row]:
    """Every row of the authors' cross-check (full: also their get_dataset on the real data, ~20 s)."""
    try:
        authors_ref.load()
    except authors_ref.ReferenceMissing as e:
        return [Row("scaled against the authors' code (every row)", PAIR, math.nan, TOL, skipped=str(e))]
    return parity_rows() + stats_rows(full) + schedule_rows() + defaults_rows()
