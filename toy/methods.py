"""Train FOCA and E2E on one toy dataset from the same initial phi, with minifoca's own functions,
and record the feature statistics of the test split over training (the collapse curve).

    FOCA: minifoca.foca.train_foca (Algorithm 1, stage 1) then train_classifier (stage 2)
    E2E : minifoca.foca.train_e2e, phi and theta jointly, same steps, lr, schedule and weight decay

Random streams per seed (NumPy Generators seeded with [seed, stream]), so FOCA and E2E see the same
data and the same initial phi, and no result depends on which process ran which seed:
    0 data   1 phi init   2 FOCA training   3 E2E training   4 probes and measurements
"""
from __future__ import annotations

import numpy as np

from minifoca import foca
from minifoca.backend import DTYPES, get_backend, to_host
from minifoca.metrics import feature_stats
from minifoca.models import MLP, init_classifier
from minifoca.train import on_device

DATA, INIT, TRAIN_FOCA, TRAIN_E2E, PROBE = range(5)
METHODS = ("e2e", "foca")


def stream(seed: int, which: int) -> np.random.Generator:
    return np.random.default_rng([seed, which])


class Tracker:
    """A minifoca `log` callback: at the end of an epoch, once `every` steps have passed since the
    last record, the test split's feature statistics (eval-mode features, no randomness used, so
    tracking never changes training)."""

    def __init__(self, model, x_test, t_test, every: int):
        self.model, self.x, self.t, self.every = model, x_test, t_test, every
        self.curve = {"step": [], "trace_ratio": [], "within_spread": []}
        self.record(0)

    def record(self, step: int) -> None:
        stats = feature_stats(foca.features(self.model, self.x), self.t)
        self.curve["step"].append(step)
        for key in ("trace_ratio", "within_spread"):
            self.curve[key].append(stats[key])

    def __call__(self, rec: dict) -> None:
        if rec["stage"] == 1 and rec["step"] - self.curve["step"][-1] >= self.every:
            self.record(rec["step"])


def train_method(method: str, data, widths, cfg, seed: int, track_every: int):
    """-> (model, theta, curve). data on the backend; widths (D_in, H_1, ..., D)."""
    xp, dtype = get_backend(cfg.backend), DTYPES[cfg.dtype]
    model = MLP(widths, cfg.bn, stream(seed, INIT), xp, dtype, linear_last=True)  # same phi_0 for both
    track = Tracker(model, data.x_test, data.t_test, track_every)
    if method == "foca":
        rng = stream(seed, TRAIN_FOCA)
        foca.train_foca(model, data, cfg, rng, track)  # stage 1: phi against anonymous weak classifiers
        theta = foca.train_classifier(model, data, cfg, rng)  # stage 2: one classifier, phi frozen
    elif method == "e2e":
        rng = stream(seed, TRAIN_E2E)
        theta = init_classifier(widths[-1], data.n_classes, rng, xp, dtype, cfg.weak_init_std)
        foca.train_e2e(model, theta, data, cfg, rng, track)  # phi and theta together
    else:
        raise ValueError(f"unknown method {method!r}: choose {' or '.join(METHODS)}")
    if track.curve["step"][-1] != cfg.steps:
        track.record(cfg.steps)
    return model, theta, track.curve


def measure(model, theta, data, cfg, rng) -> dict:
    """The numbers every toy reports for a trained (phi, theta): test error with its own classifier,
    the few-label error of a classifier re-fitted on frozen features, and the feature statistics of
    the test split (minifoca.metrics; keys trace_ratio, fisher_eigenvalue, within_spread)."""
    f_train, f_test = foca.features(model, data.x_train), foca.features(model, data.x_test)
    return {"test_error": foca.evaluate(model, theta, data.x_test, data.t_test),
            "few_label_error": foca.few_label_error(f_train, data.t_train, f_test, data.t_test,
                                                    data.n_classes, cfg, rng),
            **feature_stats(f_test, data.t_test)}


def train_both(host_data, hidden, cfg, seed: int, track_every: int) -> dict:
    """FOCA and E2E on one dataset and seed. -> {method: {"model", "theta", "curve", "metrics",
    "f_test" (host (N, D))}} plus "data" (the dataset on the backend)."""
    xp, dtype = get_backend(cfg.backend), DTYPES[cfg.dtype]
    data = on_device(host_data, xp, dtype)
    widths = (data.x_train.shape[1], *hidden, 2)  # D = 2: features drawn in the plane
    out = {"data": data}
    for method in METHODS:
        model, theta, curve = train_method(method, data, widths, cfg, seed, track_every)
        out[method] = {"model": model, "theta": theta, "curve": curve,
                       "metrics": measure(model, theta, data, cfg, stream(seed, PROBE)),
                       "f_test": to_host(foca.features(model, data.x_test))}
    return out
