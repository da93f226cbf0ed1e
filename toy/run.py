"""`make toy`: the teaching demos, one command, figures in figures/ and a table of measured numbers.

    python -m toy.run                       # full: 5 seeds, about 1-2 min on 2 CPU cores
    python -m toy.run --fast --out /tmp/f   # the test suite's run: every figure, a few seconds
    python -m toy.run --backend cupy        # the same on a GPU (CuPy), randomness drawn on the host

Part 1 (co-adaptation, 2 classes, 2-D features) and part 2 (point-like collapse: 3-arm spirals, and
digits with d = 2). Writes figures/toy_*.png and figures/toy_metrics.json (date, machine, backend,
seeds, per-seed numbers and mean +- std); prints the table last.
"""
from __future__ import annotations

import os

# One BLAS thread per process: the arrays are tiny, and threads only fight over the 2 cores
# (measured: 2000 E2E steps took 9-16 s with default threads, 1 s with one). Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import importlib.util  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from minifoca.backend import get_backend  # noqa: E402
from minifoca.cli import ArgParser  # noqa: E402
from minifoca.runlog import git_revision, write_json  # noqa: E402

from . import plots  # noqa: E402
from .coadapt import coadapt_job  # noqa: E402
from .collapse import digits_seed, spirals_seed  # noqa: E402
from .config import PRESETS  # noqa: E402
from .report import build_summary, table  # noqa: E402


def parse(argv) -> tuple:
    ap = ArgParser("python -m toy.run", __doc__)
    ap.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                    help="numpy, or cupy on a GPU (the same numbers: randomness is drawn on the host)")
    ap.add_argument("--fast", action="store_true",
                    help="reduced sizes (the test suite's run); its numbers are not the claims")
    ap.add_argument("--out", default="figures", help="folder for the PNGs and toy_metrics.json")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (none: 5, with --fast 2)")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (none: 2 or the cores if fewer; cupy: 1)")
    ap.add_argument("--bn", action="store_true", help="variant: BatchNorm in the hidden layers of F_phi")
    args = ap.parse_args(argv)
    tc = PRESETS["fast" if args.fast else "full"]
    jobs = 1 if args.backend == "cupy" else (args.jobs or min(2, os.cpu_count() or 1))
    if (args.seeds is not None and args.seeds < 1) or jobs < 1:
        ap.error("--seeds and --jobs must be at least 1")
    tc = dataclasses.replace(tc, backend=args.backend, seeds=args.seeds or tc.seeds, jobs=jobs,
                             bn=args.bn or tc.bn)
    return tc, args


def announce(tc, fast: bool, out: Path) -> None:
    # measured on 2 cores shared with another job: 45-80 s for 5 seeds in 2 processes (about 14 s of
    # CPU per seed for both parts, 22 s for digits; up to twice that when the cores are busy)
    guess = ("a few seconds" if fast else
             f"about {(14 * tc.seeds + 22) // tc.jobs + 5}-{(28 * tc.seeds + 44) // tc.jobs} s on 2 CPU cores")
    print(f"toy: FOCA vs E2E teaching demos, {tc.seeds} seeds, backend {tc.backend}, {tc.jobs} process(es); "
          f"{guess}.\n"
          f"  1. co-adaptation on a 2-class toy ({tc.coadapt_data}) with 2-D features: E2E vs FOCA, a constructed\n"
          f"     co-adapted solution that E2E's objective cannot tell apart, and fragility probes.\n"
          f"  2. point-like collapse: 3-arm spirals (every seed) and digits with d = 2 (seed 0).\n"
          f"  Expect figures in {out}/toy_*.png, {out}/toy_metrics.json, and a table of mean +- std below.\n",
          file=sys.stderr, flush=True)


def one_blas_thread():
    """A context with BLAS limited to one thread, also when numpy was imported before this module
    (the tests import it in-process; measured there: 4.5 CPU-minutes with default threads for what
    takes 1 with one thread). threadpoolctl comes with scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def run_job(job):
    """One (part, seed) unit of work; runs in a worker process, returns host arrays only."""
    kind, tc, seed = job
    tic = time.perf_counter()
    with one_blas_thread():
        if kind == "coadapt":
            res = coadapt_job(tc, seed, keep_picture=seed == 0)
        elif kind == "spirals":
            res = spirals_seed(tc, seed, keep_features=seed == 0)
        else:
            res = digits_seed(tc, seed)
    return kind, seed, res, time.perf_counter() - tic


def run_all(tc) -> dict:
    # the longest job (digits) first, so the other process is never left idle at the end
    has_sklearn = importlib.util.find_spec("sklearn") is not None  # a GPU box may lack it
    if tc.digits and not has_sklearn:
        print("  note: scikit-learn is not installed: the digits part is skipped", file=sys.stderr)
    jobs = [("digits", tc, 0)] if tc.digits and has_sklearn else []
    jobs += [(kind, tc, s) for s in range(tc.seeds) for kind in ("coadapt", "spirals")]
    results = {"coadapt": {}, "spirals": {}, "digits": {}}

    def done(item):
        kind, seed, res, sec = item
        results[kind][seed] = res
        print(f"  done: {kind:<8} seed {seed}  {sec:5.1f} s", file=sys.stderr, flush=True)

    if tc.jobs == 1:
        for job in jobs:
            done(run_job(job))
    else:  # seeds are independent (each has its own random streams), so the order does not matter
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ctx.Pool(tc.jobs) as pool:
            for item in pool.imap_unordered(run_job, jobs):
                done(item)
    return {k: [v[s] for s in sorted(v)] for k, v in results.items()}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv=None) -> int:
    tc, args = parse(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    try:
        get_backend(tc.backend)  # fail now, with minifoca's message, not inside a worker
        out.mkdir(parents=True, exist_ok=True)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    announce(tc, args.fast, out)
    tic = time.perf_counter()
    res = run_all(tc)
    digits = res["digits"][0] if res["digits"] else None
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
            "backend": tc.backend, "command": "python -m toy.run " + " ".join(sys.argv[1:] if argv is None else argv),
            "preset": "fast" if args.fast else "full", "seeds": list(range(tc.seeds)), "git": git_revision(),
            "python": platform.python_version(), "numpy": np.__version__, "config": dataclasses.asdict(tc)}
    summary = build_summary(res["coadapt"], res["spirals"], digits, meta)
    pic = res["coadapt"][0]["picture"]
    plots.coadapt_figure(pic, [r["coadapt"] for r in res["coadapt"]], out / "toy_coadapt.png", pic["rotated"])
    plots.fragility_figure([r["coadapt"] for r in res["coadapt"]], out / "toy_fragility.png")
    plots.collapse_figure(res["spirals"][0]["picture"], digits and digits["picture"], res["spirals"],
                          out / "toy_collapse.png")
    plots.curves_figure(res["spirals"], out / "toy_collapse_curves.png")
    plots.pca_figure(res["spirals"][0]["picture"], digits and digits["picture"], out / "toy_pca.png")
    summary["seconds"] = round(time.perf_counter() - tic, 1)
    write_json(out / "toy_metrics.json", summary, indent=1)
    print(table(summary))
    print(f"\n{summary['seconds']} s; figures and toy_metrics.json in {out}/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
