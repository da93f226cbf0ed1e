"""FOCA: Algorithm 1 of Sato et al. (ICML 2019), line by line, then stages 2 and 3, and E2E.

This file is the clean, minimal reference the rest of the project is tested against.

    Algorithm 1 (approximate solution for the primary optimisation), as the paper prints it:
        initialize(phi)
        for i = 1 : n_i do
            [x, t] <- SampleMinibatch(d, n_c)        samples a minibatch for theta
            f      <- ComputeFeature(x, phi)         computes features
            theta  <- ComputeClassifier(f, t)        samples a weak classifier
            [x, t] <- SampleMinibatch(d, n_f)        samples a minibatch for phi
            phi    <- phi - eta dL_dphi(x, t, phi, theta)   updates phi; theta is a constant
        end for

The authors' code refreshes theta only every R phi-steps (R = 32); `cfg.refresh` is R, and R = 1
is the algorithm as printed. Randomness comes from the `rng` argument (a NumPy Generator, drawn on
the host), never from global state. `cfg` is any object with Config's field names (minifoca's
Config, or scaled's), so both layers share one vocabulary.
"""
from __future__ import annotations

import time

import numpy as np

from .backend import array_module
from .layers import softmax_ce_backward, softmax_ce_forward
from .metrics import error_rate
from .models import classifier_backward, classifier_forward, init_classifier
from .optim import SGD, lr_at


class NonFiniteLoss(FloatingPointError):
    """Training diverged; the message names the stage and step."""


