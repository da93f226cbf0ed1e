"""The toy demos' one typed config, its two presets (full for `make toy`, fast for the tests), and the
minifoca Config each training run is handed (minifoca's foca functions read Config's field names).

Nothing here was tuned to make FOCA look good: the spirals settings are the prototype's (issue text:
3-arm spirals, 500 train / 2000 test, noise 0.15, MLP 2-64-64-2, 2000 steps, R = 1, n_c = 20,
K = 64 weak steps); the rest are minifoca's defaults from docs/algorithm.md, or a stated choice.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from minifoca.config import Config


@dataclass
class ToyConfig:
    # --- what runs -------------------------------------------------------------------------------
    seeds: int = 5  # every claim is measured on seeds 0..seeds-1 and quoted as mean +- std
    backend: str = "numpy"  # numpy | cupy; randomness is drawn on the host either way
    dtype: str = "float64"  # the toys are tiny: float64 costs nothing and keeps the E2E-objective check exact
    jobs: int = 2  # seeds run in this many processes (2 cores -> 2); cupy forces 1
    # --- networks: F_phi = MLP(2, *hidden, 2) with a linear last layer, C_theta = Linear(2 -> K) ---
    hidden: tuple[int, ...] = (64, 64)  # the prototype's 2-64-64-2
    bn: bool = False  # plain [Linear(+bias) -> ReLU] hidden layers, as the prototype; --bn=true is a variant
    # --- stage 1 (both methods get the same steps, lr, schedule and weight decay) ------------------
    steps: int = 2000  # phi steps for the 2-D toys (the prototype's)
    n_c: int = 20  # examples per weak classifier (the prototype's; ~7-10 per class)
    refresh: int = 1  # R = 1: Algorithm 1 as printed, a new weak classifier every step
    weak_steps: int = 64  # K: ComputeClassifier's full-batch steps (docs/algorithm.md)
    track_every: int = 100  # steps between feature statistics for the collapse-over-training curve
    # --- part 2 data: 3-arm spirals, and digits with 2-D features for the picture -----------------
    spirals_train: int = 500  # the prototype's sizes
    spirals_test: int = 2000
    spirals_noise: float = 0.15  # std of the angle noise in radians (toy/data.py)
    digits: bool = True  # also train on scikit-learn digits with d = 2 (one seed: it is the picture)
    digits_hidden: tuple[int, ...] = (256, 256)  # minifoca's digits widths with D = 2
    digits_steps: int = 2000  # minifoca's digits setting
    digits_n_c: int = 100  # ~10 per class, as docs/algorithm.md's CIFAR-10 n_c = 100
    # --- part 1 data: a 2-class problem for co-adaptation -----------------------------------------
    coadapt_data: str = "moons"  # moons | circles | spirals2 (toy/data.py)
    coadapt_train: int = 500  # same sizes as the spirals
    coadapt_test: int = 2000
    coadapt_noise: float = 0.1  # scikit-learn's usual make_moons noise
    warp: float = 3.0  # the co-adapted case: features spread this many discriminative stds along the ignored direction
    warp_curve: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)  # amplitudes for the objective curve
    objective_draws: int = 32  # weak classifiers drawn to estimate FOCA's expected loss
    # --- probes of fragility (fixed before any run, not tuned) ------------------------------------
    few_labels: int = 1  # labels per class when the classifier is re-fitted on frozen features
    few_label_draws: int = 10  # random labelled sets averaged
    rotate_deg: float = 10.0  # the boundary is rotated by +- this many degrees about its centre
    noise_frac: float = 0.25  # feature noise std, as a fraction of the distance between the class means
    noise_draws: int = 5  # noise draws averaged


PRESETS = {
    "full": ToyConfig(),
    # The test suite's end-to-end run: every figure and the JSON, in a few seconds. Its numbers are
    # NOT the claims (too few steps and seeds); tests/test_toy.py checks the claims separately.
    "fast": ToyConfig(seeds=2, steps=150, track_every=50, spirals_train=300, spirals_test=600,
                      coadapt_train=300, coadapt_test=600, digits_steps=100, digits_hidden=(64, 64),
                      objective_draws=8, few_label_draws=3, noise_draws=2, warp_curve=(0.0, 1.0, 3.0)),
}


def minifoca_config(tc: ToyConfig, *, steps: int | None = None, n_c: int | None = None) -> Config:
    """The minifoca Config for one training run of the toys. Everything not set here is minifoca's
    default (docs/algorithm.md): phi SGD lr 0.03, Nesterov 0.9, wd 5e-4, lr x0.1 at 50/67/83% of
    training, n_f = 128, the weak classifier's init, lr and weight decay, stage 2 on frozen features."""
    return dataclasses.replace(
        Config(), backend=tc.backend, dtype=tc.dtype, bn=tc.bn, steps=steps or tc.steps,
        n_c=n_c or tc.n_c, refresh=tc.refresh, weak_steps=tc.weak_steps,
        eval_every=10**9,  # no validation error during training: the toys track feature statistics instead
        few_labels=tc.few_labels, few_label_draws=tc.few_label_draws)
