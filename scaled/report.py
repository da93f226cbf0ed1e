"""The reproduction report: our numbers beside the paper's, from run folders (`make report`).

    python -m scaled.report runs/scaled --out report            # every run folder below runs/scaled
    python -m scaled.report runs/scaled --seeds 3 --groups cifar10,finetune --out report

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
It works on partial results: every paper row is listed, with "0 of 3 seeds" where nothing ran.
Errors are the final epoch's (never selected on test). Imports no torch: runs anywhere.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minifoca.config import to_dict
from minifoca.runlog import read_jsonl, write_json, write_text_atomic

from .presets import PRESETS
from .report_figures import figures as _figures, finetune_curve


@dataclass(frozen=True)
class Paper:
    """A published test error (%) on the official test set (Tiny ImageNet: the official val set)."""
    mean: float | None  # None: the paper states a finding, not a number
    std: float | None  # None: published without a spread
    source: str  # table and row, as in docs/FOCA.md

    def __str__(self) -> str:
        if self.mean is None:
            return self.source
        return f"{self.mean:.2f}" + (f" +- {self.std:.2f}" if self.std is not None else "")


_T2, _T3 = "Table 2 (WRN-28-10 + cutout)", "Table 3 (PyramidNet-272 + ShakeDrop + RE)"
PAPER: dict[str, Paper] = {  # docs/FOCA.md, "The numbers to reproduce"; keyed by preset name
    "wrn28-c10-foca": Paper(2.63, 0.06, f"{_T2}, FOCA"),
    "wrn28-c10-e2e": Paper(3.10, 0.04, f"{_T2}, E2E re-run by the FOCA authors (cutout paper: 3.08 +- 0.16)"),
    "wrn28-c100-foca": Paper(17.22, 0.12, f"{_T2}, FOCA"),
    "wrn28-c100-e2e": Paper(17.99, 0.03, f"{_T2}, E2E re-run by the FOCA authors (cutout paper: 18.41 +- 0.27)"),
    "wrn28-tin-foca": Paper(36.71, 0.25, f"{_T2}, FOCA"),
    "wrn28-tin-e2e": Paper(37.05, 0.25, f"{_T2}, E2E re-run by the FOCA authors"),
    "table1-A": Paper(3.90, 0.08, "Table 1 (A) plain FOCA"),
    "table1-B": Paper(3.19, 0.10, "Table 1 (B) + BN"),
    "table1-C": Paper(2.96, 0.02, "Table 1 (C) + GAP features"),
    "table1-D": Paper(2.63, 0.06, "Table 1 (D) + GAP -> 2-LP"),
    "pyr272-c10-foca": Paper(1.76, 0.06, f"{_T3}, FOCA"),
    "pyr272-c10-e2e": Paper(2.31, None, f"{_T3}, E2E, ShakeDrop paper"),
    "pyr272-c100-foca": Paper(11.82, 0.10, f"{_T3}, FOCA"),
    "pyr272-c100-e2e": Paper(12.19, None, f"{_T3}, E2E, ShakeDrop paper"),
    "finetune-c10": Paper(2.63, 0.06, f"{_T2}, FOCA (stage 2, before fine-tuning)"),
    "finetune-c100": Paper(17.22, 0.12, f"{_T2}, FOCA (stage 2, before fine-tuning)"),
}
FINETUNE_PAPER = Paper(None, None, "no gain (2021 paper, Fig. 1)")  # stage 3 rows

# One make target per paper result: group -> (title, presets). scripts/reproduce.py runs these.
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cifar10": ("Table 2, CIFAR-10: WRN-28-10 + cutout",
                ("wrn28-c10-foca", "wrn28-c10-e2e", "wrn28-c10-e2e-matched")),
    "cifar100": ("Table 2, CIFAR-100: WRN-28-10 + cutout",
                 ("wrn28-c100-foca", "wrn28-c100-e2e", "wrn28-c100-e2e-matched")),
    "tinyimagenet": ("Table 2, Tiny ImageNet: WRN-28-10 + cutout",
                     ("wrn28-tin-foca", "wrn28-tin-e2e", "wrn28-tin-e2e-matched")),
    "pyramidnet": ("Table 3: PyramidNet-272 + ShakeDrop + random erasing",
                   ("pyr272-c10-foca", "pyr272-c10-e2e", "pyr272-c100-foca", "pyr272-c100-e2e")),
    "table1": ("Table 1: the head ablation (WRN-28-10 FOCA, CIFAR-10)", ("table1-A", "table1-B", "table1-C", "table1-D")),
    "finetune": ("Fig. 1: E2E fine-tuning after FOCA (stage 3; our recipe: 30 epochs, lr 1e-3, cosine)",
                 ("finetune-c100", "finetune-c10")),
    "smoke": ("CPU smoke runs (tiny WRN, 1k images: checks the pipeline, not the paper)", ("smoke", "smoke-e2e")),
}
PAPER_GROUPS = tuple(g for g in GROUPS if g != "smoke")  # listed even with no runs; smoke only when run
# Config fields that do not change what is measured: runs differing only in these are one row.
RUNTIME = {"seed", "data_dir", "download", "out_dir", "eval_every", "eval_batch", "device", "channels_last",
           "compile", "sync_bn", "micro_batches", "check_every"}
TRAIN_IMAGES = {"cifar10": 50000, "cifar100": 50000, "tinyimagenet": 100000}  # full official training sets


@dataclass
class RunInfo:
    path: Path
    config: dict
    summary: dict | None  # None: not finished (running, killed, or failed)
    records: list[dict]
    preset: str
    overrides: dict = field(default_factory=dict)  # recipe fields that differ from the preset

    @property
    def row(self) -> str:
        """The table row: the preset, plus its recipe overrides when there are any."""
        extra = ", ".join(f"{k}={_fmt_value(v)}" for k, v in self.overrides.items())
        return f"{self.preset or '(no preset)'}" + (f" [{extra}]" if extra else "")


def _fmt_value(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def find_runs(paths) -> list[RunInfo]:
    """Every scaled.train run folder (config.json with scaled's fields) at or below `paths`, sorted by
    row and seed."""
    runs = []
    for root in map(Path, paths):
        for cfg_path in sorted(set(root.glob("config.json")) | set(root.rglob("*/config.json"))):
            d = cfg_path.parent
            try:
                config = json.loads(cfg_path.read_text())
                summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else None
                records = read_jsonl(d / "metrics.jsonl") if (d / "metrics.jsonl").is_file() else []
            except (OSError, json.JSONDecodeError) as e:
                print(f"report: skipping {d}: {e}", file=sys.stderr)
                continue
            if not {"model", "augment", "epochs"} <= set(config):
                continue  # not a scaled.train run (a minifoca run folder, say)
            preset = config.get("preset", "")
            runs.append(RunInfo(d, config, summary, records, preset, recipe_overrides(config, preset)))
    return sorted(runs, key=lambda r: (r.row, r.config.get("seed", 0), str(r.path)))


def recipe_overrides(config: dict, preset: str) -> dict:
    """Fields of `config` that differ from `preset`'s, runtime fields (RUNTIME) left out."""
    if preset not in PRESETS:
        return {}
    base = to_dict(PRESETS[preset][0])
    same = lambda a, b: (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple)) else b)  # noqa: E731
    return {k: config[k] for k in base if k not in RUNTIME and k in config and not same(config[k], base[k])}


