"""FOCA vs E2E on real CIFAR-10 in the minutes you have: one GPU (`make cifar10-budget`; also the GPU
plan's budget run, scripts/gpu/README.md), or the CPU study on a laptop (`make cifar10-cpu`, --cpu).

    make cifar10-budget                                # MINUTES=10, data from $FOCA_DATA
    make cifar10-budget MINUTES=30 ARGS="--data-dir ~/data --download=true"
    make cifar10-cpu                                   # MINUTES=60 on the CPU -> results/cpu-<date>/
    python -m scripts.studies.budget --minutes 10 [--data-dir DIR | --dataset FILE.npz] [--out DIR] [--seeds 2]
    python -m scripts.studies.budget --tiny --out /tmp/b       # this code on the CPU, tiny WRN: 1.5 min (--minutes)

GPU: the budget presets (scaled/presets.py: WRN-16-4 with the paper's global-features head, cutout
16; FOCA's recipe and the E2E cutout recipe, their schedules compressed to the same epochs), --seeds
seeds each, one run at a time (FOCA s0, E2E s0, FOCA s1, ...), with a few epochs of E2E fine-tuning
after FOCA seed 0 when they cost under a tenth of the time.
CPU (--cpu): the cpu-* presets (the small WRN and learning rates chosen on val by scripts/studies/cpu_sweep.py,
one cosine schedule shape for both methods), plus FOCA with Table 1's head C, stage 3 after every
FOCA seed, --jobs (2) single-thread runs at once; writes study.json, table.md (the verdict on each of
the paper's claims: scripts/studies/study_report.py) and features_pca.png / finetune.png to results/cpu-<date>/.
A rerun with the same --out keeps the sizing, skips finished runs and resumes killed ones.
Data: cifar-10-batches-py/ in the data folder (official test set), the shared copy (test1k), or
--download=true (torchvision); --dataset takes an arrays .npz, --parts the staged shared parts (the
GPU box). --tiny uses the real CIFAR-10 copy when the data folder has one, random images otherwise.
Validation: the last 5,000 training images. Nothing is selected on test.
Epochs: a probe trains each method for 2 short epochs (FOCA also 1 stage-2 epoch), --jobs at once, and
measures training images/s, evaluation, checkpoint and start-up seconds; the epochs are the most with
which every run fits --minutes (the whole command, probe included) less a --margin. A run predicted
not to finish before the deadline is skipped and listed; one still running at the deadline is stopped.
Leaves in --out: budget.json / study.json (rewritten after the probe and after every run, so a kill
keeps what finished), the figures, the run folders in runs/ (with --pack: one budget_runs.tar.gz
without weights, packed after every run and on the stop path; --runs-dir puts them elsewhere and
--pack-archive packs a folder above them into another archive, as the GPU plan's call does), and prints
a short table last. Exit 0: every planned run measured; 1: a run or the probe failed; 3 (not measured:
time): nothing failed, but a run was skipped or stopped for time, one seed ran instead of --seeds (when
not one epoch of every seed fits, one seed of each arm runs rather than none), or SIGTERM stopped it.
Without a GPU (and without --tiny or --cpu) it stops within seconds with one line.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.gpu.common import (NOT_MEASURED, TIME_EXIT, Stopped, card, error_text, pack, stop_on_sigterm,
                                synthetic_npz, write_json)

REPO = Path(__file__).resolve().parents[2]
TINY = ["--device=cpu", "--precision=fp32", "--channels_last=false", "--model=wrn-10-1", "--train_subset=512",
        "--eval_subset=200", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--weak_steps=8", "--val_size=500"]


def records(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []


def probe_args(method: str, preset: str, common: list[str], n_f: int, steps: int, work: Path) -> list[str]:
    """2 stage-1 epochs of `steps` steps (+ 1 stage-2 epoch for FOCA), every part timed."""
    return ["--preset", preset, *common, f"--train_subset={steps * n_f}", "--epochs=2", "--stage2_epochs=1",
            "--finetune_epochs=0", "--eval_every=1", f"--out_dir={work}", f"--name=probe-{method}", "--overwrite"]


def probe_result(summary: dict, wall: float, run_dir: Path, images: int) -> dict:
    """A probe run's parts: training images/s, evaluation, checkpoint and fixed seconds."""
    if "error" in summary or "not_measured" in summary:
        return {**summary, "wall_s": round(wall, 1)}
    recs = records(run_dir)
    s1, s2 = [r for r in recs if r["stage"] == 1], [r for r in recs if r["stage"] == 2]
    parts = sum(r["train_seconds"] + r.get("eval_seconds", 0) + r.get("checkpoint_seconds", 0) for r in recs)
    out = {"images_per_s": images / s1[-1]["train_seconds"],  # epoch 2: autotuning paid in epoch 1
           "eval_s": max(r.get("eval_seconds", 0) for r in recs), "checkpoint_s": max(r.get("checkpoint_seconds", 0) for r in recs),
           # start-up, data, final report, and what epoch 1 pays for cudnn autotuning
           "fixed_s": max(wall - parts, 0.0) + max(s1[0]["train_seconds"] - s1[-1]["train_seconds"], 0.0),
           "wall_s": round(wall, 1)}
    if s2:
        out["stage2_images_per_s"] = images / s2[-1]["train_seconds"]
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
    from minifoca.data import DataError
    from scaled.data import load_dataset

    info = {}
    if args.parts:
        from scripts.gpu.stage_cifar10 import assemble

        dataset = str(work / "cifar10-staged.npz")
        info = assemble(Path(dataset), args.parts.split(","))
    else:
        dataset = args.dataset or "cifar10"
    if args.download and args.data_dir:
        Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    val_size = 500 if args.tiny else 5000
    try:
        d = load_dataset(dataset, args.data_dir, val=True, val_size=val_size, download=args.download)
    except DataError:
        if not args.tiny or args.dataset or args.parts:
            raise
        dataset = synthetic_npz(work, 32, 10, 2000)  # no CIFAR-10 here: random images (the errors sit at chance)
        d = load_dataset(dataset, args.data_dir, val=True, val_size=val_size)
    info.update(name=dataset, train=len(d.y_train), val=len(d.y_val), test=len(d.y_test), protocol=d.protocol)
    opts = [f"--dataset={dataset}"] + ([f"--data_dir={args.data_dir}"] if args.data_dir else [])
    return opts, info


