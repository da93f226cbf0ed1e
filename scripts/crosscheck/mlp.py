"""The MLP problems, the host's draws, and the minifoca side: Algorithm 1 with minifoca's pieces.

Two problems: minifoca's digits network (BN) and the toy's network (no BN, linear last layer).
`draws` takes every random number of a run from a NumPy Generator in the order minifoca.foca's
train_* functions take them, so minifoca's own functions with the same seed land on the same
numbers (the toy check relies on it); `minifoca_trace` runs the stages on those draws and records
everything per iteration; `toy_end_point` runs the toy's own training for comparison.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from minifoca.backend import get_backend, to_device
from minifoca.config import PRESETS as MINI_PRESETS
from minifoca.data import Dataset, load
from minifoca import foca as mini
from minifoca.foca import (EpochSampler, compute_classifier, compute_features, e2e_step, features,
                           foca_step, sample_minibatch)
from minifoca.layers import softmax_ce_backward, softmax_ce_forward
from minifoca.models import MLP, classifier_backward, classifier_forward, init_classifier
from minifoca.optim import SGD, lr_at
from minifoca.train import on_device
from scaled.config import ScaledConfig
from toy.config import ToyConfig, minifoca_config
from toy.data import toy_dataset
from toy.methods import DATA, INIT, TRAIN_E2E, TRAIN_FOCA, stream, train_method

from .trace import Trace

STREAMS = {"init": INIT, "foca": TRAIN_FOCA, "e2e": TRAIN_E2E}  # the toy's stream numbers, for every problem
PHASES = {"foca": {1: "FOCA stage 1", 2: "FOCA stage 2", 3: "FOCA stage 3"}, "e2e": {1: "E2E"}}


@dataclass
class Problem:
    """One small problem every layer runs: network shape, training data and minifoca's config
    (scaled gets the same field values: one vocabulary). n_f <= N < 2 n_f, so an epoch is one
    phi step and scaled's per-epoch learning rate equals minifoca's per-step one."""
    name: str
    widths: tuple  # (D_in, H_1, ..., D)
    bn: bool
    linear_last: bool
    data: Dataset  # float64 host arrays; only the training split is used, except by the toy's run
    cfg: object  # minifoca.config.Config
    seed: int

    def rng(self, which: str) -> np.random.Generator:
        return stream(self.seed, STREAMS[which])

    def new_model(self, xp=np) -> MLP:
        return MLP(self.widths, self.bn, self.rng("init"), xp, np.float64, linear_last=self.linear_last)

    def scaled_cfg(self, method: str) -> ScaledConfig:
        shared = {f.name: getattr(self.cfg, f.name) for f in dataclasses.fields(ScaledConfig)
                  if hasattr(self.cfg, f.name)}
        n, n_f = len(self.data.t_train), self.cfg.n_f
        if not n_f <= n < 2 * n_f:
            raise ValueError(f"{self.name}: {n} examples with n_f={n_f}: need n_f <= N < 2 n_f (one step per epoch)")
        return dataclasses.replace(ScaledConfig(), **{**shared, "method": method, "epochs": self.cfg.steps,
                                                      "device": "cpu", "precision": "fp64", "micro_batches": 1,
                                                      "compile": False})


@functools.lru_cache(maxsize=None)
def digits_problem(refresh: int) -> Problem:
    """minifoca's digits network (64-256-256-32, BN) on the first 48 digits training images,
    n_f = 32, n_c = 40, 5 phi steps; stage 2 for 2 epochs of batch 16; one stage-3 step."""
    d = load("digits")
    sub = Dataset("digits", d.x_train[:48], d.t_train[:48], d.x_val, d.t_val, d.x_test, d.t_test, 10, d.protocol)
    cfg = dataclasses.replace(MINI_PRESETS["digits"], dtype="float64", steps=5, n_f=32, n_c=40, refresh=refresh,
                              stage2_epochs=2, stage2_batch=16, finetune_epochs=1)
    return Problem(f"digits MLP+BN, R={refresh}", (64, 256, 256, 32), True, False, sub, cfg, seed=0)


def toy_problem() -> Problem:
    """The toy's network (2-64-64-2, no BN, linear last layer) and config (n_c = 20, R = 1,
    stage 2's 50 epochs) on 160 spirals, 5 phi steps, plus one stage-3 step."""
    tc = ToyConfig()
    data = toy_dataset("spirals3", 160, 100, tc.spirals_noise, stream(0, DATA))
    cfg = dataclasses.replace(minifoca_config(tc, steps=5), finetune_epochs=1)
    return Problem("toy 2-64-64-2", (2, *tc.hidden, 2), tc.bn, True, data, cfg, seed=0)


