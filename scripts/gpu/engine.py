"""The real engine on CUDA, end to end through the CLI: scaled.train runs FOCA stages 1-3 in bf16 +
channels_last on synthetic images, once uninterrupted and once killed after its first epoch
(FOCA_TEST_KILL_AFTER=1: the engine SIGKILLs itself right after that checkpoint) and resumed; then
E2E and PyramidNet + ShakeDrop for one epoch each. Proves on the card what the CPU tests prove on
the CPU: the three stages, resume, the CLI, the CUDA weak-classifier graph (each run appends to
$FOCA_WEAK_GRAPH_LOG what scaled/weak_graph.py captured; on CUDA a FOCA run without a captured graph,
or with a failed capture, fails the checks: the eager fallback would give the same numbers and hide it).

    python3 -m scripts.gpu.engine --out $OUT       # on the GPU box (the plan's call, scripts/gpu/README.md), ~1 min
    python -m scripts.gpu.engine --tiny --out /tmp/e   # the same code on the CPU in fp32 (the tests)

Writes $OUT/gpu_engine.json after every run: each run's exit status, seconds, summary and stages;
the resumed run against the uninterrupted one (on the CPU equal bit for bit; on CUDA, cudnn's
autotuned kernels need not be deterministic, so the difference is reported, not required to be 0).
Prints a short table last. Exit 0 when every run finished, the resumed run has all three stages and (on
CUDA) every FOCA run replayed its weak classifier as a captured graph; 1 when a run or a check failed; 3
("not measured: time") when nothing failed but a run was stopped at its limit, skipped for lack of time
or never started (SIGTERM). --budget-s: no run goes past it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.gpu.common import (NOT_MEASURED, TIME_EXIT, Stopped, card, error_text, stop_on_sigterm,
                                synthetic_npz, write_json)

REPO = Path(__file__).resolve().parents[2]


def train(args: list[str], timeout: float, env=None) -> dict:
    tic = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "scaled.train", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "seconds": round(time.perf_counter() - tic, 1)}
    out = {"rc": r.returncode, "seconds": round(time.perf_counter() - tic, 1)}
    if r.returncode == 0:
        out["summary"] = json.loads(r.stdout.strip().splitlines()[-1])
    elif r.returncode != -signal.SIGKILL:
        out["error"] = (r.stderr.strip().splitlines() or [""])[-1][:400]
        sys.stderr.write(r.stderr[-3000:])
    return out


def stages(run_dir: Path) -> list:
    f = run_dir / "metrics.jsonl"
    return sorted({json.loads(line)["stage"] for line in f.read_text().splitlines()}) if f.is_file() else []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="scaled's engine on CUDA: 3 stages, kill, resume")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--tiny", action="store_true", help="the same on the CPU in fp32 (tests)")
    p.add_argument("--timeout", type=float, default=90, help="seconds per training run")
    p.add_argument("--budget-s", type=float, default=300, help="seconds for all runs: none runs past it")
    p.add_argument("--deadline", type=float, default=0, help="a clock time (time.time()) not to pass (the caller's)")
    args = p.parse_args(argv)
    deadline = time.perf_counter() + min(args.budget_s, args.deadline - time.time() if args.deadline else args.budget_s)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --tiny runs this on the CPU", file=sys.stderr)
        return 2
    stop_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="gpu_engine_"))
    data = synthetic_npz(tmp, 32, 10, 1024 if args.tiny else 4096, 256)
    dev = (["--device=cpu", "--precision=fp32", "--channels_last=false"] if args.tiny
           else ["--device=cuda", "--precision=bf16", "--channels_last=true"])
    small = ["--n_f=32", "--stage2_batch=32", "--n_c=20", "--weak_steps=16"] if args.tiny else []
    common = ["--preset", "budget-foca", f"--dataset={data}", "--val_size=256", f"--out_dir={tmp}",
              "--model=wrn-10-1" if args.tiny else "--model=wrn-16-4", "--epochs=2", "--stage2_epochs=1",
              "--finetune_epochs=1", "--eval_every=1", "--check_every=5", *dev, *small]
    if args.tiny:
        common.insert(4, "--train_subset=256")
    plan = {"full": (common + ["--name=full"], None),
            "killed after epoch 1": (common + ["--name=killed"], {"FOCA_TEST_KILL_AFTER": "1"}),
            "resumed": (["--resume", str(tmp / "killed")], None),
            "E2E": (["--preset", "budget-e2e", *common[2:], "--epochs=1", "--name=e2e"], None),
            "PyramidNet + ShakeDrop FOCA": (["--preset", "budget-foca", *common[2:], "--model=pyramidnet-11-8",
                                             "--shakedrop=true", "--augment=cifar10-re", "--epochs=1",
                                             "--finetune_epochs=0", "--name=pyr"], None)}
    assert tuple(plan) == RUNS  # checks() names the runs it expects
    out = {"card": card(), "tiny": args.tiny, "runs": {}, "pending": list(plan), "stopped": None}
    path = Path(args.out) / "gpu_engine.json"
    write_json(path, out)
    try:
        for name, (cli, env) in plan.items():
            out["pending"].remove(name)
            left = deadline - time.perf_counter() - 2
            if left < 5:
                out["runs"][name] = {"rc": "skipped (no time left)"}
                continue
            env = {**(env or {}), "FOCA_WEAK_GRAPH_LOG": str(tmp / f"{len(out['runs'])}.graph.jsonl")}
            try:
                out["runs"][name] = train(cli, min(args.timeout, left), env)
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - record and go on
                out["runs"][name] = {"rc": "error", "error": error_text(e)}
            write_json(path, out)
            print(f"  {name}: rc {out['runs'][name]['rc']}, {out['runs'][name].get('seconds')} s", file=sys.stderr,
                  flush=True)
    except Stopped as e:
        out["stopped"] = f"{e}; not run: {', '.join(out['pending']) or '-'}"
    out["checks"] = checks(out["runs"], tmp, cuda=not args.tiny)
    write_json(path, out)
    print(table(out))
    return {"OK": 0, NOT_MEASURED: TIME_EXIT}.get(out["checks"]["verdict"], 1)


RUNS = ("full", "killed after epoch 1", "resumed", "E2E", "PyramidNet + ShakeDrop FOCA")
FOCA_RUNS = ("full", "killed after epoch 1", "resumed", "PyramidNet + ShakeDrop FOCA")
TIME = ("timeout", "skipped (no time left)")  # rc of a run stopped at its limit or never started for time


def graph_events(tmp: Path, runs: dict) -> dict:
    """run -> what its weak_graph log says: {"captured": n, "failed": [errors]} (run i logs to i.graph.jsonl)."""
    out = {}
    for i, name in enumerate(runs):
        f = tmp / f"{i}.graph.jsonl"
        ev = [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []
        out[name] = {"captured": sum(e["event"] == "captured" for e in ev),
                     "failed": [e["error"] for e in ev if e["event"] == "failed"]}
    return out


def checks(runs: dict, tmp: Path, cuda: bool = True) -> dict:
    """What the runs prove: killed by the hook, resumed through all three stages, how far the resumed
    run lands from the uninterrupted one, and (CUDA) that every FOCA run captured its graph. verdict:
    OK; FAILED (a run that ran failed, or a check on it); or not measured: time (nothing failed, but a
    run was stopped at its limit, skipped for time or never started: its checks cannot be made)."""
    full, killed, resumed = (runs.get(k, {}) for k in ("full", "killed after epoch 1", "resumed"))
    c = {"killed_by_the_hook": killed.get("rc") == -signal.SIGKILL,
         "resumed_stages": stages(tmp / "killed"), "full_stages": stages(tmp / "full")}
    events = graph_events(tmp, runs)
    foca = {k: events[k] for k in FOCA_RUNS if k in events and runs[k].get("rc") not in TIME}
    graph_ok = all(e["captured"] and not e["failed"] for e in foca.values())
    c["weak_graph"] = ("not used (CPU)" if not cuda else
                       {"captured_in_every_foca_run": graph_ok and len(foca) == len(FOCA_RUNS), "runs": foca})
    if "summary" in full and "summary" in resumed:
        keys = ("val_error", "test_error", "finetune_test_error", "trace_ratio")
        c["resumed_minus_full"] = {k: resumed["summary"][k] - full["summary"][k] for k in keys}
        try:
            import torch

            a, b = (torch.load(tmp / n / "checkpoint.pt", map_location="cpu", weights_only=True)["net"]
                    for n in ("full", "killed"))
            diff = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a}
            c["max_weight_difference"] = max(diff.values())
            # which kind differs: the first GPU call (2026-12-04) reported 203 for all of them together,
            # which BatchNorm's running variances or a count of batches could make alone
            by_kind = {"weights": 0.0, "bn_running_stats": 0.0, "batches_tracked": 0.0}
            for k, v in diff.items():
                kind = "batches_tracked" if "num_batches" in k else "bn_running_stats" if "running_" in k else "weights"
                by_kind[kind] = max(by_kind[kind], v)
            c["difference_by_kind"] = by_kind
        except Exception as e:  # noqa: BLE001
            c["max_weight_difference"] = error_text(e)
    c["not_measured"] = [k for k in RUNS if runs.get(k, {}).get("rc") in TIME or k not in runs]
    ran = {k: r for k, r in runs.items() if k not in c["not_measured"]}
    failed = [k for k, r in ran.items() if r.get("rc") != (-signal.SIGKILL if k == "killed after epoch 1" else 0)]
    failed += ["resumed: stages"] if "resumed" in ran and c["resumed_stages"] != [1, 2, 3] else []
    failed += ["weak_graph"] if cuda and not graph_ok else []
    c["failed"] = failed
    c["ok"] = not failed and not c["not_measured"]
    c["verdict"] = "FAILED" if failed else NOT_MEASURED if c["not_measured"] else "OK"
    return c


def table(out: dict) -> str:
    c = out["checks"]
    lines = [f"engine on {out['card']['device']}: {c['verdict']}"
             + (f" ({', '.join(c['failed'])})" if c["failed"] else "")
             + (f"; {NOT_MEASURED}: {', '.join(c['not_measured'])}" if c["not_measured"] else ""),
             "| run | exit | s | test error |",
             "|---|---|---|---|"]
    for name, r in out["runs"].items():
        err = r.get("summary", {}).get("test_error", r.get("error", "-"))
        lines.append(f"| {name} | {r.get('rc')} | {r.get('seconds', '-')} | {err} |")
    lines.append(f"resumed stages {c['resumed_stages']}; resumed - full: {c.get('resumed_minus_full', '-')}; "
                 f"max weight difference {c.get('max_weight_difference', '-')} "
                 f"({c.get('difference_by_kind', '-')})")
    wg = c.get("weak_graph")
    lines.append(f"CUDA graph of ComputeClassifier: {wg if isinstance(wg, str) else wg['runs']}")
    lines += [f"stopped: {out['stopped']}"] if out["stopped"] else []
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
