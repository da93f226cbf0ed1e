"""The paper's main claim at a size we can afford: FOCA vs E2E on real CIFAR-10 in one GPU call.

    python3 -m scripts.gpu_budget --data $OUT/cifar10.npz --out $OUT --minutes 6.5   # on one H100/H200
    python -m scripts.gpu_budget --tiny --out /tmp/budget                            # CPU smoke, ~1 min

The budget presets (scaled/presets.py: WRN-16-4 with the paper's global-features head, cutout 16,
FOCA's recipe and the E2E cutout recipe with their schedules compressed to the same epochs), 2 seeds
each, real CIFAR-10: train 45k / val 5k (the last 5,000 training images) / test1k (the first 1,000
official test images). The number of epochs is not guessed: a short probe measures both methods'
images/s on this card, and the epochs are the most that fit `--minutes` for all runs (the same for
both methods). Each run is `python -m scaled.train`, so it leaves a normal run folder.
Writes $OUT/budget.json (card, torch, date, command, per-run summaries and per-epoch metrics, mean
+- std per method) and $OUT/budget_features.png (2-D PCA histograms of test features, FOCA vs E2E),
and prints a short table last. Errors are final-epoch numbers; nothing is selected on test1k.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from minifoca.plots import pca_histograms
from minifoca.runlog import read_jsonl
from scripts.gpu_bench import card, engine_rate, synthetic_npz

OVERHEAD_S = 25  # per run: process start, data to the device, cudnn autotuning, final evaluation


def epochs_that_fit(seconds: float, rates: dict, n_train: int, runs_per_method: int, cfg) -> int:
    """Largest E with sum over runs of (E train epochs + stage 2 + evaluations + overhead) <= seconds.
    Stage 2 (FOCA) is forward-only: projected at 3x the E2E rate; evaluation of 5k val images
    every eval_every epochs likewise."""
    per_epoch = sum(n_train / r for r in rates.values()) * runs_per_method
    fixed = runs_per_method * (len(rates) * OVERHEAD_S + cfg.stage2_epochs * n_train / (3 * rates["e2e"]))
    eval_per_epoch = runs_per_method * len(rates) * 5000 / (3 * rates["e2e"]) / cfg.eval_every
    return max(1, math.floor((seconds - fixed) / (per_epoch + eval_per_epoch)))


def run_one(preset: str, seed: int, epochs: int, data: str, out: Path, extra: list[str]) -> dict:
    name = f"{preset}-s{seed}"
    cmd = [sys.executable, "-m", "scaled.train", "--preset", preset, f"--seed={seed}", f"--epochs={epochs}",
           f"--dataset={data}", f"--out_dir={out}", f"--name={name}", "--overwrite", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return {"preset": preset, "seed": seed, "error": r.stderr.strip().splitlines()[-1:]}
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    summary["metrics"] = read_jsonl(out / name / "metrics.jsonl")
    return summary


def mean_std(runs, key):
    v = np.array([r[key] for r in runs if key in r], float) * 100
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)) if len(v) else (None, None, 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="FOCA vs E2E on real CIFAR-10 within a time budget")
    p.add_argument("--data", default="", help="CIFAR-10 arrays .npz (unpack.py's output)")
    p.add_argument("--out", default=".")
    p.add_argument("--minutes", type=float, default=6.5, help="for all training runs together")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=2, help="stage 3 after FOCA seed 0, if it fits")
    p.add_argument("--tiny", action="store_true", help="CPU smoke of this script (tiny WRN, 512 images)")
    args = p.parse_args(argv)
    t0, out = time.perf_counter(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = (["--device=cpu", "--precision=fp32", "--channels_last=false", "--model=wrn-10-1", "--train_subset=512",
              "--eval_subset=200", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--weak_steps=8"]
             if args.tiny else [])
    data = (args.data or synthetic_npz(out, 32, 10, 6000)) if args.tiny else args.data
    if not data or not Path(data).is_file():
        print("error: --data must be the CIFAR-10 arrays file (python3 ../shared/data/cifar10/unpack.py OUT.npz)",
              file=sys.stderr)
        return 2
    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --tiny runs the CPU smoke of this script", file=sys.stderr)
        return 2
    presets = {"foca": "budget-foca", "e2e": "budget-e2e"}
    from scaled.train import parse  # the same option handling as the runs themselves
    cfgs = {m: parse(["--preset", p, f"--dataset={data}", *extra])[0] for m, p in presets.items()}
    rates = {m: engine_rate(cfg, 4 if args.tiny else 24)["images_per_s"] for m, cfg in cfgs.items()}
    n_train = cfgs["foca"].train_subset or 45000
    left = args.minutes * 60 - (time.perf_counter() - t0)
    epochs = epochs_that_fit(left, rates, n_train, args.seeds, cfgs["foca"])
    ft_cost = args.finetune_epochs * n_train / rates["e2e"]
    ft = args.finetune_epochs if ft_cost < 0.1 * left else 0
    print(f"gpu_budget: {card()['device']}: probe {rates} images/s -> {epochs} epochs per run, "
          f"{args.seeds} seeds x 2 methods, fine-tuning {ft} epochs after FOCA seed 0", file=sys.stderr)
    runs = {m: [] for m in presets}
    for seed in range(args.seeds):
        for m, preset in presets.items():
            more = [f"--finetune_epochs={ft}"] if m == "foca" and seed == 0 else []
            runs[m].append(run_one(preset, seed, epochs, data, out / "runs", extra + more))
            print(f"  {preset} seed {seed}: { {k: runs[m][-1].get(k) for k in ('val_error', 'test_error', 'seconds', 'error')} }",
                  file=sys.stderr, flush=True)
    result = {"card": card(), "epochs": epochs, "probe_images_per_s": rates, "tiny": args.tiny,
              "protocol": "train 45k / val 5k (last 5,000 training images) / test1k (first 1,000 official test images)",
              "runs": runs, "total_seconds": round(time.perf_counter() - t0, 1)}
    result["summary"] = {m: {k: mean_std(rs, k) for k in ("val_error", "test_error", "finetune_test_error")}
                         for m, rs in runs.items()}
    (out / "budget.json").write_text(json.dumps(result, indent=1) + "\n")
    feats = {m.upper(): np.load(out / "runs" / f"{presets[m]}-s0" / "features_test.npz")
             for m in presets if (out / "runs" / f"{presets[m]}-s0" / "features_test.npz").is_file()}
    if feats:
        pca_histograms({k: v["f"].astype(np.float64) for k, v in feats.items()}, next(iter(feats.values()))["t"],
                       out / "budget_features.png", title=f"test1k features, {epochs} epochs", normalise="l2")
    print(f"{result['card']['device']}, {epochs} epochs, {args.seeds} seeds, errors in % (final epoch)")
    print("| method | val error | test1k error | n |\n|---|---|---|---|")
    for m, s in result["summary"].items():
        (vm, vs, n), (tm, ts, _) = s["val_error"], s["test_error"]
        print(f"| {m} | {vm:.2f} +- {vs:.2f} | {tm:.2f} +- {ts:.2f} | {n} |" if n else f"| {m} | failed | failed | 0 |")
    ft_s = result["summary"]["foca"]["finetune_test_error"]
    if ft_s[2]:
        print(f"FOCA seed 0 after {ft} epochs of E2E fine-tuning: test1k {ft_s[0]:.2f} %")
    return 0 if all("error" not in r for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