# --- randomness, drawn once on the host ----------------------------------------------------------------
def draws(prob: Problem, method: str) -> dict:
    """Every random number of a run, drawn in the order minifoca.foca draws them from one Generator
    (train_foca, train_classifier, fine_tune; or init_classifier then train_e2e), so minifoca's own
    functions with the same seed land on the same numbers. Keys: stage -> list of index batches;
    "weak": iteration -> (n_c indices, initial W); "init": the initial W of stage 2 / of E2E."""
    rng, cfg = prob.rng(method), prob.cfg
    n, d, k = len(prob.data.t_train), prob.widths[-1], prob.data.n_classes
    init = lambda: init_classifier(d, k, rng, std=cfg.weak_init_std)["W"]  # noqa: E731 - (K, D)
    if method == "e2e":
        w0, sampler = init(), EpochSampler(n, cfg.n_f, rng)
        return {"init": w0, 1: [sampler.next() for _ in range(cfg.steps)]}
    out, sampler = {"weak": {}, 1: []}, EpochSampler(n, cfg.n_f, rng)
    for i in range(cfg.steps):
        if i % cfg.refresh == 0:
            idx_c = sample_minibatch(rng, n, cfg.n_c)  # (n_c,)
            out["weak"][i] = (idx_c, init())
        out[1].append(sampler.next())  # (n_f,)
    out["init"] = init()
    s2 = EpochSampler(n, cfg.stage2_batch, rng)
    out[2] = [s2.next() for _ in range(cfg.stage2_epochs * s2.per_epoch)]
    s3 = EpochSampler(n, cfg.n_f, rng)
    out[3] = [s3.next() for _ in range(cfg.finetune_epochs * s3.per_epoch)]
    return out


# --- minifoca: Algorithm 1 with minifoca's pieces ----------------------------------------------------
def minifoca_trace(prob: Problem, method: str, xp=np) -> Trace:
    """minifoca.foca's train_foca, train_classifier and fine_tune (or train_e2e), step for step,
    with the host's draws handed in instead of an rng, recording every quantity per iteration.
    xp: NumPy or CuPy (the draws stay on the host and are moved, as minifoca always does)."""
    cfg, dr, tr = prob.cfg, draws(prob, method), Trace()
    model, k = prob.new_model(xp), prob.data.n_classes
    dev = lambda a: to_device(xp, a)  # noqa: E731
    x, t = dev(prob.data.x_train), dev(prob.data.t_train)
    zeros = xp.zeros(k, np.float64)  # (K,) every classifier's initial bias
    if method == "e2e":
        _mini_e2e(tr, "E2E", model, {"W": dev(dr["init"]), "b": zeros}, x, t, dr[1], cfg.lr, cfg.schedule, cfg)
        return tr
    phase = PHASES["foca"]
    opt_phi = SGD(model.params, cfg.lr, cfg.momentum, cfg.wd, nesterov=True)
    for i in range(cfg.steps):  # for i = 1 : n_i do
        opt_phi.lr = lr_at(i, cfg.lr, cfg.schedule, cfg.steps, cfg.milestones, cfg.lr_gamma)
        if i % cfg.refresh == 0:  # (every R steps)
            idx_c, w0 = dr["weak"][i]  # [x, t] <- SampleMinibatch(d, n_c)
            f_c = compute_features(model, x[dev(idx_c)], train=True)  # f <- ComputeFeature(x, phi)  (n_c, D)
            theta = compute_classifier(f_c, t[dev(idx_c)], k, cfg, None,
                                       theta0={"W": dev(w0), "b": zeros})  # theta <- ComputeClassifier(f, t)
            tr.add(phase[1], "indices", i, idx_c=idx_c)
            tr.add(phase[1], "features", i, f_c=f_c)
        idx_f = dev(dr[1][i])  # [x, t] <- SampleMinibatch(d, n_f)
        tr.add(phase[1], "indices", i, idx_f=idx_f)
        loss, dphi = foca_step(model, theta, x[idx_f], t[idx_f], opt_phi)  # phi <- phi - eta dL_dphi
        # theta after the step: ComputeClassifier's output, and still that at the next R - 1 steps
        tr.add(phase[1], "weak classifier", i, **{"weak W": theta["W"], "weak b": theta["b"]})
        tr.step(phase[1], i, loss, dphi, model.params, model.state)
    # stage 2: a fresh classifier on frozen features (minifoca.foca.train_classifier's steps)
    theta = {"W": dev(dr["init"]), "b": zeros.copy()}
    opt = SGD(theta, cfg.stage2_lr, cfg.weak_momentum, cfg.weak_wd, nesterov=True)
    f_all = None if cfg.stage2_bn_train else features(model, x)  # (N, D) eval mode: computed once
    for i, idx in enumerate(dr[2]):
        idx = dev(idx)
        f = compute_features(model, x[idx], train=True) if f_all is None else f_all[idx]  # (B, D)
        logits, cache = classifier_forward(theta, f)  # (B, K)
        loss, c_ce = softmax_ce_forward(logits, t[idx])
        dtheta = classifier_backward(softmax_ce_backward(1.0, c_ce), cache)[1]
        opt.step(dtheta)
        tr.add(phase[2], "indices", i, idx=idx)
        tr.add(phase[2], "features", i, f=f)
        tr.step(phase[2], i, loss, dtheta, theta=theta)
    # stage 3: end to end from the stage-2 solution (minifoca.foca.fine_tune)
    _mini_e2e(tr, phase[3], model, theta, x, t, dr[3], cfg.finetune_lr, cfg.finetune_schedule, cfg)
    return tr


