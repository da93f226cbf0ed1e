"""SGD with momentum, Nesterov and weight decay, step for step what torch.optim.SGD does.

torch.optim.SGD (dampening 0), written out (docs/algorithm.md):
    g = grad + wd * p
    buf = g                 on the first step
    buf = mu * buf + g      afterwards
    g = g + mu * buf        with Nesterov, else g = buf
    p = p - lr * g
Checked against torch.optim.SGD over 10 steps in tests/test_optim.py.
"""
from __future__ import annotations

import math


class SGD:
    """Updates a dict of parameter arrays in place. `lr` may be changed between steps (schedules)."""

    def __init__(self, params: dict, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.params, self.lr, self.momentum = params, lr, momentum
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buf: dict = {}  # momentum buffers, created on the first step like torch's

    def step(self, grads: dict) -> None:
        """grads: name -> gradient of the loss (without weight decay) for each name in params."""
        mu, wd = self.momentum, self.weight_decay
        for name, p in self.params.items():
            g = grads[name]
            if wd:
                g = g + wd * p
            if mu:
                buf = g if name not in self.buf else mu * self.buf[name] + g
                self.buf[name] = buf
                g = g + mu * buf if self.nesterov else buf
            p -= self.lr * g  # in place: the caller's dict sees the new values

    def state_dict(self) -> dict:
        return {"lr": self.lr, "buf": {k: v.copy() for k, v in self.buf.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.buf = state["lr"], {k: v.copy() for k, v in state["buf"].items()}


def lr_at(t: float, base_lr: float, schedule: str, total: float, milestones: tuple = (),
          gamma: float = 0.1) -> float:
    """Learning rate at counter t of `total` (phi steps in minifoca, epochs in scaled), stepped
    like torch's schedulers: "constant"; "step" multiplies by gamma at each milestone, given as a
    FRACTION of training and rounded to the counter (0.5, 0.667, 0.833 of 600 epochs = 300, 400,
    500; 0.3, 0.6, 0.8 of 200 = 60, 120, 160), like MultiStepLR; "cosine" goes to 0 at `total`,
    like CosineAnnealingLR; "wsd" (warmup-stable-decay without the warmup) holds base_lr until
    milestones[0] of training, then falls linearly to 0 at `total`. t may be fractional (scaled
    steps wsd per step): before the decay the lr does not depend on `total`, so a run to a longer
    horizon is the same run up to there (the trunk a scaling study branches from)."""
    if schedule == "constant":
        return base_lr
    if schedule == "step":
        return base_lr * gamma ** sum(t >= round(m * total) for m in milestones)
    if schedule == "cosine":
        return 0.5 * base_lr * (1 + math.cos(math.pi * min(t, total) / total))
    if schedule == "wsd":
        start = round(milestones[0] * total) if milestones else total
        return base_lr if t < start else base_lr * max(total - t, 0.0) / (total - start)
    raise ValueError(f"unknown schedule {schedule!r}: choose constant, step, cosine or wsd")
