"""The same tiny FOCA problem timed two ways on this CPU (a benchmark, not a test): the authors' code
(their per-image data_augment loop and their train() step, driven as scripts/crosscheck/authors_ref.py
drives it) against scaled's engine (batched augmentation, scaled.foca.train_foca), same network.

    python -m scripts.bench.authors                  # make bench-authors; ~1 min on 2 CPU cores
    python -m scripts.bench.authors --model=pyramidnet-11-8 --steps=8

Both: fp32, one thread, CIFAR-sized random images (throughput does not depend on the pixels), batch
128, R = 32, n_c = 100, 64 weak steps, cutout 16 (the paper's CIFAR-10 recipe), authors' mode for
scaled. Timed: stage-1 steps after one warm-up step, weak-classifier refreshes included, and the
augmentation of one batch alone. Prints one table, and --json writes the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from minifoca.config import apply_overrides
from scaled import foca
from scaled.augment import apply_params
from scaled.engine import Run
from scaled.presets import PRESETS
from scripts.crosscheck import authors_ref
from scripts.crosscheck.authors import key_map


def theirs(ref, run, args, steps: int) -> dict:
    """images/s of their stage-1 loop (refreshes included) and of data_augment on one batch."""
    d = run.data
    data = authors_ref.their_data(d.x_train.numpy(), d.y_train.numpy(), d.x_test.numpy(), d.y_test.numpy(),
                                  d.mean, d.std, 100, 8)  # n_c = 100, cutout 16 = 2 x 8
    nets = {"wide_resnet": (ref.wrn.Wide_ResNet_fet, ref.wrn.Wide_ResNet_clf),
            "pyramid_resnet": (ref.pyr.Pyramid_ResNet_fet, ref.pyr.Pyramid_ResNet_clf)}[args.network]
    with contextlib.redirect_stdout(io.StringIO()):
        fet, clf = nets[0](args), nets[1](args, 10)
    net = {"fet": fet, "clf": clf, "device": None}
    opt = {"fet": torch.optim.SGD(fet.parameters(), lr=args.init_lr_fet, momentum=args.mr, weight_decay=args.wdr_fet,
                                  nesterov=True),
           "clf": torch.optim.SGD(clf.parameters(), lr=args.lr_clf, momentum=args.mr, weight_decay=args.wdr_clf,
                                  nesterov=True)}
    B, tr = args.sizeBatch, ref.train
    with authors_ref.patched(ref, None, torch.float32):
        perm = torch.randperm(data["train"]["num"])
        tic = None
        for it in range(1, steps + 2):
            if it == 2:
                tic = time.perf_counter()  # after one warm-up step
            if it % args.numTrainFet == 1:
                tr.train_classifier(args, data, net, opt)
            idx = perm[(it - 1) * B:it * B]
            x = tr.data_augment(args, data["train"]["input"][idx], data["co_length"]).cuda()
            loss = F.cross_entropy(clf(fet(x)), data["train"]["label"][idx])
            opt["fet"].zero_grad()
            loss.backward()
            opt["fet"].step()
        step_s = (time.perf_counter() - tic) / steps
        tic = time.perf_counter()
        tr.data_augment(args, data["train"]["input"][perm[:B]], data["co_length"])
        aug_s = time.perf_counter() - tic
    return {"images_per_s": round(B / step_s, 1), "augment_images_per_s": round(B / aug_s, 1)}


def ours(run, steps: int) -> dict:
    """images/s of scaled's stage 1 (one epoch of steps + 1 batches, the first one not timed)."""
    tic = {}
    real_track = run.track

    def track(loss):  # the clock starts after the first (warm-up) step
        real_track(loss)
        if run.step == 1:
            tic["t"] = time.perf_counter()

    run.track = track
    foca.train_foca(run)
    step_s = (time.perf_counter() - tic["t"]) / steps
    p = run._augment_draws(run.cfg.n_f)
    idx = torch.arange(run.cfg.n_f)
    t = time.perf_counter()
    apply_params(run.data.x_train[idx], p, run.aug, run.data.mean, run.data.std)
    aug_s = time.perf_counter() - t
    return {"images_per_s": round(run.cfg.n_f / step_s, 1), "augment_images_per_s": round(run.cfg.n_f / aug_s, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench.authors",
                                description="the authors' loop vs scaled's engine on one tiny problem (CPU)")
    p.add_argument("--model", default="wrn-10-1", help="wrn-<d>-<k> or pyramidnet-<d>-<alpha> (tiny: seconds)")
    p.add_argument("--steps", type=int, default=16, help="timed stage-1 steps of 128 images each")
    p.add_argument("--json", default="", help="also write the numbers to this file")
    a = p.parse_args(argv)
    try:
        ref = authors_ref.load()
    except authors_ref.ReferenceMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    depth, third = (int(v) for v in a.model.split("-")[1:])
    pyr = a.model.startswith("pyramidnet")
    n = 128 * (a.steps + 1)
    print(f"bench_authors: {a.model}, {a.steps} timed steps of 128 on the CPU, fp32, 1 thread; ~1 min",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench_authors_") as tmp:
        rng = np.random.default_rng(0)
        path = Path(tmp) / "bench.npz"
        np.savez(path, x_train=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), y_train=rng.integers(0, 10, n),
                 x_test=rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, 100))
        preset = "pyr272-c10-foca" if pyr else "wrn28-c10-foca"
        cfg = apply_overrides(PRESETS[preset][0], [f"--dataset={path}", f"--model={a.model}", "--device=cpu",
                                                   "--precision=fp32", "--channels_last=false", "--epochs=1",
                                                   "--eval_every=1000", "--augment=cifar10", "--last_batch=drop"])
        run = Run(cfg)
    args = authors_ref.default_args(ref, network="pyramid_resnet" if pyr else "wide_resnet", depth=depth,
                                    factor=third)
    key_map(a.model, run.net.state_dict())  # the same network on both sides (names checked in the cross-check)
    res = {"theirs": theirs(ref, run, args, a.steps), "ours": ours(run, a.steps)}
    res.update(model=a.model, steps=a.steps, torch=torch.__version__, date=time.strftime("%Y-%m-%d"),
               machine="CPU, 1 thread", command=" ".join(["python -m scripts.bench.authors", *(argv or sys.argv[1:])]))
    r = {k: res["ours"][k] / res["theirs"][k] for k in ("images_per_s", "augment_images_per_s")}
    print(f"| {a.model}, CPU, 1 thread | the authors' loop | scaled's engine | ratio |\n|---|---|---|---|")
    print(f"| stage-1 step, images/s | {res['theirs']['images_per_s']} | {res['ours']['images_per_s']} | "
          f"{r['images_per_s']:.2f}x |")
    print(f"| augmentation alone, images/s | {res['theirs']['augment_images_per_s']} | "
          f"{res['ours']['augment_images_per_s']} | {r['augment_images_per_s']:.1f}x |")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0 if all(math.isfinite(v) for v in r.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
