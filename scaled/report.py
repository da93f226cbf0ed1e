"""The reproduction report: our numbers beside the paper's, from run folders (`make report`).

    python -m scaled.report runs/scaled --out report            # every run folder below runs/scaled
    python -m scaled.report runs/scaled --seeds 3 --groups cifar10,finetune --out report
    python -m scaled.report runs/scaled/a runs/scaled/b --out compare     # compare any runs

Reads what scaled.train leaves in each run folder (config.json, metrics.jsonl, summary.json,
features_test.npz) and writes
    report/README.md          one table per paper result (GROUPS): ours as mean +- std over seeds, n,
                              epochs, card and protocol, beside the paper's number (PAPER); what is
                              missing (seeds not run, runs not finished) and the time per target
    report/results.json       the same numbers, machine-readable
    report/features-*.png     2-D PCA histograms of l2-normalised test features, FOCA vs E2E
                              (minifoca.plots.pca_histograms: the 2021 paper's figure)
    report/curves-*.png       validation error and training loss per epoch, every run
    report/finetune.png       stage 3: validation error per fine-tuning epoch, epoch 0 = after stage 2
It works on partial results: a paper group's rows are listed, with "0 of 3 seeds" where nothing ran,
once one of its presets ran (or --groups names it); runs of no group come first, under "Other runs";
the paper groups not run at all are named under "Missing" when a paper preset ran (or nothing did).
Every run is named by its folder in the tables (column runs), the curves and the PCA panels (one per
finished run), and the config fields in which the runs differ are listed (and printed).
Errors are the final epoch's (never selected on test). Imports no torch: runs anywhere.
This file writes the tables; report_runs.py holds the paper's numbers, the groups and the run
folders, report_time.py the time per target, report_figures.py the figures (imports run one way:
report -> report_figures, report_time -> report_runs).
"""
from __future__ import annotations

import dataclasses
import glob
import sys
from pathlib import Path

from minifoca.cli import ArgParser
from minifoca.config import to_dict
from minifoca.runlog import write_json, write_text_atomic

from .presets import PRESETS
from .report_figures import figures as _figures, finetune_curve
from .report_runs import (FINETUNE_PAPER, GROUPS, PAPER, PAPER_GROUPS, RunInfo, _fmt_value, card, differences,
                          epochs_text, find_runs, make_target, pm, protocol_tag)
from .report_time import Timing, time_section


# --- tables ----------------------------------------------------------------------------------------
HEADER = ("| row | method | epochs | paper, test error % | ours, test error % | n | ours, val error % "
          "| Fisher eig. | card | protocol | runs |\n|---|---|---|---|---|---|---|---|---|---|---|")


def table_rows(row: str, preset: str, runs: list[RunInfo]) -> list[str]:
    """The row of one recipe (and, for FOCA with stage 3, a second row after fine-tuning)."""
    done = [r for r in runs if r.summary]
    cfg = runs[0].config if runs else {**to_dict(PRESETS[preset][0]), "preset": preset}
    paper = PAPER.get(preset) if not (runs and runs[0].overrides) else None
    tag = ", ".join(sorted({protocol_tag(r.summary.get("protocol", ""))
                            + (f" (first {r.config['eval_subset']} of each)" if r.config.get("eval_subset") else "")
                            for r in done})) or "-"
    method = cfg.get("method", "?").upper()
    s, names = [r.summary for r in done], ", ".join(r.name for r in done) or "-"
    out = [f"| {row} | {method} | {epochs_text(cfg)} | {paper or '-'} | {pm([x.get('test_error') for x in s])} "
           f"| {len(done)} | {pm([x.get('val_error') for x in s])} | {pm([x.get('fisher_eigenvalue') for x in s], 1.0)} "
           f"| {card(done)} | {tag} | {names} |"]
    if cfg.get("method") == "foca" and cfg.get("finetune_epochs"):
        out.append(f"| {row} + stage 3 | FOCA + E2E fine-tuning | {epochs_text(cfg, True)} | "
                   f"{FINETUNE_PAPER if paper else '-'} | {pm([x.get('finetune_test_error') for x in s])} | {len(done)} "
                   f"| {pm([x.get('finetune_val_error') for x in s])} | - | {card(done)} | {tag} | {names} |")
    return out


