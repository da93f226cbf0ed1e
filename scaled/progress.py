"""What a run prints while it trains (rank 0 only; every other rank is quiet).

    on a terminal         a tqdm bar per epoch (batches, images/s), gone when the epoch ends
    stderr to a file      one line per epoch: Slurm, nohup and `2> log` runs are not silent for hours
    --quiet               neither (metrics.jsonl still gets every epoch)

A line per epoch reads

    stage 1 epoch 3/600: loss 2.5786, 1,281 img/s, val error 80.60% (weak classifier), elapsed 0:00:06, stage 1 left ~0:10:30

`left` is this stage's remaining epochs times the mean wall time of its epochs so far in this
process (evaluation and checkpoints included); later stages are not in it (they run at other speeds).
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm

MODES = ("auto", "quiet")


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, mode: str = "auto", stream=None):
        """mode: auto (a bar on a terminal, a line per epoch otherwise) or quiet."""
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: choose one of {', '.join(MODES)}")
        self.stream = sys.stderr if stream is None else stream
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bars, self.lines = mode == "auto" and tty, mode == "auto" and not tty
        self._last, self._spent = time.perf_counter(), {}  # stage -> wall seconds of its epochs here

    def bar(self, steps: int, desc: str):
        """The batches of one epoch; a disabled tqdm (still an iterator with set_postfix) off a terminal."""
        return tqdm(range(steps), desc=desc, unit="batch", leave=False, disable=not self.bars)

    def epoch(self, rec: dict, n: int, elapsed: float) -> None:
        """One line for the epoch record `rec` (scaled.engine.Run.end_epoch's) of a stage of n epochs;
        elapsed: the run's seconds so far (a resumed run's include those before the resume)."""
        now = time.perf_counter()
        spent = self._spent.setdefault(rec["stage"], [])
        spent.append(now - self._last)
        self._last = now
        if not self.lines:
            return
        err = next((k for k in ("val_error", "test_error") if k in rec), None)
        measured = f", {err.replace('_', ' ')} {100 * rec[err]:.2f}% ({rec[err + '_by']})" if err else ""
        left = (n - rec["epoch"]) * sum(spent) / len(spent)
        print(f"stage {rec['stage']} epoch {rec['epoch']}/{n}: loss {rec['train_loss']:.4f}, "
              f"{rec['images_per_s']:,.0f} img/s{measured}, elapsed {hms(elapsed)}, "
              f"stage {rec['stage']} left ~{hms(left)}", file=self.stream, flush=True)
