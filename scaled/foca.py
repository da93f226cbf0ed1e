"""FOCA in PyTorch with minifoca's names and semantics (minifoca/foca.py is the specification).

Step-level pieces, FocaLoss (the objective of stage 1 as one object: the engine's and yours,
docs/api.md), then one function per stage. A stage function receives the engine's Run
(scaled/engine.py: data batches, generators, checkpoints, logging, DDP) and reads like
minifoca's loop; tests/test_crosscheck*.py hold the two layers to the same numbers.

    stage 1  train_foca        Algorithm 1: weak classifiers from n_c samples every R steps,
                               phi steps against them (theta a constant)
             train_e2e         the baseline: the same network, trained jointly
    stage 2  train_classifier  a fresh classifier on frozen features
    stage 3  fine_tune         end-to-end from the stage-2 solution
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F

from minifoca.optim import lr_at

from . import dist
from .classifier import init_classifier
from .weak_graph import compute_classifier_fast


# --- step-level pieces -----------------------------------------------------------------------------
def _up(z):
    """bf16/fp16 under autocast -> fp32 for the loss and the classifier; fp32 and fp64 unchanged."""
    return z.float() if z.dtype in (torch.bfloat16, torch.float16) else z


def features_of(net, x):
    """F_phi(x) with gradient: net.compute_features (a FeatureNet), else net(x) for any module mapping images to (N, D)."""
    return net.compute_features(x) if hasattr(net, "compute_features") else net(x)  # (N, D)


def compute_features(net, x):
    """ComputeFeature(x, phi): F_phi(x) without gradient; BN in whatever mode net is (train mode:
    batch statistics, as the weak classifier's features are computed in the authors' code)."""
    with torch.no_grad():
        return features_of(net, x)  # (N, D)


def compute_classifier(f, t, n_classes: int, cfg, gen: torch.Generator | None = None, theta0=None) -> dict:
    """ComputeClassifier(f, t): W ~ N(0, weak_init_std^2) (K, D), b = 0 (or a copy of theta0),
    then weak_steps full-batch SGD steps (Nesterov, weight decay on W and b) of mean cross-entropy
    on the FIXED features f (n_c, D): a few small matmuls per step, never a trunk pass.
    The gradient is written out as in minifoca (dlogits = (softmax - onehot) / n) and the update
    is torch.optim.SGD's, so both layers compute the same classifier."""
    f = f.detach()
    n, d = f.shape
    theta = (init_classifier(d, n_classes, cfg.weak_init_std, gen, f.device, f.dtype) if theta0 is None
             else theta0)
    W, b = theta["W"].clone(), theta["b"].clone()
    onehot = F.one_hot(t, n_classes).to(f.dtype)  # (n_c, K)
    mu, lr, wd = cfg.weak_momentum, cfg.weak_lr, cfg.weak_wd
    buf_W = buf_b = None
    for _ in range(cfg.weak_steps):
        dlogits = (torch.softmax(f @ W.T + b, dim=1) - onehot) / n  # (n_c, K)
        gW, gb = dlogits.T @ f + wd * W, dlogits.sum(0) + wd * b  # (K, D), (K,)
        buf_W, buf_b = (gW, gb) if buf_W is None else (mu * buf_W + gW, mu * buf_b + gb)
        W, b = W - lr * (gW + mu * buf_W), b - lr * (gb + mu * buf_b)  # Nesterov
    return {"W": W, "b": b}


def weak_classifier(f, t, n_classes: int, cfg, gen) -> dict:
    """ComputeClassifier as stage 1 runs it: compute_classifier above on the CPU (what the
    cross-checks hold to minifoca), on CUDA the same steps with the bias folded into W and replayed
    as one CUDA graph (scaled/weak_graph.py: launch overhead only; the same numbers up to round-off)."""
    if f.is_cuda and cfg.weak_graph:
        return compute_classifier_fast(f, t, n_classes, cfg, gen)
    return compute_classifier(f, t, n_classes, cfg, gen)


def weak_loss(f, t, theta: dict):
    """L(x, t, phi, theta): mean cross-entropy of the fixed classifier theta on features f (N, D), in fp32/fp64."""
    return F.cross_entropy(F.linear(_up(f), theta["W"], theta["b"]), t)