def missing_lines(row: str, runs: list[RunInfo], seeds: int, target: str) -> list[str]:
    have = {r.config.get("seed") for r in runs if r.summary}
    lost = [s for s in range(seeds) if s not in have]
    out = []
    if lost:
        out.append(f"- {row}: {len(have & set(range(seeds)))} of {seeds} seeds (missing "
                   + ", ".join(f"s{s}" for s in lost) + f"){f'; run `{target}`' if target else ''}")
    for r in runs:
        if not r.summary:
            last = r.records[-1] if r.records else None
            where = f"stage {last['stage']} epoch {last['epoch']} done" if last else "no epoch finished"
            out.append(f"- {row} s{r.config.get('seed')}: not finished ({where}) in `{r.path}`; "
                       f"the same command resumes it")
    return out


def render(paths, out: Path, seeds: int = 3, groups=None, bench_files=()) -> dict:
    """Writes out/README.md, out/results.json and the figures; returns results.json's content.
    bench_files: gpu_bench.json files for time projections where no run measured the network yet."""
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(paths)
    by_row: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_row.setdefault(r.row, []).append(r)
    ran = [g for g in GROUPS if any(r.preset in GROUPS[g][1] for r in runs)]
    # your own runs first: groups that are not the paper's (smoke), then the paper's that ran
    shown = list(groups or sorted(ran, key=lambda g: g in PAPER_GROUPS))
    # a reproduction (a paper preset ran, or nothing yet): name the paper groups not run at all
    repro = not groups and (not runs or any(r.preset in PAPER for r in runs))
    unrun = [g for g in PAPER_GROUPS if repro and g not in ran]
    lines = ["# FOCA reproduction: ours beside the paper", "",
             f"From {len(runs)} run folders under {', '.join(map(str, paths))} ({sum(bool(r.summary) for r in runs)} "
             f"finished), expecting {seeds} seeds (s0..s{seeds - 1}) per row. Test error of the final epoch "
             "(never selected on test), mean +- sample std over seeds; n = finished runs. The paper's numbers are "
             "on the official 10,000-image test set (Tiny ImageNet: the official val set); `test1k` is the first "
             "1,000 official test images (standard error about 0.7 points at 95% accuracy), `val 5,000` the last "
             "5,000 training images held out (../shared/data/README.md). Fisher eig.: the largest eigenvalue of "
             "S_w^+ S_b of the test features (minifoca/metrics.py). Rows with [overrides] are not the paper's recipe.",
             ""]
    results, used, missing = {"groups": {}, "other": {}}, set(), []
    for g in shown:  # which rows are a group's: the others are shown first, below
        used |= set(GROUPS[g][1]) | {row for row, rs in by_row.items() if rs[0].preset in GROUPS[g][1]}
    other = {row: rs for row, rs in by_row.items() if row not in used}
    if other:
        lines += ["## Other runs", "", HEADER]
        for row, rs in other.items():
            lines += table_rows(row, rs[0].preset, rs)
            missing += [m for m in missing_lines(row, rs, 0, "")]
            results["other"][row] = _row_json(rs[0].preset, rs)
        lines.append("")
        lines += _figures("other", [r for rs in other.values() for r in rs], out)
    for g in shown:
        title, presets = GROUPS[g]
        target = make_target(g) + ("" if seeds == 3 else f" SEEDS={seeds}" if g != "smoke" else f" --seeds {seeds}")
        rows = [(p, p) for p in presets] + [(row, rs[0].preset) for row, rs in by_row.items()
                                            if rs[0].preset in presets and rs[0].overrides]
        rows.sort(key=lambda rp: not by_row.get(rp[0]))  # rows that ran first
        lines += [f"## {title} (`{target}`)", "", HEADER]
        results["groups"][g] = {}
        group_missing = []
        for row, preset in rows:
            rs = by_row.get(row, [])
            lines += table_rows(row, preset, rs)
            extra = " ".join(f"--{k}={_fmt_value(v)}" for k, v in (rs[0].overrides if rs else {}).items())
            args = (f' ARGS="{extra}"' if g != "smoke" else f" {extra}") if extra else ""
            group_missing += missing_lines(row, rs, seeds, target + args)
            results["groups"][g][row] = _row_json(preset, rs)
        if not any(by_row.get(row) for row, _ in rows):  # nothing ran: one line, not one per row
            group_missing = [f"- {g}: nothing run yet ({len(presets)} presets x {seeds} seeds); run `{target}`"]
        missing += group_missing
        lines.append("")
        lines += _figures(g, [r for row, _ in rows for r in by_row.get(row, [])], out)
    missing += [f"- {g}: nothing run yet ({len(GROUPS[g][1])} presets x {seeds} seeds); run `{make_target(g)}"
                + ("" if seeds == 3 else f" SEEDS={seeds}") + "`" for g in unrun]
    ft = [r for r in runs if any(x["stage"] == 3 for x in r.records)]
    if ft:
        finetune_curve(ft, out / "finetune.png")
        lines += ["## Fine-tuning after FOCA (stage 3)", "",
                  "Validation error per fine-tuning epoch; epoch 0 is the end of stage 2 (FOCA's features, "
                  "linear classifier). The paper's Fig. 1: fine-tuning does not help.", "",
                  "![fine-tuning curve](finetune.png)", ""]
    diff = differences(runs)
    if len(runs) > 1:
        lines += ["## How the runs differ", "", "Config fields (config.json) whose values are not the same in "
                  "every run; out_dir left out." + ("" if diff else " None."), ""]
        if diff:
            names = [r.name for r in runs]
            lines += ["| field | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            lines += [f"| {k} | " + " | ".join(_fmt_value(v.get(n)) for n in names) + " |" for k, v in diff.items()]
            lines.append("")
    lines += ["## Missing", ""] + (missing or ["- nothing: every row has all its seeds"]) + [""]
    lines += time_section(shown + unrun, Timing(runs, bench_files), seeds)
    protocols = sorted({r.summary.get("protocol", "") for r in runs if r.summary})
    lines += ["## Protocols seen", ""] + [f"- {p}" for p in protocols] + [""]
    write_text_atomic(out / "README.md", "\n".join(lines))
    results["missing"], results["differences"] = missing, diff
    write_json(out / "results.json", results, indent=1)
    return results


def _row_json(preset, runs) -> dict:
    done = [r.summary for r in runs if r.summary]
    paper = PAPER.get(preset)
    return {"preset": preset, "paper": dataclasses.asdict(paper) if paper else None,
            "runs": [str(r.path) for r in runs], "seeds": [r.config.get("seed") for r in runs if r.summary],
            **{k: [x.get(k) for x in done] for k in ("test_error", "val_error", "finetune_test_error",
                                                     "finetune_val_error", "fisher_eigenvalue", "seconds", "device")}}


def main(argv=None) -> int:
    ap = ArgParser("python -m scaled.report", __doc__)
    ap.add_argument("paths", nargs="*", default=["runs/scaled"], help="run folders or folders above them")
    ap.add_argument("--out", default="report", help="folder for README.md, results.json and the figures")
    ap.add_argument("--seeds", type=int, default=3, help="seeds expected per row (s0..s{N-1})")
    ap.add_argument("--groups", default="", help=f"comma-separated, of {', '.join(GROUPS)} (default: all)")
    ap.add_argument("--bench", default="results/*/gpu_bench.json",
                    help="scripts/gpu/bench.py outputs (a glob) for time projections")
    a = ap.parse_args(argv)
    groups = [g for g in a.groups.split(",") if g] or None
    bad = [g for g in groups or [] if g not in GROUPS] + [p for p in a.paths if not Path(p).is_dir()]
    if bad or a.seeds < 1:
        what = f"no folder or group {', '.join(bad)}" if bad else f"--seeds {a.seeds} must be at least 1"
        print(f"error: {what}; pass run folders (e.g. runs/scaled) and groups among {', '.join(GROUPS)}",
              file=sys.stderr)
        return 2
    out = Path(a.out)
    print(f"report: run folders under {', '.join(a.paths)} -> {out / 'README.md'} (+ figures, results.json)",
          file=sys.stderr)
    res = render(a.paths, out, a.seeds, groups, sorted(glob.glob(a.bench)))
    for field, vals in res["differences"].items():  # what a comparison is about, on the terminal
        print(f"{field}: " + ", ".join(f"{name} {_fmt_value(v)}" for name, v in vals.items()))
    print(f"report: {len(res['missing'])} missing items listed; open {out / 'README.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
