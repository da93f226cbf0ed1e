"""The CPU study's verdicts, figures and table (make cifar10-cpu = scripts/studies/budget.py --cpu).

    python -m scripts.studies.study_report results/cpu-<date>    # redo table.md and the figures from study.json

Each of the paper's claims is judged on the study's own runs, final epochs only (nothing is selected
on test), from the per-seed values:

    difference d = mean(a) - mean(b) in error points; its standard error
    se = sqrt(s_a^2 / n_a + s_b^2 / n_b + p_a (1 - p_a) / (M n_a) + p_b (1 - p_b) / (M n_b))
    (s: sample std over seeds, n: seeds, p: mean error, M: test images; the binomial terms keep a
    2-seed std that happens to be 0 from claiming certainty). "holds" when the claim's direction is
    beyond 2 se, "does not hold" when the opposite direction is, otherwise "inconclusive".

Fig. 1's claim is a null (fine-tuning does not help): it does not hold when the error drops beyond
2 se, holds when the mean does not drop, and a drop within the noise is inconclusive. The se treats
the two sides as independent, which overstates it for paired runs on the same test images.
Point-like features compare trace_ratio and fisher_eigenvalue seed by seed instead: every seed in
the claimed direction holds, every seed against it does not, a mix is inconclusive.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

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


def lower(a: list[float], b: list[float], m: int) -> tuple[str, float, float]:
    """Is a's error lower than b's? -> (verdict, d = mean a - mean b, se), errors as fractions."""
    if not a or not b:
        return "not measured", math.nan, math.nan
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b) + ma * (1 - ma) / (m * len(a)) + mb * (1 - mb) / (m * len(b)))
    d = ma - mb
    verdict = "holds" if d < -2 * se else "does not hold" if d > 2 * se else "inconclusive"
    return verdict, d, se


def larger_every_seed(a: list[float], b: list[float]) -> str:
    pairs = list(zip(a, b))
    if not pairs:
        return "not measured"
    wins = sum(x > y for x, y in pairs)
    return "holds" if wins == len(pairs) else "does not hold" if wins == 0 else "inconclusive"


def pct(v: list[float]) -> str:
    if not v:
        return "-"
    m, s = mean_sd(v)
    return f"{100 * m:.2f} +- {100 * s:.2f}"


def claims(res: dict) -> list[dict]:
    """The paper's claims at this scale: claim, verdict, the numbers behind it."""
    runs, m = res["runs"], res["data"]["test"]
    foca, e2e, head_c = runs.get("foca", []), runs.get("e2e", []), runs.get("foca-C", [])
    out = []

    def diff(claim, a, b, an, bn):
        v, d, se = lower(a, b, m)
        out.append({"claim": claim, "verdict": v, "numbers": f"{an} {pct(a)} vs {bn} {pct(b)} % "
                    f"(difference {100 * d:+.2f} +- {100 * se:.2f} points, n = {len(a)}/{len(b)} seeds)"})

    diff("Table 2: FOCA's test error is lower than E2E's", values(foca, "test_error"), values(e2e, "test_error"),
         "FOCA", "E2E")
    ft = [r for r in foca if r.get("finetune_test_error") is not None]
    before, after = values(ft, "test_error"), values(ft, "finetune_test_error")
    v, d, se = lower(after, before, m)  # does fine-tuning lower the error? the paper: it does not
    # A null claim: it does not hold when the error drops beyond 2 se, holds when the mean does not
    # drop at all, and a drop within the noise is inconclusive.
    verdict = v if v == "not measured" else "does not hold" if v == "holds" else "holds" if d >= 0 else "inconclusive"
    out.append({"claim": "Fig. 1: E2E fine-tuning after FOCA does not lower the test error", "verdict": verdict,
                "numbers": f"after stage 2 {pct(before)} -> after {res.get('finetune_epochs', 0)} fine-tuning epochs "
                           f"{pct(after)} % (change {100 * d:+.2f} +- {100 * se:.2f} points)"})
    diff("Table 1: head D (GAP -> 2-LP) beats head C (GAP features)", values(foca, "test_error"),
         values(head_c, "test_error"), "D", "C")
    for key in ("trace_ratio", "fisher_eigenvalue"):
        a, b = values(foca, key), values(e2e, key)
        out.append({"claim": f"point-like features: FOCA's {key} on test features is larger than E2E's",
                    "verdict": larger_every_seed(a, b),
                    "numbers": f"FOCA {' '.join(f'{x:.3g}' for x in a)} vs E2E {' '.join(f'{x:.3g}' for x in b)} per seed"})
    for k in ("1", "5", "10"):
        diff(f"few labels: with {k} labelled image(s) per class, FOCA's features give a lower error",
             values(foca, "few_label_errors", k), values(e2e, "few_label_errors", k), "FOCA", "E2E")
    tf, te = epoch_seconds(foca), epoch_seconds(e2e)
    out.append({"claim": "time: FOCA's stage-1 epoch against E2E's (same network, same runs)",
                "verdict": f"ratio {tf / te:.2f}" if tf and te else "not measured",
                "numbers": f"FOCA {tf:.0f} s vs E2E {te:.0f} s per epoch" if tf and te else "-"})
    return out


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
             "errors in %, mean +- sample std over seeds, final epoch, nothing selected on test.", "",
             "| run | seeds | val error | test error | few-label error 1 / 5 / 10 per class | trace ratio | "
             "Fisher eigenvalue | s per epoch | wall s per run |", "|---|---|---|---|---|---|---|---|---|"]
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
    """features_pca.png (test features of every seed, a panel per run) and finetune.png (Fig. 1)."""
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
