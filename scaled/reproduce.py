"""One command per paper result: every preset of a group over seeds, then the report beside the paper.

    python -m scaled.reproduce cifar10                 # Table 2 CIFAR-10: FOCA, E2E, E2E at 600 epochs, x 3 seeds
    python -m scaled.reproduce table1 --seeds 5 --data-dir /data
    python -m scaled.reproduce cifar10 --only wrn28-c10-foca --seeds 1 --dry-run     # print the plan only
    python -m scaled.reproduce smoke --train_subset=256                               # the pipeline on a CPU
    make cifar10 SEEDS=5 ARGS="--data-dir /data"        # the same through make (mk/reproduce.mk)

Name one group (listed below; scaled.report_runs.GROUPS). Any `--key=value` (or `--key value`) of
scaled.config.ScaledConfig is applied to every preset of the group (type-checked; unknown keys are
errors; --download=true fetches missing data with torchvision; --device=cpu only for tiny smoke runs).

`finetune` runs stage 3 only, from the FOCA rows' runs of the cifar100 and cifar10 groups
(--init_from): it trains those first where they are not finished, into their own group's folder,
so `make cifar10` and `make finetune` share them.

Before training, within seconds: a bad option, no CUDA GPU, no data or a run folder holding another
recipe each stop it with one line saying what to do (exit 2). Finished runs (summary.json) are
skipped and interrupted ones (checkpoint.pt) resumed, so rerunning the same command continues after a
crash. Runs go one after another on one GPU; for several GPUs start one group per GPU
(CUDA_VISIBLE_DEVICES=1 make cifar100) or one seed per GPU (--only/--seeds do not split seeds: use
separate --runs-dir folders and point `make report` at their parent).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from minifoca import cli
from minifoca.cli import normalise_args, print_help, wants_help
from minifoca.config import Config, apply_overrides, to_dict
from minifoca.data import DataError
from scaled.config import ScaledConfig
from scaled.presets import FINETUNE_FROM, PRESETS, get
from scaled.report import render
from scaled.report_runs import GROUPS, PAPER, RUNTIME, find_runs
from scaled.report_time import Timing, hours

REPO = Path(__file__).resolve().parent.parent
OWN = {"seeds", "runs_dir", "report", "only"}  # this script's options; everything else goes to scaled.train
OWN_HELP = [("GROUP", "the paper result to reproduce (one of the groups below)"),
            ("--seeds N", "seeds 0..N-1 of every preset (default 3)"),
            ("--runs-dir DIR", "each run is DIR/<group>/<preset>-s<seed> (default runs/scaled)"),
            ("--report DIR", "where README.md, results.json and the figures go (default report)"),
            ("--data-dir DIR", "the data folder (default $FOCA_DATA); = --data_dir of ScaledConfig"),
            ("--only P1,P2", "only these presets of the group"),
            ("--dry-run", "print each run's folder and state (new, resume, restart, done) and stop"),
            ("-h, --help", "this help")]
NOT_HERE = {"seed": "--seeds N", "out_dir": "--runs-dir DIR", "name": "the fixed <preset>-s<seed> names",
            "preset": "the group (or --only)", "resume": "rerunning the same command",
            "overwrite": "removing the run folder by hand"}
URLS = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it in the data folder "
                   "(--data-dir DIR or $FOCA_DATA) as cifar-10-batches-py/",
        "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and unpack it in the data folder "
                    "(--data-dir DIR or $FOCA_DATA) as cifar-100-python/",
        "tinyimagenet": "http://cs231n.stanford.edu/tiny-imagenet-200.zip into the data folder (--data-dir DIR or "
                        "$FOCA_DATA)"}


class Stop(Exception):
    """One line for the user, exit 2."""


def help_text() -> str:
    groups = [(g, f"{title}: {', '.join(presets)}") for g, (title, presets) in GROUPS.items()]
    return cli.help_text(__doc__, OWN_HELP, ScaledConfig(),
                         "config fields, applied to every preset of the group (scaled.config.ScaledConfig; "
                         "defaults = the wrn28-c10-foca preset; seed and out_dir come from --seeds and --runs-dir):",
                         groups, "groups (one per paper result; presets: `python -m scaled.train --list-presets`):",
                         fallback=Config)


def parse(argv: list[str]):
    """-> (group, {seeds, runs_dir, report, only, dry_run}, [--key=value overrides for scaled.train])."""
    opts = {"seeds": "3", "runs_dir": "runs/scaled", "report": "report", "only": "", "dry_run": False}
    positional, overrides = [], []
    for a in normalise_args(argv, flags=("dry_run",)):
        if not a.startswith("--"):
            positional.append(a)
            continue
        key, eq, val = a[2:].partition("=")
        key = key.replace("-", "_")
        if key == "dry_run" and not eq:
            opts["dry_run"] = True
        elif key in OWN:
            if not val:
                raise Stop(f"--{key.replace('_', '-')} needs a value: --{key.replace('_', '-')} VALUE")
            opts[key] = val
        elif key in NOT_HERE:
            raise Stop(f"--{key} is not an option here: use {NOT_HERE[key]}")
        else:
            overrides.append(f"--{key}{eq}{val}")
    apply_overrides(ScaledConfig(), overrides, known=[*OWN, "dry_run", "help"], hide=NOT_HERE)  # a bad option is named first
    if len(positional) != 1 or positional[0] not in GROUPS:
        raise Stop(f"name one group: {', '.join(GROUPS)} (got {' '.join(positional) or 'none'}); "
                   "--help lists them with their presets")
    if not opts["seeds"].isdigit() or int(opts["seeds"]) < 1:
        raise Stop(f"--seeds {opts['seeds']!r}: give a number of seeds, at least 1 (seeds 0..N-1 run)")
    opts["seeds"] = int(opts["seeds"])
    return positional[0], opts, overrides


def plan(group: str, opts: dict, overrides: list[str]) -> list[dict]:
    """Every (preset, seed) of the group with its config, folder and state: new, resume, restart, done."""
    from scaled.train import check_options  # (imports torch)

    presets = GROUPS[group][1]
    only = [p for p in opts["only"].split(",") if p]
    if [p for p in only if p not in presets]:
        raise Stop(f"--only {opts['only']}: the {group} presets are {', '.join(presets)}")
    runs, sources = [], []
    for p in only or presets:
        for seed in range(opts["seeds"]):
            runs.append(_planned(p, seed, Path(opts["runs_dir"]) / group, overrides, check_options))
            if p in FINETUNE_FROM:  # its FOCA run first, in that run's own group folder (shared with its target)
                src = FINETUNE_FROM[p]
                home = next(g for g, (_, ps) in GROUPS.items() if src in ps)
                mine = [o for o in overrides if not o.startswith("--finetune_")]  # stage 3's options are not its
                sources.append(_planned(src, seed, Path(opts["runs_dir"]) / home, mine, check_options))
                runs[-1]["init_from"] = sources[-1]["path"]
    return sources + runs


def _planned(p: str, seed: int, out_dir: Path, overrides: list[str], check_options) -> dict:
    cfg = apply_overrides(get(p), [*overrides, f"--seed={seed}", f"--out_dir={out_dir}"])  # ValueError: bad option
    check_options(cfg)  # an unknown network, a subset smaller than a batch: before device and data
    path = out_dir / f"{p}-s{seed}"
    state = "new"
    if (path / "summary.json").is_file() or (path / "checkpoint.pt").is_file():
        _same_recipe(path, to_dict(cfg))
        state = "done" if (path / "summary.json").is_file() else "resume"
    elif path.is_dir() and any(path.iterdir()):
        state = "restart"  # killed before its first epoch: nothing to keep
    return {"preset": p, "seed": seed, "cfg": cfg, "path": path, "state": state, "overrides": overrides}


def _same_recipe(path: Path, want: dict) -> None:
    have = json.loads((path / "config.json").read_text())
    diff = [k for k in want if k not in RUNTIME - {"seed"} and k in have
            and (list(have[k]) if isinstance(have[k], list) else have[k])
            != (list(want[k]) if isinstance(want[k], tuple) else want[k])]
    if diff:
        k = diff[0]
        raise Stop(f"{path} holds a run with another recipe ({k}={have[k]} there, {want[k]} asked"
                   f"{f', and {len(diff) - 1} more fields' if len(diff) > 1 else ''}); move it away "
                   "or pass --runs-dir DIR to keep both")


def check_device(runs: list[dict], group: str) -> str:
    """The card the runs will use; Stop within seconds when they need CUDA and there is none."""
    if not any(r["cfg"].device.startswith("cuda") for r in runs):
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise Stop(f"no CUDA GPU on this machine (torch.cuda.is_available() is False): `make {group}` trains "
                   f"{len(runs)} full-size runs and needs one; run it on a GPU machine, or add --device=cpu with "
                   "tiny overrides (e.g. --epochs=1 --train_subset=256) only to smoke-test the pipeline")
    return torch.cuda.get_device_name(0)


def check_data(runs: list[dict]) -> list[str]:
    """Load each dataset once on the CPU (seconds; the decoded caches are reused by the runs).
    Returns notes on protocols that are not the paper's; Stop with how to get the data."""
    from scaled.data import load_dataset

    notes, seen = [], set()
    for cfg in (r["cfg"] for r in runs):
        key = (cfg.dataset, cfg.data_dir, cfg.download)
        if key in seen:
            continue
        seen.add(key)
        try:
            d = load_dataset(cfg.dataset, cfg.data_dir, val=False, device="cpu", download=cfg.download)
        except DataError as e:
            msg = re.sub(r"\s*[;(]?\s*(or )?pass (download=True / )?--download( to fetch it)?\)?", "", str(e))
            how = (f"download {URLS[cfg.dataset]}, or add --download=true on a machine with internet"
                   if cfg.dataset in URLS else "see scaled/data.py for the accepted layouts")
            raise Stop(f"{msg}; to get {cfg.dataset}: {how}") from None
        except Exception as e:  # a download without internet: URLError, OSError, ...
            if not cfg.download:
                raise
            raise Stop(f"downloading {cfg.dataset} failed ({type(e).__name__}: {e}); without internet fetch "
                       f"{URLS.get(cfg.dataset, 'it')} by hand and rerun without --download") from None
        split = f"{cfg.val_size:,} held out for val" if cfg.val_size else "all used for training, as the authors did"
        notes.append(f"{cfg.dataset}: {len(d.y_train):,} training images ({split}), "
                     f"{d.protocol.split('; ')[-1]}")
        if "test1k" in d.protocol:
            notes.append("  (the paper's numbers use all 10,000 test images: put cifar-10-batches-py/ in the data "
                         "folder or add --download=true for the official test set)")
        if cfg.dataset == "tinyimagenet" and len(d.y_train) < 100000:
            notes.append("  (a subset: the official Tiny ImageNet has 100,000 training images; download "
                         + URLS["tinyimagenet"] + ")")
    return notes


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + "s" * (k != 1)


