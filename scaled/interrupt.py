"""A clean stop on SIGINT (Ctrl-C, `timeout -s INT`) and SIGTERM (Slurm's scancel, `kill`, a job's
time limit): the run ends after the current step and keeps a checkpoint to resume from exactly.

What is kept: the last epoch checkpoint (scaled/engine.py). A stop in the middle of an epoch
drops that partial epoch, and `--resume` redoes it from the checkpoint with the same random
draws, so the resumed run still equals an uninterrupted one bit for bit on the CPU
(tests/test_run_controls.py). A stop during an epoch's evaluation or at its end writes that
epoch's checkpoint even between checkpoint_every epochs. We chose this over a checkpoint in the
middle of an epoch: that would also have to hold the epoch's order, its position and, under DDP,
every rank's ShakeDrop stream; the price is at most one epoch redone.

Under DDP every rank must stop at the same step (a rank that leaves a collective early hangs the
others), and a signal may reach only some ranks (one node's scheduler, or torchrun forwarding it a
moment later): the ranks agree with an all-reduce (MAX of the signal number) every check_every
steps and at every epoch's end, where the engine syncs with the host anyway. One process checks
its own flag at every step, for free.

Repeated signals are ignored once a stop is under way (torchrun forwards the terminal's SIGINT, so
each worker gets it twice); `kill -9` still stops at once, and the last checkpoint is kept.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

import torch
import torch.distributed as tdist

from . import dist

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received = 0  # the first signal's number; 0: none


class Interrupted(Exception):
    """The run stopped on a signal; exit status 128 + signum (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum, frame):
    global _received
    if _received:
        return
    _received = signum
    if int(os.environ.get("RANK", "0")) == 0:
        print(("\n" if sys.stderr.isatty() else "") + f"{signal.Signals(signum).name}: stopping after this step "
              "with a checkpoint (kill -9 stops at once and keeps the last one)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def handled():
    """Inside: SIGINT and SIGTERM ask for a stop instead of ending the process; the handlers before
    are put back on leaving (main() may run inside another program: the tests, a notebook)."""
    global _received
    _received, before = 0, {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def check(device: str, step: int, every: int = 1) -> None:
    """Raises Interrupted when a stop was asked for: one process at every call; under DDP at steps
    that are multiples of `every` (all ranks call with the same step) and when every=0 (epoch end)."""
    _test_hook(step)
    if not dist.active():
        signum = _received
    elif every and step % every:
        return
    else:
        flag = torch.tensor([_received], device=device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        signum = int(flag.item())
    if signum:
        raise Interrupted(signum)


def _test_hook(step: int) -> None:
    """Tests: FOCA_TEST_SIGNAL_AT_STEP=12 (or 12:TERM) sends this process the signal at step 12,
    so that a test can stop a run at a known step in the middle of an epoch."""
    at = os.environ.get("FOCA_TEST_SIGNAL_AT_STEP", "")
    if at and at.split(":")[0] == str(step) and not _received:
        os.kill(os.getpid(), getattr(signal, "SIG" + (at.split(":")[1] if ":" in at else "INT")))
