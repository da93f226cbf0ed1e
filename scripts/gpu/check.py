"""The GPU plan's one call (scripts/gpu/README.md): speed first, then correctness, then the budget run.

    bash scripts/gpu/check.sh                         # on the GPU box: this, its output tee'd to gpu_check.log
    python -m scripts.gpu.check --tiny --out /tmp/c   # the same steps on the CPU, tiny (the tests)

Steps, in order, each a subprocess with its own slice (seconds on the box; tiny mode has its own):
  bench       175  scripts/gpu/bench.py: images/s, TFLOP/s, projected hours; it skips an item whose
                   expected time would overrun and cuts one past its cap, so it ends inside its slice
  bench_data   45  scripts/bench/data.py: batched device augmentation vs a torchvision DataLoader (CPU
                   rows on 4 of the box's cores: 4 threads, 4 workers)
  pytest       70  `pytest -m gpu -k "not cupy"`: the CUDA graph classifier (which fails when no graph
                   was captured) against the eager loop, a CUDA checkpoint restored on the CPU and on CUDA
  engine      100  scripts/gpu/engine.py: scaled.train on CUDA, stages 1-3 in bf16 + channels_last,
                   killed after an epoch and resumed, E2E, PyramidNet + ShakeDrop; the graph recorded
  budget     rest  scripts/studies/budget.py on the carried gpu_stage/ (7 parts: 30,000 train / 5,000 val),
                   FOCA vs E2E x 2 seeds (1 when 2 do not fit one epoch) in the time left (at least 150 s)
Later (a second call, never the first; --only): cupy_tests (pytest's NumPy-vs-CuPy checks, never run
yet) and toy_cupy (the toy demos on CuPy: first-time kernel compiles), when CuPy imports.
Each step gets min(its slice, the time left less what the budget run needs). Leaves in --out at most
8 files, no folders: gpu_check.json (every step's status, rewritten before and after each),
gpu_bench.json, bench_data.json, gpu_engine.json, budget.json, budget_features.png,
gpu_check_logs.tar.gz (each step's full output and the budget's run folders without weights; packed
after every step and on the stop path, SIGTERM ignored while it is written) and, from the shell
wrapper, gpu_check.log. Prints a short table last, also when SIGTERM (the wrapper's timeout) stops it.
The budget step also repacks gpu_check_logs.tar.gz after every finished run (a kill keeps them all).
Exit 0: every step measured everything; 1: a real failure; 3 (TIME_EXIT, "not measured: time"): nothing
failed, but a step or part of one was stopped at its slice, skipped for time, or SIGTERM stopped the call.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.gpu.common import NOT_MEASURED, TIME_EXIT, Stopped, card, error_text, pack, stop_on_sigterm, write_json

REPO = Path(__file__).resolve().parents[2]
# (step, phase, slice on the GPU box, slice in tiny mode); None: the time left
# (tiny: generous slices, only against a hang: a shared 2-core CPU can run 5x slower than when idle;
# the budget run fills its slice, so it gets a short one). bench_data: 45 s, as its two CPU rows took
# 16.6 s on a loaded 2-core CPU and CUDA's start-up adds more (20-26 s in all by the review's clock;
# 25 s lost the CUDA rows); the 20 s come from the bench, which skips what no longer fits its slice,
# where the fixed-work steps after it would fail at their limit.
FIRST_CALL = [("bench", "speed", 175, 600), ("bench_data", "speed", 45, 300), ("pytest", "correctness", 70, 300),
              ("engine", "correctness", 100, 600), ("budget", "budget", None, 240)]
LATER = [("cupy_tests", "later", 60, 300), ("toy_cupy", "later", 40, 300)]
BUDGET_MIN = {False: 150, True: 60}  # seconds the budget run needs at least (probe, 4 runs' start-up)
# The CPU rows of bench_data: like for like, 4 torch threads against 4 DataLoader workers (4 of an H200
# box's 16 cores; the call's OMP_NUM_THREADS). The plan's numbers are the CUDA rows; the CPU rows are
# a yardstick, and a fixed count, said in the table, keeps them repeatable from box to box.
DATA_CORES = 4
LOGS_ARCHIVE = "gpu_check_logs.tar.gz"


def _tee(stream, fh) -> None:
    """A step's output, line by line, into its log and onto this run's output (what the call shows)."""
    for line in stream:
        fh.write(line)
        fh.flush()
        sys.stdout.write("    " + line)
        sys.stdout.flush()


def run_step(cmd: list[str], log: Path, timeout: float) -> tuple[object, float]:
    """cmd in its own process group; on timeout or SIGTERM the group gets SIGTERM (so a script can
    still write its file), then SIGKILL. -> (exit status or "timeout", seconds)."""
    tic = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        pump = threading.Thread(target=_tee, args=(proc.stdout, fh), daemon=True)
        pump.start()
        try:
            rc = proc.wait(timeout=max(timeout, 1))
        except (subprocess.TimeoutExpired, Stopped) as e:
            before = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not orphan the step
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)  # its own stop path: its file, its table, its archive
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            finally:
                signal.signal(signal.SIGTERM, before)
            if isinstance(e, Stopped):
                raise
            rc = "timeout"
        finally:
            pump.join(timeout=5)
    return rc, round(time.perf_counter() - tic, 1)


def command(name: str, args, out: Path, logs: Path, limit: float) -> list[str] | str:
    """The step's command line, or why it does not run (a string)."""
    py, tiny = [sys.executable, "-m"], ["--tiny"] if args.tiny else []
    end = f"--deadline={time.time() + limit - 10:.1f}"  # the slice counts the step's start-up and imports
    if name == "bench":  # stops itself 10 s inside its slice: the final write and table fit
        return [*py, "scripts.gpu.bench", f"--out={out}", f"--budget-s={max(limit - 10, 1):.0f}", end,
                f"--items={args.bench_items}", *tiny, *(["--steps=2"] if args.tiny else [])]
    if name == "bench_data":  # CPU rows on DATA_CORES of the box's cores: 4 torch threads, 4 loader workers
        cores = [] if args.tiny else [f"--threads={DATA_CORES}", f"--workers={DATA_CORES}"]
        return [*py, "scripts.bench.data", f"--seconds={0.3 if args.tiny else 3}", *cores,
                f"--json={out / 'bench_data.json'}"]
    if name in ("pytest", "cupy_tests"):
        if importlib.util.find_spec("pytest") is None:
            return "skipped (no pytest on this machine)"
        return [*py, "pytest", "-q", "-m", "gpu", "-k", "cupy" if name == "cupy_tests" else "not cupy",
                "-p", "no:cacheprovider", "tests"]
    if name == "engine":
        return [*py, "scripts.gpu.engine", f"--out={out}", f"--budget-s={max(limit - 10, 1):.0f}", end, *tiny]
    if name == "budget":
        parts = [p for p in args.parts.split(",") if p and (REPO / p).is_dir()]
        if not parts and not args.tiny:
            return f"failed (no staged data in {args.parts}: carry gpu_stage, made by python -m scripts.gpu.stage_cifar10 stage)"
        # the logs archive is repacked after every finished run: a kill of the whole call keeps them all
        return [*py, "scripts.studies.budget", *([f"--parts={','.join(parts)}"] if parts else []), f"--out={out}",
                f"--runs-dir={logs / 'budget_runs'}", f"--pack-archive={out / LOGS_ARCHIVE}", f"--pack-root={logs}",
                f"--minutes={max(limit - 15, 30) / 60:.2f}", *tiny]
    if importlib.util.find_spec("cupy") is None:
        return "skipped (CuPy does not import here)"
    return [*py, "toy.run", "--backend", "cupy", "--fast", "--out", str(logs / "toy_cupy")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="The GPU plan's one call: speed, correctness, the budget run")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--budget-s", type=float, default=0, help="seconds for all steps together (default 540; tiny 2400)")
    p.add_argument("--tiny", action="store_true", help="the same steps on the CPU, tiny (tests)")
    p.add_argument("--only", default="", help="comma-separated steps to run (a second call's)")
    p.add_argument("--bench-items", default="first", help="gpu_bench --items (a second call: the table's list)")
    p.add_argument("--parts", default=None, help="folders with the staged CIFAR-10 parts, comma-separated "
                   "(default gpu_stage; tiny: synthetic images)")
    p.add_argument("--logs", default="", help="folder for the steps' logs (default: a new temporary one)")
    args = p.parse_args(argv)
    args.parts = ("" if args.tiny else "gpu_stage") if args.parts is None else args.parts
    args.budget_s = args.budget_s or (2400 if args.tiny else 540)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --tiny runs these steps on the CPU", file=sys.stderr)
        return 2
    plan = FIRST_CALL
    if args.only:
        known = {n: s for n, *s in FIRST_CALL + LATER}
        unknown = set(args.only.split(",")) - set(known)
        if unknown:
            print(f"error: --only {','.join(sorted(unknown))}: the steps are {', '.join(known)}", file=sys.stderr)
            return 2
        plan = [(n, *known[n]) for n in args.only.split(",")]
    t0 = time.perf_counter()
    deadline = t0 + args.budget_s
    stop_on_sigterm()
    out = Path(args.out)
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="gpu_check_logs_"))
    logs.mkdir(parents=True, exist_ok=True)
    res = {"card": card(), "tiny": args.tiny, "budget_s": args.budget_s,
           "plan": [{"step": n, "phase": ph, "slice_s": s_tiny if args.tiny else s} for n, ph, s, s_tiny in plan],
           "steps": {}, "pending": [n for n, *_ in plan], "running": None, "stopped": None}
    path = out / "gpu_check.json"
    write_json(path, res)
    print(f"gpu_check: {res['card']['device']} ({res['card']['nvidia_smi']}), torch {res['card']['torch']}, "
          f"{args.budget_s:.0f} s for {', '.join(res['pending'])}", flush=True)
    try:
        for name, phase, gpu_slice, tiny_slice in plan:
            res["pending"].remove(name)
            left = deadline - time.perf_counter()
            reserve = BUDGET_MIN[args.tiny] if "budget" in res["pending"] else 0
            limit = min(tiny_slice if args.tiny else gpu_slice or left, left - reserve)
            cmd = command(name, args, out, logs, limit)
            if limit < 10:
                res["steps"][name] = {"status": f"{NOT_MEASURED} (no time left for it)", "phase": phase}
                continue
            if isinstance(cmd, str):
                res["steps"][name] = {"status": cmd, "phase": phase}
                write_json(path, res)
                continue
            log = logs / f"{name}.log"
            res["running"] = name
            write_json(path, res)
            try:
                rc, secs = run_step(cmd, log, limit)
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - this step failed; the next ones still run
                rc, secs = error_text(e), 0.0
            status = step_status(rc, limit)
            res["steps"][name] = {"status": status, "phase": phase, "seconds": secs, "limit_s": round(limit),
                                  "result": summary(name, log, out)}
            res["running"] = None
            write_json(path, res)
            pack(logs, out / LOGS_ARCHIVE)
            print(f"  {name}: {status} in {secs} s of {limit:.0f}: {res['steps'][name]['result']}", flush=True)
    except Stopped as e:
        res["stopped"] = f"{e} after {time.perf_counter() - t0:.0f} s, in {res.get('running')}"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nothing interrupts the final write and pack
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(path, res)
    pack(logs, out / LOGS_ARCHIVE)
    for stray in out.glob("*.tmp*"):  # a step killed mid-write: the box returns 8 files, not a 9th
        stray.unlink()
    print(table(res))
    return {"ok": 0, "FAILED": 1}.get(verdict(res), TIME_EXIT)


