"""How the CPU study's network and learning rates were chosen, on the validation split only.

    python -m scripts.studies.cpu_sweep [--out results/cpu-<date>] [--subset 10000]     # ~10 min on 2 cores

Not part of the timed study (`make cifar10-cpu`): it costs about a sixth of it, and the presets
cpu-foca / cpu-e2e record its outcome. Two phases, runs two at a time with one thread each (the
study's layout), every run on the first --subset training images, evaluated on the 5,000 val images:

1. network: each candidate's E2E images/s from a probe, then E2E (lr 0.1) for epochs proportional
   to its images/s (the fastest gets --epochs + 1), so every candidate gets the same CPU time: the
   lowest val error is the network the study's minutes buy best;
2. learning rate: on that network, E2E and FOCA at three rates each for --epochs epochs (cosine).

Writes sweep.json (every run, its val error and seconds) and prints the table last.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from scripts.studies.budget import REPO, lanes, probe_args, probe_result
from scripts.gpu.common import card, write_json

# Candidates: wrn-10-2 and wider were left out by throughput alone (2026-12-02, 1 thread, batch 128:
# wrn-10-1 497, wrn-16-1 399, wrn-10-2 182, wrn-16-2 130 img/s): at 182 img/s, 6 runs of 5 epochs
# on 45,000 images do not fit an hour on 2 cores.
NETS = ("wrn-10-1", "wrn-16-1")
LRS = {"e2e": (0.05, 0.1, 0.2), "foca": (0.01, 0.03, 0.1)}


STEP = """
import sys, time, torch
from scaled.models import build_model
torch.set_num_threads(int(sys.argv[2]))
torch.manual_seed(0)
net = build_model(sys.argv[1], 10, head="D")
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
for i in range(int(sys.argv[3]) + 2):
    if i == 2:
        tic = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(128 * int(sys.argv[3]) / (time.perf_counter() - tic))
"""


def parallel(net: str, steps: int = 30) -> dict:
    """Training images/s of the whole machine: one process with 2 threads against 2 processes with 1
    thread each, started together (the study runs whichever is larger)."""
    import subprocess

    def go(threads: int, procs: int) -> float:
        ps = [subprocess.Popen([sys.executable, "-c", STEP, net, str(threads), str(steps)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        return sum(float(p.communicate()[0]) for p in ps)
    one, two = go(2, 1), go(1, 2)
    return {"model": net, "one_process_2_threads": round(one, 1), "two_processes_1_thread": round(two, 1),
            "runs_at_once": 2 if two > one else 1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="the CPU study's network and learning rates, chosen on val")
    p.add_argument("--out", default=str(REPO / "results" / f"cpu-{time.strftime('%Y-%m-%d')}"))
    p.add_argument("--subset", type=int, default=10000, help="training images per sweep run")
    p.add_argument("--epochs", type=int, default=2, help="epochs of each learning-rate run")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", default="")
    p.add_argument("--parallel-only", default="", help="only time 1 x 2 threads vs 2 x 1 thread for this network")
    args = p.parse_args(argv)
    if args.parallel_only:
        print(json.dumps(parallel(args.parallel_only)))
        return 0
    out, work = Path(args.out), Path(tempfile.mkdtemp(prefix="sweep_"))
    common = ["--dataset=cifar10", "--threads=1", "--few_labels=", f"--train_subset={args.subset}",
              "--finetune_epochs=0", "--stage2_epochs=1"] + ([f"--data_dir={args.data_dir}"] if args.data_dir else [])
    res = {"card": card(), "subset": args.subset, "probe": {}, "network": [], "lr": [], "choice": {}}
    path = out / "sweep.json"
    t0 = time.perf_counter()

    def run_all(specs, key):
        def done(spec, s, wall):
            res[key].append({**spec["row"], "val_error": s.get("val_error"), "error": s.get("error"),
                             "seconds": round(wall, 1)})
            write_json(path, res)
            print(f"  {spec['name']}: val {s.get('val_error')} ({wall:.0f} s)", file=sys.stderr, flush=True)
        lanes(specs, 2, time.perf_counter() + 3600, 0, done, [])

    def spec(name, argv, row):
        return {"name": name, "need": 0, "row": row, "log": work / f"{name}.log",
                "args": [*argv, f"--out_dir={work}", f"--name={name}", "--overwrite"]}

    print(f"sweep: probing {', '.join(NETS)} (E2E, {args.subset:,} images)", file=sys.stderr, flush=True)
    probes = [spec(f"probe-{n}", probe_args(n, "cpu-e2e", [*common, f"--model={n}"], 128, 40, work)[:-3], {"model": n})
              for n in NETS]

    def probed(s, summary, wall):
        res["probe"][s["row"]["model"]] = probe_result(summary, wall, work / s["name"], 40 * 128)
        write_json(path, res)
    lanes(probes, 2, time.perf_counter() + 1800, 0, probed, [])
    ips = {n: v.get("images_per_s", 0) for n, v in res["probe"].items()}
    fastest = max(ips.values())
    epochs = {n: max(1, round((args.epochs + 1) * v / fastest)) for n, v in ips.items() if v}
    run_all([spec(f"net-{n}", ["--preset", "cpu-e2e", *common, f"--model={n}", f"--epochs={e}", f"--eval_every={e}"],
                  {"model": n, "method": "e2e", "lr": 0.1, "epochs": e, "images_per_s": round(ips[n])})
             for n, e in epochs.items()], "network")
    ok = [r for r in res["network"] if r["val_error"] is not None]
    net = min(ok, key=lambda r: r["val_error"])["model"]
    res["choice"]["model"] = net
    run_all([spec(f"lr-{m}-{lr}", ["--preset", f"cpu-{m}", *common, f"--model={net}", f"--lr={lr}",
                                   f"--epochs={args.epochs}", f"--eval_every={args.epochs}"],
                  {"model": net, "method": m, "lr": lr, "epochs": args.epochs})
             for lr_pair in zip(LRS["e2e"], LRS["foca"]) for m, lr in zip(("e2e", "foca"), lr_pair)], "lr")
    for m in LRS:
        rs = [r for r in res["lr"] if r["method"] == m and r["val_error"] is not None]
        res["choice"][f"{m}_lr"] = min(rs, key=lambda r: r["val_error"])["lr"] if rs else None
    res["parallel"] = parallel(net)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(path, res)
    print(f"| phase | network | method | lr | epochs | val error % | s |\n|---|---|---|---|---|---|---|")
    for phase in ("network", "lr"):
        for r in res[phase]:
            v = "failed" if r["val_error"] is None else f"{100 * r['val_error']:.2f}"
            print(f"| {phase} | {r['model']} | {r['method']} | {r['lr']} | {r['epochs']} | {v} | {r['seconds']:.0f} |")
    print(f"chosen on val: {res['choice']}; {res['seconds']:.0f} s in all ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
