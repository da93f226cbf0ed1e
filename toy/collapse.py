"""Part 2: point-like collapse. FOCA vs E2E with 2-D features on 3-arm spirals (every seed) and on
scikit-learn digits with d = 2 (seed 0: the picture).

The ICML 2019 paper's property: with enough capacity, FOCA maps every input of a class to (nearly)
one point, because a feature that strays from its class point costs loss under SOME random weak
classifier; E2E's loss only asks features to sit on the right side of its one boundary. Measured on
the test split with minifoca.metrics.feature_stats, the same keys everywhere:
    trace_ratio        tr(S_b) / tr(S_w): scale-free; larger = tighter classes relative to their distance
    fisher_eigenvalue  largest eigenvalue of S_w^+ S_b (the paper's table: 247 FOCA vs 5.7-7.5 E2E)
    within_spread      sqrt(tr S_w / tr S_t): the within-class share of the spread, tracked over training
and by the few-label error: a classifier re-fitted on 1 label per class of the frozen features.
"""
from __future__ import annotations

from minifoca.backend import to_host
from minifoca.data import load

from .config import minifoca_config
from .data import toy_dataset
from .methods import DATA, METHODS, stream, train_both

KEYS = ("test_error", "few_label_error", "trace_ratio", "fisher_eigenvalue", "within_spread")


def spirals_seed(tc, seed: int, keep_features: bool) -> dict:
    """FOCA and E2E on one draw of the 3-arm spirals. -> {"metrics": {method: {key: value}},
    "curves": {method: {"step", "trace_ratio", "within_spread"}}} and, with keep_features, the test
    inputs, labels and features (host arrays) for the figures."""
    host = toy_dataset("spirals3", tc.spirals_train, tc.spirals_test, tc.spirals_noise, stream(seed, DATA))
    run = train_both(host, tc.hidden, minifoca_config(tc), seed, tc.track_every)
    out = {"metrics": {m: run[m]["metrics"] for m in METHODS},
           "curves": {m: run[m]["curve"] for m in METHODS}}
    if keep_features:
        out["picture"] = {"x": host.x_test, "t": host.t_test, **{m: run[m]["f_test"] for m in METHODS}}
    return out


def digits_seed(tc, seed: int = 0) -> dict:
    """FOCA and E2E on scikit-learn's digits (1,257 train / 360 test, minifoca's fixed split) with
    2-D features: 10 classes in the plane, the closest small analogue of the paper's CIFAR-10 figure."""
    host = load("digits")
    cfg = minifoca_config(tc, steps=tc.digits_steps, n_c=tc.digits_n_c)
    run = train_both(host, tc.digits_hidden, cfg, seed, max(tc.track_every, tc.digits_steps // 20))
    return {"metrics": {m: run[m]["metrics"] for m in METHODS},
            "picture": {"t": to_host(host.t_test), **{m: run[m]["f_test"] for m in METHODS}}}