def step_status(rc, limit: float) -> str:
    """A step's exit -> its status: time (the step's own TIME_EXIT, or stopped at its slice) is not a failure."""
    if rc == 0:
        return "ok"
    if rc == TIME_EXIT:
        return f"{NOT_MEASURED} (in part: its result says what)"
    if rc == "timeout":
        return f"{NOT_MEASURED} (stopped at its slice of {limit:.0f} s)"
    return f"failed ({rc})"


def verdict(res: dict) -> str:
    """ok; FAILED (a real failure); or not measured: time (nothing failed; a step or part of one was
    stopped or skipped for time, or SIGTERM, the wrapper's timeout, stopped the call)."""
    status = [s["status"] for s in res["steps"].values()]
    if any(s.startswith("failed") for s in status):
        return "FAILED"
    return NOT_MEASURED if res["stopped"] or res["pending"] or any(s.startswith(NOT_MEASURED) for s in status) else "ok"


def summary(name: str, log: Path, out: Path) -> str:
    """One line per step for the table: what it showed."""
    text = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    try:
        if name in ("pytest", "cupy_tests"):
            return text[-1] if text else "-"
        if name == "engine":
            d = json.loads((out / "gpu_engine.json").read_text())
            c = d.get("checks", {})
            return f"{c.get('verdict', 'FAILED')}: {len(d['runs'])} runs; CUDA graph: {c.get('weak_graph', '-')}"
        if name == "bench":
            d = json.loads((out / "gpu_bench.json").read_text())
            errors = [k for k, v in d["items"].items() if "error" in v]
            cut = [k for k, v in d["items"].items() if "cut" in v]
            return (f"{len(d['items']) - len(errors) - len(cut)} items measured, {len(cut)} cut, {len(errors)} failed, "
                    f"{len(d['skipped'])} skipped for time" + (f" (second call: --bench-items="
                                                      f"{','.join(map(str, sorted(set(d['not_measured']))))})"
                                                      if d["not_measured"] else ""))
        if name == "bench_data":
            rows = json.loads((out / "bench_data.json").read_text())["rows"]
            return "; ".join(f"{r['device']} {r['pipeline'].split(' ')[0]} {r['images_per_s']:,.0f} img/s" for r in rows)
        if name == "budget":
            d = json.loads((out / "budget.json").read_text())
            errs = {m: s["test_error"] for m, s in d.get("summary", {}).items()}
            return (f"{d.get('status', '-')}: {d.get('epochs')} epochs x {d.get('seeds_run', '-')} seeds on "
                    f"{d['data'].get('train', '?'):,} images; test error % (mean, std, n) {errs}; skipped for time "
                    f"{len(d['skipped'])}" + (f"; stopped: {d['stopped']}" if d.get("stopped") else ""))
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"no result ({error_text(e)})"
    return text[-1][:200] if text else "-"


def table(res: dict) -> str:
    lines = [f"gpu_check on {res['card']['device']}, {res['seconds']} s of {res['budget_s']:.0f}",
             "| step | phase | status | s | result |", "|---|---|---|---|---|"]
    for name, s in res["steps"].items():
        lines.append(f"| {name} | {s['phase']} | {s['status']} | {s.get('seconds', '-')} | {s.get('result', '')} |")
    bad = [n for n, s in res["steps"].items() if s["status"] != "ok" and not s["status"].startswith("skipped")]
    lines.append(f"verdict: {verdict(res)}" + (f" ({', '.join(bad)})" if bad else "")
                 + " (exit 0: all measured; 1: a failure; 3: nothing failed, something not measured for time)")
    lines += [f"not run ({NOT_MEASURED}): {', '.join(res['pending'])}"] if res["pending"] else []
    lines += [f"stopped: {res['stopped']} ({NOT_MEASURED})"] if res["stopped"] else []
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
