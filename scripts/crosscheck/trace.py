"""What a cross-check records and how two records are compared: a Trace per layer, a Row per check.

A Trace maps (phase, kind, iteration, tensor name) to a host array, e.g.
("FOCA stage 1", "gradients", 3, "dW1"); the iteration is None for a run's end point. `compare` turns two Traces into one Row per (phase, kind):
the largest relative difference over its tensors and iterations, and where it is reached.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from minifoca.backend import to_host

TOL = 1e-10  # float64, minifoca vs scaled vs toy (the tolerance)
TOL_BACKEND = 1e-12  # float64, NumPy vs CuPy: the same code on two array libraries


class CrossCheckError(RuntimeError):
    """A layer consumed the host's draws differently (e.g. refreshed the weak classifier at another step)."""


@dataclass
class Row:
    check: str  # e.g. "digits MLP+BN, R=3: FOCA stage 1: gradients"
    pair: str  # the two layers compared, e.g. "minifoca vs scaled"
    diff: float  # max relative difference over every tensor and iteration of the check
    tol: float
    worst: str = ""  # where diff is reached: "dW1 at iteration 3"
    skipped: str = ""  # why the check did not run (then it neither passes nor fails)

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or self.diff <= self.tol

    def message(self) -> str:
        return (f"{self.check} [{self.pair}]: {self.worst}: max relative difference {self.diff:.3e} "
                f"exceeds tolerance {self.tol:.0e}")


def rel_diff(got, want, scale: float = 0.0) -> float:
    """tests/checks.py's measure: max |got - want| / max(max |want|, max |got|, scale); NaN counts as inf."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(np.abs(want).max(initial=0.0), np.abs(got).max(initial=0.0), scale, 1e-30)
    d = float(np.abs(got - want).max(initial=0.0) / scale)
    return math.inf if math.isnan(d) else d


def host(a) -> np.ndarray:
    """A host copy of a NumPy, CuPy or torch array (a copy: SGD updates arrays in place)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy().copy()
    return np.array(to_host(a))


class Trace(dict):
    """(phase, kind, iteration, tensor name) -> host array, in the order recorded."""

    def add(self, phase: str, kind: str, i: int, **tensors) -> None:
        for name, a in tensors.items():
            self[(phase, kind, i, name)] = host(a)

    def step(self, phase, i, loss, grads, params=None, state=None, theta=None) -> None:
        """What one optimiser step leaves: loss, gradients (before weight decay), the new values."""
        self.add(phase, "loss", i, loss=loss)
        self.add(phase, "gradients", i, **{f"d{k}": g for k, g in grads.items()})
        self.add(phase, "parameters", i, **(params or {}))
        self.add(phase, "BN running statistics", i, **(state or {}))
        if theta is not None:
            self.add(phase, "classifier", i, **theta)


def compare(a: Trace, b: Trace, pair: str, tol: float, prefix: str, per_step_scale: bool = False) -> list[Row]:
    """One row per (phase, kind) of a and b; a tensor only one side has fails its row.
    per_step_scale: each tensor relative to the largest value of its (phase, kind, iteration), so a
    gradient that is zero in exact arithmetic (a BN bias whose shift the next BN removes: ~1e-18 on
    both sides, pure round-off) is measured against the step's other gradients, not against itself."""
    names = pair.split(" vs ")
    rows: dict[str, Row] = {}
    scale: dict = {}
    if per_step_scale:
        for t in (a, b):
            for (phase, kind, i, _), v in t.items():
                m = float(np.abs(np.asarray(v, np.float64)).max(initial=0.0))
                scale[phase, kind, i] = max(scale.get((phase, kind, i), 0.0), m)
    for key in list(a) + [k for k in b if k not in a]:
        phase, kind, i, name = key
        where = f"{name} at iteration {i}" if i is not None else f"{name} at the end"
        if key not in a or key not in b:
            d, where = math.inf, f"{where} only in {names[key in b]}"
        elif a[key].shape != b[key].shape:
            d, where = math.inf, f"{where}: shape {a[key].shape} vs {b[key].shape}"
        else:
            d = rel_diff(b[key], a[key], scale.get((phase, kind, i), 0.0))
        check = f"{prefix}: {phase}: {kind}"
        row = rows.setdefault(check, Row(check, pair, -1.0, tol))
        if d > row.diff:
            row.diff, row.worst = d, where
    return list(rows.values())