# What runs: arm -> (preset, extra options). The probe times each preset once; an arm costs its preset's time.
ARMS = {"gpu": {"foca": ("budget-foca", []), "e2e": ("budget-e2e", [])},
        # Table 1's heads C vs D on the CPU: the same FOCA run with the GAP features fed straight to C_theta.
        "cpu": {"foca": ("cpu-foca", []), "e2e": ("cpu-e2e", []), "foca-C": ("cpu-foca", ["--head=C"])}}
PRESETS = {a: preset for a, (preset, _) in ARMS["gpu"].items()}  # the GPU arms' presets (figure, tests)


def start(args: list[str], log: Path) -> subprocess.Popen:
    """One scaled.train run in the background; its stdout (the JSON summary) to log.out, stderr to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "scaled.train", *args], cwd=REPO, text=True,
                            stdout=open(log.with_suffix(".out"), "w"), stderr=open(log, "w"))


def result(proc: subprocess.Popen, log: Path) -> dict:
    """A finished start()'s summary, or {"error": its last stderr line}."""
    if proc.returncode != 0:
        err = log.read_text().strip().splitlines() if log.is_file() else []
        return {"error": (err or [f"exit {proc.returncode}"])[-1][:400]}
    return json.loads(log.with_suffix(".out").read_text().strip().splitlines()[-1])


