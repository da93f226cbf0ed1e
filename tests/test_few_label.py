"""The few-label error (how simple frozen features are: ComputeClassifier fitted on few_labels
labelled examples per class, averaged over few_label_draws labelled sets) against constructed
features with a known answer, and minifoca's against an independent computation (the same draws
replayed, ComputeClassifier as a torch.optim.SGD loop, errors counted).

IMPLS lists every layer's few_label_error behind one signature, NumPy in and a float out:
    impl(f_train (N, D), t_train (N,), f_test (M, D), t_test (M,), n_classes, cfg, rng) -> float
rng is a NumPy Generator; an adapter for another layer (scaled's, say) converts what it needs.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minifoca import foca
from minifoca.config import Config


def minifoca_impl(f_train, t_train, f_test, t_test, n_classes, cfg, rng) -> float:
    return foca.few_label_error(f_train, t_train, f_test, t_test, n_classes, cfg, rng)


def scaled_impl(f_train, t_train, f_test, t_test, n_classes, cfg, rng) -> float:
    """scaled.few_labels: labelled sets drawn by label_sets from a torch generator seeded from rng."""
    import torch

    from scaled.few_labels import few_label_error, label_sets

    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    T = torch.from_numpy
    sets = label_sets(T(t_train), n_classes, cfg.few_labels, cfg.few_label_draws, gen)
    return few_label_error(T(f_train), T(t_train), T(f_test), T(t_test), n_classes, cfg, sets, gen)


IMPLS = [pytest.param(minifoca_impl, id="minifoca"), pytest.param(scaled_impl, id="scaled")]
K, D = 3, 4


def clusters(rng, per_class, spread=0.05, sep=5.0):
    """K tight clusters at sep * e_k (far apart against the spread): -> f (N, D), t (N,), centres (K, D)."""
    centres = sep * np.eye(K, D)
    t = np.repeat(np.arange(K), per_class)
    return centres[t] + spread * rng.normal(size=(len(t), D)), t, centres


def cfg_with(**kw) -> Config:
    return dataclasses.replace(Config(), **{"few_labels": 1, "few_label_draws": 5, **kw})


# --- known answers, every layer ------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("few_labels", [1, 3])
def test_separated_clusters_are_learned_from_few_labels(impl, few_labels):
    rng = np.random.default_rng(0)
    f_train, t_train, _ = clusters(rng, 8)
    f_test, t_test, _ = clusters(rng, 10)
    assert impl(f_train, t_train, f_test, t_test, K, cfg_with(few_labels=few_labels), rng) == 0.0


@pytest.mark.parametrize("impl", IMPLS)
def test_the_error_is_counted_on_the_test_labels(impl):
    """The test set sits on the training clusters but `wrong` of its labels name the next class:
    every draw's classifier gets exactly those wrong, so the error is wrong / M (not of the train set)."""
    rng = np.random.default_rng(1)
    f_train, t_train, _ = clusters(rng, 8)
    f_test, t_test, _ = clusters(rng, 10)  # M = 30
    for wrong in (0, 7, 30):
        t_bad = t_test.copy()
        t_bad[:wrong] = (t_bad[:wrong] + 1) % K
        got = impl(f_train, t_train, f_test, t_bad, K, cfg_with(), rng)
        assert abs(got - wrong / 30) < 1e-12, f"few-label error {got!r}, expected {wrong}/30"


# --- minifoca: what is drawn and how it is averaged ------------------------------------------------
def test_each_draw_fits_few_labels_distinct_examples_per_class_and_the_errors_are_averaged(monkeypatch):
    """ComputeClassifier replaced by a recorder that returns a constant classifier naming class
    d % K in draw d: its error is known, so the mean over the draws is too."""
    rng = np.random.default_rng(2)
    f_train, t_train, _ = clusters(rng, 6)
    f_train[:, -1] = np.arange(len(f_train))  # the last feature is the row's index: pairing is visible
    f_test, t_test = rng.normal(size=(20, D)), rng.integers(0, K, 20)
    seen = []

    def recorder(f, t, n_classes, cfg, rng, theta0=None):
        seen.append((f.copy(), t.copy()))
        return {"W": np.zeros((n_classes, f.shape[1])), "b": np.eye(n_classes)[(len(seen) - 1) % n_classes]}

    monkeypatch.setattr(foca, "compute_classifier", recorder)
    cfg = cfg_with(few_labels=2, few_label_draws=7)
    got = foca.few_label_error(f_train, t_train, f_test, t_test, K, cfg, rng)
    assert len(seen) == 7, f"{len(seen)} classifiers fitted for few_label_draws=7"
    for f, t in seen:
        idx = f[:, -1].astype(int)  # (K * few_labels,) the training rows fitted on
        assert np.array_equal(f, f_train[idx]) and np.array_equal(t, t_train[idx]), "features and labels unpaired"
        assert len(set(idx)) == len(idx), f"a labelled set repeats an example: {idx}"
        assert np.array_equal(np.bincount(t, minlength=K), [2] * K), f"labels per class {np.bincount(t)}, expected 2"
    assert len({tuple(f[:, -1]) for f, _ in seen}) > 1, "every draw fitted the same labelled set"
    want = np.mean([np.mean(t_test != d % K) for d in range(7)])
    assert abs(got - want) < 1e-15, f"few-label error {got!r} is not the mean {want!r} of the draws' errors"


def test_minifoca_equals_replayed_draws_and_a_torch_classifier():
    """Independent: the draws replayed from a copy of the Generator (per draw: few_labels per class
    without replacement, then W ~ N(0, weak_init_std^2)), ComputeClassifier as torch.optim.SGD, the
    errors counted wrong / M, then averaged. Overlapping classes, so the error is neither 0 nor 1."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(3)
    f_train, t_train, _ = clusters(rng, 12, spread=2.0, sep=2.0)
    f_test, t_test, _ = clusters(rng, 15, spread=2.0, sep=2.0)
    cfg = cfg_with(few_labels=2, few_label_draws=4, weak_steps=32)
    twin = np.random.default_rng(7)
    got = foca.few_label_error(f_train, t_train, f_test, t_test, K, cfg, np.random.default_rng(7))
    errors = []
    for _ in range(cfg.few_label_draws):
        idx = np.concatenate([twin.choice(np.flatnonzero(t_train == k), cfg.few_labels, replace=False) for k in range(K)])
        W = torch.tensor(twin.normal(0.0, cfg.weak_init_std, (K, D)), requires_grad=True)
        b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([W, b], cfg.weak_lr, cfg.weak_momentum, weight_decay=cfg.weak_wd, nesterov=True)
        for _ in range(cfg.weak_steps):
            opt.zero_grad()
            F.cross_entropy(F.linear(torch.tensor(f_train[idx]), W, b), torch.tensor(t_train[idx])).backward()
            opt.step()
        pred = F.linear(torch.tensor(f_test), W, b).argmax(1).numpy()
        errors.append(int((pred != t_test).sum()) / len(t_test))
    assert 0 < np.mean(errors) < 1, f"errors {errors}: the case should be neither trivial nor hopeless"
    assert abs(got - np.mean(errors)) < 1e-12, f"minifoca {got!r} vs independent {np.mean(errors)!r} (per draw {errors})"
