"""Run 1 of the GPU plan (scripts/gpu/README.md): correctness on CUDA first, then speed, in one call.

    bash scripts/gpu/check.sh                         # on the GPU box: this, its output tee'd to gpu_check.log
    python -m scripts.gpu.check --tiny --out /tmp/c   # the same steps on the CPU, tiny (the tests)

Steps, in order, each a subprocess with its own time limit inside --budget-s:
  stage      keep run 2's first CIFAR-10 half (gpu_stage1/, carried by this call) in /tmp/foca_stage1
             and decode it once: proves the box can read the staged data before run 2 needs it
  pytest     `pytest -m gpu`: the CUDA graph classifier against the eager loop, a CUDA checkpoint
             resumed on the CPU, NumPy vs CuPy when CuPy is there
  engine     scripts/gpu/engine.py: scaled.train on CUDA, stages 1-3 in bf16 + channels_last, killed
             after an epoch and resumed, E2E, PyramidNet + ShakeDrop
  bench      scripts/gpu/bench.py: images/s, TFLOP/s, projected hours (whatever time is left)
  bench_data scripts/bench/data.py: batched device augmentation vs a torchvision DataLoader
  toy_cupy   the toy demos on CuPy, only when CuPy imports
Leaves in --out at most 6 files, no folders: gpu_check.json (every step's status, rewritten after
each), gpu_bench.json, gpu_engine.json, bench_data.json, gpu_check_logs.tar.gz (each step's full
output, toy figures) and, from the shell wrapper, gpu_check.log. Prints a short table last, also when
SIGTERM (the wrapper's timeout) stops it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scripts.gpu.common import Stopped, card, error_text, pack, stop_on_sigterm, write_json

REPO = Path(__file__).resolve().parents[2]
# outside the working tree: survives as long as the box stays warm (tests point it elsewhere)
STASH = Path(os.environ.get("FOCA_STAGE_STASH", "/tmp/foca_stage1"))


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
                                errors="replace", start_new_session=True)
        pump = threading.Thread(target=_tee, args=(proc.stdout, fh), daemon=True)
        pump.start()
        try:
            rc = proc.wait(timeout=max(timeout, 1))
        except (subprocess.TimeoutExpired, Stopped) as e:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if isinstance(e, Stopped):
                raise
            rc = "timeout"
        finally:
            pump.join(timeout=5)
    return rc, round(time.perf_counter() - tic, 1)


def stage(log: Path) -> tuple[object, dict]:
    src = REPO / "gpu_stage1"
    if not src.is_dir():
        return "skipped", {"note": "no gpu_stage1/ here: run 2 will train on its own half (30,000 images)"}
    from scripts.gpu.stage_cifar10 import assemble

    shutil.rmtree(STASH, ignore_errors=True)
    shutil.copytree(src, STASH)
    info = assemble(Path(tempfile.mkdtemp()) / "half.npz", [STASH])
    log.write_text(json.dumps(info) + "\n")
    return 0, info


def steps(args, out: Path, logs: Path) -> list[tuple[str, float, list[str] | None]]:
    """(name, most seconds, command); None: run in this process."""
    py, tiny = [sys.executable, "-m"], ["--tiny"] if args.tiny else []
    s = [("stage", 60, None),
         ("pytest", 120, [*py, "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"]),
         ("engine", 150, [*py, "scripts.gpu.engine", f"--out={out}", *tiny]),
         ("bench", 10 ** 6, [*py, "scripts.gpu.bench", f"--out={out}", *tiny, *(["--steps=2"] if args.tiny else [])]),
         ("bench_data", 45, [*py, "scripts.bench.data", f"--seconds={0.3 if args.tiny else 3}",
                             f"--json={out / 'bench_data.json'}"])]
    if importlib.util.find_spec("cupy") is not None:
        s.append(("toy_cupy", 60, [*py, "toy.run", "--backend", "cupy", "--fast", "--out", str(logs / "toy_cupy")]))
    return s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.gpu.check",
                                description="GPU run 1: correctness on CUDA, then speed")
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--budget-s", type=float, default=225, help="seconds for all steps together")
    p.add_argument("--tiny", action="store_true", help="the same steps on the CPU, tiny (tests)")
    p.add_argument("--only", default="", help="comma-separated steps to run (a rerun of the failed ones)")
    args = p.parse_args(argv)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --tiny runs these steps on the CPU", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    deadline = t0 + args.budget_s
    stop_on_sigterm()
    out, logs = Path(args.out), Path(tempfile.mkdtemp(prefix="gpu_check_logs_"))
    plan = steps(args, out, logs)
    if args.only:
        unknown = set(args.only.split(",")) - {n for n, _, _ in plan}
        if unknown:
            print(f"error: --only {','.join(sorted(unknown))}: the steps are {', '.join(n for n, _, _ in plan)}",
                  file=sys.stderr)
            return 2
        plan = [s for s in plan if s[0] in args.only.split(",")]
    res = {"card": card(), "tiny": args.tiny, "steps": {}, "pending": [n for n, _, _ in plan], "stopped": None}
    path = out / "gpu_check.json"
    write_json(path, res)
    print(f"gpu_check: {res['card']['device']} ({res['card']['nvidia_smi']}), torch {res['card']['torch']}, "
          f"{args.budget_s:.0f} s for {', '.join(res['pending'])}", flush=True)
    try:
        for name, most, cmd in plan:
            res["pending"].remove(name)
            left = deadline - time.perf_counter()
            if name == "bench":  # the rest of the time, less what bench_data needs
                cmd = cmd + [f"--budget-s={max(left - 60, 0):.0f}"]
                most = left - 45
            if left < 5:
                res["steps"][name] = {"status": "skipped (no time left)"}
                continue
            log = logs / f"{name}.log"
            res["running"] = name
            write_json(path, res)
            try:
                if cmd:
                    (rc, secs), extra = run_step(cmd, log, min(most, left - 2)), {}
                else:
                    tic = time.perf_counter()
                    rc, extra = stage(log)
                    secs = round(time.perf_counter() - tic, 1)
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - this step failed; the next ones still run
                rc, secs, extra = error_text(e), 0.0, {}
            status = "ok" if rc == 0 else "skipped" if rc == "skipped" else f"failed ({rc})"
            res["steps"][name] = {"status": status, "seconds": secs,
                                  "result": summary(name, log, out), **extra}
            res["running"] = None
            write_json(path, res)
            pack(logs, out / "gpu_check_logs.tar.gz")
            print(f"  {name}: {res['steps'][name]['status']} in {secs} s: {res['steps'][name]['result']}", flush=True)
    except Stopped as e:
        res["stopped"] = f"{e} after {time.perf_counter() - t0:.0f} s, in {res.get('running')}"
    res["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(path, res)
    pack(logs, out / "gpu_check_logs.tar.gz")
    print(table(res))
    return 0 if not res["stopped"] and all(s["status"] in ("ok", "skipped") for s in res["steps"].values()) else 1


def summary(name: str, log: Path, out: Path) -> str:
    """One line per step for the table: what it showed."""
    text = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    try:
        if name == "stage":
            d = json.loads(text[-1]) if text else {}
            return (f"{d['train_images']:,} training images decoded ({d['train_parts'][0]}-{d['train_parts'][-1]}), "
                    f"kept in {STASH}") if d else "-"
        if name == "pytest":
            return text[-1] if text else "-"
        if name in ("engine", "bench"):
            d = json.loads((out / f"gpu_{name}.json").read_text())
            if name == "engine":
                return f"{'OK' if d.get('checks', {}).get('ok') else 'FAILED'}: {len(d['runs'])} runs"
            errors = [k for k, v in d["items"].items() if "error" in v]
            return f"{len(d['items']) - len(errors)} items measured, {len(errors)} failed, {len(d['skipped'])} skipped"
        if name == "bench_data":
            rows = json.loads((out / "bench_data.json").read_text())["rows"]
            return "; ".join(f"{r['device']} {r['pipeline'].split(' ')[0]} {r['images_per_s']:,.0f} img/s" for r in rows)
    except (OSError, ValueError, KeyError) as e:
        return f"no result ({error_text(e)})"
    return text[-1][:200] if text else "-"


def table(res: dict) -> str:
    lines = [f"gpu_check on {res['card']['device']}, {res['seconds']} s", "| step | status | s | result |",
             "|---|---|---|---|"]
    for name, s in res["steps"].items():
        lines.append(f"| {name} | {s['status']} | {s.get('seconds', '-')} | {s.get('result', '')} |")
    lines += [f"not run: {', '.join(res['pending'])}"] if res["pending"] else []
    lines += [f"stopped: {res['stopped']}"] if res["stopped"] else []
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