def lanes(specs: list[dict], jobs: int, deadline: float, margin: float, done, skipped: list) -> None:
    """Run specs ({"name", "args", "need"}) in order, `jobs` at a time; a spec predicted (need, seconds)
    not to end before the deadline is skipped and listed; one still running at the deadline is killed.
    done(spec, summary, wall) after each (summary {"error"} on failure, {"not_measured"} when stopped
    at the deadline: time, not a failure)."""
    pending, running = list(specs), []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                left = deadline - time.perf_counter()
                if spec["need"] * (1 + margin / 2) > left:
                    skipped.append(f"{spec['name']}: needs ~{spec['need']:.0f} s, {left:.0f} s left")
                    continue
                running.append((spec, start(spec["args"], spec["log"]), time.perf_counter()))
            time.sleep(0.5)
            for item in list(running):
                spec, proc, tic = item
                if proc.poll() is None and time.perf_counter() < deadline - 2:
                    continue
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait()
                    summary = {"not_measured": f"time: stopped at the deadline after "
                                                   f"{time.perf_counter() - tic:.0f} s"}
                else:
                    summary = result(proc, spec["log"])
                running.remove(item)
                done(spec, summary, time.perf_counter() - tic)
    finally:  # Stopped (SIGTERM) or any error: no orphan runs
        for _, proc, _ in running:
            proc.terminate()


def makespan(needs: list[float], jobs: int) -> float:
    """Wall seconds of runs taken in order by the first free of `jobs` lanes (what lanes() does)."""
    free = [0.0] * jobs
    for n in needs:
        i = free.index(min(free))
        free[i] += n
    return max(free)