@dataclass
class FocaLoss:
    """Stage 1's objective in one object: the weak-classifier settings (ScaledConfig's field names,
    so compute_classifier reads them from here), the current weak classifier theta and the count
    of calls. Every `refresh` calls (R; 1 = Algorithm 1 as printed) it draws a new theta:
    compute_classifier on the features of n_c images, from the weak batch handed in or `sampler`.

        foca = FocaLoss(num_classes=10, generator=torch.Generator().manual_seed(0), sampler=my_sampler)
        loss = foca(net, x, t)   # (N, C, H, W), (N,) -> scalar; backward() reaches phi only
    The engine's stage 1 (train_foca) runs on this same object (next_classifier, then foca_step)."""

    num_classes: int  # K
    n_c: int = 100  # images per weak classifier (~10 per class)
    refresh: int = 32  # R: a new weak classifier every R calls (the authors' 32)
    weak_steps: int = 64  # full-batch SGD steps on the fixed features
    weak_lr: float = 0.03
    weak_momentum: float = 0.9  # Nesterov
    weak_wd: float = 1e-2  # on W and b
    weak_init_std: float = 0.1  # W ~ N(0, std^2), b = 0
    generator: torch.Generator | None = None  # the inits' draws, on the features' device (None: torch's global)
    sampler: Callable[[int], tuple] | None = None  # n_c -> (x_c (n_c, C, H, W), t_c (n_c,)), when no weak batch is handed in
    weak_graph: bool = True  # CUDA: the steps replayed as one CUDA graph (weak_graph.py), same numbers
    theta: dict | None = None  # the current weak classifier {"W": (K, D), "b": (K,)}
    calls: int = 0  # calls so far; a refresh is due when calls % refresh == 0
    fresh: bool = False  # whether the last call drew a new theta (the engine broadcasts it then)

    @classmethod
    def from_config(cls, cfg, num_classes: int, **kw) -> "FocaLoss":
        """The settings from a ScaledConfig (or minifoca Config): every field both have."""
        names = {f.name for f in fields(cls)} - {"num_classes", "theta", "calls", "fresh"}
        return cls(num_classes, **{n: getattr(cfg, n) for n in names if hasattr(cfg, n)}, **kw)

    @property
    def due(self) -> bool:
        """True when the next call draws a new weak classifier (hand it a weak batch then)."""
        return self.theta is None or self.calls % self.refresh == 0

    def next_classifier(self, net, weak: tuple | None = None, autocast=contextlib.nullcontext) -> dict:
        """The weak classifier for this call, counting it: a new one when due, from weak = (x_c, t_c)
        or sampler(n_c), on features computed without gradient with BN as net is (train mode)."""
        self.fresh = self.due
        if self.fresh:
            if weak is None and self.sampler is None:
                raise ValueError("FocaLoss: a weak classifier is due; pass weak=(x_c, t_c) or give it a sampler")
            x_c, t_c = weak if weak is not None else self.sampler(self.n_c)  # [x, t] <- SampleMinibatch(d, n_c)
            if not len(x_c) == len(t_c) == self.n_c:  # a short batch would fit theta to fewer images, silently
                raise ValueError(f"FocaLoss: the weak batch has {len(x_c)} images and {len(t_c)} labels; n_c={self.n_c} "
                                 f"of each are needed ({'weak=(x_c, t_c)' if weak is not None else 'sampler(n_c)'} "
                                 "must give n_c, or set n_c to what it gives)")
            with autocast():
                f_c = compute_features(net, x_c)  # f <- ComputeFeature(x, phi)
            self.theta = weak_classifier(_up(f_c), t_c, self.num_classes, self, self.generator)  # ComputeClassifier
        self.calls += 1
        return self.theta

    def __call__(self, net, x, t, weak: tuple | None = None):
        """The FOCA loss of batch (x (N, C, H, W), t (N,)) against this call's weak classifier."""
        theta = self.next_classifier(net, weak)
        return weak_loss(features_of(net, x), t, theta)

    def state_dict(self) -> dict:
        """theta, calls, the generator's state and the sampler's (when it has a state_dict, as
        scaled.api.weak_sampler's): with phi and its optimiser, your loop resumes exactly."""
        state = {"theta": self.theta, "calls": self.calls}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        if hasattr(self.sampler, "state_dict"):
            state["sampler"] = self.sampler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.theta, self.calls = state["theta"], state["calls"]
        if "generator" in state:
            if self.generator is None:
                raise ValueError("FocaLoss.load_state_dict: the state holds a generator's; give this FocaLoss one")
            self.generator.set_state(state["generator"])
        if "sampler" in state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])


def _accumulate(module, batches, loss_fn, opt, autocast=contextlib.nullcontext):
    """One optimiser step over this rank's micro-batches; DDP syncs gradients on the last only.
    The module runs under autocast; the loss (and FOCA's fixed classifier) in fp32 or fp64."""
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for i, (x, t) in enumerate(batches):
        sync = i == len(batches) - 1 or not hasattr(module, "no_sync")
        with contextlib.nullcontext() if sync else module.no_sync():
            with autocast():
                out = module(x)
            loss = loss_fn(_up(out), t) / len(batches)
            loss.backward()
        total = total + loss.detach()
    opt.step()
    return total


