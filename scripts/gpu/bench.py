"""GPU speed of scaled against a reference-style training loop, on one card (a benchmark, not a test).

    python3 -m scripts.gpu.bench --out $OUT --budget-s 175   # on the GPU box (the plan's call, scripts/gpu/README.md)
    python3 -m scripts.gpu.bench --out $OUT --items 11,12     # a second call: the items the first left
    python -m scripts.gpu.bench --tiny --out /tmp/b          # CPU smoke of the script itself

Measured in one run, on one card, on synthetic uint8 images of the real shapes (throughput does not
depend on pixel values; real data: scripts/studies/budget.py), the items of ITEMS:
  - bf16 matmul peak (TFLOP/s), the yardstick for achieved TFLOP/s;
  - one weak-classifier refresh (64 steps): the eager loop, the bias-folded loop, its CUDA graph;
  - WRN-28-10 stage-1 FOCA (R = 32, with one stage-2 epoch; R = 1) and E2E steps through the real
    engine (device data, batched augmentation, bf16 + channels_last, a checkpoint and an evaluation
    per epoch, timed apart), against a plain fp32 NCHW E2E loop fed by a torchvision DataLoader with
    CPU transforms; its convolutions use TF32 (torch's default) unless the item says "TF32 off";
  - the same for PyramidNet-272 + ShakeDrop, CIFAR-100 (n_c 1000) and Tiny ImageNet (64x64);
  - FLOPs per image, counted once per network on the meta device: forward + backward for E2E, plus
    the weak batch's forward (n_c / (R n_f) per training image) for FOCA;
  - projected hours on this card for every row of Tables 1-3: training, stage 2, stage 3, a
    checkpoint per epoch and the evaluations, each from a measured number (none where one is missing).
Time: --budget-s is this script's own slice, from its start (--deadline, a clock time from the caller,
can shorten it: the caller's slice also counts start-up and imports). An item starts only when the seconds
spent plus its expected seconds fit (expected: its prior in PLAN, a guess for an H200, times the median
measured/prior ratio of the items done so far), and runs under a cap (its own, or what is left of the
slice, whichever is less): an item past it is cut (SIGALRM) and the next one runs. The cheap,
predictable WRN items run first, PyramidNet-272 last. PyramidNet-272 (~270 distinct conv shapes) runs
cudnn.benchmark on, as scaled.train runs it, but with cudnn.benchmark_limit 2 (AUTOTUNE; torch's
default is 10): the cap cannot interrupt autotuning inside the first backward, so its cost is bounded
there; its numbers are the autotuned kernels' (epoch 2), the autotuning lands in first_epoch_s, and
every item records its mode (cudnn_benchmark, cudnn_benchmark_limit). "not_measured" lists the
positions a second call passes as --items. Exit 0: every item measured; 1: an item failed; 3 (not
measured: time): nothing failed, but an item was skipped or cut for time, or SIGTERM stopped it.
$OUT/gpu_bench.json is rewritten after every item and after each item's stage 1 (before its stage-2
epoch and FLOP count: a kill keeps the rate); an item's own error is recorded and the next runs; the
short table is printed last, also when SIGTERM stops the script.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import os
import signal
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from scaled import foca
from scaled.augment import PRESETS as AUGMENT
from scaled.engine import Run
from scaled.models import build_model
from scaled.presets import get
from scripts.bench.data import torchvision_loader
from scaled.weak_graph import graph_status
from scripts.gpu.common import TIME_EXIT, Stopped, card, error_text, stop_on_sigterm, synthetic_npz, write_json

EVAL_N = 512  # images per timed evaluation; scaled to the preset's split in the projection


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device, iters: int, warmup: int = 3) -> float:
    """Median seconds of fn() over iters calls after warmup calls."""
    times = []
    for i in range(warmup + iters):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])


def matmul_peak(device, n: int) -> float:
    """TFLOP/s of an n x n x n bf16 matmul (fp32 on CPU)."""
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return round(2 * n ** 3 / timed(lambda: a @ b, device, 20) / 1e12, 1)


@functools.lru_cache(maxsize=None)
def flops_per_image(model: str, num_classes: int, size: int, shakedrop: bool) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image of the E2E step, counted on the meta device:
    shapes only, no arithmetic (2026-12-02, 2 CPU cores, OMP_NUM_THREADS=1: 1.2 s for WRN-28-10, 1.7 s
    for PyramidNet-272-200, each in a fresh process, imports excluded; scripts/gpu/README.md has the command)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = build_model(model, num_classes, image_size=size, shakedrop=shakedrop)
        x, t = torch.randn(2, 3, size, size), torch.zeros(2, dtype=torch.long)
        with FlopCounterMode(display=False) as fwd:
            loss = F.cross_entropy(net(x), t)
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
    return fwd.get_total_flops() / 2, (fwd.get_total_flops() + bwd.get_total_flops()) / 2


def engine_rate(cfg, steps: int, folder: Path, stage2: bool = False, keep=lambda res: None) -> dict:
    """Stage 1 through the real engine: 2 epochs of `steps` steps, the second timed (the first pays
    for cudnn autotuning and compilation); each epoch evaluates EVAL_N images and writes a
    checkpoint, timed apart. stage2: one stage-2 epoch after (forward-only features + classifier);
    keep(stage-1 numbers) runs before it, so a kill or a cut during stage 2 keeps them."""
    from minifoca.runlog import RunDir

    cfg = dataclasses.replace(cfg, train_subset=cfg.n_f * steps, epochs=2, eval_every=1, eval_subset=EVAL_N,
                              val_size=EVAL_N, schedule="constant", stage2_epochs=1, stage2_batch=cfg.n_f)
    run = Run(cfg)
    run.rundir = RunDir(folder, {}, overwrite=True)
    tic = time.perf_counter()
    (foca.train_foca if cfg.method == "foca" else foca.train_e2e)(run)
    last = run.records[-1]
    out = {"images_per_s": last["images_per_s"], "first_epoch_s": run.records[0]["train_seconds"],
           "eval_s_per_image": round(last["eval_seconds"] / EVAL_N, 7),
           "checkpoint_s": last.get("checkpoint_seconds"), "cudnn_benchmark": torch.backends.cudnn.benchmark}
    keep(out)
    hold("stage 2")
    if stage2:
        foca.train_classifier(run)
        out["stage2_images_per_s"] = run.records[-1]["images_per_s"]
    out["wall_s"] = round(time.perf_counter() - tic, 1)
    return out


def reference_rate(cfg, steps: int, workers: int, tf32: bool = True) -> dict:
    """images/s of a plain fp32 NCHW E2E loop fed by a torchvision DataLoader (CPU transforms)."""
    run = Run(dataclasses.replace(cfg, train_subset=cfg.n_f * (steps + 5), val_size=EVAL_N, eval_subset=EVAL_N,
                                  precision="fp32", channels_last=False))
    net, device = run.net.to(memory_format=torch.contiguous_format), run.device
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = iter(torchvision_loader(run.data, AUGMENT[cfg.augment], device, cfg.n_f, workers))
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        for i in range(steps + 5):
            if i == 5:  # warm-up done (workers started, cudnn autotuned)
                sync(device)
                tic = time.perf_counter()
            x, t = next(loader)
            x, t = x.to(device, non_blocking=True), t.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), t).backward()
            opt.step()
        sync(device)
    finally:
        torch.backends.cudnn.allow_tf32 = before
    return {"images_per_s": round(steps * cfg.n_f / (time.perf_counter() - tic), 1), "tf32_convolutions": tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark}


def weak_refresh(device, n: int, d: int, k: int) -> dict:
    """ms per ComputeClassifier call: the eager reference, the folded loop, the folded CUDA graph."""
    from scaled.weak_graph import compute_classifier_fast

    cfg = get("wrn28-c10-foca")
    g = torch.Generator(device).manual_seed(0)
    f, t = torch.randn(n, d, device=device, generator=g), torch.randint(k, (n,), device=device, generator=g)
    out = {"eager_ms": timed(lambda: foca.compute_classifier(f, t, k, cfg, g), device, 20) * 1e3,
           "folded_ms": timed(lambda: compute_classifier_fast(f, t, k, cfg, g, graph=False), device, 20) * 1e3}
    if device.startswith("cuda"):
        out["graph_ms"] = timed(lambda: compute_classifier_fast(f, t, k, cfg, g), device, 20) * 1e3
    return {key: round(v, 3) for key, v in out.items()}


# (item, preset, overrides, kind, prior seconds on an H200 (a guess: FLOPs, autotuning, start-up), own cap)
# in the order they run: the cheap, predictable WRN items first, PyramidNet-272 last (its autotuning is
# the least predictable cost, and a cap cannot interrupt it: see AUTOTUNE); FIRST: the plan's one call's
PYR_CAP = 100
ITEMS = [("weak classifier refresh", "wrn28-c10-foca", {}, "weak", 5, 30),
         ("wrn28 FOCA R=32", "wrn28-c10-foca", 0, "engine+stage2", 25, 60),
         ("wrn28 E2E", "wrn28-c10-e2e", 0, "engine", 20, 60),
         ("wrn28 reference fp32 loop", "wrn28-c10-e2e", 0, "reference", 20, 60),
         ("wrn28 FOCA R=1", "wrn28-c10-foca", {"refresh": 1}, "engine", 25, 60),
         ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", "wrn28-c100-foca", 0, "engine+stage2", 25, 60),
         ("wrn28 FOCA R=32 Tiny ImageNet 64x64", "wrn28-tin-foca", 0, "engine+stage2", 45, 90),
         ("wrn28 E2E Tiny ImageNet 64x64", "wrn28-tin-e2e", 0, "engine", 35, 90),
         ("pyr272 FOCA R=32", "pyr272-c10-foca", 1, "engine+stage2", 90, PYR_CAP),
         ("pyr272 E2E", "pyr272-c10-e2e", 1, "engine", 60, PYR_CAP),
         ("pyr272 reference fp32 loop", "pyr272-c10-e2e", 1, "reference", 60, PYR_CAP),
         ("wrn28 reference fp32 loop, TF32 off", "wrn28-c10-e2e", 0, "reference-strict", 20, 60)]
# cudnn autotuning per item: the SIGALRM cap cannot interrupt it (it runs inside the first backward, in
# C++, where no Python signal handler runs), so PyramidNet-272's ~270 conv shapes time only the cuDNN
# heuristics' first AUTOTUNE candidates each (torch.backends.cudnn.benchmark_limit; torch's default,
# which the WRN items and scaled.train keep, is 10): benchmark stays on as in scaled.train, its cost
# bounded to about a fifth. The item's JSON records the mode (cudnn_benchmark, cudnn_benchmark_limit).
AUTOTUNE = {"pyr272": 2}
COMPILED = [("wrn28 FOCA R=32 compiled", "wrn28-c10-foca", {"compile": True}, "engine", 120, 180),
            ("wrn28 E2E compiled", "wrn28-c10-e2e", {"compile": True}, "engine", 120, 180)]
FIRST = list(range(1, 11))  # 11, 12 (and 13, 14 with --compile): a second call's


def autotune_limit(preset: str):
    """The cudnn.benchmark_limit an item runs with (AUTOTUNE, else this torch's own); None: no cuDNN here."""
    own = getattr(torch.backends.cudnn, "benchmark_limit", None)
    return next((v for k, v in AUTOTUNE.items() if preset.startswith(k)), own) if own is not None else None


@contextlib.contextmanager
def autotune(preset: str):
    """The item's cudnn.benchmark_limit set for its run and restored after (also after a cut)."""
    before, want = getattr(torch.backends.cudnn, "benchmark_limit", None), autotune_limit(preset)
    if want is not None:
        torch.backends.cudnn.benchmark_limit = want
    try:
        yield want
    finally:
        if before is not None:
            torch.backends.cudnn.benchmark_limit = before


def plan(tiny: bool, compile_: bool) -> list[tuple]:
    """(position, item, preset, overrides, kind, prior_s, cap_s) of every item, in order. Tiny: the small
    networks (overrides 0: a WRN, 1: a PyramidNet), and priors and caps for a shared 2-core CPU."""
    net = ({"model": "wrn-10-1"}, {"model": "pyramidnet-11-8"}) if tiny else ({}, {})
    out = []
    for pos, (item, preset, over, kind, prior, cap) in enumerate(ITEMS + (COMPILED if compile_ else []), 1):
        base = net[over] if isinstance(over, int) else {} if kind == "weak" else net[0]
        over = {**base, **({} if isinstance(over, int) else over)}
        out.append((pos, item, preset, over, kind, 3 if tiny else prior, 300 if tiny else cap))
    return out


def measure(item, preset, over, kind, args, device, tmp: Path, keep=lambda res: None) -> dict:
    if kind == "weak":
        before = graph_status()
        res = weak_refresh(device, *((20, 16, 10) if args.tiny else (100, 128, 10)))
        return {**res, "weak_graph": graph_delta(before, device)}
    cfg = get(preset)
    size, classes = (64, 200) if cfg.dataset == "tinyimagenet" else (32, 100 if "100" in cfg.dataset else 10)
    n = cfg.n_f * (args.steps + 5) + EVAL_N
    runtime = dict(device=device, precision="fp32" if args.tiny else "bf16", channels_last=not args.tiny)
    small = {"n_f": 16, "stage2_batch": 16, "n_c": min(cfg.n_c, 40), "weak_steps": 8} if args.tiny else {}
    cfg = dataclasses.replace(cfg, **runtime, **over, **small, dataset=synthetic_npz(tmp, size, classes, n, EVAL_N))
    before = graph_status()
    if kind.startswith("engine"):
        res = engine_rate(cfg, args.steps, tmp / "run", stage2=kind.endswith("stage2"), keep=keep)
        if cfg.method == "foca":
            res["weak_graph"] = graph_delta(before, device)
    else:
        res = reference_rate(cfg, args.steps, args.workers, tf32=kind != "reference-strict")
    keep(res)  # the rate before the FLOP count
    fwd, e2e = flops_per_image(cfg.model, classes, size, cfg.shakedrop)
    # FOCA also runs the weak batch forward (no grad): n_c images every R steps of n_f images
    fl = e2e + (fwd * cfg.n_c / (cfg.refresh * cfg.n_f) if cfg.method == "foca" and kind.startswith("engine") else 0)
    res.update(gflops_per_image=round(fl / 1e9, 3), achieved_tflops=round(res["images_per_s"] * fl / 1e12, 1))
    return res


def graph_delta(before: dict, device: str):
    """Whether this item's weak classifier ran as a CUDA graph: captures, replays, failed captures."""
    if not device.startswith("cuda"):
        return "not used (CPU)"
    now = graph_status()
    return {"captured": now["captured"] - before["captured"], "replays": now["replays"] - before["replays"],
            "failed": now["failed"][len(before["failed"]):]}


# preset -> (item measuring its stage 1, images per epoch, evaluation images per evaluation)
TRAIN, TIN_TRAIN = 50000, 100000  # the paper presets train on every training image (val_size=0)
PROJECT = {
    **{p: ("wrn28 FOCA R=32", TRAIN) for p in ("table1-A", "table1-B", "table1-C", "table1-D",
                                                "wrn28-c10-foca", "finetune-c10")},
    "wrn28-c10-e2e": ("wrn28 E2E", TRAIN), "wrn28-c10-e2e-matched": ("wrn28 E2E", TRAIN),
    "wrn28-c100-foca": ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", TRAIN),
    "finetune-c100": ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", TRAIN),
    "wrn28-c100-e2e": ("wrn28 E2E", TRAIN), "wrn28-c100-e2e-matched": ("wrn28 E2E", TRAIN),
    "wrn28-tin-foca": ("wrn28 FOCA R=32 Tiny ImageNet 64x64", TIN_TRAIN),
    "wrn28-tin-e2e": ("wrn28 E2E Tiny ImageNet 64x64", TIN_TRAIN),
    "wrn28-tin-e2e-matched": ("wrn28 E2E Tiny ImageNet 64x64", TIN_TRAIN),
    "pyr272-c10-foca": ("pyr272 FOCA R=32", TRAIN), "pyr272-c100-foca": ("pyr272 FOCA R=32", TRAIN),
    "pyr272-c10-e2e": ("pyr272 E2E", TRAIN), "pyr272-c100-e2e": ("pyr272 E2E", TRAIN),
}
E2E_OF = {"wrn28 FOCA R=32 Tiny ImageNet 64x64": "wrn28 E2E Tiny ImageNet 64x64", "pyr272 FOCA R=32": "pyr272 E2E"}


def project(items: dict) -> list[dict]:
    """Hours per preset on this card: every part from a measured number, or no number at all."""
    rows = []
    for preset, (item, images) in PROJECT.items():
        cfg, m = get(preset), items.get(item, {})
        e2e = items.get(E2E_OF.get(item, "wrn28 E2E"), {})
        need = [("stage 1", m.get("images_per_s"))]
        if cfg.method == "foca":
            need += [("stage 2", m.get("stage2_images_per_s"))]
            need += [("stage 3", e2e.get("images_per_s"))] if cfg.finetune_epochs else []
        missing = [part for part, v in need if not v]
        if missing or m.get("checkpoint_s") is None:
            rows.append({"preset": preset, "hours": None, "from": f"{item}: {', '.join(missing) or 'checkpoint'} not measured"})
            continue
        eval_images = cfg.val_size or 10000  # val, else the 10,000-image test split the paper presets log
        epochs = cfg.epochs + (cfg.stage2_epochs + cfg.finetune_epochs if cfg.method == "foca" else 0)
        evals = cfg.epochs // cfg.eval_every + 1 + (epochs - cfg.epochs)
        secs = {"train": cfg.epochs * images / m["images_per_s"],
                "checkpoints": -(-epochs // cfg.checkpoint_every) * m["checkpoint_s"],
                "evaluation": evals * eval_images * m["eval_s_per_image"]}
        if cfg.method == "foca":
            secs["stage 2"] = cfg.stage2_epochs * images / m["stage2_images_per_s"]
            secs["stage 3"] = cfg.finetune_epochs * images / e2e["images_per_s"] if cfg.finetune_epochs else 0.0
        rows.append({"preset": preset, "epochs": cfg.epochs, "hours": round(sum(secs.values()) / 3600, 2),
                     "parts_hours": {k: round(v / 3600, 3) for k, v in secs.items()}, "from": item})
    return rows


class Cut(BaseException):
    """An item ran past its cap (SIGALRM): what it wrote before (its stage-1 numbers) stays. A
    BaseException, as KeyboardInterrupt: no `except Exception` on the way swallows it."""


def _cut(signum, frame):
    raise Cut()


def hold(point: str) -> None:
    """Tests: FOCA_TEST_HOLD=<point> stops here for a minute, so a kill or a cap lands at that point."""
    if os.environ.get("FOCA_TEST_HOLD") == point:
        time.sleep(60)


def expected_s(prior: float, done) -> float:
    """prior x the median measured/prior ratio of the training items finished so far (within 1/4 and 4)."""
    ratios = [r["seconds"] / r["prior_s"] for r in done if r.get("complete") and r["kind"] != "weak"]
    return prior * min(max(statistics.median(ratios), 0.25), 4.0) if ratios else prior


def parse_items(text: str, items: list) -> list[int]:
    if text in ("", "first"):
        return [i for i in FIRST if i <= len(items)]
    if text == "all":
        return [i[0] for i in items]
    return [int(v) for v in text.split(",")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="GPU speed: scaled vs a reference-style loop")
    p.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for gpu_bench.json")
    p.add_argument("--tiny", action="store_true", help="CPU smoke of this script: tiny nets, few steps")
    p.add_argument("--steps", type=int, default=0, help="steps per timed epoch (default 64; tiny 2)")
    p.add_argument("--budget-s", type=float, default=175, help="this script's slice, seconds from its start")
    p.add_argument("--items", default="first", help="positions to run: first (1-10), all, or e.g. 11,12")
    p.add_argument("--compile", action="store_true", help="also list torch.compile (items 13, 14; ~2 min each)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--deadline", type=float, default=0, help="a clock time (time.time()) not to pass: the caller's "
                   "slice, which also counts this process's start-up and imports")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.deadline:
        args.budget_s = min(args.budget_s, args.deadline - time.time())
    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run with --tiny for the CPU smoke of this script", file=sys.stderr)
        return 2
    stop_on_sigterm()
    signal.signal(signal.SIGALRM, _cut)
    args.steps = args.steps or (2 if args.tiny else 64)
    every = plan(args.tiny, args.compile)
    want = parse_items(args.items, every)
    items = [i for i in every if i[0] in want]
    out = {"card": card(), "steps_per_epoch": args.steps, "synthetic_data": True, "tiny": args.tiny,
           "budget_s": args.budget_s, "items": {}, "pending": [i[1] for i in items], "running": None,
           "skipped": [], "not_measured": [], "stopped": None}
    path = Path(args.out) / "gpu_bench.json"
    print(f"gpu_bench: {out['card']['device']}, {args.steps} steps per timed epoch, items {args.items}, "
          f"{args.budget_s:.0f} s", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="gpu_bench_"))

    def save():
        out["weak_graph"] = graph_status() if device == "cuda" else "not used (CPU)"
        out["total_seconds"] = round(time.perf_counter() - t0, 1)
        write_json(path, out)

    try:
        out["matmul_peak_tflops"] = matmul_peak(device, 256 if args.tiny else 8192)
        save()
        for pos, item, preset, over, kind, prior, cap in items:
            out["pending"].remove(item)
            spent, expect = time.perf_counter() - t0, expected_s(prior, out["items"].values())
            if spent + expect > args.budget_s:  # it would overrun the slice: the next, shorter ones may fit
                out["skipped"].append(f"{pos} {item}: expected {expect:.0f} s, {max(args.budget_s - spent, 0):.0f} s left")
                out["not_measured"].append(pos)
                continue
            limit = min(cap, args.budget_s - spent)
            out["running"], tic = item, time.perf_counter()
            about = {"position": pos, "preset": preset, "overrides": over, "kind": kind, "prior_s": prior,
                     "expected_s": round(expect, 1), "cap_s": round(limit, 1),
                     "cudnn_benchmark_limit": autotune_limit(preset)}

            def keep(res, about=about, item=item, tic=tic):
                out["items"][item] = {**res, **about, "complete": False, "seconds": round(time.perf_counter() - tic, 1)}
                save()

            save()  # a kill now leaves this item named as the one it stopped in
            try:
                try:
                    signal.setitimer(signal.ITIMER_REAL, limit)
                    with autotune(preset):
                        res = {**measure(item, preset, over, kind, args, device, tmp, keep), "complete": True}
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except Cut:
                res = {k: v for k, v in out["items"].get(item, {}).items() if k not in about}
                res.update(complete=False, cut=f"past its cap of {limit:.0f} s")
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - one item's failure must not lose the others'
                traceback.print_exc()
                res = {"error": error_text(e), "complete": False}
            if not res["complete"]:  # cut (its stage-1 numbers kept) or failed: a second call's to finish
                gc.collect()
                if device == "cuda":
                    torch.cuda.empty_cache()
                out["not_measured"].append(pos)
            out["items"][item] = {**res, **about, "seconds": round(time.perf_counter() - tic, 1)}
            out["projection"] = project(out["items"])  # tiny: the code path only, numbers meaningless
            out["running"] = None
            save()
            print(f"  {item}: {out['items'][item]}", file=sys.stderr, flush=True)
    except Stopped as e:
        out["stopped"] = (f"{e} after {time.perf_counter() - t0:.0f} s, in {out['running'] or '-'}; "
                          f"not run: {', '.join(out['pending']) or '-'}")
        out["not_measured"] += [i[0] for i in items if i[1] in out["pending"] or i[1] == out["running"]]
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the file and the table, whatever comes now
    save()
    print(table(out))
    # a cut or skipped item, or SIGTERM, is time, not a fault: TIME_EXIT; only an item's error fails
    if any("error" in r for r in out["items"].values()):
        return 1
    return TIME_EXIT if out["stopped"] or out["not_measured"] else 0


def table(out: dict) -> str:
    items = out["items"]
    rates = {k: v["images_per_s"] for k, v in items.items() if "images_per_s" in v}
    lines = [f"{out['card']['device']} | torch {out['card']['torch']} | bf16 matmul peak "
             f"{out.get('matmul_peak_tflops', '?')} TFLOP/s | {out.get('total_seconds')} of {out['budget_s']:.0f} s",
             "| item | images/s | vs reference loop | TFLOP/s | s |", "|---|---|---|---|---|"]
    for item, r in items.items():
        ref = rates.get(("pyr272" if item.startswith("pyr") else "wrn28") + " reference fp32 loop")
        ratio = f"{r['images_per_s'] / ref:.1f}x" if ref and "images_per_s" in r else "-"
        value = r.get("images_per_s", r.get("error", {k: v for k, v in r.items() if k.endswith("_ms")}))
        value = f"{value} (cut: {r['cut']})" if "cut" in r else value
        lines.append(f"| {item} | {value} | {ratio} | {r.get('achieved_tflops', '-')} | {r['seconds']} |")
    if "wrn28 FOCA R=32" in rates and "wrn28 E2E" in rates:
        lines.append(f"FOCA (R=32) epoch time / E2E epoch time: {rates['wrn28 E2E'] / rates['wrn28 FOCA R=32']:.3f}")
    wg = out.get("weak_graph")
    if isinstance(wg, dict):
        lines.append(f"CUDA graph of ComputeClassifier: {wg['captured']} captured, {wg['replays']} replays, "
                     f"{len(wg['failed'])} failed captures")
    for row in out.get("projection", []):
        if row["hours"] is not None:
            lines.append(f"projected {row['preset']}: {row['hours']} h ({row['epochs']} epochs, from {row['from']})")
    lines += [f"skipped (time): {'; '.join(out['skipped'])}"] if out["skipped"] else []
    lines += [f"a second call measures the rest: --items={','.join(map(str, sorted(set(out['not_measured']))))}"] \
        if out["not_measured"] else []
    lines += [f"stopped: {out['stopped']}"] if out["stopped"] else []
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