def plan(res: dict, arms: dict, cfgs: dict, n: int, seeds: int, E: int, ft: int) -> list[dict]:
    """(arm, seed) in order of value, each with its predicted seconds at E epochs."""
    pr = res["probe"]
    out = []
    for seed in range(seeds):
        for arm, (preset, _) in arms.items():
            m = "foca" if preset.endswith("foca") else "e2e"
            more = ft if arm == "foca" and (seed == 0 or res["finetune_all_seeds"]) else 0
            out.append({"arm": arm, "seed": seed, "finetune": more,
                        "need": run_seconds(pr[m], pr["e2e"], E, n, cfgs[m], more)})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="FOCA vs E2E on real CIFAR-10 within a time budget (one GPU, or --cpu)")
    p.add_argument("--minutes", type=float, default=None,
                   help="for the whole command, probe included (default 10; --cpu 60; --tiny 1.5)")
    p.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per method")
    p.add_argument("--out", default="", help="results folder (default runs/budget/<date-time>; --cpu: results/cpu-<date>)")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", default="", help="data folder (default $FOCA_DATA)")
    p.add_argument("--dataset", default="", help="an arrays .npz instead of the data folder's CIFAR-10")
    p.add_argument("--download", default="false", choices=["true", "false"], help="fetch CIFAR-10 (torchvision)")
    p.add_argument("--parts", default="", help="folders with staged shared parts, comma-separated (GPU box)")
    p.add_argument("--finetune-epochs", type=int, default=None, help="stage 3 after FOCA (GPU: seed 0, 2 epochs "
                   "if under a tenth of the time; --cpu: every seed, 2 epochs)")
    p.add_argument("--margin", type=float, default=None, help="fraction of the time kept in reserve (default 0.15; "
                   "--tiny 0.3: there start-up dominates and varies with the machine's load)")
    p.add_argument("--pack", action="store_true", help="run folders into one archive, without weights")
    p.add_argument("--max-epochs", "--max_epochs", dest="max_epochs", type=int, default=10000,
                   help="at most this many epochs however many fit (tests: a generous --minutes for a loaded "
                        "machine, and the same small work on an idle one)")
    p.add_argument("--pack-archive", default="", help="also pack --pack-root into this archive after every finished "
                   "run and on the stop path (the GPU plan's call: its logs archive, so a kill keeps every finished run)")
    p.add_argument("--pack-root", default="", help="the folder --pack-archive packs (default: the run folders)")
    p.add_argument("--tiny", action="store_true", help="the smoke of this code on the CPU (tiny WRN, 512 images)")
    p.add_argument("--cpu", action="store_true", help="the laptop study (make cifar10-cpu): cpu-* presets, head C "
                   "too, `--jobs` single-thread processes; resumable: a rerun with the same --out skips what finished")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default 1; --cpu: 2, one thread each)")
    p.add_argument("--runs-dir", "--runs_dir", dest="runs_dir", default="",
                   help="folder for the run folders (default <out>/runs; --cpu: runs/cpu-study/<out name>)")
    args = p.parse_args(argv)
    args.download = args.download == "true"
    if args.minutes is None:
        args.minutes = 1.5 if args.tiny else 60 if args.cpu else 10
    if args.margin is None:
        args.margin = 0.3 if args.tiny else 0.15
    t0 = time.perf_counter()
    deadline = t0 + args.minutes * 60
    import torch

    if not (args.tiny or args.cpu) and not torch.cuda.is_available():
        print("error: no CUDA GPU here: the budget run needs one (--tiny runs this code on the CPU in 1.5 "
              "minutes; make cifar10-cpu is the CPU study)", file=sys.stderr)
        return 2
    if args.seeds < 1 or args.minutes <= 0:
        print("error: --seeds and --minutes must be positive", file=sys.stderr)
        return 2
    cpu = args.cpu
    # One lane on a GPU, though WRN-16-4 at 128 images a step may well be launch-bound on an H200: no GPU
    # number says so yet (the bench times WRN-28-10), two processes time-slice one GPU (no MPS) for an
    # unknown gain, and each run's seconds, which the table reports per method, would carry the other
    # lane's load. The one-seed fallback (fit()) already keeps a short budget from zero runs; --jobs 2
    # stays one flag away, its probe timed 2 at once, once a GPU budget run shows the card idle.
    jobs = args.jobs or (2 if cpu else 1)
    name = "study.json" if cpu else "budget.json"
    out = Path(args.out or (REPO / "results" / f"cpu-{time.strftime('%Y-%m-%d')}" if cpu
                            else REPO / "runs" / "budget" / time.strftime("%Y%m%d-%H%M%S")))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="budget_"))
    runs_dir = Path(args.runs_dir) if args.runs_dir else (REPO / "runs" / "cpu-study" / out.name if cpu
                                                  else work / "runs" if args.pack else out / "runs")
    # the archives that come back from a GPU box: rewritten after every finished run, not only at the end
    archives = ([(runs_dir, out / "budget_runs.tar.gz")] if args.pack else []) + \
        ([(Path(args.pack_root or runs_dir), Path(args.pack_archive))] if args.pack_archive else [])

    def pack_all():
        for root, archive in archives:
            pack(root, archive)

    from minifoca.data import DataError

    try:
        common, data = data_args(args, work)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    common += TINY if args.tiny else []
    common += [f"--threads={1 if jobs > 1 else 0}"] if cpu or args.tiny else []
    arms = ARMS["cpu" if cpu else "gpu"]
    from scaled.train import parse  # the same option handling as the runs themselves

    cfgs = {m: parse(["--preset", arms[m][0], *common])[0] for m in ("foca", "e2e")}
    n = data["train_used"] = cfgs["foca"].train_subset or data["train"]
    stop_on_sigterm()
    path = out / name
    old = json.loads(path.read_text()) if cpu and path.is_file() else {}
    same = old.get("epochs") and old.get("seeds") == args.seeds and old.get("data", {}).get("name") == data["name"]
    res = {"card": card(), "tiny": args.tiny, "cpu": cpu, "jobs": jobs, "minutes": args.minutes, "seeds": args.seeds,
           "data": data, "arms": {a: [pr, *o] for a, (pr, o) in arms.items()}, "probe": old["probe"] if same else {},
           "epochs": old["epochs"] if same else None, "seeds_run": old.get("seeds_run", args.seeds) if same else None,
           "finetune_all_seeds": cpu, "runs_dir": str(runs_dir),
           "runs": {a: [] for a in arms}, "skipped": [], "stopped": None, "summary": {}}
    write_json(path, res)
    try:
        if res["epochs"]:
            E, ft = res["epochs"], old["finetune_epochs"]
            res["finetune_epochs"] = ft
            print(f"budget: {path} already sized the runs ({E} epochs): finished runs are kept, killed ones resumed",
                  file=sys.stderr, flush=True)
        else:
            E, ft = size(args, res, arms, cfgs, common, n, jobs, deadline, work)
            write_json(path, res)
        specs = plan(res, arms, cfgs, n, res["seeds_run"], E, ft)
        for spec in specs:
            preset, extra = arms[spec["arm"]]
            spec["name"] = f"{preset}{extra[0].replace('--head=', '-head') if extra else ''}-s{spec['seed']}"
            spec["log"] = runs_dir / f"{spec['name']}.log"
            folder = runs_dir / spec["name"]
            spec["args"] = (["--resume", str(folder)] if same and (folder / "checkpoint.pt").is_file() else
                            ["--preset", preset, *common, *extra, f"--seed={spec['seed']}", f"--epochs={E}",
                             f"--finetune_epochs={spec['finetune']}", f"--out_dir={runs_dir}",
                             f"--name={spec['name']}", "--overwrite"])

        def done(spec, s, wall):
            s.update(arm=spec["arm"], seed=spec["seed"], name=spec["name"], train_images=n, wall_s=round(wall, 1),
                     predicted_s=round(spec["need"], 1), metrics=records(runs_dir / spec["name"]))
            res["runs"][spec["arm"]].append(s)
            res["summary"] = summarise(res["runs"])
            pack_all()  # first: whatever budget.json lists is in the archives, even if a kill comes between
            write_json(path, res)
            print(f"  {spec['name']}: { {k: s.get(k) for k in ('val_error', 'test_error', 'seconds', 'error')} }",
                  file=sys.stderr, flush=True)

        todo = []
        kept = {r.get("name"): r for rs in old.get("runs", {}).values() for r in rs
                if "error" not in r and "not_measured" not in r}
        for spec in specs:  # a rerun keeps what finished, with the wall time it took then
            fin = runs_dir / spec["name"] / "summary.json"
            if cpu and same and fin.is_file():
                s = kept.get(spec["name"]) or {**json.loads(fin.read_text()), "wall_s": None}
                res["runs"][spec["arm"]].append(s)
                res["summary"] = summarise(res["runs"])
                write_json(path, res)
            else:
                todo.append(spec)
        lanes(todo, jobs, deadline, args.margin, done, res["skipped"])
    except Stopped as e:
        res["stopped"] = f"{e} after {time.perf_counter() - t0:.0f} s"
    except NoTime as e:
        res["stopped"] = f"{NOT_MEASURED}: {e}"
    except RuntimeError as e:
        res["stopped"] = res["failure"] = str(e)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nothing interrupts the final write and pack
    if runs_dir.is_dir():  # also a run stopped midway: its epochs so far
        pack_all()
    res["total_seconds"] = round(time.perf_counter() - t0, 1)
    finish(res, out, runs_dir, cpu)
    res["status"] = status(res)
    write_json(path, res)
    print(table(res, out))
    return {"ok": 0, "FAILED": 1}.get(res["status"], TIME_EXIT)


