"""FOCA vs E2E on real digits over several seeds with minifoca: the numbers quoted in the README.

    python -m scripts.studies.digits_claims                   # 5 seeds x 2 methods, about 2 min on 2 CPU cores
    python -m scripts.studies.digits_claims --seeds 5 --json results/digits_claims_cpu.json --bn=false

Any further `--key=value` is a minifoca Config override applied to both methods. Prints one row per
method with mean +- std over seeds of test error, few-label error and the feature statistics.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import sys
import tempfile
import time

import numpy as np

from minifoca.cli import ArgParser, normalise_args, options_help
from minifoca.config import PRESETS, apply_overrides
from minifoca.train import run

KEYS = ("val_error", "test_error", "few_label_error", "trace_ratio", "fisher_eigenvalue", "seconds")


def run_seeds(seeds, overrides=(), methods=("foca", "e2e"), out_dir=None) -> dict:
    """-> {method: [summary per seed]}; runs quietly, one run folder per run under out_dir."""
    out_dir = out_dir or tempfile.mkdtemp(prefix="digits_claims_")
    base = apply_overrides(PRESETS["digits"], list(overrides))
    results = {m: [] for m in methods}
    for seed in seeds:
        for m in methods:
            cfg = dataclasses.replace(base, method=m, seed=seed, out_dir=out_dir)
            results[m].append(run(cfg, name=f"{m}-s{seed}", overwrite=True))
    return results


def table(results: dict) -> str:
    rows = ["| method | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
    for m, runs in results.items():
        cells = []
        for k in KEYS:
            v = np.array([r[k] for r in runs]) * (100 if k.endswith("error") else 1)
            cells.append(f"{v.mean():.2f} +- {v.std(ddof=1) if len(v) > 1 else 0:.2f}")
        rows.append(f"| {m} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = ArgParser("python -m scripts.studies.digits_claims", __doc__,
                  epilog="\n".join(["config fields (minifoca.config.Config, the digits preset's values):",
                                    *options_help(PRESETS["digits"])]))
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1, each method once per seed")
    p.add_argument("--json", default="", help="write every run's summary here")
    args, overrides = p.parse_known_args(argv)
    overrides = normalise_args(overrides)
    try:
        apply_overrides(PRESETS["digits"], overrides, known=("seeds", "json", "help"))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"digits, FOCA vs E2E, {args.seeds} seeds, overrides {overrides or 'none'}; "
          "about 15 s per FOCA run and 6 s per E2E run on 2 CPU cores", file=sys.stderr)
    results = run_seeds(range(args.seeds), overrides)
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
                "command": "python -m scripts.studies.digits_claims " + " ".join(argv or sys.argv[1:])}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "runs": results}, fh, indent=1)
    print("errors in %, mean +- std over seeds; " + results["foca"][0]["protocol"])
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