# --- numbers -------------------------------------------------------------------------------------------
def mean_std(values) -> tuple[float, float | None, int]:
    """(mean, sample std (ddof 1) or None for one value, n) of the finite values."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return float("nan"), None, 0
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None), len(v)


def pm(values, scale: float = 100.0) -> str:
    m, s, n = mean_std([None if x is None else scale * x for x in values])
    if not n:
        return "-"
    return f"{m:.2f}" + (f" +- {s:.2f}" if s is not None else "")


def protocol_tag(protocol: str) -> str:
    """scaled.data's protocol line -> 'val 5,000 / test1k' (the names of data/README.md)."""
    parts = dict(p.split(": ", 1) for p in protocol.split("; ") if ": " in p)
    val, test = parts.get("val", ""), parts.get("test1k") and "test1k" or parts.get("test", "")
    val = "no val" if val.startswith("none") or "(" not in val else "val " + val.rsplit("(", 1)[1].split(" ")[0]
    if test != "test1k":
        test = ("official val set as test" if "official val set" in test
                else "official test" if "official test" in test else test or "?")
    return f"{val} / {test}"


def card(runs) -> str:
    names = sorted({(r.summary.get("device", "?") + (f" x{r.summary['world']}" if r.summary.get("world", 1) > 1 else ""))
                    for r in runs})
    return ", ".join(names) or "-"


