"""FOCA in PyTorch with minifoca's names and semantics (minifoca/foca.py is the specification).

Step-level pieces, then one function per stage. A stage function receives the engine's Run
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


def compute_features(net, x):
    """ComputeFeature(x, phi): F_phi(x) without gradient; BN in whatever mode net is (train mode:
    batch statistics, as the weak classifier's features are computed in the authors' code)."""
    with torch.no_grad():
        return net.compute_features(x)  # (N, D)


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
    return _accumulate(phi, batches, lambda f, t: F.cross_entropy(F.linear(f, theta["W"], theta["b"]), t),
                       opt, autocast)


def e2e_step(model, batches, opt, autocast=contextlib.nullcontext):
    """One SGD step on phi and theta together (model returns logits)."""
    return _accumulate(model, batches, F.cross_entropy, opt, autocast)


# --- stages ----------------------------------------------------------------------------------------
def train_foca(run) -> None:
    """Stage 1, Algorithm 1. The stage-1 validation (or, without a val split, test) error uses the
    current weak classifier, as the authors' code reports it (the log says so)."""
    cfg, net = run.cfg, run.net
    opt, phi = run.optimizer(1), run.module("phi")
    for epoch in run.epochs(1, cfg.epochs):
        run.set_lr(opt, lr_at(epoch, cfg.lr, cfg.schedule, cfg.epochs, cfg.milestones, cfg.lr_gamma))
        for batches in run.batches(cfg.n_f):  # [x, t] <- SampleMinibatch(d, n_f), epoch-wise shuffle
            if run.step % cfg.refresh == 0:  # every R steps; R = 1 is Algorithm 1 as printed
                x_c, t_c = run.sample_weak_batch(cfg.n_c)  # [x, t] <- SampleMinibatch(d, n_c)
                with run.autocast():
                    f_c = compute_features(net, x_c)  # f <- ComputeFeature(x, phi)
                run.theta = weak_classifier(_up(f_c), t_c, run.num_classes, cfg,
                                            run.gens["weak"])  # theta <- ComputeClassifier(f, t)
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
        for batches in run.batches(cfg.n_f):
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

