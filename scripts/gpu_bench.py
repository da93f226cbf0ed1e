"""GPU speed of scaled against a reference-style training loop, on one card (a benchmark, not a test).

    python3 -m scripts.gpu_bench --out $OUT            # on the GPU box, ~6 min (scripts/gpu_check.sh)
    python -m scripts.gpu_bench --tiny --out /tmp/b    # CPU smoke of the script itself, ~1 min

Measured in one run, on one card, on synthetic uint8 images of the real shapes (throughput does not
depend on pixel values; the real-data run is scripts/gpu_budget.py):
  - bf16 matmul peak (TFLOP/s), the yardstick for achieved TFLOP/s;
  - WRN-28-10 stage-1 FOCA (R = 32 and R = 1, n_c = 100) and E2E steps through the real engine
    (scaled/engine.py: device data, batched augmentation, bf16 + channels_last), with torch.compile
    when --compile, against a plain fp32 NCHW E2E loop fed by a torchvision DataLoader with CPU
    transforms, the way the reference implementations train;
  - the same for PyramidNet-272 + ShakeDrop;
  - FLOPs per image (torch.utils.flop_counter, forward + backward) -> achieved TFLOP/s;
  - projected hours on this card for every row of Tables 1-3 at the paper's epochs.
Writes $OUT/gpu_bench.json (card from nvidia-smi, torch version, date, command, raw timings) and
prints a short table last. Items that would overrun --budget-s are skipped and listed as skipped.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scaled import foca
from scaled.augment import PRESETS as AUGMENT
from scaled.engine import Run
from scaled.models import build_model
from scaled.presets import get
from scripts.bench_data import torchvision_loader

TRAIN_IMAGES = 45000  # our runs hold out 5,000 for validation (the paper trains on all 50,000)


def card() -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv), "cpus": os.cpu_count()}
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
        info["nvidia_smi"] = q
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = "not available"
    info["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return info


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device, n: int, iters: int = 20) -> float:
    """TFLOP/s of an n x n x n bf16 matmul (fp32 on CPU), median of iters."""
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    times = []
    for i in range(iters + 3):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / float(np.median(times[3:])) / 1e12


def flops_per_image(model: str, num_classes: int, size: int, shakedrop: bool) -> float:
    """Forward + backward FLOPs per image (convolutions and matmuls) of the E2E step, on the CPU."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build_model(model, num_classes, image_size=size, shakedrop=shakedrop)
    x = torch.randn(2, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), torch.zeros(2, dtype=torch.long)).backward()
    return counter.get_total_flops() / 2


def synthetic_npz(folder: Path, size: int, classes: int, n: int) -> str:
    path = folder / f"synthetic-{size}-{classes}-{n}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        np.savez(path, x_train=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                 y_train=rng.integers(0, classes, n), x_test=rng.integers(0, 256, (256, size, size, 3), dtype=np.uint8),
                 y_test=rng.integers(0, classes, 256))
    return str(path)


def engine_rate(cfg, steps: int) -> dict:
    """images/s of stage 1 through the real engine: 2 epochs of `steps` steps, the second timed
    (the first pays for cudnn autotuning and compilation)."""
    cfg = dataclasses.replace(cfg, train_subset=cfg.n_f * steps, epochs=2, eval_every=10 ** 6,
                              eval_subset=256, val_size=256, schedule="constant")
    run = Run(cfg)
    tic = time.perf_counter()
    (foca.train_foca if cfg.method == "foca" else foca.train_e2e)(run)
    return {"images_per_s": run.records[-1]["images_per_s"], "first_epoch_s": run.records[0]["train_seconds"],
            "wall_s": round(time.perf_counter() - tic, 1)}


def reference_rate(cfg, steps: int, workers: int) -> dict:
    """images/s of a plain fp32 NCHW E2E loop fed by a torchvision DataLoader (CPU transforms)."""
    run = Run(dataclasses.replace(cfg, train_subset=cfg.n_f * (steps + 5), val_size=256, eval_subset=256,
                                  precision="fp32", channels_last=False))
    net, device = run.net.to(memory_format=torch.contiguous_format), run.device
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = iter(torchvision_loader(run.data, AUGMENT[cfg.augment], device, cfg.n_f, workers))
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
    return {"images_per_s": round(steps * cfg.n_f / (time.perf_counter() - tic), 1)}


