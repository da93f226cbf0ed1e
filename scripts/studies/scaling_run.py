"""One item of the scaling study (scripts/studies/scaling.py starts these, one process per lane):
one arm, one seed, one learning rate, trained to one horizon with the wsd schedule, then evaluated
(scripts/studies/scaling_eval.py) into one record.

    python -m scripts.studies.scaling_run '{"arm": "foca", "seed": 0, "lr": 0.03, "horizon": 10, ...}'

Branching: with wsd the lr before 80 % of the horizon does not depend on the horizon, so a run to
H is the run to any longer horizon up to epoch 0.8 H. An item starts from the latest trunk
checkpoint at or before 0.8 H of its (arm, lr, seed) (the half horizon left one at 0.4 H) and saves
its own at 0.8 H for the next: horizons 5, 10, 20, 40 cost 5 + 6 + 12 + 24 = 47 epochs, not 75.
tests/test_scaling.py holds a branched run equal to an uninterrupted one, bit for bit on the CPU.
Trunks (~1.6 MB: weights, momentum, generators) and records live in the results folder, committed,
so the study continues in the next session; a stopped item resumes from its run folder (runs/).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

ARMS = {  # arm -> (preset, extra options); extras use their method's chosen lr
    "foca": ("cpu-foca", []), "e2e": ("cpu-e2e", []),
    "foca-R1": ("cpu-foca", ["--refresh=1"]),  # Algorithm 1 as printed: a new weak classifier every step
    "foca-w2": ("cpu-foca", ["--model=wrn-16-2"]), "e2e-w2": ("cpu-e2e", ["--model=wrn-16-2"]),  # width x2
    "foca-10k": ("cpu-foca", ["--train_subset=10000"]), "e2e-10k": ("cpu-e2e", ["--train_subset=10000"]),
}
# Every item: a 10,000-image val split (selection + half the evaluation set), wsd decaying over the
# last 20 %, one thread, the engine's own evaluation only at the end (logged, never used), no
# engine report (scaling_eval measures instead), a checkpoint every epoch.
COMMON = ["--val_size=10000", "--schedule=wsd", "--milestones=0.8", "--eval_every=1000",
          "--threads=1", "--checkpoint_every=1"]
# tiny (tests, --tiny): 256 training images, a 1,000-image val split cut to 400 (200 selection, 200 + 400 test
# evaluated), a tiny WRN and weak classifier: the code path in seconds of training
TINY = ["--model=wrn-10-1", "--train_subset=256", "--val_size=1000", "--eval_subset=400", "--n_f=64", "--n_c=20",
        "--weak_steps=8", "--refresh=2", "--eval_batch=500"]


def name(item: dict) -> str:
    return f"{item['arm']}-lr{item['lr']:g}-s{item['seed']}-e{item['horizon']}"


def trunk_path(out: Path, item: dict, epoch: int) -> Path:
    return out / "trunks" / f"{item['arm']}-lr{item['lr']:g}-s{item['seed']}-at{epoch}.pt"


def partial_path(out: Path, item: dict) -> Path:
    """A stopped item's last checkpoint, kept in the results folder so that the next session (a fresh
    checkout without runs/) resumes it instead of starting over from its trunk."""
    return out / "partial" / f"{name(item)}.pt"


def keep_at(horizon: int) -> int:
    return round(0.8 * horizon)


def start_trunk(out: Path, item: dict) -> Path | None:
    """The latest trunk of this (arm, lr, seed) at or before 0.8 H, or None (start afresh)."""
    best = None
    for e in range(keep_at(item["horizon"]), 0, -1):
        if trunk_path(out, item, e).is_file():
            best = trunk_path(out, item, e)
            break
    return best


def config(item: dict):
    from scaled.train import parse

    preset, extra = ARMS[item["arm"]]
    opts = ["--preset", preset, *COMMON, *(TINY if item.get("tiny") else []), *extra, f"--seed={item['seed']}",
            f"--lr={item['lr']}", f"--epochs={item['horizon']}"]
    opts += [f"--data_dir={item['data_dir']}"] if item.get("data_dir") else []
    opts += [f"--dataset={item['dataset']}"] if item.get("dataset") else []  # tests: an arrays file
    return parse(opts)[0]


def train(item: dict, out: Path, runs: Path):
    """Stage 1 to the horizon, branching from a trunk or resuming this item's stopped run."""
    from minifoca.config import to_dict
    from minifoca.runlog import RunDir
    from scaled import foca
    from scaled.engine import CHECKPOINT, Run

    cfg = config(item)
    folder = runs / name(item)
    own = folder / CHECKPOINT
    trunk, partial = start_trunk(out, item), partial_path(out, item)
    start = own if own.is_file() else partial if partial.is_file() else trunk
    keep = keep_at(item["horizon"])

    class TrunkRun(Run):
        def end_epoch(self, stage, epoch, n, classifier, by="own classifier", every=None):
            super().end_epoch(stage, epoch, n, classifier, by, every)
            if stage == 1 and epoch + 1 == keep and item.get("keep_trunk", True):  # the next item's trunk
                dst = trunk_path(out, item, keep)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / CHECKPOINT, dst.with_suffix(".tmp"))
                os.replace(dst.with_suffix(".tmp"), dst)

    run = TrunkRun(cfg, resume_from=start.parent if start == own else None)
    if start is not None and start != own:
        from scaled.engine import load_checkpoint

        run._restore(load_checkpoint(start))
    run.rundir = RunDir(folder, {**to_dict(cfg), "item": item, "from": str(start or "scratch")},
                        resume=start == own, overwrite=start != own)
    run.rundir.rewrite_log(run.records)
    if start is not None:
        run.saved_pos = run.pos
    (foca.train_foca if cfg.method == "foca" else foca.train_e2e)(run)
    return run, cfg, start, trunk