def epochs_text(cfg: dict, stage3: bool = False) -> str:
    if cfg.get("method") == "e2e":
        return str(cfg.get("epochs"))
    return f"{cfg.get('epochs')} + {cfg.get('stage2_epochs')}" + (f" + {cfg.get('finetune_epochs')}" if stage3 else "")


# --- time: measured, or projected from measured images/s -----------------------------------------------
def _image_size(dataset: str) -> int:
    return 64 if dataset == "tinyimagenet" else 32


def rates(runs) -> dict:
    """(model, image size, precision, card, kind) -> (mean images/s, a run folder it came from), kind
    'foca' / 'e2e' (stage 1), 'stage2', and stage 3 counted as 'e2e' (the same passes over all weights).
    The first epoch of each stage is left out (warm-up, cudnn autotuning) when there are more."""
    acc: dict = {}
    for r in runs:
        c, dev = r.config, (r.summary or {}).get("device") or ("cpu" if r.config.get("device") == "cpu" else None)
        if dev is None:
            continue  # an unfinished GPU run does not say which card (its summary does)
        for stage in (1, 2, 3):
            vals = [x["images_per_s"] for x in r.records if x["stage"] == stage]
            kind = {1: c.get("method"), 2: "stage2", 3: "e2e"}[stage]
            if vals:
                key = (c.get("model"), _image_size(c.get("dataset", "")), c.get("precision"), dev, kind)
                acc.setdefault(key, ([], str(r.path)))[0].extend(vals[1:] or vals)
    return {k: (float(np.mean(v)), src) for k, (v, src) in acc.items()}


def projected_seconds(cfg: dict, dev: str, measured: dict) -> tuple[float | None, str]:
    """Training time of one run of `cfg` on card `dev` from measured images/s -> (seconds or None, how).
    Evaluation and start-up are left out, so this is a lower bound."""
    n = TRAIN_IMAGES.get(cfg.get("dataset", ""))
    if n is None:
        return None, f"no training-set size known for {cfg.get('dataset')}"
    n = cfg.get("train_subset") or n - cfg.get("val_size", 0)
    stages = [(cfg.get("method"), cfg["epochs"], cfg["n_f"])]
    if cfg.get("method") == "foca":
        stages += [("stage2", cfg["stage2_epochs"], cfg["stage2_batch"]), ("e2e", cfg.get("finetune_epochs", 0), cfg["n_f"])]
    total, srcs = 0.0, set()
    for kind, epochs, batch in stages:
        if not epochs:
            continue
        key = (cfg.get("model"), _image_size(cfg.get("dataset", "")), cfg.get("precision"), dev, kind)
        if key not in measured:
            return None, f"no {kind} images/s measured for {key[0]} at {key[1]}px {key[2]} on {dev}"
        images = n if cfg.get("last_batch", "drop") == "keep" else n // batch * batch  # images per epoch
        total += epochs * images / measured[key][0]
        srcs.add(measured[key][1])
    return total, "projected from images/s measured in " + ", ".join(sorted(srcs))


def hours(s: float | None) -> str:
    return "?" if s is None else f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def bench_projections(files) -> dict:
    """(card, preset) -> (seconds of one run, file) from scripts/gpu_bench.py's gpu_bench.json files
    (images/s measured for a few hundred steps per network, projected to the preset's epochs)."""
    out = {}
    for f in map(Path, files):
        try:
            b = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        dev = b.get("card", {}).get("device", "cpu")
        if dev == "cpu":
            continue  # the --tiny smoke of the script: its numbers mean nothing
        for row in b.get("projection", []):
            if row.get("hours") is not None:
                out[(dev, row["preset"])] = (3600.0 * row["hours"], str(f))
    return out


