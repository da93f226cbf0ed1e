"""How long a run or a make target takes on a card (the report's time section and the
announcement of scaled/reproduce.py): measured by finished runs, else projected from images/s
measured in any run folder, else scripts/gpu/bench.py's projection.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minifoca.config import to_dict

from .presets import PRESETS
from .report_runs import GROUPS, TRAIN_IMAGES, RunInfo, make_target, recipe_overrides


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
    """(card, preset) -> (seconds of one run, file) from scripts/gpu/bench.py's gpu_bench.json files
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
    (projected), else scripts/gpu/bench.py's projection for the preset."""

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


def time_section(groups, timing: Timing, seeds) -> list[str]:
    cards = timing.cards()
    lines = ["## Time per target", "",
             f"{seeds} seeds per preset, one run after another on one card. measured: finished runs of the exact "
             "recipe on that card (whole runs); projected: from images/s measured on that card for the same "
             "network, image size and precision in any run folder (training passes only: evaluation and "
             "start-up left out); projected by gpu_bench: scripts/gpu/bench.py's projection (results/*/gpu_bench.json).",
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
        lines.append(f"| {make_target(g)} | " + " | ".join(cells) + " |")
    return lines + [""] + notes + [""]
