"""Cross-checks: toy, minifoca and scaled compute the same numbers on small float64 problems.

    python -m scripts.crosscheck                  # the Markdown table; ~15 s on one CPU core
    python -m scripts.crosscheck --json out.json  # the rows as JSON too
    python -m scripts.crosscheck --authors --full # only scaled vs the authors' code, their get_dataset too (~30 s)

llm.c's recipe: tensor by tensor over a multi-step trajectory, not one point. Each check runs one
small problem in two layers from identical initial weights and identical randomness, and compares,
per iteration, everything the algorithm produces (float64, 1e-10 relative):

    FOCA stage 1 (5 steps, R = 1 and 3)  indices drawn, weak-batch features, the weak classifier
                                         after its K steps, loss, every phi gradient, parameters,
                                         BN running statistics
    FOCA stage 2, one stage-3 step       indices, features, loss, gradients, classifier, parameters
    E2E (5 steps)                        indices, loss, gradients, parameters, classifier, BN statistics

Randomness is drawn once on the host with a NumPy Generator (NumPy, CuPy and torch streams
differ), in the order minifoca.foca's train_* functions draw it, and handed to each layer:

    mlp.py      the problems, the draws, and minifoca's side: Algorithm 1 with minifoca's pieces
    hostrun.py  scaled's side: scaled.foca's own stage functions on a Run that replays the draws
    conv.py     scaled's convolutional path (minifoca has none): gradcheck, and a WRN / PyramidNet
                FOCA step recomputed by minifoca from torch's features and gradients
    trace.py    the records and their comparison
    few_labels.py  the few-label probe (few_label_error) in minifoca and scaled on the same draws

    authors.py  scaled against the authors' own code (DensoITLab/FOCA-v1, $FOCA_V1_DIR) step by
                step in authors' mode, tiny WRN and PyramidNet + ShakeDrop; authors_checks.py the
                statistics, official defaults and schedule against it (skipped when it is absent)

Layer pairs: minifoca vs scaled (digits MLP with BN, R = 1 and 3; the toy's network, which has no
BN and a linear last layer, against its torch twin); minifoca vs toy (toy.methods.train_method
with the toy's seeds lands where minifoca's loop lands); NumPy vs CuPy (1e-12, GPU only).
A row: check, layer pair, max relative difference, tolerance, pass, and the tensor and iteration
where the difference is largest. tests/test_crosscheck.py asserts the same checks.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time

import torch

from minifoca.backend import cupy_available, get_backend
from minifoca.cli import ArgParser

from .authors_checks import authors_rows
from .conv import conv_rows
from .few_labels import few_label_rows
from .hostrun import scaled_trace
from .mlp import (digits_problem, end_point, final_point, minifoca_final_point, minifoca_trace,
                  toy_end_point, toy_problem)
from .trace import TOL, TOL_BACKEND, CrossCheckError, Row, compare

# (problem, method): every trajectory both pairs run; E2E does not depend on R.
CASES = [("digits", 1, "foca"), ("digits", 1, "e2e"), ("digits", 3, "foca"), ("toy", 1, "foca"), ("toy", 1, "e2e")]


def problem(name: str, refresh: int):
    return digits_problem(refresh) if name == "digits" else toy_problem()


def trajectory_rows(name: str, refresh: int, method: str, other: str = "scaled") -> list[Row]:
    """minifoca (NumPy) against `other`: "scaled", or "cupy" (minifoca on CuPy)."""
    prob = problem(name, refresh)
    if other == "cupy":
        got = minifoca_trace(prob, method, get_backend("cupy"))
        return compare(minifoca_trace(prob, method), got, "NumPy vs CuPy", TOL_BACKEND, f"minifoca {prob.name}")
    try:
        got = scaled_trace(prob, method)
    except CrossCheckError as e:  # scaled asked for draws minifoca never made: one failing row that says so
        return [Row(f"{prob.name}: {method.upper()}: draws consumed", "minifoca vs scaled", math.inf, TOL, str(e))]
    return compare(minifoca_trace(prob, method), got, "minifoca vs scaled", TOL, prob.name)


def toy_rows(method: str, other: str = "minifoca") -> list[Row]:
    """toy.methods.train_method (NumPy) against minifoca's loop on the same seeds, or against itself on CuPy."""
    toy = toy_problem()
    if other == "minifoca":
        return compare(end_point(minifoca_trace(toy, method), method), toy_end_point(toy, method),
                       "minifoca vs toy", TOL, f"{toy.name} {method.upper()} (toy.methods.train_method)")
    return compare(toy_end_point(toy, method), toy_end_point(toy, method, "cupy"), "NumPy vs CuPy",
                   TOL_BACKEND, f"toy {toy.name} {method.upper()}")