class Timing:
    """How long a run takes on a card, best evidence first: finished runs of the same recipe there
    (measured, whole run), else images/s measured there in any run folder of the same network
    (projected), else scripts/gpu_bench.py's projection for the preset."""

    def __init__(self, runs: list[RunInfo], bench_files=()):
        self.runs, self.measured, self.bench = runs, rates(runs), bench_projections(bench_files)

    def cards(self) -> list[str]:
        return sorted({r.summary["device"] for r in self.runs if r.summary} | {d for d, _ in self.bench})

    def run_seconds(self, preset: str, cfg: dict, dev: str) -> tuple[float | None, str]:
        over = recipe_overrides(cfg, preset)
        done = [r.summary["seconds"] for r in self.runs if r.preset == preset and r.overrides == over
                and r.summary and r.summary.get("device") == dev]
        if done:
            return float(np.mean(done)), "measured"
        s, why = projected_seconds(cfg, dev, self.measured)
        if s is not None:
            return s, "projected"
        if not over and (dev, preset) in self.bench:
            return self.bench[(dev, preset)][0], "projected by gpu_bench"
        return None, why

    def group(self, group: str, seeds: int, dev: str) -> tuple[float | None, str]:
        """Time of `make <group>` (every preset x seeds, one after another) on card `dev`."""
        total, how = 0.0, set()
        for p in GROUPS[group][1]:
            s, why = self.run_seconds(p, to_dict(PRESETS[p][0]), dev)
            if s is None:
                return None, why
            total, how = total + seeds * s, how | {why}
        return total, " + ".join(sorted(how))


# --- tables ----------------------------------------------------------------------------------------------
HEADER = ("| row | method | epochs | paper, test error % | ours, test error % | n | ours, val error % "
          "| Fisher eig. | card | protocol |\n|---|---|---|---|---|---|---|---|---|---|")


def table_rows(row: str, preset: str, runs: list[RunInfo]) -> list[str]:
    """The row of one recipe (and, for FOCA with stage 3, a second row after fine-tuning)."""
    done = [r for r in runs if r.summary]
    cfg = runs[0].config if runs else {**to_dict(PRESETS[preset][0]), "preset": preset}
    paper = PAPER.get(preset) if not (runs and runs[0].overrides) else None
    tag = ", ".join(sorted({protocol_tag(r.summary.get("protocol", ""))
                            + (f" (first {r.config['eval_subset']} of each)" if r.config.get("eval_subset") else "")
                            for r in done})) or "-"
    method = cfg.get("method", "?").upper()
    s = [r.summary for r in done]
    out = [f"| {row} | {method} | {epochs_text(cfg)} | {paper or '-'} | {pm([x.get('test_error') for x in s])} "
           f"| {len(done)} | {pm([x.get('val_error') for x in s])} | {pm([x.get('fisher_eigenvalue') for x in s], 1.0)} "
           f"| {card(done)} | {tag} |"]
    if cfg.get("method") == "foca" and cfg.get("finetune_epochs"):
        out.append(f"| {row} + stage 3 | FOCA + E2E fine-tuning | {epochs_text(cfg, True)} | "
                   f"{FINETUNE_PAPER if paper else '-'} | {pm([x.get('finetune_test_error') for x in s])} | {len(done)} "
                   f"| {pm([x.get('finetune_val_error') for x in s])} | - | {card(done)} | {tag} |")
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
    shown = list(groups or [g for g in GROUPS if g in PAPER_GROUPS or any(r.preset in GROUPS[g][1] for r in runs)])
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
    for g in shown:
        title, presets = GROUPS[g]
        target = _target(g) + ("" if seeds == 3 else f" SEEDS={seeds}" if g != "smoke" else f" --seeds {seeds}")
        rows = [(p, p) for p in presets] + [(row, rs[0].preset) for row, rs in by_row.items()
                                            if rs[0].preset in presets and rs[0].overrides]
        lines += [f"## {title} (`{target}`)", "", HEADER]
        results["groups"][g] = {}
        group_missing = []
        for row, preset in rows:
            rs = by_row.get(row, [])
            used.add(row)
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
    other = {row: rs for row, rs in by_row.items() if row not in used}
    if other:
        lines += ["## Other runs", "", HEADER]
        for row, rs in other.items():
            lines += table_rows(row, rs[0].preset, rs)
            missing += [m for m in missing_lines(row, rs, 0, "")]
            results["other"][row] = _row_json(rs[0].preset, rs)
        lines.append("")
        lines += _figures("other", [r for rs in other.values() for r in rs], out)
    ft = [r for r in runs if any(x["stage"] == 3 for x in r.records)]
    if ft:
        finetune_curve(ft, out / "finetune.png")
        lines += ["## Fine-tuning after FOCA (stage 3)", "",
                  "Validation error per fine-tuning epoch; epoch 0 is the end of stage 2 (FOCA's features, "
                  "linear classifier). The paper's Fig. 1: fine-tuning does not help.", "",
                  "![fine-tuning curve](finetune.png)", ""]
    lines += ["## Missing", ""] + (missing or ["- nothing: every row has all its seeds"]) + [""]
    lines += _time_section(shown, Timing(runs, bench_files), seeds)
    protocols = sorted({r.summary.get("protocol", "") for r in runs if r.summary})
    lines += ["## Protocols seen", ""] + [f"- {p}" for p in protocols] + [""]
    write_text_atomic(out / "README.md", "\n".join(lines))
    results["missing"] = missing
    write_json(out / "results.json", results, indent=1)
    return results


