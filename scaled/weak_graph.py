"""ComputeClassifier for CUDA: the same weak_steps Nesterov steps as scaled/foca.py's
compute_classifier (the reference, used on the CPU and in fp64 by every cross-check), with two
changes that only cut kernel launches:

1. the bias is folded into W as a last column against a column of ones in f: Wb (K, D+1),
   fa = [f, 1] (n_c, D+1). The gradient of that column is dlogits.sum(0), and weight decay acts on
   W and b alike, so the iterates are the same numbers up to round-off (fp64: ~1e-16,
   tests/test_scaled_engine.py::test_folded_classifier_equals_the_eager_loop);
2. on CUDA the steps are captured once per (shape, dtype, hyper-parameters) as a CUDA graph and
   replayed at every refresh: one launch instead of ~11 per step. The init W ~ N(0, std^2) is
   drawn eagerly from the run's "weak" generator first, so the random stream is the eager one.
   The graph must give the eager folded loop's numbers (tests -m gpu). A failed capture falls back
   to the eager folded loop, which gives the same numbers: only graph_status() (and, for a run in
   another process, the lines appended to $FOCA_WEAK_GRAPH_LOG) says whether a graph ran.
Why it matters: with n_c = 100 and D = 128 a step is a few microseconds of arithmetic, so the eager
loop is launch-bound (issue 16 estimates 10-20% of a WRN run at R = 1).
"""
from __future__ import annotations

import json
import os
import sys

import torch

from .classifier import init_classifier

_GRAPHS: dict = {}  # (device, n, D+1, K, dtype, steps, lr, mu, wd) -> _Graph
_FAILED: set = set()  # keys whose capture failed once: the eager folded loop from then on
_STATUS = {"captured": 0, "replays": 0, "failed": []}  # this process's graph path, for graph_status()


def graph_status() -> dict:
    """What the CUDA-graph path did in this process: graphs captured, replays run, failed captures
    (their errors). The GPU tests require a capture; gpu_engine.json and gpu_bench.json record it."""
    return {**_STATUS, "failed": list(_STATUS["failed"])}


def _record(event: str, key, error: str = "") -> None:
    """Counts the event; with $FOCA_WEAK_GRAPH_LOG set, appends it as a JSON line (scripts/gpu/engine.py
    reads it from its scaled.train runs)."""
    if event == "failed":
        _STATUS["failed"].append(error)
    else:
        _STATUS[event] += 1
    log = os.environ.get("FOCA_WEAK_GRAPH_LOG")
    if log and event != "replays":
        with open(log, "a") as fh:
            fh.write(json.dumps({"event": event, "shape": [str(k) for k in key[:5]], "error": error}) + "\n")


def _graphable(f) -> bool:
    return f.is_cuda  # (a test stands in for CUDA on the CPU)


def folded_steps(fa, t, Wb, n_classes: int, steps: int, lr: float, mu: float, wd: float):
    """weak_steps full-batch steps on fa = [f, 1] (n, D+1) from Wb (K, D+1); returns the last Wb.
    No host synchronisation (one-hot by scatter, no .item()), so it can be captured."""
    n = fa.shape[0]
    onehot = torch.zeros(n, n_classes, device=fa.device, dtype=fa.dtype).scatter_(1, t[:, None], 1.0)  # (n, K)
    Wb, buf = Wb.clone(), None  # updated in place below: fewer kernels, the same arithmetic
    for _ in range(steps):
        dlogits = torch.softmax(fa @ Wb.T, dim=1).sub_(onehot).div_(n)  # (n, K)
        g = torch.addmm(Wb, dlogits.T, fa, beta=wd)  # (K, D+1): [gW, gb] + wd [W, b] of the eager loop
        buf = g if buf is None else buf.mul_(mu).add_(g)
        Wb.add_(g, alpha=-lr).add_(buf, alpha=-lr * mu)  # Nesterov, as torch.optim.SGD
    return Wb


class _Graph:
    """One captured run of folded_steps on static buffers; __call__ copies the inputs in, replays,
    and clones the output (the graph overwrites it at the next replay)."""

    def __init__(self, n, d1, k, dtype, device, hp):
        self.fa = torch.ones(n, d1, device=device, dtype=dtype)  # (n, D+1); the last column stays 1
        self.t = torch.zeros(n, device=device, dtype=torch.long)
        self.Wb0 = torch.zeros(k, d1, device=device, dtype=dtype)
        side = torch.cuda.Stream(device)  # warm-up off the main stream, as CUDA graph capture requires
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            folded_steps(self.fa, self.t, self.Wb0, k, *hp)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = folded_steps(self.fa, self.t, self.Wb0, k, *hp)

    def __call__(self, f, t, Wb0):
        self.fa[:, :-1].copy_(f)
        self.t.copy_(t)
        self.Wb0.copy_(Wb0)
        self.graph.replay()
        return self.out.clone()


def compute_classifier_fast(f, t, n_classes: int, cfg, gen: torch.Generator | None = None,
                            graph: bool = True) -> dict:
    """foca.compute_classifier's result ({"W" (K, D), "b" (K,)}) by the folded loop, replayed as a
    CUDA graph when f is on CUDA and `graph`; the eager folded loop otherwise, or when capture fails
    (said once on stderr)."""
    f = f.detach()
    n, d = f.shape
    theta = init_classifier(d, n_classes, cfg.weak_init_std, gen, f.device, f.dtype)  # the eager draw
    Wb0 = torch.cat([theta["W"], theta["b"][:, None]], dim=1)  # (K, D+1)
    hp = (cfg.weak_steps, cfg.weak_lr, cfg.weak_momentum, cfg.weak_wd)
    key = (str(f.device), n, d + 1, n_classes, f.dtype, *hp)
    Wb = None
    if graph and _graphable(f) and key not in _FAILED:
        try:
            if key not in _GRAPHS:
                _GRAPHS[key] = _Graph(n, d + 1, n_classes, f.dtype, f.device, hp)
                _record("captured", key)
            Wb = _GRAPHS[key](f, t, Wb0)
            _record("replays", key)
        except RuntimeError as e:  # an old driver, a capture-unsafe op: the eager loop still works
            _FAILED.add(key)
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            _record("failed", key, msg)
            print(f"note: CUDA graph capture of ComputeClassifier failed ({msg[:120]}); "
                  "using the eager folded loop", file=sys.stderr)
    if Wb is None:
        fa = torch.cat([f, torch.ones(n, 1, device=f.device, dtype=f.dtype)], dim=1)  # (n, D+1)
        Wb = folded_steps(fa, t, Wb0, n_classes, *hp)
    return {"W": Wb[:, :d].contiguous(), "b": Wb[:, d].contiguous()}
