"""The report's inputs: the paper's numbers (PAPER), one group per make target (GROUPS), the run
folders scaled.train leaves (find_runs -> RunInfo) and the small number formats of the tables.
scaled/report.py writes the tables, report_time.py the time section, report_figures.py the figures;
all of them import this module, and it imports none of them.
"""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minifoca.config import to_dict
from minifoca.runlog import read_jsonl

from .presets import PRESETS


@dataclass(frozen=True)
class Paper:
    """A published test error (%) on the official test set (Tiny ImageNet: the official val set)."""
    mean: float | None  # None: the paper states a finding, not a number
    std: float | None  # None: published without a spread
    source: str  # table and row, as in docs/algorithm.md

    def __str__(self) -> str:
        if self.mean is None:
            return self.source
        return f"{self.mean:.2f}" + (f" +- {self.std:.2f}" if self.std is not None else "")


_T2, _T3 = "Table 2 (WRN-28-10 + cutout)", "Table 3 (PyramidNet-272 + ShakeDrop + RE)"
PAPER: dict[str, Paper] = {  # docs/algorithm.md, "The numbers to reproduce"; keyed by preset name
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

# One make target per paper result: group -> (title, presets). scaled/reproduce.py runs these.
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
    name: str = ""  # how tables and figures name the run: its folder's name (with its parent's when two clash)

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
            runs.append(RunInfo(d, config, summary, records, preset, recipe_overrides(config, preset), d.name))
    clash = {r.name for r in runs if sum(x.name == r.name for x in runs) > 1}
    for r in runs:
        r.name = f"{r.path.parent.name}/{r.name}" if r.name in clash else r.name
    return sorted(runs, key=lambda r: (r.row, r.config.get("seed", 0), str(r.path)))


def differences(runs) -> dict:
    """{config field: {run name: value}} for every field (out_dir aside) in which the runs differ."""
    keys = dict.fromkeys(k for r in runs for k in r.config if k != "out_dir")
    out = {}
    for k in keys:
        vals = {r.name: r.config.get(k) for r in runs}
        if len({json.dumps(v) for v in vals.values()}) > 1:
            out[k] = vals
    return out


def slug(text: str) -> str:
    """A dataset name or path, a network reference: safe inside one file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "none"


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


def make_target(group: str) -> str:
    """The command that fills a group: its make target (smoke: the script itself)."""
    return f"make {group}" if group != "smoke" else "python -m scaled.reproduce smoke"
