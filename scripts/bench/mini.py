"""Benchmark (not a test): one FOCA iteration (R = 1 and R = 32) and one E2E iteration in minifoca
(NumPy) against the same computation written in torch, on the CPU.

    make bench-mini                  # or: python -m scripts.bench.mini [--threads 1] [--json PATH]

Sizes are the digits setting: MLP 64-256-256-32 with BN, n_f = 128, n_c = 100, 64 weak steps,
float32. Both sides get the same number of threads (default 1: fastest for these small
matrices on a shared 2-core machine). Prints ms per iteration and the ratio NumPy / torch
(below 1 means NumPy is faster); the target is within 1.2x.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from minifoca import foca
from minifoca.cli import ArgParser
from minifoca.config import Config
from minifoca.models import MLP, init_classifier
from minifoca.optim import SGD

WIDTHS, NF, NC, K, N = (64, 256, 256, 32), 128, 100, 10, 1257


def torch_mlp():
    layers = []
    for d, h in zip(WIDTHS[:-1], WIDTHS[1:]):
        layers += [nn.Linear(d, h, bias=False), nn.BatchNorm1d(h), nn.ReLU()]
    return nn.Sequential(*layers)


def torch_compute_classifier(f, t, cfg):
    W = (torch.randn(K, f.shape[1]) * cfg.weak_init_std).requires_grad_()
    b = torch.zeros(K, requires_grad=True)
    opt = torch.optim.SGD([W, b], cfg.weak_lr, cfg.weak_momentum, weight_decay=cfg.weak_wd, nesterov=True)
    for _ in range(cfg.weak_steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(F.linear(f, W, b), t).backward()
        opt.step()
    return W.detach(), b.detach()


def bench(fn, repeats: int) -> float:
    """Median seconds per call after two warm-up calls."""
    fn(0), fn(1)
    times = []
    for i in range(repeats):
        tic = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def main(argv=None) -> int:
    p = ArgParser("python -m scripts.bench.mini", __doc__)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=64)
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    print(f"bench-mini: minifoca (NumPy) vs torch {torch.__version__}, CPU, {args.threads} thread(s); "
          "about 30 s", file=sys.stderr)
    torch.set_num_threads(args.threads)
    cfg, rng = Config(), np.random.default_rng(0)
    x = rng.normal(size=(N, WIDTHS[0])).astype(np.float32)
    t = rng.integers(0, K, N)
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)

    model = MLP(WIDTHS, True, rng, dtype=np.float32)
    opt_phi = SGD(model.params, cfg.lr, cfg.momentum, cfg.wd, nesterov=True)
    theta = init_classifier(WIDTHS[-1], K, rng, dtype=np.float32)
    opt_theta = SGD(theta, cfg.lr, cfg.momentum, cfg.wd, nesterov=True)
    net = torch_mlp()
    cls = nn.Linear(WIDTHS[-1], K)
    topt = torch.optim.SGD(net.parameters(), cfg.lr, cfg.momentum, weight_decay=cfg.wd, nesterov=True)
    topt_e2e = torch.optim.SGD([*net.parameters(), *cls.parameters()], cfg.lr, cfg.momentum,
                               weight_decay=cfg.wd, nesterov=True)
    state = {"theta": theta, "tw": None}

    def np_foca(r):
        def it(i):
            if i % r == 0:
                idx = foca.sample_minibatch(rng, N, NC)
                state["theta"] = foca.compute_classifier(foca.compute_features(model, x[idx]), t[idx], K, cfg, rng)
            idx = rng.integers(0, N, NF)
            foca.foca_step(model, state["theta"], x[idx], t[idx], opt_phi)
        return it

    def torch_foca(r):
        def it(i):
            if i % r == 0:
                idx = torch.randint(0, N, (NC,))
                with torch.no_grad():
                    f = net(tx[idx])
                state["tw"] = torch_compute_classifier(f, tt[idx], cfg)
            idx = torch.randint(0, N, (NF,))
            topt.zero_grad(set_to_none=True)
            F.cross_entropy(F.linear(net(tx[idx]), *state["tw"]), tt[idx]).backward()
            topt.step()
        return it

    def np_e2e(i):
        idx = rng.integers(0, N, NF)
        foca.e2e_step(model, theta, x[idx], t[idx], opt_phi, opt_theta)

    def torch_e2e(i):
        idx = torch.randint(0, N, (NF,))
        topt_e2e.zero_grad(set_to_none=True)
        F.cross_entropy(cls(net(tx[idx])), tt[idx]).backward()
        topt_e2e.step()

    rows = []
    with threadpool_limits(args.threads):
        for name, a, b, reps in [("FOCA R=1", np_foca(1), torch_foca(1), args.repeats),
                                 ("FOCA R=32", np_foca(32), torch_foca(32), 32 * args.repeats),
                                 ("E2E", np_e2e, torch_e2e, 4 * args.repeats)]:
            tn, tt_ = bench(a, reps), bench(b, reps)
            rows.append({"iteration": name, "numpy_ms": 1e3 * tn, "torch_ms": 1e3 * tt_, "ratio": tn / tt_})
    print("| iteration | minifoca NumPy ms | torch CPU ms | NumPy / torch |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['iteration']} | {r['numpy_ms']:.3f} | {r['torch_ms']:.3f} | {r['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d"), "threads": args.threads,
                       "torch": torch.__version__, "numpy": np.__version__, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
