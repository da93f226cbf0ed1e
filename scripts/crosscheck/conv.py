"""Cross-checks for scaled's convolutional path, which minifoca does not have (float64, CPU).

    gradients  tiny WRN and PyramidNet + ShakeDrop (4 images 8x8): torch.autograd.gradcheck on the
               logits w.r.t. the input and the head's BN weight; and, for the table's number,
               autograd against centred differences of (logits . v) on every element of that
               BN weight and 64 input elements drawn at random (CS231n's sparse gradient check:
               all 768 input elements would cost 1,500 forward passes, ~5 s per network)
    FOCA step  tiny WRN and PyramidNet + ShakeDrop, 3 FOCA steps: scaled's compute_classifier and
               torch.optim.SGD give what minifoca's compute_classifier and SGD give when fed the
               features and gradients torch computes (only the trunk's backward is torch's alone)

ShakeDrop's backward is not the derivative of its forward (forward alpha, backward beta), so finite
differences can only check it with the two scales equal: for the gradient check every ShakeDrop
gets fixed per-sample scales s (gate open: 1; closed: a fixed alpha) used both ways, which still
runs ShakeDropFunction's own backward. The FOCA step uses the real random draws.
Rows as in scripts/crosscheck/trace.py.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call

import scaled.foca as scaled_foca
from minifoca.foca import EpochSampler, compute_classifier, sample_minibatch
from minifoca.layers import softmax_ce_backward, softmax_ce_forward
from minifoca.models import classifier_backward, classifier_forward, init_classifier
from minifoca.optim import SGD
from scaled.config import ScaledConfig
from scaled.engine import Phi
from scaled.models import ShakeDrop, ShakeDropFunction, build_model

from .trace import TOL, Row, Trace, compare, host, rel_diff

NETS = [("wrn-10-1", False), ("pyramidnet-11-8", True)]  # the test suite's tiny networks
TOL_FD = 1e-6  # centred differences in float64 (tests/test_layers.py's FD_TOL)
N, K, SIZE = 4, 10, 8  # batch, classes, image side: BN1d needs N > 2 (2 samples normalise to +-1)
SCALES = (1.0, -0.6, 0.3, 1.0)  # per-sample ShakeDrop scales for the gradient check: open, closed, closed, open


def tiny_net(name: str, shakedrop: bool):
    with torch.random.fork_rng():  # the initial weights only; the caller's torch stream is untouched
        torch.manual_seed(0)
        return build_model(name, K, head="D", image_size=SIZE, shakedrop=shakedrop).double()


def pin_shakedrop(net, scales) -> None:
    """Every ShakeDrop scales sample n by scales[n] forward AND backward, through ShakeDropFunction."""
    s = torch.tensor(scales, dtype=torch.float64)  # (N,)
    for m in net.modules():
        if isinstance(m, ShakeDrop):
            m.forward = lambda x: ShakeDropFunction.apply(x, s, s)


def gradient_rows() -> list[Row]:
    rows = []
    for name, shake in NETS:
        net = tiny_net(name, shake)
        if shake:
            pin_shakedrop(net, SCALES)
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.normal(size=(N, 3, SIZE, SIZE)))  # (N, 3, H, W)
        v = torch.from_numpy(rng.normal(size=(N, K)))  # (N, K) a fixed projection of the logits
        bn = net.head.bn.weight.detach().clone()  # (C,) a parameter gradient too, not only the input's
        logits = lambda x, w: functional_call(net, {"head.bn.weight": w}, (x,))  # noqa: E731 - (N, K)
        inputs = (x.clone().requires_grad_(), bn.clone().requires_grad_())
        analytic = torch.autograd.grad((logits(*inputs) * v).sum(), inputs)
        picks = [rng.choice(x.numel(), 64, replace=False), np.arange(bn.numel())]  # elements to difference
        numeric = []
        with torch.no_grad():
            args = [x.clone(), bn.clone()]
            for a, pick in zip(args, picks):
                flat, g = a.view(-1), []
                for j in pick:
                    old = flat[j].item()
                    flat[j] = old + 1e-6
                    plus = (logits(*args) * v).sum().item()
                    flat[j] = old - 1e-6
                    minus = (logits(*args) * v).sum().item()
                    flat[j] = old
                    g.append((plus - minus) / 2e-6)
                numeric.append(np.array(g))
        analytic = [host(a).reshape(-1)[pick] for a, pick in zip(analytic, picks)]
        diffs = {"dx": rel_diff(analytic[0], numeric[0]), "dhead.bn.weight": rel_diff(analytic[1], numeric[1])}
        worst = max(diffs, key=diffs.get)
        try:
            ok = torch.autograd.gradcheck(logits, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)
            note = f"{worst} (torch.autograd.gradcheck passes)"
        except torch.autograd.gradcheck.GradcheckError as e:
            ok, note = False, f"torch.autograd.gradcheck fails: {str(e).splitlines()[0]}"
        label = f"{name}{' + ShakeDrop (fixed scales)' if shake else ''}: d(logits . v)/d(input, head BN weight)"
        rows.append(Row(label, "autograd vs finite differences", diffs[worst] if ok else float("inf"), TOL_FD, note))
    return rows


def foca_step_rows(steps: int = 3) -> list[Row]:
    rows = []
    cfg = ScaledConfig(device="cpu", precision="fp64", n_c=20, n_f=16)  # the paper's weak classifier and phi SGD
    for name, shake in NETS:
        net = tiny_net(name, shake)
        net.set_generator(torch.Generator().manual_seed(0))  # real ShakeDrop draws: torch computes them all
        rng = np.random.default_rng(1)
        x, t = rng.normal(size=(48, 3, SIZE, SIZE)), rng.integers(0, K, 48)  # (48, 3, H, W), (48,)
        X, T = torch.from_numpy(x), torch.from_numpy(t)
        phi = Phi(net)
        opt = torch.optim.SGD(phi.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd, nesterov=True)
        mirror = {n: host(p) for n, p in phi.named_parameters()}  # minifoca's copy of phi
        opt_m = SGD(mirror, cfg.lr, cfg.momentum, cfg.wd, nesterov=True)
        seen = {}  # the phi step's features and dL/df, as torch computes them

        def grab(module, inputs, f):
            seen["f"] = f
            if f.requires_grad:
                f.register_hook(lambda g: seen.update(df=g))

        hook = net.head.register_forward_hook(grab)
        sampler, zeros = EpochSampler(48, cfg.n_f, rng), np.zeros(K)
        tr_m, tr_s, phase = Trace(), Trace(), "FOCA step"
        for i in range(steps):
            idx_c = sample_minibatch(rng, 48, cfg.n_c)  # (n_c,)
            w0 = init_classifier(net.feature_dim, K, rng, std=cfg.weak_init_std)["W"]  # (K, D)
            f_c = scaled_foca.compute_features(net, X[idx_c])  # (n_c, D) BN in train mode
            th_s = scaled_foca.compute_classifier(f_c, T[idx_c], K, cfg, theta0={"W": torch.from_numpy(w0),
                                                                                  "b": torch.zeros(K, dtype=torch.float64)})
            th_m = compute_classifier(host(f_c), t[idx_c], K, cfg, None, theta0={"W": w0, "b": zeros})
            tr_s.add(phase, "weak classifier", i, **{"weak W": th_s["W"], "weak b": th_s["b"]})
            tr_m.add(phase, "weak classifier", i, **{"weak W": th_m["W"], "weak b": th_m["b"]})
            idx_f = sampler.next()  # (n_f,)
            loss = scaled_foca.foca_step(phi, th_s, [(X[idx_f], T[idx_f])], opt)
            logits, c_cls = classifier_forward(th_m, host(seen["f"]))  # (n_f, K) on torch's features
            loss_m, c_ce = softmax_ce_forward(logits, t[idx_f])
            df_m, _ = classifier_backward(softmax_ce_backward(1.0, c_ce), c_cls)  # (n_f, D)
            opt_m.step({n: host(p.grad) for n, p in phi.named_parameters()})  # torch's gradients
            tr_s.add(phase, "loss", i, loss=loss)
            tr_m.add(phase, "loss", i, loss=loss_m)
            tr_s.add(phase, "dL/df", i, df=seen["df"])
            tr_m.add(phase, "dL/df", i, df=df_m)
            tr_s.add(phase, "parameters after SGD", i, **dict(phi.named_parameters()))
            tr_m.add(phase, "parameters after SGD", i, **mirror)
        hook.remove()
        rows += compare(tr_m, tr_s, "minifoca vs scaled", TOL,
                        f"{name}{' + ShakeDrop' if shake else ''} (minifoca on torch's features and gradients)")
    return rows


def conv_rows() -> list[Row]:
    return gradient_rows() + foca_step_rows()