def own_loop_rows(refresh: int, method: str) -> list[Row]:
    """minifoca.foca's own train_* functions against minifoca's replayed loop (digits, BN, all stages)."""
    prob = digits_problem(refresh)
    return compare(final_point(minifoca_trace(prob, method), method), minifoca_final_point(prob, method),
                   "replayed loop vs minifoca.foca", TOL, f"{prob.name} {method.upper()} (train_* functions)")


def all_rows(full: bool = False) -> list[Row]:
    rows = [r for case in CASES for r in trajectory_rows(*case)]
    rows += own_loop_rows(3, "foca") + own_loop_rows(1, "e2e")
    rows += [r for m in ("foca", "e2e") for r in toy_rows(m)]
    if cupy_available():
        rows += [r for case in CASES for r in trajectory_rows(*case, other="cupy")]
        rows += [r for m in ("foca", "e2e") for r in toy_rows(m, other="cupy")]
    else:
        rows.append(Row("minifoca and toy: every trajectory above", "NumPy vs CuPy", math.nan, TOL_BACKEND,
                        skipped="no CuPy with a CUDA GPU here"))
    return rows + few_label_rows() + conv_rows() + authors_rows(full)


def table(rows: list[Row]) -> str:
    lines = ["| check | layer pair | max relative difference | tolerance | pass | largest at |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        diff, verdict = ("-", f"skipped: {r.skipped}") if r.skipped else (f"{r.diff:.1e}", "yes" if r.ok else "**NO**")
        lines.append(f"| {r.check} | {r.pair} | {diff} | {r.tol:.0e} | {verdict} | {r.worst} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = ArgParser("python -m scripts.crosscheck", __doc__)
    p.add_argument("--json", default="", help="also write the rows to this file")
    p.add_argument("--authors", action="store_true", help="only the rows against the authors' code")
    p.add_argument("--full", action="store_true",
                   help="also run the authors' get_dataset on the 50,000 shared CIFAR-10 images (~20 s, 2.5 GB)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: extra threads only contend (tests/conftest.py)
    print("crosscheck: " + ("scaled vs the authors' code" if args.authors else "minifoca vs scaled vs toy, and "
          "scaled vs the authors' code") + ", float64 on the CPU (CuPy rows need a GPU); ~15 s"
          + (" + ~20 s for their get_dataset" if args.full else "") + ". Every row must say yes.", file=sys.stderr)
    tic = time.perf_counter()
    if args.authors:
        rows = authors_rows(full=args.full)
    else:
        rows = all_rows(full=args.full)
    print(table(rows))
    bad = [r for r in rows if not r.ok]
    skipped = sum(bool(r.skipped) for r in rows)
    print(f"{len(rows) - len(bad) - skipped} rows pass, {len(bad)} fail, {skipped} skipped, "
          f"in {time.perf_counter() - tic:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([dict(dataclasses.asdict(r), ok=r.ok) for r in rows], fh, indent=1)
    for r in bad:
        print(f"FAIL {r.message()}", file=sys.stderr)
    return 1 if bad else 0