# --- the pieces Algorithm 1 names ----------------------------------------------------------------
def sample_minibatch(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """SampleMinibatch(d, n_c): `size` indices drawn uniformly WITH replacement (docs/algorithm.md)."""
    return rng.integers(0, n, size)  # (n_c,)


class EpochSampler:
    """SampleMinibatch(d, n_f): successive batches of an epoch-wise shuffle. The last incomplete
    batch of an epoch is dropped, so every phi step sees n_f examples (BN statistics stay stable)."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        if batch > n:
            raise ValueError(f"batch size {batch} exceeds the {n} training examples")
        self.n, self.batch, self.rng = n, batch, rng
        self.per_epoch, self.epoch, self._pos, self._order = n // batch, 0, n // batch, None

    def next(self) -> np.ndarray:
        if self._pos == self.per_epoch:  # a new epoch: a fresh permutation
            self._order, self._pos = self.rng.permutation(self.n), 0
            self.epoch += 1
        idx = self._order[self._pos * self.batch:(self._pos + 1) * self.batch]  # (n_f,)
        self._pos += 1
        return idx

    @property
    def epoch_done(self) -> bool:
        return self._pos == self.per_epoch


def compute_features(model, x, train: bool = True):
    """ComputeFeature(x, phi): f = F_phi(x) with no gradient (no cache kept). train=True uses BN
    batch statistics, as the weak classifier's features are computed in the authors' code."""
    f, _ = model.forward(x, train)
    return f  # (N, D)


def compute_classifier(f, t, n_classes: int, cfg, rng: np.random.Generator, theta0=None) -> dict:
    """ComputeClassifier(f, t): a fresh linear softmax classifier fitted to fixed features.
    W ~ N(0, weak_init_std^2), b = 0 (or a copy of theta0), zeroed momentum, then weak_steps
    full-batch SGD steps (Nesterov, weight decay on W and b) of mean cross-entropy."""
    xp = array_module(f)
    theta = ({k: v.copy() for k, v in theta0.items()} if theta0 is not None
             else init_classifier(f.shape[1], n_classes, rng, xp, f.dtype, cfg.weak_init_std))
    opt = SGD(theta, cfg.weak_lr, cfg.weak_momentum, cfg.weak_wd, nesterov=True)
    for _ in range(cfg.weak_steps):
        logits, cache = classifier_forward(theta, f)  # (n_c, K)
        _, c_ce = softmax_ce_forward(logits, t)
        _, dtheta = classifier_backward(softmax_ce_backward(1.0, c_ce), cache)
        opt.step(dtheta)
    return theta


def foca_step(model, theta: dict, x, t, opt_phi: SGD):
    """phi <- phi - eta dL_dphi(x, t, phi, theta): one SGD step on phi alone. theta is a constant:
    its gradient is never formed and nothing flows back into ComputeClassifier.
    Returns (loss, dphi) so the cross-checks can compare every gradient."""
    f, cache = model.forward(x, train=True)  # (n_f, D)
    logits, c_cls = classifier_forward(theta, f)  # (n_f, K)
    loss, c_ce = softmax_ce_forward(logits, t)
    df, _ = classifier_backward(softmax_ce_backward(1.0, c_ce), c_cls)  # dtheta discarded
    dphi = model.backward(df, cache)
    opt_phi.step(dphi)
    return loss, dphi


def e2e_step(model, theta: dict, x, t, opt_phi: SGD, opt_theta: SGD):
    """The end-to-end step on the same network: phi and theta both follow the loss gradient."""
    f, cache = model.forward(x, train=True)  # (N, D)
    logits, c_cls = classifier_forward(theta, f)  # (N, K)
    loss, c_ce = softmax_ce_forward(logits, t)
    df, dtheta = classifier_backward(softmax_ce_backward(1.0, c_ce), c_cls)
    dphi = model.backward(df, cache)
    opt_phi.step(dphi)
    opt_theta.step(dtheta)
    return loss, dphi, dtheta


# --- evaluation ----------------------------------------------------------------------------------
def features(model, x, batch: int = 2048):
    """Eval-mode features (BN running statistics) of a whole split, in batches."""
    xp = model.xp
    return xp.concatenate([compute_features(model, x[i:i + batch], train=False)
                           for i in range(0, len(x), batch)])  # (N, D)


def evaluate(model, theta: dict, x, t) -> float:
    logits, _ = classifier_forward(theta, features(model, x))
    return error_rate(logits, t)


def few_label_error(f_train, t_train, f_test, t_test, n_classes: int, cfg, rng) -> float:
    """Error of ComputeClassifier fitted on `cfg.few_labels` labelled examples per class of frozen
    features, averaged over `cfg.few_label_draws` random labelled sets: how simple the features are."""
    t_host = np.asarray(t_train.get() if hasattr(t_train, "get") else t_train)
    errs = []
    for _ in range(cfg.few_label_draws):
        idx = np.concatenate([rng.choice(np.flatnonzero(t_host == k), cfg.few_labels, replace=False)
                              for k in range(n_classes)])  # (K * few_labels,)
        theta = compute_classifier(f_train[idx], t_train[idx], n_classes, cfg, rng)
        errs.append(error_rate(classifier_forward(theta, f_test)[0], t_test))
    return float(np.mean(errs))


# --- stage 1: the feature extractor --------------------------------------------------------------
def train_foca(model, data, cfg, rng: np.random.Generator, log=lambda rec: None) -> dict:
    """Algorithm 1. data: a Dataset whose arrays are on model's backend. Returns the last weak
    classifier (used for the stage-1 validation error, as the authors' code evaluates)."""
    x, t, n_classes = data.x_train, data.t_train, data.n_classes
    opt_phi = SGD(model.params, cfg.lr, cfg.momentum, cfg.wd, nesterov=True)
    batches = EpochSampler(len(t), cfg.n_f, rng)
    tic, losses = time.perf_counter(), []
    for i in range(cfg.steps):  # for i = 1 : n_i do
        opt_phi.lr = lr_at(i, cfg.lr, cfg.schedule, cfg.steps, cfg.milestones, cfg.lr_gamma)
        if i % cfg.refresh == 0:  # (every R steps; R = 1 is Algorithm 1 as printed)
            idx_c = sample_minibatch(rng, len(t), cfg.n_c)  # [x, t] <- SampleMinibatch(d, n_c)
            f_c = compute_features(model, x[idx_c], train=True)  # f <- ComputeFeature(x, phi)
            theta = compute_classifier(f_c, t[idx_c], n_classes, cfg, rng)  # theta <- ComputeClassifier(f, t)
        idx_f = batches.next()  # [x, t] <- SampleMinibatch(d, n_f)
        loss, _ = foca_step(model, theta, x[idx_f], t[idx_f], opt_phi)  # phi <- phi - eta dL_dphi(x, t, phi, theta)
        losses.append(_finite(loss, "stage 1 (FOCA)", i))
        if batches.epoch_done:
            _log_epoch(log, 1, batches.epoch, i + 1, cfg.steps, opt_phi.lr, losses, tic, cfg,
                       lambda: evaluate(model, theta, data.x_val, data.t_val), by="weak classifier")
    return theta


def train_e2e(model, theta: dict, data, cfg, rng, log=lambda rec: None, *, stage: int = 1,
              steps: int | None = None, lr: float | None = None, schedule: str | None = None):
    """E2E training of F_phi and C_theta together: the baseline (stage=1, the stage-1 settings) and
    the fine-tuning after FOCA (stage=3, fine_tune's settings). Updates theta in place."""
    steps = cfg.steps if steps is None else steps
    lr = cfg.lr if lr is None else lr
    schedule = cfg.schedule if schedule is None else schedule
    opt_phi = SGD(model.params, lr, cfg.momentum, cfg.wd, nesterov=True)
    opt_theta = SGD(theta, lr, cfg.momentum, cfg.wd, nesterov=True)
    batches = EpochSampler(len(data.t_train), cfg.n_f, rng)
    tic, losses = time.perf_counter(), []
    for i in range(steps):
        opt_phi.lr = opt_theta.lr = lr_at(i, lr, schedule, steps, cfg.milestones, cfg.lr_gamma)
        idx = batches.next()
        loss, _, _ = e2e_step(model, theta, data.x_train[idx], data.t_train[idx], opt_phi, opt_theta)
        losses.append(_finite(loss, f"stage {stage} (E2E)", i))
        if batches.epoch_done:
            _log_epoch(log, stage, batches.epoch, i + 1, steps, opt_phi.lr, losses, tic, cfg,
                       lambda: evaluate(model, theta, data.x_val, data.t_val))
    return theta


# --- stage 2: a fresh classifier on frozen features ----------------------------------------------
def train_classifier(model, data, cfg, rng, log=lambda rec: None) -> dict:
    """A fresh C_theta (the weak classifier's init) trained on all training data with phi frozen:
    SGD stage2_lr constant, Nesterov, weight decay weak_wd, batch stage2_batch, stage2_epochs.
    BN in eval mode unless cfg.stage2_bn_train (the authors' code: batch statistics)."""
    x, t = data.x_train, data.t_train
    theta = init_classifier(model.widths[-1], data.n_classes, rng, model.xp, model.dtype, cfg.weak_init_std)
    opt = SGD(theta, cfg.stage2_lr, cfg.weak_momentum, cfg.weak_wd, nesterov=True)
    f_all = None if cfg.stage2_bn_train else features(model, x)  # frozen phi: compute once
    batches = EpochSampler(len(t), cfg.stage2_batch, rng)
    tic, losses = time.perf_counter(), []
    for i in range(cfg.stage2_epochs * batches.per_epoch):
        idx = batches.next()
        f = compute_features(model, x[idx], train=True) if f_all is None else f_all[idx]  # (B, D)
        logits, cache = classifier_forward(theta, f)
        loss, c_ce = softmax_ce_forward(logits, t[idx])
        opt.step(classifier_backward(softmax_ce_backward(1.0, c_ce), cache)[1])
        losses.append(_finite(loss, "stage 2 (classifier)", i))
        if batches.epoch_done:
            _log_epoch(log, 2, batches.epoch, i + 1, None, opt.lr, losses, tic, cfg,
                       lambda: evaluate(model, theta, data.x_val, data.t_val), every=1)
    return theta


# --- stage 3: end-to-end fine-tuning after FOCA --------------------------------------------------
def fine_tune(model, theta: dict, data, cfg, rng, log=lambda rec: None) -> dict:
    """Unfreeze phi and the stage-2 theta and train end to end: finetune_epochs at finetune_lr
    with finetune_schedule (our recipe; the 2021 paper's Fig. 1 does not publish one)."""
    steps = cfg.finetune_epochs * (len(data.t_train) // cfg.n_f)
    return train_e2e(model, theta, data, cfg, rng, log, stage=3, steps=steps, lr=cfg.finetune_lr,
                     schedule=cfg.finetune_schedule)


# --- bookkeeping ---------------------------------------------------------------------------------
def _finite(loss, stage: str, step: int) -> float:
    value = float(loss)
    if not np.isfinite(value):
        raise NonFiniteLoss(f"{stage}: loss is {value} at step {step}; lower the learning rate")
    return value


def _log_epoch(log, stage, epoch, step, total_steps, lr, losses, tic, cfg, val_error, every=None,
               by="own classifier"):
    """One metrics record per epoch; the validation error every eval_every epochs and at the end.
    `by` says which classifier measured it (stage 1 of FOCA: the current weak one, as the authors)."""
    every = every or cfg.eval_every
    last = total_steps is not None and step + (step // epoch) > total_steps
    rec = {"stage": stage, "epoch": epoch, "step": step, "lr": lr,
           "train_loss": float(np.mean(losses[-(step // epoch):])),
           "seconds": round(time.perf_counter() - tic, 3)}
    if epoch % every == 0 or last:
        rec["val_error"], rec["val_error_by"] = val_error(), by
    log(rec)
