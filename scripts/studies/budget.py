"""FOCA vs E2E on real CIFAR-10 in the minutes you have on one GPU (`make cifar10-budget`; also run 2
of the GPU plan, scripts/gpu/README.md, through scripts/gpu/budget.sh).

    make cifar10-budget                                # MINUTES=10, data from $FOCA_DATA
    make cifar10-budget MINUTES=30 ARGS="--data-dir ~/data --download=true"
    python -m scripts.studies.budget --minutes 10 [--data-dir DIR | --dataset FILE.npz] [--out DIR] [--seeds 2]
    python -m scripts.studies.budget --tiny --out /tmp/b       # this code on the CPU: tiny WRN, synthetic images

Runs the budget presets (scaled/presets.py: WRN-16-4 with the paper's global-features head, cutout
16; FOCA's recipe and the E2E cutout recipe, their schedules compressed to the same epochs), --seeds
seeds each, as scaled.train runs one after another, in pairs (FOCA s0, E2E s0, FOCA s1, ...), with a
few epochs of E2E fine-tuning after FOCA seed 0 when they cost under a tenth of the time.
Data: cifar-10-batches-py/ in the data folder (official test set), the shared copy (test1k), or
--download=true (torchvision); --dataset takes an arrays .npz, --parts the staged shared parts (the
GPU box). Validation: the last 5,000 training images. Nothing is selected on test.
Epochs: a probe trains each method for 2 short epochs (FOCA also 1 stage-2 epoch) on this card and
measures training images/s, evaluation, checkpoint and start-up seconds; the epochs are the most with
which every run fits --minutes (the whole command, probe included) less a --margin. Each run gets the
time left as its timeout; a run predicted not to finish in it is skipped and listed.
Leaves in --out: budget.json (rewritten after the probe and after every run, so a kill keeps what
finished), budget_features.png (PCA histograms of test features, seed 0), the run folders in runs/
(with --pack: one budget_runs.tar.gz without weights), and prints a short table last.
Without a GPU (and without --tiny) it stops within seconds with one line.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.gpu.common import Stopped, card, error_text, pack, stop_on_sigterm, synthetic_npz, write_json

REPO = Path(__file__).resolve().parents[2]
PRESETS = {"foca": "budget-foca", "e2e": "budget-e2e"}
TINY = ["--device=cpu", "--precision=fp32", "--channels_last=false", "--model=wrn-10-1", "--train_subset=512",
        "--eval_subset=200", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--weak_steps=8", "--val_size=500"]


def train(args: list[str], timeout: float) -> tuple[dict, float]:
    """One scaled.train run -> (its summary or {"error"}, wall seconds)."""
    tic = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "scaled.train", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}, time.perf_counter() - tic
    wall = time.perf_counter() - tic
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-2000:])
        return {"error": (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:400]}, wall
    return json.loads(r.stdout.strip().splitlines()[-1]), wall


def records(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []


def probe(method: str, common: list[str], n_f: int, steps: int, work: Path, timeout: float) -> dict:
    """2 stage-1 epochs of `steps` steps (+ 1 stage-2 epoch for FOCA), every part timed."""
    summary, wall = train(["--preset", PRESETS[method], *common, f"--train_subset={steps * n_f}", "--epochs=2",
                           "--stage2_epochs=1", "--finetune_epochs=0", "--eval_every=1", f"--out_dir={work}",
                           f"--name=probe-{method}", "--overwrite"], timeout)
    if "error" in summary:
        return {"error": summary["error"], "wall_s": round(wall, 1)}
    recs = records(work / f"probe-{method}")
    s1, s2 = [r for r in recs if r["stage"] == 1], [r for r in recs if r["stage"] == 2]
    parts = sum(r["train_seconds"] + r.get("eval_seconds", 0) + r.get("checkpoint_seconds", 0) for r in recs)
    out = {"images_per_s": steps * n_f / s1[-1]["train_seconds"],  # epoch 2: autotuning paid in epoch 1
           "eval_s": max(r.get("eval_seconds", 0) for r in recs), "checkpoint_s": max(r.get("checkpoint_seconds", 0) for r in recs),
           # start-up, data, final report, and what epoch 1 pays for cudnn autotuning
           "fixed_s": max(wall - parts, 0.0) + max(s1[0]["train_seconds"] - s1[-1]["train_seconds"], 0.0),
           "wall_s": round(wall, 1)}
    if s2:
        out["stage2_images_per_s"] = steps * n_f / s2[-1]["train_seconds"]
    return out


def run_seconds(p: dict, e2e: dict, epochs: int, n: int, cfg, finetune: int = 0) -> float:
    """Predicted wall seconds of one run of `epochs` stage-1 epochs on n training images."""
    evals = epochs // cfg.eval_every + (epochs % cfg.eval_every > 0)
    s = p["fixed_s"] + epochs * (n / p["images_per_s"] + p["checkpoint_s"] / cfg.checkpoint_every) + evals * p["eval_s"]
    if "stage2_images_per_s" in p:
        s += cfg.stage2_epochs * (n / p["stage2_images_per_s"] + p["checkpoint_s"] + p["eval_s"])
    return s + finetune * (n / e2e["images_per_s"] + p["checkpoint_s"] + p["eval_s"])


def mean_std(runs, key):
    v = np.array([r[key] for r in runs if r.get(key) is not None], float) * 100
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)] if len(v) else [None, None, 0]


def data_args(args, work: Path) -> tuple[list[str], dict]:
    """The --dataset/--data_dir options every run gets, and what the data is (raises DataError/SystemExit)."""
    from scaled.data import load_dataset

    info = {}
    if args.parts:
        from scripts.gpu.stage_cifar10 import assemble

        dataset = str(work / "cifar10-staged.npz")
        info = assemble(Path(dataset), args.parts.split(","))
    else:
        dataset = args.dataset or (synthetic_npz(work, 32, 10, 2000) if args.tiny else "cifar10")
    if args.download and args.data_dir:
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    d = load_dataset(dataset, args.data_dir, val=True, val_size=500 if args.tiny else 5000, download=args.download)
    info.update(name=dataset, train=len(d.y_train), val=len(d.y_val), test=len(d.y_test), protocol=d.protocol)
    opts = [f"--dataset={dataset}"] + ([f"--data_dir={args.data_dir}"] if args.data_dir else [])
    return opts, info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.studies.budget",
                                description="FOCA vs E2E on real CIFAR-10 within a time budget on one GPU")
    p.add_argument("--minutes", type=float, default=10, help="for the whole command, probe included")
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per method")
    p.add_argument("--out", default="", help="results folder (default runs/budget/<date-time>)")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", default="", help="data folder (default $FOCA_DATA)")
    p.add_argument("--dataset", default="", help="an arrays .npz instead of the data folder's CIFAR-10")
    p.add_argument("--download", default="false", choices=["true", "false"], help="fetch CIFAR-10 (torchvision)")
    p.add_argument("--parts", default="", help="folders with staged shared parts, comma-separated (GPU box)")
    p.add_argument("--finetune-epochs", type=int, default=2, help="stage 3 after FOCA seed 0, if it fits")
    p.add_argument("--margin", type=float, default=0.15, help="fraction of the time kept in reserve")
    p.add_argument("--pack", action="store_true", help="run folders into one archive, without weights")
    p.add_argument("--tiny", action="store_true", help="the CPU smoke of this code (tiny WRN, 512 images)")
    args = p.parse_args(argv)
    args.download = args.download == "true"
    t0 = time.perf_counter()
    deadline = t0 + args.minutes * 60
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA GPU here: the budget run needs one (--tiny runs this code on the CPU in a minute)",
              file=sys.stderr)
        return 2
    if args.seeds < 1 or args.minutes <= 0:
        print("error: --seeds and --minutes must be positive", file=sys.stderr)
        return 2
    out = Path(args.out or REPO / "runs" / "budget" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="budget_"))
    runs_dir = work / "runs" if args.pack else out / "runs"
    from minifoca.data import DataError

    try:
        common, data = data_args(args, work)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    common += TINY if args.tiny else []
    from scaled.train import parse  # the same option handling as the runs themselves

    cfgs = {m: parse(["--preset", pr, *common])[0] for m, pr in PRESETS.items()}
    n = data["train_used"] = cfgs["foca"].train_subset or data["train"]
    stop_on_sigterm()
    res = {"card": card(), "tiny": args.tiny, "minutes": args.minutes, "data": data, "probe": {}, "epochs": None,
           "runs": {m: [] for m in PRESETS}, "skipped": [], "stopped": None, "summary": {}}
    path = out / "budget.json"
    write_json(path, res)
    try:
        print(f"budget: {res['card']['device']}, {args.minutes:g} min, {data['protocol']}; probing both methods",
              file=sys.stderr, flush=True)
        steps = 4 if args.tiny else 80  # 80 x 128 images: long enough to time WRN-16-4 on a fast card
        for m in PRESETS:
            res["probe"][m] = probe(m, common, cfgs[m].n_f, steps, work / "probe", (deadline - time.perf_counter()) / 3)
            write_json(path, res)
        if any("error" in v for v in res["probe"].values()):
            raise RuntimeError(f"the probe failed: {res['probe']}")
        pr, e2e = res["probe"], res["probe"]["e2e"]
        left = (deadline - time.perf_counter()) * (1 - args.margin)
        ft = args.finetune_epochs if run_seconds(pr["foca"], e2e, 0, n, cfgs["foca"], args.finetune_epochs) \
            - run_seconds(pr["foca"], e2e, 0, n, cfgs["foca"]) < 0.1 * left else 0

        def total(E):
            return sum(run_seconds(pr[m], e2e, E, n, cfgs[m], ft if m == "foca" else 0) for m in PRESETS) \
                + (args.seeds - 1) * sum(run_seconds(pr[m], e2e, E, n, cfgs[m]) for m in PRESETS)

        E = 0
        while total(E + 1) <= left and E < 10000:
            E += 1
        if E == 0:
            need = total(1) / (1 - args.margin) / 60
            raise RuntimeError(f"{args.minutes:g} minutes are too few here: one epoch of every run needs about "
                               f"{need:.1f} min with the probe; raise MINUTES or lower --seeds")
        res["epochs"], res["finetune_epochs"] = E, ft
        res["predicted_s"] = round(total(E), 1)
        write_json(path, res)
        print(f"budget: probe {({m: round(v['images_per_s']) for m, v in pr.items()})} images/s -> {E} epochs per run, "
              f"{args.seeds} seeds x 2 methods, {ft} fine-tuning epochs after FOCA seed 0", file=sys.stderr, flush=True)
        for seed in range(args.seeds):
            for m, preset in PRESETS.items():
                more = ft if m == "foca" and seed == 0 else 0
                need = run_seconds(pr[m], e2e, E, n, cfgs[m], more)
                left = deadline - time.perf_counter()
                if need * (1 + args.margin / 2) > left:
                    res["skipped"].append(f"{preset} seed {seed}: needs ~{need:.0f} s, {left:.0f} s left")
                    continue
                name = f"{preset}-s{seed}"
                s, wall = train(["--preset", preset, *common, f"--seed={seed}", f"--epochs={E}",
                                 f"--finetune_epochs={more}", f"--out_dir={runs_dir}", f"--name={name}", "--overwrite"],
                                left - 2)
                s.update(seed=seed, wall_s=round(wall, 1), predicted_s=round(need, 1),
                         metrics=records(runs_dir / name))
                res["runs"][m].append(s)
                res["summary"] = summarise(res["runs"])
                write_json(path, res)
                if args.pack:
                    pack(runs_dir, out / "budget_runs.tar.gz")
                print(f"  {name}: { {k: s.get(k) for k in ('val_error', 'test_error', 'seconds', 'error')} }",
                      file=sys.stderr, flush=True)
    except Stopped as e:
        res["stopped"] = f"{e} after {time.perf_counter() - t0:.0f} s"
    except RuntimeError as e:
        res["stopped"] = str(e)
    res["total_seconds"] = round(time.perf_counter() - t0, 1)
    try:
        figure(runs_dir, out / "budget_features.png", res)
    except Exception as e:  # noqa: BLE001 - the numbers matter more than the picture
        res["figure_error"] = error_text(e)
    write_json(path, res)
    print(table(res, out))
    done = [r for rs in res["runs"].values() for r in rs]
    return 0 if done and not res["stopped"] and not res["skipped"] and all("error" not in r for r in done) else 1


def summarise(runs: dict) -> dict:
    return {m: {k: mean_std(rs, k) for k in ("val_error", "test_error", "finetune_test_error")} for m, rs in runs.items()}


def figure(runs_dir: Path, png: Path, res: dict) -> None:
    from minifoca.plots import pca_histograms

    feats = {m.upper(): np.load(runs_dir / f"{PRESETS[m]}-s0" / "features_test.npz")
             for m in PRESETS if (runs_dir / f"{PRESETS[m]}-s0" / "features_test.npz").is_file()}
    if feats:
        pca_histograms({k: v["f"].astype(np.float64) for k, v in feats.items()}, next(iter(feats.values()))["t"], png,
                       title=f"test features, {res['epochs']} epochs", normalise="l2")


def table(res: dict, out: Path) -> str:
    d = res["data"]
    lines = [f"{res['card']['device']}: {res['epochs']} epochs per run; train {d['train_used']:,} / val {d['val']:,} / "
             f"test {d['test']:,}; errors in % (final epoch, nothing selected on test)",
             "| method | val error | test error | n | seconds per run |", "|---|---|---|---|---|"]
    for m, s in res["summary"].items():
        (vm, vs, k), (tm, ts, _) = s["val_error"], s["test_error"]
        secs = [r["seconds"] for r in res["runs"][m] if "seconds" in r]
        lines.append(f"| {m.upper()} | {vm:.2f} +- {vs:.2f} | {tm:.2f} +- {ts:.2f} | {k} | {np.mean(secs):.0f} |" if k
                     else f"| {m.upper()} | failed | failed | 0 | - |")
    ft = res["summary"].get("foca", {}).get("finetune_test_error", [None, None, 0])
    lines += [f"FOCA seed 0 after {res['finetune_epochs']} epochs of E2E fine-tuning: test {ft[0]:.2f} %"] if ft[2] else []
    lines += [f"skipped: {'; '.join(res['skipped'])}"] if res["skipped"] else []
    lines += [f"stopped: {res['stopped']}"] if res["stopped"] else []
    lines.append(f"{res['total_seconds']:.0f} s in all; results in {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