class NoTime(Exception):
    """The time left cannot hold what must run (the probe, one epoch of one seed): not measured for
    time, which the status and the exit code keep apart from a failure."""


def size(args, res: dict, arms: dict, cfgs: dict, common: list, n: int, jobs: int, deadline: float, work: Path):
    """Probe both methods (`jobs` at once, so the images/s include the contention of the real runs) and
    pick the most epochs with which every planned run ends before the deadline, less the margin."""
    print(f"budget: {res['card']['device']}, {args.minutes:g} min, {res['data']['protocol']}; probing both methods",
          file=sys.stderr, flush=True)
    steps = 4 if args.tiny else 40 if args.cpu else 80  # x 128 images: long enough to time the network
    probes = {m: probe_args(m, arms[m][0], common, cfgs[m].n_f, steps, work / "probe") for m in ("foca", "e2e")}

    def done(spec, s, wall):
        res["probe"][spec["arm"]] = probe_result(s, wall, work / "probe" / f"probe-{spec['arm']}", steps * spec["n_f"])

    lanes([{"arm": m, "name": f"probe-{m}", "need": 0, "n_f": cfgs[m].n_f, "args": a,
            "log": work / "probe" / f"probe-{m}.log"} for m, a in probes.items()],
          jobs, deadline - (deadline - time.perf_counter()) * 2 / 3, 0, done, [])
    if any("error" in v for v in res["probe"].values()):
        raise RuntimeError(f"the probe failed: {res['probe']}")
    if set(res["probe"]) != {"foca", "e2e"} or any("not_measured" in v for v in res["probe"].values()):
        raise NoTime(f"the probe did not finish in its third of the time: {res['probe']}")
    pr = res["probe"]
    left = (deadline - time.perf_counter()) * (1 - args.margin)
    ft = args.finetune_epochs if args.finetune_epochs is not None else 2
    if not args.cpu and run_seconds(pr["foca"], pr["e2e"], 0, n, cfgs["foca"], ft) \
            - run_seconds(pr["foca"], pr["e2e"], 0, n, cfgs["foca"]) >= 0.1 * left:
        ft = 0  # on a GPU budget stage 3 is a bonus, never at the price of stage-1 epochs
    E, seeds, total = fit(res, arms, cfgs, n, args.seeds, ft, jobs, left, args.max_epochs)
    if E == 0:
        raise NoTime(f"{args.minutes:g} minutes are too few here: one epoch of one seed of every arm needs about "
                     f"{total / (1 - args.margin) / 60:.1f} min with the probe; raise MINUTES")
    res.update(epochs=E, finetune_epochs=ft, predicted_s=round(total, 1), seeds_run=seeds)
    if seeds < args.seeds:
        res["seeds_note"] = (f"{NOT_MEASURED}: {seeds} seed of {args.seeds}: {len(arms)} arms x {args.seeds} seeds "
                             f"do not fit one epoch in {left:.0f} s")
    print(f"budget: probe {({m: round(v['images_per_s']) for m, v in pr.items()})} images/s -> {E} epochs per run, "
          f"{seeds} seeds x {len(arms)} arms, {jobs} at once, {ft} fine-tuning epochs after FOCA"
          + (f" ({res['seeds_note']})" if seeds < args.seeds else ""), file=sys.stderr, flush=True)
    return E, ft


