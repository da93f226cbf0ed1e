"""The few-label probe: how simple are frozen features? (minifoca.foca.few_label_error's definition)

A fresh ComputeClassifier (the weak classifier of Algorithm 1: W ~ N(0, weak_init_std^2), b = 0,
weak_steps full-batch SGD steps) is fitted on k labelled TRAINING images per class of frozen,
eval-mode features, and its error counted on the test features; the mean over `draws` random
labelled sets is reported. Point-like classes need one example per class; diffuse ones need many.
This is the ICML 2019 paper's partial-data idea, measured on the finished network: the key
`few_label_error` means k = 1 in every layer (minifoca's default few_labels); scaled also reports
`few_label_errors` = {k: error} for every k in cfg.few_labels.

tests/test_few_labels.py holds this function to minifoca's on the same features, labelled sets and
initial weights (also a row of `make crosscheck`).
"""
from __future__ import annotations

import torch

from .foca import compute_classifier


def label_sets(t_train, n_classes: int, k: int, draws: int, gen: torch.Generator) -> list[torch.Tensor]:
    """`draws` index sets, each k distinct training indices per class (K * k,), classes in order."""
    t = t_train.cpu()
    by_class = [torch.nonzero(t == c).flatten() for c in range(n_classes)]  # K x (N_c,)
    short = [c for c, ix in enumerate(by_class) if len(ix) < k]
    if short:
        raise ValueError(f"few-label probe: class {short[0]} has {len(by_class[short[0]])} training images, "
                         f"fewer than {k}; lower --few_labels")
    return [torch.cat([ix[torch.randperm(len(ix), generator=gen)[:k]] for ix in by_class]) for _ in range(draws)]


def few_label_error(f_train, t_train, f_test, t_test, n_classes: int, cfg, sets, gen=None, theta0s=None) -> float:
    """Mean test error over `sets` of ComputeClassifier fitted on f_train[idx] (idx in sets).

    f_train (N, D) frozen features indexed by `sets`; f_test (M, D), t_test (M,). gen draws each
    classifier's initial W (theta0s, one {"W", "b"} per set, replaces the draws: the cross-check)."""
    errs = []
    for i, idx in enumerate(sets):
        idx = idx.to(f_train.device)
        theta = compute_classifier(f_train[idx], t_train[idx], n_classes, cfg, gen,
                                   None if theta0s is None else theta0s[i])
        wrong = ((f_test @ theta["W"].T + theta["b"]).argmax(1) != t_test).sum()
        errs.append(int(wrong) / len(t_test))  # exact: wrong / all
    return sum(errs) / len(errs)
