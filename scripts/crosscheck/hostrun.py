"""The scaled side of the MLP cross-checks: scaled.foca's own stage functions, fed the host's draws.

train_foca, train_classifier, fine_tune and train_e2e take the engine's Run. A HostRun is that Run
with the host's index batches in place of its data pipeline (no augmentation: minifoca has none
here) and the host's classifier inits in place of its torch generator, and it records every
step in minifoca's names (scaled/convert.py maps them).
"""
from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy as np
import torch

import scaled.foca as scaled_foca
from scaled.convert import CLASSIFIER_KEYS, layer_keys, torch_twin
from scaled.engine import Run
from scaled.progress import Progress

from .mlp import PHASES, Problem, draws
from .trace import CrossCheckError, Trace


class HostRun(Run):
    """scaled.engine.Run for a cross-check: batches and weak-classifier samples replay the host's
    draws, and `track` (called right after each optimiser step) records the step in minifoca's
    names. Run.__init__ is not called (it loads a dataset and seeds generators); the attributes the
    inherited methods read (optimizer, module, epochs, starting, track, end_epoch, autocast) are
    set here, so the optimisers, parameter groups and epoch bookkeeping are the engine's own."""

    def __init__(self, cfg, net, prob: Problem, method: str, dr: dict):
        self.cfg, self.net, self.rundir, self.device, self.dtype = cfg, net, None, "cpu", torch.float64
        self.rank, self.world, self.num_classes = 0, 1, prob.data.n_classes
        self.theta, self.step, self.pos, self.records, self.results = None, 0, (1, 0), [], {}
        self._modules, self.opt, self._opt_state, self.seconds = {}, None, None, 0.0
        self._tic = time.perf_counter()
        self.progress, self.saved_pos = Progress("quiet"), None  # the engine's per-epoch printer, silent here
        self.gens = {"weak": None, "shake": torch.Generator()}  # weak inits come from the host draws; no ShakeDrop in an MLP
        self.x, self.t = torch.from_numpy(prob.data.x_train), torch.from_numpy(prob.data.t_train)
        self.dr, self.phase, self.trace = dr, PHASES[method], Trace()
        self.keys = layer_keys(prob.new_model())  # minifoca name -> torch key
        # every classifier init in the order scaled asks for them: the weak ones, then stage 2's
        self.inits = [w for _, (_, w) in sorted(dr.get("weak", {}).items())] + [dr["init"]]
        self.init_std, self.host_refresh = prob.cfg.weak_init_std, prob.cfg.refresh  # what the host drew with
        self.count = {1: 0, 2: 0, 3: 0}  # steps taken in each stage

    @property
    def _here(self):  # (stage, phase name, iteration within the stage)
        stage = self.pos[0]
        return stage, self.phase[stage], self.count[stage]

    def batches(self, batch: int):
        stage, phase, _ = self._here
        per_epoch = len(self.t) // batch
        self._epoch_images = per_epoch * batch
        for _ in range(per_epoch):
            i = self.count[stage]
            if i >= len(self.dr[stage]):
                raise CrossCheckError(f"scaled asked for step {i} of {phase}; minifoca takes {len(self.dr[stage])}")
            idx = self.dr[stage][i]  # (B,)
            self.trace.add(phase, "indices", i, **{"idx_f" if phase == "FOCA stage 1" else "idx": idx})
            yield [(self.x[idx], self.t[idx])]

    def sample_weak_batch(self, n_c: int):
        _, phase, i = self._here
        if i not in self.dr["weak"]:
            raise CrossCheckError(f"scaled refreshed the weak classifier at iteration {i}; minifoca "
                                  f"(R={self.host_refresh}) refreshes at {sorted(self.dr['weak'])}")
        idx_c = self.dr["weak"][i][0]  # (n_c,)
        self.trace.add(phase, "indices", i, idx_c=idx_c)
        return self.x[idx_c], self.t[idx_c]

    def record_features(self, f) -> None:
        stage, phase, i = self._here
        self.trace.add(phase, "features", i, **{"f_c" if stage == 1 else "f": f})

    def track(self, loss) -> None:
        stage, phase, i = self._here
        sd, p = self.net.state_dict(), dict(self.net.named_parameters())
        clf = {name: p[key] for name, key in CLASSIFIER_KEYS.items()}
        phi = {name: p[key] for name, key in self.keys.items() if key in p}
        state = {name: sd[key] for name, key in self.keys.items() if key not in p}
        if phase == "FOCA stage 1":
            self.trace.add(phase, "weak classifier", i, **{"weak W": self.theta["W"], "weak b": self.theta["b"]})
            self.trace.step(phase, i, loss, {n: q.grad for n, q in phi.items()}, phi, state)
        elif phase == "FOCA stage 2":
            self.trace.step(phase, i, loss, {n: q.grad for n, q in clf.items()}, theta=clf)
        else:
            grads = {n: q.grad for n, q in {**phi, **clf}.items()}
            self.trace.step(phase, i, loss, grads, phi, state, clf)
        self.count[stage] += 1
        super().track(loss)

    def end_epoch(self, stage, epoch, n, classifier, by="own classifier", every=None):
        super().end_epoch(stage, epoch, n, None, by, every)  # no evaluation split here


@contextlib.contextmanager
def host_randomness(run: HostRun):
    """scaled.foca draws classifier inits from torch generators; for the duration, its
    init_classifier hands out the host's instead, and compute_features records what it computes.
    (Both are looked up in scaled.foca's globals when called, so swapping them reaches the stages.)"""
    real_init, real_features = scaled_foca.init_classifier, scaled_foca.compute_features

    def init_classifier(n_features, n_classes, std, gen, device, dtype=torch.float32):
        if std != run.init_std or not run.inits:
            raise CrossCheckError(f"scaled asked for a classifier init with std {std} "
                                  f"(the host drew {len(run.inits)} more with std {run.init_std})")
        w = torch.from_numpy(run.inits.pop(0)).to(device, dtype)  # (K, D)
        if w.shape != (n_classes, n_features):
            raise CrossCheckError(f"classifier init shape {(n_classes, n_features)} != host's {tuple(w.shape)}")
        return {"W": w, "b": torch.zeros(n_classes, device=device, dtype=dtype)}

    def compute_features(net, x):
        f = real_features(net, x)  # (N, D)
        run.record_features(f)
        return f

    scaled_foca.init_classifier, scaled_foca.compute_features = init_classifier, compute_features
    try:
        yield
    finally:
        scaled_foca.init_classifier, scaled_foca.compute_features = real_init, real_features


def scaled_trace(prob: Problem, method: str, **cfg_changes) -> Trace:
    """cfg_changes: fields of scaled's config to set differently from minifoca's (the tests use it
    to show that a difference is caught)."""
    dr = draws(prob, method)
    k = prob.data.n_classes
    theta0 = {"W": dr["init"], "b": np.zeros(k)} if method == "e2e" else None  # E2E's classifier is net's
    cfg = dataclasses.replace(prob.scaled_cfg(method), **cfg_changes)
    run = HostRun(cfg, torch_twin(prob.new_model(), k, theta0), prob, method, dr)
    with host_randomness(run):
        if method == "foca":
            scaled_foca.train_foca(run)  # stage 1
            scaled_foca.train_classifier(run)  # stage 2
            scaled_foca.fine_tune(run)  # stage 3
        else:
            scaled_foca.train_e2e(run)
    return run.trace