def plan(tiny: bool, compile_: bool) -> list[tuple[str, str, dict, str]]:
    """(item, preset, overrides, kind) in the order they run; the most important first."""
    if tiny:
        net = {"model": "wrn-10-1"}, {"model": "pyramidnet-11-8"}
    else:
        net = {}, {}
    items = [("wrn28 FOCA R=32", "wrn28-c10-foca", net[0], "engine"),
             ("wrn28 E2E", "wrn28-c10-e2e", net[0], "engine"),
             ("wrn28 reference fp32 loop", "wrn28-c10-e2e", net[0], "reference"),
             ("wrn28 FOCA R=1", "wrn28-c10-foca", {**net[0], "refresh": 1}, "engine"),
             ("pyr272 FOCA R=32", "pyr272-c10-foca", net[1], "engine"),
             ("pyr272 E2E", "pyr272-c10-e2e", net[1], "engine"),
             ("pyr272 reference fp32 loop", "pyr272-c10-e2e", net[1], "reference"),
             ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", "wrn28-c100-foca", net[0], "engine"),
             ("wrn28 FOCA R=32 Tiny ImageNet 64x64", "wrn28-tin-foca", net[0], "engine")]
    if compile_:
        items += [("wrn28 FOCA R=32 compiled", "wrn28-c10-foca", {**net[0], "compile": True}, "engine"),
                  ("wrn28 E2E compiled", "wrn28-c10-e2e", {**net[0], "compile": True}, "engine")]
    return items


# preset -> (measured item for stage 1, images per epoch); stage 2 is projected as 5 forward-only
# epochs at a third of the E2E step's cost, stage 3 (fine-tuning) at the E2E rate.
PROJECT = {
    **{p: ("wrn28 FOCA R=32", TRAIN_IMAGES) for p in ("table1-A", "table1-B", "table1-C", "table1-D",
                                                       "wrn28-c10-foca", "finetune-c10")},
    "wrn28-c10-e2e": ("wrn28 E2E", TRAIN_IMAGES), "wrn28-c10-e2e-matched": ("wrn28 E2E", TRAIN_IMAGES),
    "wrn28-c100-foca": ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", TRAIN_IMAGES),
    "finetune-c100": ("wrn28 FOCA R=32 CIFAR-100 (n_c 1000)", TRAIN_IMAGES),
    "wrn28-c100-e2e": ("wrn28 E2E", TRAIN_IMAGES), "wrn28-c100-e2e-matched": ("wrn28 E2E", TRAIN_IMAGES),
    "wrn28-tin-foca": ("wrn28 FOCA R=32 Tiny ImageNet 64x64", 90000),  # 100k less 10% per class
    # E2E at 64x64 is not measured separately: FOCA's R = 32 step costs what E2E's does (+-5%)
    "wrn28-tin-e2e": ("wrn28 FOCA R=32 Tiny ImageNet 64x64", 90000),
    "wrn28-tin-e2e-matched": ("wrn28 FOCA R=32 Tiny ImageNet 64x64", 90000),
    "pyr272-c10-foca": ("pyr272 FOCA R=32", TRAIN_IMAGES), "pyr272-c100-foca": ("pyr272 FOCA R=32", TRAIN_IMAGES),
    "pyr272-c10-e2e": ("pyr272 E2E", TRAIN_IMAGES), "pyr272-c100-e2e": ("pyr272 E2E", TRAIN_IMAGES),
}