def _target(group: str) -> str:
    return f"make {group}" if group != "smoke" else "python -m scripts.reproduce smoke"


def _row_json(preset, runs) -> dict:
    done = [r.summary for r in runs if r.summary]
    paper = PAPER.get(preset)
    return {"preset": preset, "paper": dataclasses.asdict(paper) if paper else None,
            "runs": [str(r.path) for r in runs], "seeds": [r.config.get("seed") for r in runs if r.summary],
            **{k: [x.get(k) for x in done] for k in ("test_error", "val_error", "finetune_test_error",
                                                     "finetune_val_error", "fisher_eigenvalue", "seconds", "device")}}


def _time_section(groups, timing: Timing, seeds) -> list[str]:
    cards = timing.cards()
    lines = ["## Time per target", "",
             f"{seeds} seeds per preset, one run after another on one card. measured: finished runs of the exact "
             "recipe on that card (whole runs); projected: from images/s measured on that card for the same "
             "network, image size and precision in any run folder (training passes only: evaluation and "
             "start-up left out); projected by gpu_bench: scripts/gpu_bench.py's projection (results/*/gpu_bench.json).",
             ""]
    if not cards:
        return lines + ["- no finished runs and no gpu_bench.json: nothing measured yet", ""]
    lines += ["| target | " + " | ".join(cards) + " |", "|---|" + "---|" * len(cards)]
    notes = []
    for g in groups:
        cells = []
        for dev in cards:
            s, how = timing.group(g, seeds, dev)
            cells.append(f"{hours(s)} ({how})" if s is not None else "not measured")
            if s is None and dev != "cpu":  # a CPU projection of a paper preset is nobody's question
                notes.append(f"- {g} on {dev}: {how}")
        lines.append(f"| {_target(g)} | " + " | ".join(cells) + " |")
    return lines + [""] + notes + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scaled.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=["runs/scaled"], help="run folders or folders above them")
    ap.add_argument("--out", default="report", help="folder for README.md, results.json and the figures")
    ap.add_argument("--seeds", type=int, default=3, help="seeds expected per row (s0..s{N-1})")
    ap.add_argument("--groups", default="", help=f"comma-separated, of {', '.join(GROUPS)} (default: all)")
    ap.add_argument("--bench", default="results/*/gpu_bench.json",
                    help="scripts/gpu_bench.py outputs (a glob) for time projections")
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
    print(f"report: {len(res['missing'])} missing items listed; open {out / 'README.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
