"""What the scaling study measures on a finished network (scripts/studies/scaling_run.py calls it).

Splits of the 50,000 CIFAR-10 training images and the 1,000 test images of the shared copy:

    train       [0:40000]        stage 1 (and the linear probe's fit, on clean images)
    selection   [40000:45000]    every choice: the learning rates (the sweep), the probe's penalty
    evaluation  [45000:50000] + test1k = 6,000 images: every reported error, per image saved

A 6,000-image evaluation set puts the test-set term of a 15-point error gap's se near 0.4 points;
nothing reported is chosen on it. FOCA's classifier is stage 2 as a converged linear probe
(multinomial logistic regression on the frozen, clean features, L2 penalty chosen on selection),
not 2 epochs of SGD: stage 2 is not what this study varies. E2E reports its own classifier, as E2E
does; the same probe on E2E's features is recorded beside it (features against features).

Transfer (the paper's motivation): the same probe on the frozen features of Tiny ImageNet images
(the shared subset: 50 training images per class, 40 fitted / 10 for the penalty; the 10,000
labelled val images evaluated), downsampled 64 -> 32 px by 2x2 averaging, CIFAR-10's normalisation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from scripts.studies.stats import pack_correct as pack, unpack_correct as unpack

SELECTION, EVAL_VAL = 5000, 5000  # of the 10,000 held-out images: the first for choices, the rest reported
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # the probe's L2 penalties; one more step past an edge that wins


def fit_probe(f, y, k: int, lam: float, init=None, iters: int = 100):
    """Multinomial logistic regression on standardised features f (N, D), mean CE + lam/2 |W|^2,
    by L-BFGS (the loss is convex), warm-started from init = (W, b) of a larger penalty.
    -> (W (K, D), b (K,))."""
    W = (init[0].clone() if init else torch.zeros(k, f.shape[1], dtype=f.dtype)).requires_grad_()
    b = (init[1].clone() if init else torch.zeros(k, dtype=f.dtype)).requires_grad_()
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=iters, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(f @ W.T + b, y) + 0.5 * lam * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), b.detach()


def probe(f_fit, y_fit, f_sel, y_sel, k: int) -> dict:
    """The penalty chosen on the selection features (ties: the larger); -> {"lambda", "table", "W", "b",
    "mean", "std"}; standardisation from the fitted features."""
    mean, std = f_fit.float().mean(0), f_fit.float().std(0) + 1e-6
    z_fit, z_sel = (f_fit.float() - mean) / std, (f_sel.float() - mean) / std
    table, fits = {}, {}
    lams = list(LAMBDAS)
    while True:
        for lam in sorted(lams, reverse=True):  # from the largest penalty down, each warm-starting the next
            if lam not in fits:
                larger = [m for m in fits if m > lam]
                fits[lam] = fit_probe(z_fit, y_fit, k, lam, fits[min(larger)] if larger else None)
                W, b = fits[lam]
                table[lam] = float(((z_sel @ W.T + b).argmax(1) != y_sel).double().mean())
        best = min(sorted(table, reverse=True), key=table.get)
        edge = best == min(table) and best > 1e-8 or best == max(table) and best < 10
        if not edge or len(table) >= len(LAMBDAS) + 2:  # the grid extended at most twice
            break
        lams.append(best / 10 if best == min(table) else best * 10)
    W, b = fits[best]
    return {"lambda": best, "table": {f"{k:g}": v for k, v in sorted(table.items())}, "W": W, "b": b,
            "mean": mean, "std": std}


def apply_probe(p: dict, f) -> torch.Tensor:
    return (((f.float() - p["mean"]) / p["std"]) @ p["W"].T + p["b"]).argmax(1)  # (N,)


def cifar_splits(run, tiny: bool) -> dict:
    """{"selection", "eval"}: (x uint8 (N, C, H, W), y) from the run's 10,000-image val split and test."""
    d = run.data
    n = 0 if d.y_val is None else len(d.y_val)
    if n != SELECTION + EVAL_VAL and not (tiny and n):  # tiny: the val subset, halved
        raise ValueError(f"the scaling study needs val_size={SELECTION + EVAL_VAL} (got {n})")
    cut = SELECTION if n == SELECTION + EVAL_VAL else n // 2
    sel = (d.x_val[:cut], d.y_val[:cut])
    ev = (torch.cat([d.x_val[cut:], d.x_test]), torch.cat([d.y_val[cut:], d.y_test]))
    return {"selection": sel, "eval": ev}