def foca_step(phi, theta: dict, batches, opt, autocast=contextlib.nullcontext):
    """phi <- phi - eta dL_dphi(x, t, phi, theta). phi: the feature module (maybe DDP-wrapped);
    theta: plain tensors with no grad, so nothing flows back into ComputeClassifier."""
    return _accumulate(phi, batches, lambda f, t: weak_loss(f, t, theta), opt, autocast)


def e2e_step(model, batches, opt, autocast=contextlib.nullcontext):
    """One SGD step on phi and theta together (model returns logits)."""
    return _accumulate(model, batches, F.cross_entropy, opt, autocast)


def _step_lr(run, opt, epoch: int, i: int, lr: float, schedule: str, epochs: int) -> None:
    """wsd only: the lr per step, so that a decay of one epoch (a 5-epoch horizon) still anneals;
    the other schedules stay per epoch, as the authors' code and torch's schedulers step them."""
    if schedule == "wsd":
        t = epoch + i / run.steps_per_epoch(run.cfg.n_f)
        run.set_lr(opt, lr_at(t, lr, schedule, epochs, run.cfg.milestones, run.cfg.lr_gamma))


# --- stages ----------------------------------------------------------------------------------------
def train_foca(run) -> None:
    """Stage 1, Algorithm 1. The stage-1 validation (or, without a val split, test) error uses the
    current weak classifier, as the authors' code reports it (the log says so)."""
    cfg, net = run.cfg, run.net
    opt, phi = run.optimizer(1), run.module("phi")
    foca = FocaLoss.from_config(cfg, run.num_classes, generator=run.gens["weak"], sampler=run.sample_weak_batch,
                                theta=run.theta, calls=run.step)  # as the checkpoint left them
    for epoch in run.epochs(1, cfg.epochs):
        run.set_lr(opt, lr_at(epoch, cfg.lr, cfg.schedule, cfg.epochs, cfg.milestones, cfg.lr_gamma))
        for i, batches in enumerate(run.batches(cfg.n_f)):  # [x, t] <- SampleMinibatch(d, n_f), epoch-wise shuffle
            _step_lr(run, opt, epoch, i, cfg.lr, cfg.schedule, cfg.epochs)
            run.theta = foca.next_classifier(net, autocast=run.autocast)  # every R steps a new one
            if foca.fresh:
                dist.broadcast_(run.theta["W"], run.theta["b"])  # one classifier on every rank
            run.track(foca_step(phi, run.theta, batches, opt, run.autocast))  # phi <- phi - eta dL_dphi
        run.end_epoch(1, epoch, cfg.epochs, run.theta, by="weak classifier")


def train_e2e(run, stage: int = 1) -> None:
    """The E2E baseline (stage 1) or the fine-tuning after FOCA (stage 3): all parameters."""
    cfg = run.cfg
    epochs, lr, schedule = ((cfg.epochs, cfg.lr, cfg.schedule) if stage == 1
                            else (cfg.finetune_epochs, cfg.finetune_lr, cfg.finetune_schedule))
    opt, model = run.optimizer(stage), run.module("net")
    for epoch in run.epochs(stage, epochs):
        run.set_lr(opt, lr_at(epoch, lr, schedule, epochs, cfg.milestones, cfg.lr_gamma))
        for i, batches in enumerate(run.batches(cfg.n_f)):
            _step_lr(run, opt, epoch, i, lr, schedule, epochs)
            run.track(e2e_step(model, batches, opt, run.autocast))
        run.end_epoch(stage, epoch, epochs, run.net.classifier)


def train_classifier(run) -> None:
    """Stage 2: a fresh net.classifier (the weak classifier's init) on frozen, augmented features:
    stage2_epochs of SGD at stage2_lr (constant), Nesterov, weight decay weak_wd, batch stage2_batch.
    BN in eval mode unless stage2_bn_train (the authors' code keeps batch statistics)."""
    cfg, net = run.cfg, run.net
    if run.starting(2):
        theta = init_classifier(net.feature_dim, run.num_classes, cfg.weak_init_std, run.gens["weak"],
                                run.device, net.classifier.weight.dtype)
        with torch.no_grad():
            net.classifier.weight.copy_(theta["W"])
            net.classifier.bias.copy_(theta["b"])
    opt, clf = run.optimizer(2), run.module("classifier")
    for epoch in run.epochs(2, cfg.stage2_epochs):
        for batches in run.batches(cfg.stage2_batch):
            net.train(cfg.stage2_bn_train)
            with run.autocast():
                feats = [(_up(compute_features(net, x)), t) for x, t in batches]
            net.train()
            run.track(_accumulate(clf, feats, F.cross_entropy, opt))
        run.end_epoch(2, epoch, cfg.stage2_epochs, net.classifier, every=1)


def fine_tune(run) -> None:
    """Stage 3: unfreeze phi and the stage-2 classifier and train end to end (our recipe:
    finetune_epochs at finetune_lr with finetune_schedule; the paper publishes none)."""
    train_e2e(run, stage=3)

