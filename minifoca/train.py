"""Train FOCA or its E2E baseline with the NumPy/CuPy reference (minifoca, the specification).

    python -m minifoca.train --dataset digits --method foca           # about 12 s on 2 CPU cores
    python -m minifoca.train --dataset digits --method e2e --seed 3 --refresh=32
    python -m minifoca.train --dataset fashion --backend cupy         # the fashion preset's settings

The settings start from a preset: `--preset NAME`, else the preset named like `--dataset`, else
digits; then every `--key=value` (or `--key value`) sets one field of minifoca.config.Config (types
checked, unknown keys rejected). Progress goes to stderr; the last stdout line is the run's JSON
summary (method, dataset, val_error, test_error, seconds, ...), and runs/minifoca/<name>/ keeps
config.json, git.txt, metrics.jsonl (one record per epoch) and summary.json.
"""
from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np
from tqdm import tqdm

try:  # optional: a GPU box may have numpy without it; then BLAS keeps its own thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    import contextlib

    def threadpool_limits(n):
        return contextlib.nullcontext()

from . import cli, foca
from .backend import DTYPES, get_backend, to_device
from .cli import normalise_args, print_help, show, wants_help
from .config import ABOUT, PRESETS, Config, apply_overrides, to_dict
from .data import DataError, load
from .metrics import feature_stats
from .models import MLP, init_classifier
from .runlog import RunDir, RunDirError, default_name


OWN = [("--preset NAME", "start from this preset (default: the one named like --dataset, else digits)"),
       ("--name NAME", "the run folder's name under out_dir (default: <dataset>-<method>-s<seed>-<time>)"),
       ("--overwrite", "replace a run folder of that name instead of stopping"),
       ("-h, --help", "this help")]


def help_text() -> str:
    presets = [(name, f"{ABOUT[name]}; sets " + (" ".join(f"--{k}={show(v)}" for k, v in to_dict(p).items()
                                                            if v != getattr(Config(), k)) or "nothing: the defaults"))
               for name, p in PRESETS.items()]
    return cli.help_text(__doc__, OWN, Config(), "config fields (minifoca.config.Config; defaults = the digits preset):",
                         presets)


def parse(argv: list[str]):
    """-> (cfg, run options {preset, name, overwrite}); ValueError with a clear message on a bad option."""
    args = normalise_args(argv, flags=("overwrite",))
    run, rest = {"preset": "", "name": "", "overwrite": False}, []
    for a in args:
        key, eq, val = a[2:].partition("=") if a.startswith("--") else ("", "", "")
        if key in ("preset", "name"):
            if not val:
                raise ValueError(f"--{key} needs a value: --{key}=NAME or --{key} NAME")
            run[key] = val
        elif key == "overwrite" and not eq:
            run["overwrite"] = True
        else:
            rest.append(a)
    if run["preset"] and run["preset"] not in PRESETS:
        raise ValueError(f"unknown preset {run['preset']!r}: choose {', '.join(PRESETS)}")
    if not run["preset"]:  # a dataset's own settings, never another dataset's (its size, steps, widths)
        dataset = [a.split("=", 1)[1] for a in rest if a.startswith("--dataset=")]
        run["preset"] = dataset[-1] if dataset and dataset[-1] in PRESETS else "digits"
    return apply_overrides(PRESETS[run["preset"]], rest, known=("preset", "name", "overwrite", "help")), run


def settings_note(cfg, preset: str) -> str:
    """A line saying whose settings run when a preset is run on another dataset ("" otherwise)."""
    if cfg.dataset == PRESETS[preset].dataset or cfg.dataset not in PRESETS:
        return ""
    own, base = to_dict(PRESETS[cfg.dataset]), to_dict(PRESETS[preset])
    kept = [f"{k}={show(base[k])}" for k in own if own[k] != base[k] and k != "dataset" and getattr(cfg, k) == base[k]]
    return (f"note: the {preset} preset's settings run on {cfg.dataset}" + (f" ({', '.join(kept)})" if kept else "")
            + f"; drop --preset (or pass --preset {cfg.dataset}) for that dataset's own")