def tiny_imagenet_32(data_dir: str, tiny: bool):
    """Tiny ImageNet at 32 px: (x_fit, y_fit, x_sel, y_sel, x_test, y_test), or a str saying why not."""
    from minifoca.data import DataError
    from scaled.data import load_dataset

    try:
        d = load_dataset("tinyimagenet", data_dir, val=False)
    except DataError as e:
        return f"not measured: {e}"

    def small(x):
        return F.avg_pool2d(x.float(), 2).round().to(torch.uint8)  # (N, 3, 32, 32)

    y = d.y_train.numpy()
    # the last 10 training images of every class choose the penalty; the rest are fitted
    rank = np.zeros(len(y), int)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))[::-1]
    sel = torch.from_numpy(rank < 10)
    x_tr, y_tr, x_te, y_te = small(d.x_train), d.y_train, small(d.x_test), d.y_test
    if tiny:  # 20 classes, 400 test images: the code path, in seconds
        keep = y_tr < 20
        x_tr, y_tr, sel = x_tr[keep], y_tr[keep], sel[keep]
        x_te, y_te = x_te[y_te < 20][:400], y_te[y_te < 20][:400]
    return x_tr[~sel], y_tr[~sel], x_tr[sel], y_tr[sel], x_te, y_te


def evaluate(run, method: str, tiny: bool = False, transfer=None) -> dict:
    """Every number of the record: errors on selection and evaluation (per image), clean train error,
    the probe's, and transfer to Tiny ImageNet (transfer: tiny_imagenet_32's result, loaded once)."""
    k = run.num_classes
    sp = cifar_splits(run, tiny)
    f_tr, y_tr = run.features("train")
    f_sel, f_ev = run.features_of(sp["selection"][0]), run.features_of(sp["eval"][0])
    y_sel, y_ev = sp["selection"][1], sp["eval"][1]
    p = probe(f_tr, y_tr, f_sel, y_sel, k)
    out = {"probe_lambda": p["lambda"], "probe_selection_errors": p["table"],
           "probe_train_error": float((apply_probe(p, f_tr) != y_tr).double().mean()),
           "probe_selection_error": p["table"][f"{p['lambda']:g}"],
           "probe_eval_correct": pack((apply_probe(p, f_ev) == y_ev).numpy())}
    if method == "e2e":
        with torch.no_grad():
            own = {s: run.net.classifier(f).argmax(1) for s, f in (("train", f_tr), ("sel", f_sel), ("ev", f_ev))}
        out.update(train_error=float((own["train"] != y_tr).double().mean()),
                   selection_error=float((own["sel"] != y_sel).double().mean()),
                   eval_correct=pack((own["ev"] == y_ev).numpy()))
    else:  # FOCA's stage 2 is the probe
        out.update(train_error=out["probe_train_error"], selection_error=out["probe_selection_error"],
                   eval_correct=out["probe_eval_correct"])
    ev = unpack(out["eval_correct"], len(y_ev))
    n_val = len(y_ev) - len(run.data.y_test)
    out.update(eval_images=len(y_ev), eval_error=float(1 - ev.mean()),
               eval_val5k_error=float(1 - ev[:n_val].mean()), eval_test1k_error=float(1 - ev[n_val:].mean())
               if len(ev) > n_val else None)
    if isinstance(transfer, str) or transfer is None:
        out["transfer"] = transfer or "not measured"
    else:
        x_fit, y_fit, x_s, y_s, x_te, y_te = transfer
        g = [run.features_of(x) for x in (x_fit, x_s, x_te)]
        tp = probe(g[0], y_fit, g[1], y_s, int(y_fit.max()) + 1)
        right = (apply_probe(tp, g[2]) == y_te).numpy()
        out["transfer"] = {"dataset": "Tiny ImageNet subset at 32 px", "fit": len(y_fit), "selection": len(y_s),
                           "images": len(y_te), "lambda": tp["lambda"], "error": float(1 - right.mean()),
                           "correct": pack(right)}
    return out
