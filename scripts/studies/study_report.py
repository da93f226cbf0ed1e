"""The CPU study's verdicts, figures and table (make cifar10-cpu = scripts/studies/budget.py --cpu).

    python -m scripts.studies.study_report results/cpu-<date>    # redo table.md and the figures from study.json

Each of the paper's claims is judged on the study's own runs, final epochs only (nothing is selected
on test), with scripts/studies/stats.py. Every seed is scored on the same test images, so the test-set
part of a standard error does not shrink with seeds:

- error gaps (Table 2, Table 1, few labels, fine-tuning) are paired (stats.paired_gap: seed s against
  seed s, image i against image i, se from seeds and images both random) when the runs carry per-image
  correctness ("correct_test", "finetune_correct_test": stats.pack_correct), else unpaired from the
  per-seed errors (stats.unpaired_diff: binomial image terms not divided by the seeds; conservative).
  "holds" when the claim's direction is beyond 2 se, "reversed" when the opposite is, else "inconclusive";
  the numbers say it in words ("FOCA trails E2E by 7.3 +- 2.1 (se) points at 5 epochs").
- Fig. 1's claim is a null (fine-tuning does not lower the error): "reversed" when the error drops
  beyond 2 se, "holds" when the mean does not drop, "inconclusive" for a drop within the noise.
- few labels are also read relative to each arm's own full-data test error: (few-label error - test
  error) of FOCA minus that of E2E, se = sqrt(se_few^2 + se_full^2) (conservative: the two gaps share
  seeds and images, which correlates them positively).
- point-like features (trace_ratio, fisher_eigenvalue) compare seed by seed with a one-sided sign test:
  "holds" only when p < 0.05 (5 seeds all one way), so 2 seeds that agree are "inconclusive (p = 0.25)".

Every +- is labelled: sd = sample std over seeds, se = standard error of a mean or a gap.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from scripts.studies.stats import describe_gap, paired_gap, sign_test, unpack_correct, unpaired_diff, verdict

NAMES = {"foca": "FOCA (head D)", "e2e": "E2E (head D)", "foca-C": "FOCA (head C)"}


def values(runs: list[dict], key: str, sub: str | None = None) -> list[float]:
    """Per-seed values of key (or key[sub]) from the runs that have it."""
    out = []
    for r in runs:
        v = r.get(key)
        v = v.get(sub) if isinstance(v, dict) and sub is not None else v
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            out.append(float(v))
    return out


def mean_sd(v: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value)."""
    a = np.asarray(v, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def gap(runs_a: list[dict], runs_b: list[dict], key_a: str, key_b: str, m: int,
        correct_a: str | None = None, correct_b: str | None = None, sub: str | None = None) -> dict:
    """Error gap a - b (fractions): paired_gap over the seeds both sides ran when every run on both sides
    carries packed per-image correctness (correct_a / correct_b keys), else unpaired_diff of the per-seed
    errors. -> stats' dict plus "method" ("paired" / "unpaired"); {"gap": nan, ...} when a side is empty."""
    a, b = values(runs_a, key_a, sub), values(runs_b, key_b, sub)
    if not a or not b:
        return {"gap": math.nan, "se": math.nan, "method": "not measured"}
    ca = {r.get("seed"): r[correct_a] for r in runs_a if correct_a and r.get(correct_a)}
    cb = {r.get("seed"): r[correct_b] for r in runs_b if correct_b and r.get(correct_b)}
    if ca and len(ca) == len(a) and set(ca) == set(cb) and len(cb) == len(b):
        seeds = sorted(ca)
        err_a = np.stack([~unpack_correct(ca[s], m) for s in seeds])  # (S, M)
        err_b = np.stack([~unpack_correct(cb[s], m) for s in seeds])  # (S, M)
        return {**paired_gap(err_a, err_b), "method": "paired"}
    return {**unpaired_diff(a, b, m), "method": "unpaired"}


def pm(v: list[float], unit: str = "sd") -> str:
    """mean +- sample std over seeds, in %, labelled (one seed has no sd: said so)."""
    if not v:
        return "-"
    m, s = mean_sd(v)
    return f"{100 * m:.2f} (1 seed)" if len(v) == 1 else f"{100 * m:.2f} +- {100 * s:.2f} ({unit})"


def pct(v: list[float]) -> str:
    """A table cell: mean +- sample std in % (the column header says sd)."""
    if not v:
        return "-"
    m, s = mean_sd(v)
    return f"{100 * m:.2f} +- {100 * s:.2f}"


def seeds_said(g: dict) -> str:
    """How a gap was formed, for the numbers column (a side with one seed gives its se no seed term)."""
    one = ", no seed term (1 seed)" if 1 in (g.get("seeds"), g.get("seeds_a"), g.get("seeds_b")) else ""
    if g["method"] == "paired":
        return f"paired on {g['seeds']} seeds x {g['images']} images{one}"
    return f"unpaired, {g['seeds_a']}/{g['seeds_b']} seeds on {g['images']} images{one}"


def claims(res: dict) -> list[dict]:
    """The paper's claims at this scale: claim, verdict, the numbers behind it (and gap / se / method)."""
    runs, m, where = res["runs"], res["data"]["test"], f"at {res.get('epochs', '?')} epochs"
    foca, e2e, head_c = runs.get("foca", []), runs.get("e2e", []), runs.get("foca-C", [])
    out = []

    def diff(claim, ra, rb, an, bn, key="test_error", sub=None, corr="correct_test"):
        g = gap(ra, rb, key, key, m, corr, corr, sub)
        said = describe_gap(an, bn, g["gap"], g["se"], where) if g["method"] != "not measured" else "-"
        out.append({"claim": claim, "verdict": verdict(g["gap"], g["se"]), "gap": g["gap"], "se": g["se"],
                    "method": g["method"],
                    "numbers": f"{said}; {an} {pm(values(ra, key, sub))} vs {bn} {pm(values(rb, key, sub))} % "
                               f"({seeds_said(g)})" if said != "-" else "-"})
        return g

    full = diff("Table 2: FOCA's test error is lower than E2E's", foca, e2e, "FOCA", "E2E")
    ft = [r for r in foca if r.get("finetune_test_error") is not None]
    g = gap(ft, ft, "finetune_test_error", "test_error", m, "finetune_correct_test", "correct_test")
    # A null claim: reversed when the error drops beyond 2 se, holds when the mean does not drop at all,
    # and a drop within the noise is inconclusive.
    d, se = g["gap"], g["se"]
    v = "not measured" if math.isnan(d) else "reversed" if d < -2 * se else "holds" if d >= 0 else "inconclusive"
    out.append({"claim": "Fig. 1: E2E fine-tuning after FOCA does not lower the test error", "verdict": v,
                "gap": d, "se": se, "method": g["method"],
                "numbers": "-" if math.isnan(d) else
                f"{res.get('finetune_epochs', 0)} fine-tuning epochs changed FOCA's test error by {100 * d:+.1f} +- "
                f"{100 * se:.1f} (se) points{', within 2 se' if abs(d) <= 2 * se else ''}: "
                f"{pm(values(ft, 'test_error'))} -> {pm(values(ft, 'finetune_test_error'))} % ({seeds_said(g)})"})
    diff("Table 1: head D (GAP -> 2-LP) beats head C (GAP features)", foca, head_c, "head D", "head C")
    for key in ("trace_ratio", "fisher_eigenvalue"):
        pairs = [(x, y) for x, y in zip(values(foca, key), values(e2e, key))]
        wins, n = sum(x > y for x, y in pairs), len(pairs)
        p, p_opp = (sign_test(wins, n), sign_test(n - wins, n)) if n else (1.0, 1.0)
        v = "not measured" if not n else "holds" if p < 0.05 else "reversed" if p_opp < 0.05 else \
            f"inconclusive (sign test p = {min(p, p_opp):.2g})"
        out.append({"claim": f"point-like features: FOCA's {key} on test features is larger than E2E's",
                    "verdict": v, "wins": wins, "seeds": n, "p": p,
                    "numbers": "-" if not n else
                    f"larger in {wins} of {n} seeds (one-sided sign test p = {p:.2g} for larger, {p_opp:.2g} for "
                    f"smaller); FOCA "
                               f"{' '.join(f'{x:.3g}' for x, _ in pairs)} vs E2E "
                               f"{' '.join(f'{y:.3g}' for _, y in pairs)}"})
    for k in ("1", "5", "10"):
        few = diff(f"few labels: with {k} labelled image(s) per class, FOCA's features give a lower error",
                   foca, e2e, "FOCA", "E2E", "few_label_errors", k, corr=None)
        # relative to each arm's own full-data error: (few - full) of FOCA minus (few - full) of E2E
        d, se = few["gap"] - full["gap"], math.hypot(few["se"], full["se"])
        ex = {n: excess(rs, k) for n, rs in (("FOCA", foca), ("E2E", e2e))}
        out.append({"claim": f"few labels, relative to each arm's full-data error: with {k} label(s) per class, "
                             "FOCA loses less than E2E", "verdict": verdict(d, se), "gap": d, "se": se,
                    "method": "difference of two gaps",
                    "numbers": "-" if math.isnan(d) else
                    f"above their own full-data test error: FOCA {100 * ex['FOCA']:+.1f}, E2E {100 * ex['E2E']:+.1f} "
                    f"points; FOCA - E2E = {100 * d:+.1f} +- {100 * se:.1f} (se) points"
                    f"{', within 2 se' if abs(d) <= 2 * se else ''}"})
    tf, te = epoch_seconds(foca), epoch_seconds(e2e)
    out.append({"claim": "time: FOCA's stage-1 epoch against E2E's (same network, same runs)",
                "verdict": f"ratio {tf / te:.2f}" if tf and te else "not measured",
                "numbers": f"FOCA {tf:.0f} s vs E2E {te:.0f} s per epoch" if tf and te else "-"})
    return out


def excess(runs: list[dict], k: str) -> float:
    """Mean few-label error (k per class) minus mean full-data test error, fractions (nan if either is missing)."""
    few, full = values(runs, "few_label_errors", k), values(runs, "test_error")
    return float(np.mean(few) - np.mean(full)) if few and full else math.nan


def epoch_seconds(runs: list[dict]) -> float:
    """Mean stage-1 training seconds per epoch over every epoch of every run (0 if none)."""
    s = [r["train_seconds"] for run in runs for r in run.get("metrics", []) if r.get("stage") == 1]
    return float(np.mean(s)) if s else 0.0


def wall(runs: list[dict]) -> str:
    w = [r["wall_s"] for r in runs if r.get("wall_s") is not None]
    return f"{np.mean(w):.0f}" if w else "-"


def markdown(res: dict) -> str:
    """The study's table (one row per arm) and its verdicts, as Markdown."""
    d, c = res["data"], res["card"]
    lines = [f"{c.get('cpus', '?')}-core CPU ({c['device']}), torch {c['torch']}, {c['date']}; "
             f"`{c['command']}`; {res['epochs']} epochs per run, {res['jobs']} runs at once; "
             f"train {d['train_used']:,} / val {d['val']:,} / test {d['test']:,} images ({d['protocol']}); "
             "errors in %, mean +- sd (sample std over seeds), final epoch, nothing selected on test; "
             "the claims' gaps +- se (scripts/studies/stats.py).", "",
             "| run | seeds | val error (+- sd) | test error (+- sd) | few-label error 1 / 5 / 10 per class (+- sd) | "
             "trace ratio (mean) | Fisher eigenvalue (mean) | s per epoch | wall s per run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm, rs in res["runs"].items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            lines.append(f"| {NAMES.get(arm, arm)} | 0 | failed or not run | | | | | | |")
            continue
        fl = " / ".join(pct(values(ok, "few_label_errors", k)) for k in ("1", "5", "10"))
        tr, fe = values(ok, "trace_ratio"), values(ok, "fisher_eigenvalue")
        lines.append(f"| {NAMES.get(arm, arm)} | {len(ok)} | {pct(values(ok, 'val_error'))} | "
                     f"{pct(values(ok, 'test_error'))} | {fl} | {np.mean(tr):.3g} | {np.mean(fe):.3g} | "
                     f"{epoch_seconds(ok):.0f} | {wall(ok)} |")
    ft = [r for r in res["runs"].get("foca", []) if r.get("finetune_test_error") is not None]
    if ft:
        lines.append(f"| FOCA + {res['finetune_epochs']} epochs E2E fine-tuning | {len(ft)} | "
                     f"{pct(values(ft, 'finetune_val_error'))} | {pct(values(ft, 'finetune_test_error'))} | | | | | |")
    lines += ["", "| claim | verdict | numbers |", "|---|---|---|"]
    lines += [f"| {c['claim']} | **{c['verdict']}** | {c['numbers']} |" for c in claims(res)]
    lines += [f"", f"skipped: {'; '.join(res['skipped'])}"] if res["skipped"] else []
    lines += [f"stopped: {res['stopped']}"] if res.get("stopped") else []
    return "\n".join(lines)


def figures(res: dict, out: Path, runs_dir: Path) -> list[str]:
    """features_pca.png (test features of every seed, a panel per run) and finetune.png (Fig. 1).
    A re-render after the run folders are gone (study.json's runs_dir no longer exists) keeps the
    features_pca.png drawn when they were there; finetune.png needs only study.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minifoca.plots import pca_histograms

    made = []
    feats, labels = {}, {}
    for arm, rs in res["runs"].items():
        for r in rs:
            f = runs_dir / r.get("name", "") / "features_test.npz"
            if "error" not in r and f.is_file():
                z = np.load(f)
                key = f"{NAMES.get(arm, arm)} s{r['seed']}"
                feats[key], labels[key] = z["f"].astype(np.float64), z["t"]
    if feats:
        pca_histograms(feats, labels, out / "features_pca.png", normalise="l2",
                       title=f"CIFAR-10 test features after {res['epochs']} epochs (2-D PCA)")
        made.append("features_pca.png")
    elif (out / "features_pca.png").is_file():
        made.append("features_pca.png")  # drawn from run folders that are no longer here: kept as it was
    ft = [r for r in res["runs"].get("foca", []) if r.get("finetune_test_error") is not None]
    if ft:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r in ft:
            s2 = [x for x in r["metrics"] if x["stage"] == 2 and "val_error" in x]
            s3 = [x for x in r["metrics"] if x["stage"] == 3 and "val_error" in x]
            xs = [0] + [x["epoch"] for x in s3]  # val is measured every eval_every epochs and at the end
            ys = [100 * s2[-1]["val_error"]] + [100 * x["val_error"] for x in s3]
            ax.plot(xs, ys, marker="o", label=f"seed {r['seed']} val")
            ax.plot([0, res["finetune_epochs"]], [100 * r["test_error"], 100 * r["finetune_test_error"]], "k:",
                    marker="x", label=f"seed {r['seed']} test (start, end)")
        ax.set_xticks(range(res["finetune_epochs"] + 1))
        ax.set(xlabel="E2E fine-tuning epoch (0 = FOCA after stage 2)", ylabel="error %",
               title="Fig. 1 at laptop scale: fine-tuning after FOCA")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "finetune.png", dpi=120)
        plt.close(fig)
        made.append("finetune.png")
    return made


def main(argv=None) -> int:
    import json
    import sys

    folder = Path((argv if argv is not None else sys.argv[1:] or [""])[0])
    if not (folder / "study.json").is_file():
        print(f"error: no study.json in {folder}: pass the folder make cifar10-cpu wrote (results/cpu-<date>)",
              file=sys.stderr)
        return 2
    res = json.loads((folder / "study.json").read_text())
    res["figures"] = figures(res, folder, Path(res["runs_dir"]))
    res["claims"] = claims(res)
    (folder / "study.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (folder / "table.md").write_text(markdown(res) + "\n")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