def fit(res: dict, arms: dict, cfgs: dict, n: int, seeds: int, ft: int, jobs: int, left: float,
        max_epochs: int = 10000):
    """The most epochs E with which the runs of every arm x `seeds` seeds end within `left` seconds;
    when not one epoch of them fits, the same for one seed: both arms once (no spread) beat no run.
    -> (E, seeds, predicted seconds; E = 0: not even one seed fits, which one epoch of it would need)."""
    for k in dict.fromkeys((seeds, 1)):
        def total(E, k=k):
            return makespan([s["need"] for s in plan(res, arms, cfgs, n, k, E, ft)], jobs)

        E = 0
        while total(E + 1) <= left and E < max_epochs:
            E += 1
        if E:
            return E, k, total(E)
    return 0, 1, total(1)


def status(res: dict) -> str:
    """ok; FAILED (a run or the probe failed); or not measured: time (nothing failed, but a run was
    skipped or stopped for time, fewer seeds ran than asked, or SIGTERM stopped the study)."""
    runs = [r for rs in res["runs"].values() for r in rs]
    if res.get("failure") or any("error" in r for r in runs):
        return "FAILED"
    short = res.get("seeds_run") is not None and res["seeds_run"] < res["seeds"]
    if res["stopped"] or res["skipped"] or short or not runs or any("not_measured" in r for r in runs):
        return NOT_MEASURED
    return "ok"


