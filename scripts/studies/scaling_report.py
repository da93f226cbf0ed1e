"""The scaling study's table and figures from its records (scripts/studies/scaling.py writes them).

    python -m scripts.studies.scaling_report results/cpu-scaling    # table.md, scaling.json, figures

Errors are on the 6,000-image evaluation set (scaling_eval.py), final epoch, nothing chosen on it.
FOCA and E2E are paired by seed and by image (scripts/studies/stats.py paired_gap: se from seeds
and images as crossed random effects, so the test-set term does not shrink with seeds); every +-
says sd (over seeds) or se (of a mean or a difference). The slope of the gap against log2(epochs)
has a two-way bootstrap CI (seeds and images resampled, the same draw at every horizon); a
crossover is estimated only when that CI excludes 0.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from scripts.studies import stats
from scripts.studies.scaling_eval import unpack

SWEEP_SEED = 100
SUBSET = ("foca-10k", "e2e-10k")  # the fits-its-data point's arms: a ladder of its own (scaling.SUBSET_HORIZONS)


def load(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(out) / "records").glob("*.json"))]


def errors(r: dict, key: str = "eval_correct", m: int | None = None) -> np.ndarray:
    """(M,) 0/1 errors of one record."""
    if key == "transfer":
        return 1 - unpack(r["transfer"]["correct"], r["transfer"]["images"]).astype(int)
    return 1 - unpack(r[key], m or r["eval_images"]).astype(int)


def chosen_lr(recs: list[dict], arm: str) -> float | None:
    """The lr the main seeds of this arm ran with (the sweep's choice)."""
    lrs = {r["lr"] for r in recs if r["arm"] == arm and r["seed"] != SWEEP_SEED}
    return min(lrs) if len(lrs) == 1 else None


def pairs(recs: list[dict], a: str, b: str, horizon: int) -> tuple[list, list]:
    """Records of arms a and b (main seeds, the chosen rates) at a horizon, matched by seed."""
    la, lb = chosen_lr(recs, a.split("-")[0]), chosen_lr(recs, b.split("-")[0])
    A = {r["seed"]: r for r in recs if r["arm"] == a and r["horizon"] == horizon and r["lr"] == la}
    B = {r["seed"]: r for r in recs if r["arm"] == b and r["horizon"] == horizon and r["lr"] == lb}
    seeds = sorted(set(A) & set(B) - {SWEEP_SEED})
    return [A[s] for s in seeds], [B[s] for s in seeds]


def arm_errors(recs: list[dict], horizon: int, seeds, arms=("foca", "e2e")) -> tuple[np.ndarray, np.ndarray]:
    """(S, M) 0/1 errors of FOCA and of E2E (or the given pair of arms) at a horizon, rows = the given seeds in order."""
    fa, e2 = pairs(recs, *arms, horizon)
    return (np.stack([errors(x) for x in fa if x["seed"] in seeds]),
            np.stack([errors(x) for x in e2 if x["seed"] in seeds]))


def gap(ra: list, rb: list, key: str = "eval_correct") -> dict | None:
    if not ra:
        return None
    return stats.paired_gap(np.stack([errors(r, key) for r in ra]), np.stack([errors(r, key) for r in rb]))


def mean_sd(v) -> str:
    v = 100 * np.asarray(v, float)
    return f"{v.mean():.2f} +- {v.std(ddof=1):.2f} sd" if len(v) > 1 else f"{v.mean():.2f} (1 seed)"


def pm(g: dict | None) -> str:
    return "-" if g is None else f"{100 * g['gap']:+.2f} +- {100 * g['se']:.2f} se"


def summarise(recs: list[dict]) -> dict:
    horizons = sorted({r["horizon"] for r in recs if r["arm"] in ("foca", "e2e") and r["seed"] != SWEEP_SEED})
    rows = []
    for h in horizons:
        fa, e2 = pairs(recs, "foca", "e2e", h)
        if not fa:
            continue
        row = {"epochs": h, "seeds": [r["seed"] for r in fa],
               "foca_error": [r["eval_error"] for r in fa], "e2e_error": [r["eval_error"] for r in e2],
               "foca_train_error": [r["train_error"] for r in fa], "e2e_train_error": [r["train_error"] for r in e2],
               "e2e_probe_error": [1 - unpack(r["probe_eval_correct"], r["eval_images"]).mean() for r in e2],
               "gap": gap(fa, e2), "gap_probe_vs_probe": gap(fa, e2, "probe_eval_correct")}
        if all(isinstance(r.get("transfer"), dict) for r in fa + e2):
            row["transfer_foca"] = [r["transfer"]["error"] for r in fa]
            row["transfer_e2e"] = [r["transfer"]["error"] for r in e2]
            row["transfer_gap"] = gap(fa, e2, "transfer")
        rows.append(row)
    res = {"rows": rows, "slope": None, "crossover": None}
    # the slope over the horizons with 2+ seeds, on their common seeds: a longer horizon with one seed so
    # far (the study accumulates) waits instead of cutting every horizon down to that seed
    multi = [r for r in rows if len(r["seeds"]) >= 2]
    common = set.intersection(*[set(r["seeds"]) for r in multi]) if multi else set()
    use = multi if len(common) >= 2 else []
    if len(use) >= 2:
        ea, eb = zip(*(arm_errors(recs, r["epochs"], common) for r in use))
        fit = stats.slope_bootstrap([np.log2(r["epochs"]) for r in use], ea, eb, rng=np.random.default_rng(0))
        res["slope"] = {**fit, "epochs": [r["epochs"] for r in use], "seeds": sorted(common)}
        res["crossover"] = stats.crossover(fit)
    res["steps"] = steps(recs, rows)
    res["extras"] = extras(recs)
    res["subset_steps"] = steps(recs, [e for e in res["extras"] if e["arm"] == SUBSET[0]], SUBSET)
    res["sweep"] = sorted(({"arm": r["arm"], "lr": r["lr"], "epochs": r["horizon"], "selection_error": r["selection_error"]}
                           for r in recs if r["seed"] == SWEEP_SEED), key=lambda d: (d["arm"], d["epochs"], d["lr"]))
    res["chosen_lr"] = {a: chosen_lr(recs, a) for a in ("foca", "e2e")}
    res["sweep_check"] = sweep_check(res["sweep"], res["chosen_lr"])
    return res


def sweep_check(sweep: list[dict], lrs: dict) -> list[dict]:
    """Does the rate chosen at the first horizon still have the lowest selection error at a later one?
    One row per (arm, later horizon) once the chosen rate and its neighbours in the first horizon's
    sweep (what scaling.sweep_check reruns) have all finished there; a tie counts as still lowest.
    One seed (100) on 5,000 selection images: the errors are printed beside the verdict to be weighed."""
    out = []
    first = min((s["epochs"] for s in sweep), default=None)
    for arm, lr in lrs.items():
        rates = sorted(s["lr"] for s in sweep if s["arm"] == arm and s["epochs"] == first)
        if lr not in rates:
            continue
        i = rates.index(lr)
        planned = rates[max(0, i - 1):i + 2]
        for h in sorted({s["epochs"] for s in sweep if s["arm"] == arm and s["epochs"] != first}):
            errs = {s["lr"]: s["selection_error"] for s in sweep if s["arm"] == arm and s["epochs"] == h}
            if not set(planned) <= set(errs):
                continue
            best = min(planned, key=lambda r: (errs[r], r != lr))  # a tie goes to the chosen rate
            out.append({"arm": arm, "epochs": h, "chosen": lr, "best": best, "holds": best == lr,
                        "errors": {f"{r:g}": errs[r] for r in planned}})
    return out


def steps(recs: list[dict], rows: list[dict], arms=("foca", "e2e")) -> list[dict]:
    """How the gap moved from each horizon to the next: gap(H2) - gap(H1) on the seeds both have, paired
    by seed and image (stats.paired_gap on the two (S, M) FOCA - E2E differences; one seed's runs at both
    horizons share a trunk and every run the images, so pairing removes both). A straight line in
    log2(epochs) says every doubling moves the gap alike; these say whether the last one still did."""
    out = []
    for r1, r2 in zip(rows, rows[1:]):
        seeds = sorted(set(r1["seeds"]) & set(r2["seeds"]))
        if not seeds:
            continue
        d = [np.subtract(*arm_errors(recs, h, seeds, arms)) for h in (r1["epochs"], r2["epochs"])]  # (S, M) in {-1, 0, 1}
        out.append({"from": r1["epochs"], "to": r2["epochs"], "seeds": seeds, "change": stats.paired_gap(d[1], d[0])})
    return out


def extras(recs: list[dict]) -> list[dict]:
    """R = 1, width and subset points, each paired with its own comparison."""
    subset = sorted({r["horizon"] for r in recs if r["arm"] == SUBSET[0]})  # its ladder, whatever finished
    out = []
    for a, b, h, what in (("foca-R1", "foca", 5, "FOCA R = 1 against R = 32"),
                          ("foca-w2", "e2e-w2", 5, "WRN-16-2: FOCA against E2E"),
                          *((*SUBSET, h, "10k-image subset: FOCA against E2E") for h in subset)):
        ra, rb = pairs(recs, a, b, h)
        if ra:
            out.append({"what": what, "arm": a, "epochs": h, "seeds": [r["seed"] for r in ra], "a": [r["eval_error"] for r in ra],
                        "b": [r["eval_error"] for r in rb], "train_a": [r["train_error"] for r in ra],
                        "train_b": [r["train_error"] for r in rb], "gap": gap(ra, rb)})
    return out


def markdown(res: dict, recs: list[dict]) -> str:
    some = next((r for r in recs if r["arm"] in ("foca", "e2e") and r["seed"] != SWEEP_SEED), recs[0] if recs else {})
    lines = ["# FOCA against E2E as training grows (real CIFAR-10, 2 CPU cores)", "",
             f"{some.get('model', '?')} + head D; train {some.get('train_images', 0):,} images, evaluation "
             f"{some.get('eval_images', 0):,} (the last 5,000 training images + test1k; selection: the 5,000 before "
             f"them); wsd schedule; learning rates chosen on selection: {res['chosen_lr']}. "
             f"Errors in %, final epoch; mean +- sd over seeds; gaps FOCA - E2E paired by seed and image, +- se (of the images only where one seed). "
             f"{len(recs)} records; {some.get('protocol', '')}.", "",
             "| epochs | seeds | FOCA error | E2E error | gap (FOCA - E2E) | gap, both linear probes | "
             "FOCA clean train error | E2E clean train error | Tiny ImageNet probe: FOCA | E2E | gap |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        t = (f"{mean_sd(r['transfer_foca'])} | {mean_sd(r['transfer_e2e'])} | {pm(r['transfer_gap'])}"
             if "transfer_gap" in r else "- | - | -")
        lines.append(f"| {r['epochs']} | {len(r['seeds'])} | {mean_sd(r['foca_error'])} | {mean_sd(r['e2e_error'])} | "
                     f"{pm(r['gap'])} | {pm(r['gap_probe_vs_probe'])} | {mean_sd(r['foca_train_error'])} | "
                     f"{mean_sd(r['e2e_train_error'])} | {t} |")
    lines.append("")
    if res["slope"]:
        s = res["slope"]
        lines.append(f"Slope of the gap against log2(epochs) over {s['epochs']} (seeds {s['seeds']}): "
                     f"{100 * s['slope']:+.2f} points per doubling, 95% CI [{100 * s['ci'][0]:+.2f}, "
                     f"{100 * s['ci'][1]:+.2f}] (two-way bootstrap, {s['n_boot']} draws). {res['crossover']['said'][:1].upper() + res['crossover']['said'][1:]}.")
    else:
        lines.append("Slope of the gap: not estimable yet (needs two horizons with the same 2+ seeds).")
    if res["slope"] and len(res["slope"]["epochs"]) < len(res["rows"]):
        lines.append(f"(Horizons with one seed so far are not in the slope: "
                     f"{[r['epochs'] for r in res['rows'] if r['epochs'] not in res['slope']['epochs']]}.)")
    if res["steps"]:
        lines.append("Change of the gap from one horizon to the next (paired by seed and image, the seeds both have): "
                     + said_steps(res["steps"]))
        last, cross = res["steps"][-1], (res["crossover"] or {}).get("epochs")
        if cross and cross > last["to"] and not last["change"]["gap"] < -2 * last["change"]["se"]:
            lines.append(f"The last doubling ({last['from']} -> {last['to']}) did not close the gap beyond 2 se: the "
                         f"line's zero near {cross:.0f} epochs assumes a steady decline the last step does not show.")
    for e in res["extras"]:  # the subset is there to fit its data: say how well each arm fits it
        fit = (f"; clean training error {mean_sd(e['train_a'])} vs {mean_sd(e['train_b'])}"
               if e.get("arm") == SUBSET[0] else "")
        lines.append(f"- {e['what']} at {e['epochs']} epochs: {mean_sd(e['a'])} vs {mean_sd(e['b'])}, "
                     f"gap {pm(e['gap'])}{fit}")
    if res.get("subset_steps"):
        lines.append("- 10k-image subset, change of the gap from one horizon to the next (paired likewise): "
                     + said_steps(res["subset_steps"]))
    for c in res["sweep_check"]:
        lines.append(f"- Sweep check at {c['epochs']} epochs ({c['arm']}, selection): the rate chosen at the first "
                     f"horizon, {c['chosen']:g}, {'still has' if c['holds'] else 'no longer has'} the lowest error "
                     f"of its sweep neighbours (" + ", ".join(f"{k}: {100 * v:.2f}" for k, v in c["errors"].items())
                     + " %; one seed)")
    lines += ["", "Learning-rate sweep (seed 100, selection split):", "", "| arm | epochs | lr | selection error |",
              "|---|---|---|---|"]
    lines += [f"| {s['arm']} | {s['epochs']} | {s['lr']:g} | {100 * s['selection_error']:.2f} |" for s in res["sweep"]]
    return "\n".join(lines)


def said_steps(steps: list[dict]) -> str:
    return "; ".join(f"{t['from']} -> {t['to']}: {pm(t['change'])} (seed{'s' * (len(t['seeds']) > 1)} "
                     f"{', '.join(map(str, t['seeds']))})" for t in steps) + "."


def figures(res: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in res["rows"] if r["gap"]]
    if not rows:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    x = [r["epochs"] for r in rows]
    g, se = [100 * r["gap"]["gap"] for r in rows], [200 * r["gap"]["se"] for r in rows]
    axes[0].errorbar(x, g, yerr=se, marker="o", capsize=3, label="FOCA - E2E (+- 2 se)")
    if res["slope"]:
        s = res["slope"]
        xs = np.linspace(min(s["epochs"]), max(s["epochs"]), 50)
        axes[0].plot(xs, 100 * (s["intercept"] + s["slope"] * np.log2(xs)), "k:", label="fit in log2(epochs)")
    axes[0].axhline(0, color="grey", lw=0.8)
    axes[0].set(xscale="log", xlabel="epochs (log scale)", ylabel="error gap, points", title="gap vs training length")
    axes[0].set_xticks(x, [str(v) for v in x])
    axes[0].minorticks_off()  # log-scale minor labels (6 x 10^0 ...) crowd the few horizons
    for xi, yi, r in zip(x, g, rows):
        axes[0].annotate(f"{len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)}", (xi, yi), fontsize=7,
                         textcoords="offset points", xytext=(4, 4))
    axes[0].legend(fontsize=7)
    tr = [100 * np.mean(r["e2e_train_error"]) for r in rows]
    axes[1].errorbar(tr, g, yerr=se, marker="o", capsize=3, label="40k images (+- 2 se)")
    for xi, yi, e in zip(tr, g, x):
        axes[1].annotate(f"{e} ep", (xi, yi), fontsize=7)
    sub = [e for e in res["extras"] if e.get("arm") == SUBSET[0]]
    if sub:  # the fits-its-data ladder: does the gap turn as E2E's training error goes to 0?
        ts = [100 * np.mean(e["train_b"]) for e in sub]
        axes[1].errorbar(ts, [100 * e["gap"]["gap"] for e in sub], yerr=[200 * e["gap"]["se"] for e in sub],
                         marker="s", capsize=3, ls="none", label="10k-image subset (+- 2 se)")  # unjoined: seed
        # sets differ between its horizons while it grows (the paired steps in the table say how it moved)
        for k, (xi, e) in enumerate(zip(ts, sub)):  # labels above and below in turn: neighbours may share a height
            n = len(e["a"])  # the ladder grows seed by seed: one seed's point has the image se only
            axes[1].annotate(f"{e['epochs']} ep, {n} seed{'s' * (n > 1)}", (xi, 100 * e["gap"]["gap"]), fontsize=7,
                             textcoords="offset points", xytext=(3, 4 if k % 2 else -10))
        tr += ts
        axes[1].legend(fontsize=7)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set(xlabel="E2E clean training error, %", ylabel="error gap, points", title="gap vs fit to the data")
    axes[1].set_xlim(max(tr) + 2, -1)  # inverted, down to 0: a fitted training set is the right edge
    fig.tight_layout()
    fig.savefig(out / "gap.png", dpi=120)
    plt.close(fig)
    return ["gap.png"]


def render(out) -> dict:
    out = Path(out)
    recs = load(out)
    res = summarise(recs)
    res["figures"] = figures(res, out)
    (out / "table.md").write_text(markdown(res, recs) + "\n")
    (out / "scaling.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    return res


def main(argv=None) -> int:
    folder = Path((argv if argv is not None else sys.argv[1:] or ["results/cpu-scaling"])[0])
    if not (folder / "records").is_dir():
        print(f"error: no records/ in {folder}: pass the folder make cifar10-cpu-scaling writes", file=sys.stderr)
        return 2
    render(folder)
    print((folder / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