def main(argv=None) -> int:
    from scaled import interrupt

    from minifoca.runlog import git_revision, write_json
    from scripts.studies.scaling_eval import evaluate, tiny_imagenet_32

    item = json.loads((argv if argv is not None else sys.argv[1:])[0])
    out, runs = Path(item["out"]), Path(item["runs"])
    tic = time.perf_counter()
    try:
        with interrupt.handled():
            run, cfg, start, trunk = train(item, out, runs)
            train_s = time.perf_counter() - tic
            transfer = tiny_imagenet_32(item.get("data_dir", ""), item.get("tiny", False))
            res = evaluate(run, cfg.method, item.get("tiny", False), transfer)
    except interrupt.Interrupted as e:
        saved = runs / name(item) / "checkpoint.pt"
        if saved.is_file():  # for the next session: commit partial/ with records/ and trunks/
            dst = partial_path(out, item)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, dst.with_suffix(".tmp"))
            os.replace(dst.with_suffix(".tmp"), dst)
        how = ("a rerun resumes it from its last finished epoch" if saved.is_file() else
               "no epoch had finished, so nothing was kept: a rerun starts it over")  # epoch checkpoints only
        print(f"scaling_run {name(item)}: stopped by signal {e.signum}; {how}", file=sys.stderr)
        return 128 + e.signum
    except (ValueError, RuntimeError) as e:
        print(f"error: {name(item)}: {e}", file=sys.stderr)
        return 2
    s1 = [r for r in run.records if r["stage"] == 1]
    rec = {**{k: v for k, v in item.items() if k not in ("out", "runs", "data_dir")}, "name": name(item),
           "method": cfg.method, "model": cfg.model, "refresh": cfg.refresh, "train_images": len(run.data.y_train),
           "from": trunk.name if trunk else "scratch",
           **({"resumed_from": start.name} if start is not None and start != trunk else {}), **res,
           "stage1": [{k: r[k] for k in ("epoch", "lr", "train_loss", "train_seconds") if k in r} for r in s1],
           "seconds_this_item": round(time.perf_counter() - tic, 1), "train_seconds_this_item": round(train_s, 1),
           "git": git_revision(), "date": time.strftime("%Y-%m-%d %H:%M"), "protocol": run.data.protocol}
    (out / "records").mkdir(parents=True, exist_ok=True)
    write_json(out / "records" / f"{name(item)}.json", rec, indent=1)
    partial_path(out, item).unlink(missing_ok=True)  # finished: the record replaces it
    print(json.dumps({k: rec[k] for k in ("name", "eval_error", "selection_error", "train_error")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