def project(rates: dict) -> list[dict]:
    rows = []
    for preset, (item, images) in PROJECT.items():
        cfg = get(preset)
        if item not in rates:
            rows.append({"preset": preset, "hours": None, "from": f"{item} (not measured)"})
            continue
        e2e_item = "pyr272 E2E" if "pyr" in preset else "wrn28 E2E"
        e2e = rates.get(e2e_item, rates[item]) * (rates[item] / rates.get("wrn28 FOCA R=32", rates[item])
                                                  if "tin" in preset else 1.0)
        secs = cfg.epochs * images / rates[item]
        if cfg.method == "foca":
            secs += cfg.stage2_epochs * images / (3 * e2e) + cfg.finetune_epochs * images / e2e
        rows.append({"preset": preset, "epochs": cfg.epochs, "hours": round(secs / 3600, 2), "from": item})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="GPU speed: scaled vs a reference-style loop")
    p.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for gpu_bench.json")
    p.add_argument("--tiny", action="store_true", help="CPU smoke of this script: tiny nets, few steps")
    p.add_argument("--steps", type=int, default=0, help="steps per timed epoch (default 64; tiny 2)")
    p.add_argument("--budget-s", type=float, default=330, help="skip items that would start after this")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (adds ~2 min)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run with --tiny for the CPU smoke of this script", file=sys.stderr)
        return 2
    steps = args.steps or (2 if args.tiny else 64)
    out = {"card": card(), "steps_per_epoch": steps, "synthetic_data": True, "items": {}, "skipped": []}
    print(f"gpu_bench: {out['card']['device']}, {steps} steps per timed epoch, budget {args.budget_s:.0f} s",
          file=sys.stderr)
    out["matmul_peak_tflops"] = round(matmul_peak(device, 256 if args.tiny else 8192), 1)
    tmp = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    runtime = dict(device=device, precision="fp32" if args.tiny else "bf16", channels_last=not args.tiny)
    for item, preset, over, kind in plan(args.tiny, args.compile):
        if time.perf_counter() - t0 > args.budget_s:
            out["skipped"].append(item)
            continue
        cfg = get(preset)
        size, classes = (64, 200) if cfg.dataset == "tinyimagenet" else (32, 100 if "100" in cfg.dataset else 10)
        n = cfg.n_f * (steps + 5) + 512
        cfg = dataclasses.replace(cfg, **runtime, **over, dataset=synthetic_npz(tmp, size, classes, n),
                                  **({"n_f": 16, "stage2_batch": 16, "n_c": min(cfg.n_c, 40), "weak_steps": 8} if args.tiny else {}))
        tic = time.perf_counter()
        try:
            res = engine_rate(cfg, steps) if kind == "engine" else reference_rate(cfg, steps, args.workers)
        except torch.OutOfMemoryError as e:  # one item must not lose the others' numbers
            res = {"error": f"out of memory: {str(e)[:200]}"}
        fl = flops_per_image(cfg.model, classes, size, cfg.shakedrop) if "images_per_s" in res else 0
        res.update(preset=preset, overrides={k: v for k, v in over.items()}, kind=kind,
                   gflops_per_image=round(fl / 1e9, 2), seconds=round(time.perf_counter() - tic, 1))
        if "images_per_s" in res:
            res["achieved_tflops"] = round(res["images_per_s"] * fl / 1e12, 1)
        out["items"][item] = res
        print(f"  {item}: {res}", file=sys.stderr, flush=True)
    rates = {k: v["images_per_s"] for k, v in out["items"].items() if "images_per_s" in v}
    out["projection"] = project(rates)  # tiny: the code path only, numbers meaningless
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_bench.json").write_text(json.dumps(out, indent=1) + "\n")
    print(table(out, rates))
    return 0


def table(out: dict, rates: dict) -> str:
    lines = [f"{out['card']['device']} | torch {out['card']['torch']} | bf16 matmul peak "
             f"{out['matmul_peak_tflops']} TFLOP/s", "| item | images/s | vs reference loop | TFLOP/s |",
             "|---|---|---|---|"]
    for item, r in out["items"].items():
        ref = rates.get(("pyr272" if item.startswith("pyr") else "wrn28") + " reference fp32 loop")
        ratio = f"{r['images_per_s'] / ref:.1f}x" if ref and "images_per_s" in r else "-"
        lines.append(f"| {item} | {r.get('images_per_s', r.get('error'))} | {ratio} | {r.get('achieved_tflops', '-')} |")
    if "wrn28 FOCA R=32" in rates and "wrn28 E2E" in rates:
        lines.append(f"FOCA (R=32) epoch time / E2E epoch time: {rates['wrn28 E2E'] / rates['wrn28 FOCA R=32']:.3f}")
    for row in out["projection"]:
        lines.append(f"projected {row['preset']}: {row['hours']} h on this card ({row.get('epochs', '?')} epochs, from {row['from']})")
    lines += [f"skipped (time): {', '.join(out['skipped'])}"] if out["skipped"] else []
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
