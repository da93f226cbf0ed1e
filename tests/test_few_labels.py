"""scaled's few-label probe (scaled/few_labels.py) against minifoca's definition, and in the engine."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from minifoca.config import PRESETS as MINI_PRESETS
from scaled.few_labels import few_label_error, label_sets
from scripts.crosscheck.few_labels import few_label_rows, replayed_draws


def test_scaled_equals_minifoca_on_the_same_draws():
    for row in few_label_rows(labels=(1, 5)):
        assert row.ok, row.message()


def test_a_different_classifier_is_caught():
    """The cross-check can fail: scaled fitted with other weak steps lands elsewhere."""
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 8)) + np.repeat(rng.normal(size=(4, 8)) * 0.7, 50, 0)  # (200, 8), 4 classes
    t = np.repeat(np.arange(4), 50)
    cfg = dataclasses.replace(MINI_PRESETS["digits"], few_labels=2, few_label_draws=5)
    sets, inits = replayed_draws(t, 4, 8, cfg, 1)
    T = torch.from_numpy

    def scaled(c):
        return few_label_error(T(f), T(t), T(f), T(t), 4, c, [T(s) for s in sets],
                               theta0s=[{n: T(v) for n, v in th.items()} for th in inits])
    assert scaled(cfg) != scaled(dataclasses.replace(cfg, weak_steps=1))


def test_label_sets_hold_k_distinct_images_of_each_class():
    t = torch.tensor([0, 1, 2] * 7)
    sets = label_sets(t, 3, 4, 3, torch.Generator().manual_seed(0))
    assert len(sets) == 3
    for s in sets:
        assert len(set(s.tolist())) == 12
        assert t[s].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(ValueError, match="fewer than 8"):
        label_sets(t, 3, 8, 1, torch.Generator())


def test_point_like_classes_need_one_label():
    """Classes collapsed to distinct points: one label per class classifies every test image."""
    centres = torch.eye(3, dtype=torch.float64) * 5  # (K, D)
    t = torch.arange(3).repeat(10)
    f = centres[t]  # (30, 3)
    cfg = dataclasses.replace(MINI_PRESETS["digits"], weak_steps=64)
    sets = label_sets(t, 3, 1, 4, torch.Generator().manual_seed(0))
    assert few_label_error(f, t, f, t, 3, cfg, sets, torch.Generator().manual_seed(1)) == 0.0