def _mini_e2e(tr, phase, model, theta, x, t, batches, lr, schedule, cfg) -> None:
    """minifoca.foca.train_e2e's steps: phi and theta follow the loss gradient together."""
    xp = model.xp
    opt_phi = SGD(model.params, lr, cfg.momentum, cfg.wd, nesterov=True)
    opt_theta = SGD(theta, lr, cfg.momentum, cfg.wd, nesterov=True)
    for i, idx in enumerate(batches):
        opt_phi.lr = opt_theta.lr = lr_at(i, lr, schedule, len(batches), cfg.milestones, cfg.lr_gamma)
        idx = to_device(xp, idx)
        tr.add(phase, "indices", i, idx=idx)
        loss, dphi, dtheta = e2e_step(model, theta, x[idx], t[idx], opt_phi, opt_theta)
        tr.step(phase, i, loss, {**dphi, **dtheta}, model.params, model.state, theta)


# --- toy: toy.methods.train_method lands where minifoca_trace lands --------------------------------------
def end_point(tr: Trace, method: str) -> Trace:
    """phi after stage 1 and theta after stage 2 (FOCA), or both after the last step (E2E)."""
    p1, p2 = ("E2E", "E2E") if method == "e2e" else ("FOCA stage 1", "FOCA stage 2")
    last = {p: max(k[2] for k in tr if k[0] == p) for p in (p1, p2)}  # the last iteration of each
    wanted = {(p1, "parameters", last[p1]), (p1, "BN running statistics", last[p1]), (p2, "classifier", last[p2])}
    out = Trace()
    for (phase, kind, i, name), a in tr.items():
        if (phase, kind, i) in wanted:
            out[("end point", kind, None, name)] = a
    return out


def toy_end_point(prob: Problem, method: str, backend: str = "numpy") -> Trace:
    cfg = dataclasses.replace(prob.cfg, backend=backend)
    xp = get_backend(backend)
    model, theta, _ = train_method(method, on_device(prob.data, xp, np.float64), prob.widths, cfg, prob.seed,
                                   track_every=10**9)
    out = Trace()
    out.add("end point", "parameters", None, **model.params)
    out.add("end point", "BN running statistics", None, **model.state)
    out.add("end point", "classifier", None, **theta)
    return out




# --- minifoca's own train_* functions land where the replayed loop lands ------------------------------
def final_point(tr: Trace, method: str) -> Trace:
    """Parameters, BN statistics and classifier after the last step of the last stage."""
    phase = "E2E" if method == "e2e" else "FOCA stage 3"
    last = max(k[2] for k in tr if k[0] == phase)
    out = Trace()
    for (ph, kind, i, name), a in tr.items():
        if ph == phase and i == last and kind in ("parameters", "BN running statistics", "classifier"):
            out[("final", kind, None, name)] = a
    return out


def minifoca_final_point(prob: Problem, method: str) -> Trace:
    """minifoca.foca.train_foca, train_classifier and fine_tune (or init_classifier then train_e2e)
    themselves, with the Generator the draws came from: they must end exactly where
    minifoca_trace's replay of the same draws ends (their loops are what the other checks trust)."""
    rng, model = prob.rng(method), prob.new_model()
    data = on_device(prob.data, np, np.float64)
    if method == "e2e":
        theta = init_classifier(prob.widths[-1], data.n_classes, rng, std=prob.cfg.weak_init_std)
        mini.train_e2e(model, theta, data, prob.cfg, rng)
    else:
        mini.train_foca(model, data, prob.cfg, rng)
        theta = mini.train_classifier(model, data, prob.cfg, rng)
        mini.fine_tune(model, theta, data, prob.cfg, rng)
    out = Trace()
    out.add("final", "parameters", None, **model.params)
    out.add("final", "BN running statistics", None, **model.state)
    out.add("final", "classifier", None, **theta)
    return out