def on_device(data, xp, dtype):
    """The Dataset with float arrays in `dtype` and labels as int64, on the backend."""
    conv = {f.name: to_device(xp, getattr(data, f.name), dtype if f.name.startswith("x_") else np.int64)
            for f in dataclasses.fields(data) if f.name.startswith(("x_", "t_"))}
    return dataclasses.replace(data, **conv)


def run(cfg, name: str = "", overwrite: bool = False) -> dict:
    with threadpool_limits(cfg.threads):
        return _run(cfg, name, overwrite)


def _run(cfg, name: str, overwrite: bool) -> dict:
    xp, dtype = get_backend(cfg.backend), DTYPES[cfg.dtype]
    data = on_device(load(cfg.dataset, cfg.data_dir, cfg.val_size), xp, dtype)
    rng = np.random.default_rng(cfg.seed)
    rundir = RunDir(f"{cfg.out_dir}/{name or default_name(cfg.dataset, cfg.method, f's{cfg.seed}')}",
                    to_dict(cfg), overwrite=overwrite)
    per_epoch = len(data.t_train) // cfg.n_f
    bar = tqdm(total=cfg.steps, desc=f"{cfg.method} stage 1", unit="step", file=sys.stderr,
               disable=None, leave=False)

    def log(rec):
        rundir.log(rec)
        if rec["stage"] == 1:
            bar.update(min(per_epoch, bar.total - bar.n))
            bar.set_postfix(loss=f"{rec['train_loss']:.3f}", **({"val": f"{rec['val_error']:.3f}"}
                                                             if "val_error" in rec else {}))

    tic = time.perf_counter()
    model = MLP((data.x_train.shape[1], *cfg.widths), cfg.bn, rng, xp, dtype, cfg.init_std or None)
    if cfg.method == "foca":
        foca.train_foca(model, data, cfg, rng, log)  # stage 1
        theta = foca.train_classifier(model, data, cfg, rng, log)  # stage 2
    else:
        theta = init_classifier(cfg.widths[-1], data.n_classes, rng, xp, dtype, cfg.weak_init_std)
        foca.train_e2e(model, theta, data, cfg, rng, log)
    bar.close()
    summary = _summary(cfg, model, theta, data, rng, time.perf_counter() - tic)
    if cfg.finetune_epochs:  # stage 3, reported beside the stage-2 numbers, never instead of them
        foca.fine_tune(model, theta, data, cfg, rng, log)
        summary["finetune_val_error"] = foca.evaluate(model, theta, data.x_val, data.t_val)
        summary["finetune_test_error"] = foca.evaluate(model, theta, data.x_test, data.t_test)
        summary["seconds"] = round(time.perf_counter() - tic, 2)
    summary["run_dir"] = str(rundir.path)
    print(rundir.finish(summary))
    return summary


def _summary(cfg, model, theta, data, rng, seconds) -> dict:
    f_train, f_test = foca.features(model, data.x_train), foca.features(model, data.x_test)
    return {"method": cfg.method, "dataset": cfg.dataset, "seed": cfg.seed,
            "val_error": foca.evaluate(model, theta, data.x_val, data.t_val),
            "test_error": foca.evaluate(model, theta, data.x_test, data.t_test),
            "few_label_error": foca.few_label_error(f_train, data.t_train, f_test, data.t_test,
                                                    data.n_classes, cfg, rng),
            **feature_stats(f_test, data.t_test), "protocol": data.protocol,
            "seconds": round(seconds, 2), "backend": cfg.backend}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print_help(help_text())
        return 0
    try:
        cfg, opts = parse(argv)
        took = {"digits": "about 12 s (FOCA) or 5 s (E2E) on 2 CPU cores"}.get(cfg.dataset, "minutes on a CPU")
        print(f"minifoca: {cfg.method.upper()} on {cfg.dataset} (preset {opts['preset']}), {cfg.steps} phi steps, "
              f"{cfg.backend} {cfg.dtype}; {took}. The last line is JSON with val_error and test_error.",
              file=sys.stderr)
        if settings_note(cfg, opts["preset"]):
            print(settings_note(cfg, opts["preset"]), file=sys.stderr)
        run(cfg, opts["name"], opts["overwrite"])
    except (ValueError, DataError, RunDirError, RuntimeError, foca.NonFiniteLoss) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
