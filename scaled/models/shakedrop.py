"""ShakeDrop (Yamada et al., 2019) as an autograd Function, with the random draws made on the device.

For one residual branch r(x) of block l (of L), per sample n:

    b       ~ Bernoulli(p_l)          keep the branch as it is (the ResDrop gate)
    alpha_n ~ U[-1, 1]                forward scale when the gate is closed
    beta_n  ~ U[0, 1]                 backward scale when the gate is closed

    forward:   out  = (b + alpha - b*alpha) * r          (b = 1: r;  b = 0: alpha * r)
    backward:  dr   = (b + beta  - b*beta ) * dout       (b = 1: dout; b = 0: beta * dout)
    eval:      out  = E[b + alpha - b*alpha] * r = p_l * r   (E[alpha] = 0)

The gate b is drawn once per mini-batch per block (`gate="batch"`: the FOCA authors' code and the
widely copied PyTorch port) or once per sample (`gate="sample"`: our variant, less variance per
step); alpha and beta are always per sample. The survival probability p_l = 1 - (l / L) * (1 - 0.5)
is linear from ~1 at the first block to 0.5 at the last (`survival_prob`). beta is drawn together
with alpha in the forward pass: it is independent of everything the forward computes, so drawing it
early changes no distribution, and it lets a test hand the same draws to a reference. All draws are
tensors made on x's device, from the generator given (or that device's default generator when
None); nothing is read back to the host, so there is no synchronisation per block (the authors'
code calls `.item()` on the gate). Under torch.compile a draw from an explicit generator breaks
the graph, once in every ShakeDrop block, so `--compile` gains less on PyramidNet than on WRN.

The caller adds the shortcut *out of place* (`out = shakedrop(r) + shortcut`): an in-place add
on the Function's output would overwrite the tensor autograd relies on.
"""
from __future__ import annotations

import torch
from torch import nn


def survival_prob(l: int, num_blocks: int, p_last: float = 0.5) -> float:
    """p_l = 1 - (l / L) * (1 - p_last), l = 1..L (the ShakeDrop paper's linear decay rule)."""
    if not 1 <= l <= num_blocks:
        raise ValueError(f"block index l={l} must be in 1..{num_blocks}")
    return 1.0 - (l / num_blocks) * (1.0 - p_last)


class ShakeDropFunction(torch.autograd.Function):
    """out = fwd_scale * x; dx = bwd_scale * dout, with per-sample scales (N,) broadcast over C, H, W."""

    @staticmethod
    def forward(ctx, x, fwd_scale, bwd_scale):
        ctx.save_for_backward(bwd_scale)
        return x * fwd_scale.view(-1, *([1] * (x.dim() - 1)))  # (N, C, H, W)

    @staticmethod
    def backward(ctx, dout):
        (bwd_scale,) = ctx.saved_tensors
        return dout * bwd_scale.view(-1, *([1] * (dout.dim() - 1))), None, None  # (N, C, H, W)


GATES = ("batch", "sample")


def draw_shakedrop(n: int, p_survive: float, device, dtype, generator=None, gate: str = "batch",
                   uniform=None) -> dict:
    """The draws of one block: gate b (N,), alpha (N,), beta (N,), and the scales.

    uniform: None draws U[0, 1) numbers from `generator`; a test may pass the (3, N) array itself
    (row 0 the gate's, row 1 alpha's, row 2 beta's; with gate="batch" only u[0, 0] is used), and
    the scales are then computed in its dtype (scripts/crosscheck/authors.py replays the authors' draws)."""
    if gate not in GATES:
        raise ValueError(f"shakedrop_gate={gate!r}: choose one of {', '.join(GATES)}")
    # Drawn in float32 whatever x's dtype (bf16 under autocast has too few bits for U[0, 1]).
    u = (torch.rand(3, n, device=device, dtype=torch.float32, generator=generator)
         if uniform is None else uniform)  # (3, N)
    keep = u[0] < p_survive if gate == "sample" else (u[0, :1] < p_survive).expand(n)  # (N,) b = 1: keep
    alpha, beta = 2.0 * u[1] - 1.0, u[2]  # (N,) U[-1, 1], U[0, 1]
    # where(b, 1, alpha) is b + alpha - b*alpha for b in {0, 1}, without float32 round-off in 1 + a - a.
    return {"b": keep.float(), "alpha": alpha, "beta": beta,
            "fwd_scale": torch.where(keep, 1.0, alpha).to(dtype),
            "bwd_scale": torch.where(keep, 1.0, beta).to(dtype)}


class ShakeDrop(nn.Module):
    """Applies ShakeDrop to a residual branch; `generator` may be set after the module is moved
    (it must live on the same device as the input), None uses the device's default generator."""

    def __init__(self, p_survive: float, gate: str = "batch"):
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"shakedrop_gate={gate!r}: choose one of {', '.join(GATES)}")
        self.p_survive, self.gate = p_survive, gate
        self.generator: torch.Generator | None = None

    def forward(self, x):  # x (N, C, H, W)
        if not self.training:
            return x * self.p_survive  # the expected value of b + alpha - b*alpha
        d = draw_shakedrop(x.shape[0], self.p_survive, x.device, x.dtype, self.generator, self.gate)
        return ShakeDropFunction.apply(x, d["fwd_scale"], d["bwd_scale"])

    def extra_repr(self) -> str:
        return f"p_survive={self.p_survive:.4f}, gate={self.gate}"