def announce(group: str, opts: dict, runs: list[dict], card: str, notes: list[str]) -> None:
    todo = [r for r in runs if r["state"] != "done"]
    timing = Timing(find_runs([opts["runs_dir"]]) if Path(opts["runs_dir"]).is_dir() else [],
                    sorted(REPO.glob("results/*/gpu_bench.json")))
    est = [timing.run_seconds(r["preset"], to_dict(r["cfg"]), card) for r in todo]
    if not todo:
        when = "nothing to train"
    elif all(s is not None for s, _ in est):
        how = " + ".join(sorted({w for _, w in est}))
        when = f"about {hours(sum(s for s, _ in est))} ({how}: see the time section of the report)"
    else:
        when = (f"not known yet ({next(why for s, why in est if s is None)}); after the first epochs "
                "`make report` projects it from metrics.jsonl")
    count = {s: sum(r["state"] == s for r in runs) for s in ("new", "resume", "restart", "done")}
    lines = [f"reproduce {group}: {GROUPS[group][0]}",
             f"  {_n(len(runs), 'run')} ({_n(len({r['preset'] for r in runs}), 'preset')} x {_n(opts['seeds'], 'seed')}) on {card}, one "
             f"after another: {count['new'] + count['restart']} to start, {count['resume']} to resume, "
             f"{count['done']} finished already",
             f"  time: {when}"]
    for p in dict.fromkeys(r["preset"] for r in runs):
        states = ", ".join(f"s{r['seed']} {r['state']}" for r in runs if r["preset"] == p)
        lines.append(f"  {p:24s} {PRESETS[p][1]}: {states}")
    lines += [f"  data: {n}" if not n.startswith(" ") else f"       {n}" for n in notes]
    paper = ", ".join(f"{p} {PAPER[p]}" for p in dict.fromkeys(r["preset"] for r in runs) if p in PAPER)
    lines.append(f"  runs in {Path(opts['runs_dir']) / group}/<preset>-s<seed>; then the tables and figures in "
                 f"{Path(opts['report']) / 'README.md'}" + (f", ours beside the paper's test error %: {paper}" if paper else ""))
    print("\n".join(lines), file=sys.stderr, flush=True)