def summarise(runs: dict) -> dict:
    return {m: {k: mean_std(rs, k) for k in ("val_error", "test_error", "finetune_test_error")} for m, rs in runs.items()}


def finish(res: dict, out: Path, runs_dir: Path, cpu: bool) -> None:
    """Figures (and, for the CPU study, the verdicts and table.md); a failed figure is recorded, not raised."""
    try:
        if cpu:
            from scripts.studies.study_report import claims, figures, markdown

            res["figures"] = figures(res, out, runs_dir)
            res["claims"] = claims(res)
            (out / "table.md").write_text(markdown(res) + "\n")
        else:
            figure(runs_dir, out / "budget_features.png", res)
    except Exception as e:  # noqa: BLE001 - the numbers matter more than the pictures
        res["figure_error"] = error_text(e)


def figure(runs_dir: Path, png: Path, res: dict) -> None:
    from minifoca.plots import pca_histograms

    feats = {m.upper(): np.load(runs_dir / f"{PRESETS[m]}-s0" / "features_test.npz")
             for m in PRESETS if (runs_dir / f"{PRESETS[m]}-s0" / "features_test.npz").is_file()}
    if feats:
        pca_histograms({k: v["f"].astype(np.float64) for k, v in feats.items()}, next(iter(feats.values()))["t"], png,
                       title=f"test features, {res['epochs']} epochs", normalise="l2")


def table(res: dict, out: Path) -> str:
    if res.get("cpu"):
        from scripts.studies.study_report import markdown

        return markdown(res) + f"\n{res['total_seconds']:.0f} s in all; results in {out}"
    d = res["data"]
    lines = [f"{res['card']['device']}: {res['status']}; {res['epochs'] or 0} epochs per run, "
             f"{res['seeds_run'] or 0} of {res['seeds']} seeds; train {d['train_used']:,} / val {d['val']:,} / test {d['test']:,}; errors in % "
             "(final epoch, nothing selected on test)",
             "| method | val error | test error | n | seconds per run |", "|---|---|---|---|---|"]
    for m, s in res["summary"].items():
        (vm, vs, k), (tm, ts, _) = s["val_error"], s["test_error"]
        secs = [r["seconds"] for r in res["runs"][m] if "seconds" in r]
        why = "failed" if any("error" in r for r in res["runs"][m]) else NOT_MEASURED
        lines.append(f"| {m.upper()} | {vm:.2f} +- {vs:.2f} | {tm:.2f} +- {ts:.2f} | {k} | {np.mean(secs):.0f} |" if k
                     else f"| {m.upper()} | {why} | {why} | 0 | - |")
    ft = res["summary"].get("foca", {}).get("finetune_test_error", [None, None, 0])
    lines += [f"FOCA seed 0 after {res['finetune_epochs']} epochs of E2E fine-tuning: test {ft[0]:.2f} %"] if ft[2] else []
    lines += [res["seeds_note"]] if res.get("seeds_note") else []
    lines += [f"{NOT_MEASURED}: {r['name']} ({r['not_measured']})" for rs in res["runs"].values() for r in rs
              if "not_measured" in r]
    lines += [f"{NOT_MEASURED}, skipped: {'; '.join(res['skipped'])}"] if res["skipped"] else []
    lines += [f"stopped: {res['stopped']}"] if res["stopped"] else []
    lines.append(f"{res['total_seconds']:.0f} s in all; results in {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
