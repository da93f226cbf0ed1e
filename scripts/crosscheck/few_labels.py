"""The few-label probe in two layers: minifoca.foca.few_label_error and scaled.few_labels on the same
frozen features (a fixed random projection of the digits images, float64), labelled sets and initial
weights. The labelled sets and inits are drawn by minifoca's own calls, in its order, and replayed
into scaled; the row compares the two mean errors (each an exact count over the test images)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from minifoca.config import PRESETS as MINI_PRESETS
from minifoca.data import load
from minifoca.foca import few_label_error as mini_few_label_error
from minifoca.models import init_classifier
from scaled.few_labels import few_label_error

from .trace import TOL, Row, rel_diff


def replayed_draws(t_train: np.ndarray, n_classes: int, d: int, cfg, seed: int):
    """The labelled sets and initial weights minifoca's few_label_error draws from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    sets, inits = [], []
    for _ in range(cfg.few_label_draws):
        sets.append(np.concatenate([rng.choice(np.flatnonzero(t_train == k), cfg.few_labels, replace=False)
                                    for k in range(n_classes)]))  # (K * few_labels,)
        inits.append(init_classifier(d, n_classes, rng, np, np.float64, cfg.weak_init_std))
    return sets, inits


def few_label_rows(labels=(1, 5)) -> list[Row]:
    data = load("digits")
    proj = np.random.default_rng(7).normal(size=(data.x_train.shape[1], 16))  # features (N, 16)
    f_train, f_test = np.maximum(data.x_train @ proj, 0), np.maximum(data.x_test @ proj, 0)
    rows = []
    for k in labels:
        cfg = dataclasses.replace(MINI_PRESETS["digits"], few_labels=k, few_label_draws=4)
        want = mini_few_label_error(f_train, data.t_train, f_test, data.t_test, 10, cfg, np.random.default_rng(3))
        sets, inits = replayed_draws(data.t_train, 10, 16, cfg, 3)
        T = torch.from_numpy
        got = few_label_error(T(f_train), T(data.t_train), T(f_test), T(data.t_test), 10, cfg,
                              [T(s) for s in sets], theta0s=[{n: T(v) for n, v in th.items()} for th in inits])
        rows.append(Row(f"digits, {k} label(s) per class: few_label_error", "minifoca vs scaled",
                        rel_diff(got, want), TOL, f"{got:.4f} vs {want:.4f}"))
    return rows