def train(r: dict, overrides: list[str], i: int, n: int) -> int:
    """One run through `python -m scaled.train` (its progress on this terminal) -> exit status."""
    cmd = [sys.executable, "-m", "scaled.train"]
    if r["state"] == "resume":
        cmd += ["--resume", str(r["path"].resolve())]
    else:  # absolute: scaled.train runs in the repository root, whatever this process's folder
        cmd += [f"--preset={r['preset']}", *r.get("overrides", overrides), f"--seed={r['seed']}",
                f"--out_dir={r['path'].parent.resolve()}", f"--name={r['path'].name}"]
        cmd += ["--overwrite"] if r["state"] == "restart" else []
        cmd += [f"--init_from={r['init_from'].resolve()}"] if r.get("init_from") else []
    print(f"[{i}/{n}] {r['preset']} s{r['seed']} ({r['state']}): {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)  # the summary stays in the folder
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached the run too: it stops with a checkpoint
        return proc.wait()


def report(group: str, opts: dict) -> None:
    out = Path(opts["report"])
    render([opts["runs_dir"]], out, opts["seeds"])
    text = (out / "README.md").read_text()
    start = text.find(f"## {GROUPS[group][0]}")
    section = text[start:text.find("\n## ", start + 1)] if start >= 0 else ""
    print(section.split("\n![")[0].strip() + f"\n\n(all groups, figures and what is missing: {out / 'README.md'})")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print_help(help_text())
        return 0
    try:
        group, opts, overrides = parse(argv)
        runs = plan(group, opts, overrides)
        todo = [r for r in runs if r["state"] != "done"]
        if opts["dry_run"]:
            for r in runs:
                src = f"  (stage 3 from {r['init_from']})" if r.get("init_from") else ""
                print(f"{r['state']:8s} {r['path']}{src}")
            return 0
        card = check_device(todo, group) if todo else "-"
        announce(group, opts, runs, card, check_data(todo) if todo else [])
        for i, r in enumerate(todo, 1):
            tic = time.perf_counter()
            rc = train(r, overrides, i, len(todo))
            if rc in (130, 143):  # stopped by SIGINT / SIGTERM, its checkpoint kept (scaled/interrupt.py)
                print("interrupted: rerun the same command to resume", file=sys.stderr)
                return rc
            if rc != 0:
                report(group, opts)
                raise Stop(f"{r['path']} failed (exit {rc}; its error is above); fix that and rerun the same "
                           "command: finished runs are kept and this one resumes from its last epoch")
            print(f"[{i}/{len(todo)}] done in {hours(time.perf_counter() - tic)}", file=sys.stderr, flush=True)
        report(group, opts)
    except (Stop, ValueError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
