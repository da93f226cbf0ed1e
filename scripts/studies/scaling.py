"""Does E2E always win? FOCA against E2E on real CIFAR-10 as training grows, on 2 CPU cores,
accumulating across sessions (`make cifar10-cpu-scaling`; issue 28).

    make cifar10-cpu-scaling MINUTES=120          # runs what fits, then stops; a rerun continues
    python -m scripts.studies.scaling --minutes 120 [--jobs 2] [--out results/cpu-scaling] [--data-dir DIR]
    python -m scripts.studies.scaling --tiny --out /tmp/s    # this code in a couple of minutes (tests)
    python -m scripts.studies.scaling_report results/cpu-scaling   # the table and figures again

What runs, in this order (each item: scripts/studies/scaling_run.py, one single-thread process per
lane; the network, head, augmentation and data are the CPU study's: WRN-16-1 + head D):
  1. the lr sweep at the first horizon (5 epochs), seed 100, FOCA and E2E, three rates each, chosen
     on the selection split; a winner at an edge of the grid adds the next rate out (twice at most)
  2. FOCA and E2E at the chosen rates, seeds 0-2, horizon 5, then 10
  3. FOCA with R = 1 (Algorithm 1 as printed) at 5 epochs; then horizons 20 and 40 (an item waiting
     for its trunk lets a lane take the next item that is ready)
  4. the sweep's chosen rates and their neighbours again at 10 (does the choice still win as
     training grows?); then, seed by seed, the width point (WRN-16-2) at 5 and the fits-its-data
     point: the 10k-image subset's own ladder, 40, 80, 160 epochs (its first plan, 20 epochs = the
     steps of 5 on 40k, left E2E at 21 % clean training error; those records stay in the report)
Every item is trained with wsd (constant, then linear to 0 over the last 20 %) and branches from
its (arm, lr, seed)'s trunk (scaling_run.py), so the whole ladder of one seed costs 47 epochs.
A finished item's record (results/cpu-scaling/records/*.json) is never redone; an item starts when
two of its epochs fit before --minutes (all of a WRN-16-2 item's: its checkpoint is too big to
commit); at the deadline running items are stopped with a checkpoint, copied to partial/ (the rerun
resumes it, here or in a fresh checkout, so nothing trained is lost).
Commit records/, trunks/ and partial/.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GRID = {"foca": [0.015, 0.03, 0.06], "e2e": [0.025, 0.05, 0.1]}  # around the CPU study's 0.03 / 0.05
SWEEP_SEED, SEEDS, HORIZONS = 100, (0, 1, 2), (5, 10, 20, 40)
# The 10k-image subset's own ladder (the fits-its-data point). Its first plan, 20 epochs (the steps of 5 on
# 40k), left E2E at 21 % clean training error: it did not fit its data. Those records stay (they ran from
# scratch and kept no trunk), so the ladder starts afresh at 40 and branches from there like the main one.
SUBSET_HORIZONS = (40, 80, 160)
# --tiny: one rate per arm (the sweep's edge logic has its own test), one seed, two horizons, no extras
TINY = {"grid": {"foca": [0.06], "e2e": [0.1]}, "seeds": (0,), "horizons": (5, 10)}


def records(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))}


def chosen(recs: dict, grid: dict, horizon: int) -> tuple[dict, list]:
    """arm -> the lr with the lowest selection error at the sweep horizon (ties: the smaller lr), or
    None while undecided; and the sweep items still to run (the grid, plus one step past a winning edge)."""
    lrs, todo = {}, []
    for arm, rates in grid.items():
        done = {r["lr"]: r["selection_error"] for r in recs.values()
                if r["arm"] == arm and r["seed"] == SWEEP_SEED and r["horizon"] == horizon}
        rates = sorted(set(rates) | set(done))
        missing = [lr for lr in rates if lr not in done]
        if missing:
            todo += [(arm, lr) for lr in missing]
            lrs[arm] = None
            continue
        best = min(sorted(done), key=done.get)
        extended = len(rates) - len(grid[arm])
        if extended < 2 and best in (rates[0], rates[-1]) and len(rates) > 1:
            todo.append((arm, best / 2 if best == rates[0] else best * 2))
            lrs[arm] = None
        else:
            lrs[arm] = best
    return lrs, todo


def sweep_check(recs: dict, lrs: dict, h0: int) -> list[tuple]:
    """(arm, lr) run again at the second horizon: each arm's chosen rate and its neighbours in the
    sweep (does the choice still win one step either way?). Farther rates are not rerun: their
    trunks would cost 1.7 MB each in the repository and in a GPU call, session after session."""
    out = []
    for arm, best in lrs.items():
        done = sorted(r["lr"] for r in recs.values() if r["arm"] == arm and r["seed"] == SWEEP_SEED
                      and r["horizon"] == h0)
        i = done.index(best)
        out += [(arm, lr) for lr in done[max(0, i - 1):i + 2]]
    return out


def prune_sweep_trunks(out: Path, recs: dict, grid: dict, horizons) -> list[Path]:
    """Once both arms are chosen: delete the sweep trunks that no planned item starts from (git
    history keeps them). Returns what it deleted."""
    from scripts.studies.scaling_run import keep_at, trunk_path

    lrs, _ = chosen(recs, grid, horizons[0])
    if not all(lrs.values()) or len(horizons) < 2:
        return []
    keep = set(sweep_check(recs, lrs, horizons[0]))  # the chosen rates are in it
    gone = []
    for r in recs.values():
        if r["seed"] == SWEEP_SEED and r["horizon"] == horizons[0] and (r["arm"], r["lr"]) not in keep:
            t = trunk_path(out, r, keep_at(horizons[0]))
            if t.is_file():
                t.unlink()
                gone.append(t)
    return gone


def prune_used_trunks(out: Path, recs: dict) -> list[Path]:
    """Delete the trunk each finished item branched from (its H/2 predecessor's, at 0.4 H): horizons
    double, so no other item starts there. The one place trunks are retired, by record, so that an item
    resumed from partial/ (which never saw its branch point) retires it too: each left behind costs
    1.7 MB in every later commit and GPU call. The item's own trunk at 0.8 H stays. Returns the deleted."""
    from scripts.studies.scaling_run import keep_at, trunk_path

    gone = []
    for r in recs.values():
        if r["horizon"] > first_horizon(r):
            t = trunk_path(out, r, keep_at(r["horizon"] // 2))
            if t.is_file():
                t.unlink()
                gone.append(t)
    return gone


def prune(out: Path, recs: dict, grid: dict, horizons) -> None:
    """Both clean-ups, each deletion said once on stderr."""
    for t in prune_sweep_trunks(out, recs, grid, horizons) + prune_used_trunks(out, recs):
        print(f"  deleted {t.name}: no planned item starts from it", file=sys.stderr, flush=True)


def plan(recs: dict, grid: dict, seeds, horizons, extras: bool = True) -> list[dict]:
    """Every item still to run, in order of value; items needing an undecided lr are left out."""
    h0 = horizons[0]
    lrs, sweep = chosen(recs, grid, h0)
    items = [{"arm": a, "seed": SWEEP_SEED, "lr": lr, "horizon": h0} for a, lr in sweep]

    def main(arms, horizon, seeds=seeds):  # each arm at its method's chosen lr, once chosen
        for seed in seeds:
            for arm in arms:
                lr = lrs.get(arm.split("-")[0])
                if lr is not None:
                    items.append({"arm": arm, "seed": seed, "lr": lr, "horizon": horizon})

    for h in horizons[:2]:
        main(("foca", "e2e"), h)
    if extras:
        main(("foca-R1",), h0)
    for h in horizons[2:]:  # the must: 3 seeds over an 8x span, before the if-time-allows points
        main(("foca", "e2e"), h)
    if extras and len(horizons) > 1 and all(lrs.values()):  # does the 5-epoch choice still win at 10?
        items += [{"arm": arm, "seed": SWEEP_SEED, "lr": lr, "horizon": horizons[1]}
                  for arm, lr in sweep_check(recs, lrs, h0)]
    if extras:  # the if-the-budget-allows points, last, seed by seed: the width point, then the
        for seed in seeds:  # subset's ladder (an item waiting for its trunk lets a lane take the next seed's)
            for arms, h in ((("foca-w2", "e2e-w2"), h0), *((("foca-10k", "e2e-10k"), h) for h in SUBSET_HORIZONS)):
                main(arms, h, (seed,))
    from scripts.studies.scaling_run import name

    return [i for i in items if name(i) not in recs]


def first_horizon(item: dict) -> int:
    """The horizon trained from scratch: the bottom of the item's ladder."""
    return SUBSET_HORIZONS[0] if item["arm"].endswith("10k") else 5


def epochs_to_train(item: dict) -> int:
    """The item's own epochs: from the half horizon's trunk at 0.4 H, or all of them."""
    from scripts.studies.scaling_run import keep_at

    h = item["horizon"]
    return h - (keep_at(h // 2) if h > first_horizon(item) else 0)


def must_fit(item: dict) -> int:
    """Epochs that must fit before the deadline for the item to start. Two for WRN-16-1 (a stopped item
    leaves a 1.7 MB checkpoint in partial/ to commit); all of them for WRN-16-2, whose 5.9 MB checkpoint
    is over the repository's 2 MB limit: it is not committed, so a stopped w2 item would lose its epochs."""
    return epochs_to_train(item) if "w2" in item["arm"] else min(2, epochs_to_train(item))


def needs_trunk(item: dict, horizons) -> bool:
    """Does a later item branch from this one? Only the main arms and the subset's below their ladder's top
    and the sweep at the first horizon: every trunk kept costs 1.7 MB in the repository (and in a GPU call)."""
    if item["seed"] == SWEEP_SEED:
        return item["horizon"] == horizons[0]
    if item["arm"].endswith("10k"):  # not the first plan's 20: nothing on the ladder starts at its 16
        return item["horizon"] in SUBSET_HORIZONS[:-1]
    return item["arm"] in ("foca", "e2e") and item["horizon"] < horizons[-1]


def ready(item: dict, out: Path, running: list) -> bool:
    """An item can start when the trunk it branches from is there (or it needs none)."""
    from scripts.studies.scaling_run import keep_at, name, trunk_path

    if any(name(r) == name(item) for r in running):
        return False
    h = item["horizon"]
    return h == first_horizon(item) or trunk_path(out, item, keep_at(h // 2)).is_file()


def seconds_per_epoch(recs: dict, item: dict) -> float:
    """Wall seconds per trained epoch of this arm's finished items (the median epoch, so that a paused
    or disturbed epoch does not count, plus the evaluation spread over the epochs), else a guess."""
    import statistics

    same = [r for r in recs.values() if r["arm"] == item["arm"] and r.get("stage1")]
    if not same:
        return 130.0 * (3 if "w2" in item["arm"] else 1) * (0.25 if "10k" in item["arm"] else 1)
    epoch = statistics.median(e["train_seconds"] for r in same for e in r["stage1"] if "train_seconds" in e)
    evals = statistics.median(r["seconds_this_item"] - r["train_seconds_this_item"] for r in same)
    return epoch + evals / max(epochs_to_train(same[-1]), 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="FOCA vs E2E as training grows, on the CPU (issue 28)")
    p.add_argument("--minutes", type=float, default=120, help="stop starting items that would end later")
    p.add_argument("--jobs", type=int, default=2, help="items at once, one thread each")
    p.add_argument("--out", default=str(REPO / "results" / "cpu-scaling"), help="records, trunks, report")
    p.add_argument("--runs-dir", dest="runs_dir", default="", help="run folders (default runs/cpu-scaling)")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir", default="", help="data folder ($FOCA_DATA)")
    p.add_argument("--dataset", default="", help="an arrays .npz instead of CIFAR-10 (tests)")
    p.add_argument("--tiny", action="store_true", help="this code in a couple of minutes: tiny WRN, 256 images")
    args = p.parse_args(argv)
    out = Path(args.out)
    runs = Path(args.runs_dir or (out / "runs" if args.tiny else REPO / "runs" / "cpu-scaling"))
    out.mkdir(parents=True, exist_ok=True)
    grid, seeds, horizons = (TINY["grid"], TINY["seeds"], TINY["horizons"]) if args.tiny else (GRID, SEEDS, HORIZONS)
    lock = out / ".lock"  # two drivers on one folder would train the same item into the same run folder
    if lock.is_file() and Path(f"/proc/{lock.read_text().strip()}").exists():
        print(f"error: another scaling driver (pid {lock.read_text().strip()}) is using {out}; stop it first",
              file=sys.stderr)
        return 2
    lock.write_text(str(os.getpid()))
    deadline = time.time() + 60 * args.minutes
    print(f"scaling: {out}: {len(records(out))} items already done; {args.jobs} lanes until "
          f"{time.strftime('%H:%M', time.localtime(deadline))}", file=sys.stderr, flush=True)
    running: list = []  # (item, process, start time)
    late: set = set()  # items said not to fit, said once
    stop = []
    pruned_at = -1  # records seen when the sweep trunks were last pruned
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            recs = records(out)
            if len(recs) != pruned_at:  # the choice changes only when a record appears
                pruned_at = len(recs)
                prune(out, recs, grid, horizons)
            todo = [i for i in plan(recs, grid, seeds, horizons, not args.tiny) if ready(i, out, [r[0] for r in running])]
            while todo and len(running) < args.jobs:
                item = todo.pop(0)
                need = seconds_per_epoch(recs, item) * must_fit(item) * (0.2 if args.tiny else 1)
                if time.time() + need > deadline:  # a later, shorter item may still fit
                    if str(item) not in late:
                        late.add(str(item))
                        print(f"  not started: {must_fit(item)} epochs need ~{need:.0f} s, {deadline - time.time():.0f} s left: {item}",
                              file=sys.stderr)
                    continue
                spec = {**item, "out": str(out), "runs": str(runs), "tiny": args.tiny, "data_dir": args.data_dir,
                        "dataset": args.dataset, "keep_trunk": needs_trunk(item, horizons)}
                from scripts.studies.scaling_run import name

                log = runs / f"{name(item)}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                proc = subprocess.Popen([sys.executable, "-m", "scripts.studies.scaling_run", json.dumps(spec)],
                                        cwd=REPO, stdout=open(log.with_suffix(".out"), "w"), stderr=open(log, "w"))
                running.append((item, proc, time.time()))
                print(f"  started {name(item)}", file=sys.stderr, flush=True)
            if not running:
                break
            time.sleep(1 if args.tiny else 5)
            for entry in list(running):
                item, proc, tic = entry
                if proc.poll() is None and time.time() < deadline:
                    continue
                if proc.poll() is None:
                    proc.terminate()  # scaling_run keeps a checkpoint: a rerun resumes it
                    proc.wait()
                running.remove(entry)
                from scripts.studies.scaling_run import name

                print(f"  {name(item)}: exit {proc.returncode} after {time.time() - tic:.0f} s", file=sys.stderr,
                      flush=True)
                report(out)
    finally:
        for _, proc, _ in running:
            proc.terminate()
            proc.wait()
    lock.unlink(missing_ok=True)
    prune(out, records(out), grid, horizons)  # a record written in the last loop (or before a signal)
    report(out)
    left = plan(records(out), grid, seeds, horizons, not args.tiny)
    print(f"scaling: {len(records(out))} items done, {len(left)} left; commit {out}/records, trunks and partial",
          file=sys.stderr)
    return 0


def report(out: Path) -> None:
    """Re-render the table and figures; a failure there never stops the runs."""
    try:
        from scripts.studies.scaling_report import render

        render(out)
    except Exception as e:  # noqa: BLE001
        print(f"  (report not rendered: {type(e).__name__}: {e})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
