"""Stage 3 from a finished FOCA run: `python -m scaled.train --preset finetune-c10 --init_from RUN_DIR`.

The new run folder starts from RUN_DIR's last checkpoint, written at the end of its stage 2: the
network, the stage-2 classifier, every generator's state, the step count and the records of stages
1-2. It recomputes the stage-2 report (no randomness: eval-mode features) and runs stage 3 only, so
its numbers equal those of one uninterrupted run of the same recipe and seed
(tests/test_run_controls.py). Its config.json names the source under "init_from"; its
metrics.jsonl starts with the source's stage 1-2 records, and its `seconds` include theirs.

The source must be a finished FOCA run without a stage 3 of its own (its checkpoint would hold the
network after that stage), and every field that shaped its stages 1-2 must equal this run's: the
network, the data, the seed and the whole recipe. Only stage 3's fields and runtime fields may differ.
"""
from __future__ import annotations

import json
from pathlib import Path

from minifoca.config import to_dict

from .engine import CHECKPOINT

STAGE3 = {"finetune_epochs", "finetune_lr", "finetune_schedule"}
# Fields that change neither what stages 1-2 computed nor the data: where and how this run executes.
# The few-label probe runs after stage 2 on the network as it stands: this run's settings hold.
RUNTIME = {"out_dir", "data_dir", "download", "device", "threads", "precision", "channels_last", "compile", "sync_bn",
           "micro_batches", "check_every", "checkpoint_every", "eval_every", "eval_batch", "weak_graph",
           "few_labels", "few_label_draws"}


def check(cfg, path) -> Path:
    """The source folder when a run of `cfg` can start from it; else ValueError, one line that says why."""
    path = Path(path)
    what = f"--init_from {path}"
    if not (path / "config.json").is_file():
        raise ValueError(f"{what}: not a scaled.train run folder (no config.json there)")
    theirs = json.loads((path / "config.json").read_text())
    if not (path / "summary.json").is_file() or not (path / CHECKPOINT).is_file():
        raise ValueError(f"{what}: not a finished run (no summary.json or {CHECKPOINT}); finish it first "
                         f"with python -m scaled.train --resume {path}")
    if theirs.get("method") != "foca":
        raise ValueError(f"{what}: an {str(theirs.get('method')).upper()} run; stage 3 starts from a FOCA run's stage 2")
    if theirs.get("finetune_epochs"):
        raise ValueError(f"{what}: that run did its own stage 3 (finetune_epochs={theirs['finetune_epochs']}), so its "
                         "checkpoint holds the network after it; start from a FOCA run with finetune_epochs=0")
    if cfg.method != "foca" or not cfg.finetune_epochs:
        raise ValueError(f"{what}: this run has no stage 3 to run (method={cfg.method}, finetune_epochs="
                         f"{cfg.finetune_epochs}); use a finetune-* preset or pass --finetune_epochs=N")
    mine = to_dict(cfg)
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731  (JSON has lists)
    for k, v in mine.items():
        if k not in STAGE3 | RUNTIME and k in theirs and norm(theirs[k]) != norm(v):
            raise ValueError(f"{what}: its {k} is {theirs[k]!r}, this run's {v!r}; stage 3 continues that run's "
                             f"network and stages 1-2, so pass --{k}={norm(theirs[k])} or start from another run")
    return path


def started(run, cfg) -> None:
    """After the source's checkpoint is loaded: it must be the end of stage 2."""
    if tuple(run.pos) != (2, cfg.stage2_epochs):
        raise ValueError(f"--init_from: the checkpoint stands at stage {run.pos[0]} epoch {run.pos[1]}, not at the "
                         f"end of stage 2 ({cfg.stage2_epochs} epochs); start from a finished FOCA run")
