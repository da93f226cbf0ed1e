"""scaled against the authors' code (DensoITLab/FOCA-v1), step by step, float64 on the CPU.

    python -m scripts.crosscheck --authors      # these rows only (make crosscheck-authors)

A tiny WRN (wrn-10-1) and a tiny PyramidNet + ShakeDrop (pyramidnet-11-8, random erasing), 32x32:
20 training images, n_f = 8 (steps of 8, 8 and the kept last 4), 2 epochs with the learning rate
cut after the first, R = 4 (refreshes at steps 1 and 5, one in each epoch), n_c = 12, the paper's 64
weak steps; then 2 stage-2 epochs and the test error after every epoch. Their side (authors_ref.py)
runs first, from their own initial weights and their own seeded generators, and logs every draw;
scaled then runs its own stage functions (train_foca, train_classifier) on a Run whose draw methods
replay those draws, from the same weights, in authors' mode (scaled/config.py FIDELITY), and every
row below compares what both computed:

    augmented batch, augmented weak batch, weak-batch features, weak classifier, loss, gradients,
    parameters and BN running statistics after each step, learning rate and test error per epoch;
    in stage 2: augmented batch, features, loss, gradients, classifier, BN statistics, test error

How draws are handed over: a permutation, the weak batch's indices and the classifier inits as they
are; each integer draw k in {0..n-1} of theirs (crop offsets, cutout centres, erased rectangle's
corner) as the uniform (k + 1/2) / n, which scaled's sampler maps back to k only when its range is
theirs (so a crop range of 0..8 instead of their 0..7 fails the row); their U[0, 1) draws (flip,
erasing's on/area/aspect) as they are; ShakeDrop's gate b as u = p/2 (b = 1) or (1 + p)/2 (b = 0),
alpha as (alpha + 1)/2, beta as it is. authors_checks.py adds the official hyperparameter defaults
against the authors'-mode presets, the learning-rate schedule over 600 epochs, and the
normalisation statistics.
"""
from __future__ import annotations

import contextlib
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

import scaled.foca as scaled_foca
import scaled.models.shakedrop as scaled_shakedrop
from scaled.augment import PRESETS as AUGMENT, draw_params
from scaled.engine import Run
from scaled.presets import PRESETS

from minifoca.config import apply_overrides

from . import authors_ref
from .trace import TOL, CrossCheckError, Row, Trace, compare

N_TRAIN, N_TEST, K = 20, 20, 10
# (name, their args, our preset and overrides)
NETS = [("wrn-10-1", dict(network="wide_resnet", depth=10, factor=1, flgCutout=True, flgRandomErasing=False),
         "wrn28-c10-foca", dict(model="wrn-10-1")),
        ("pyramidnet-11-8 + ShakeDrop", dict(network="pyramid_resnet", depth=11, factor=8, flgCutout=False,
                                             flgRandomErasing=True),
         "pyr272-c10-foca", dict(model="pyramidnet-11-8"))]
TINY = dict(epochs=2, milestones=(0.5,), n_f=8, n_c=12, refresh=4, stage2_epochs=2, stage2_batch=8, eval_every=1,
            device="cpu", precision="fp64", channels_last=False, compile=False, check_every=1, fidelity="authors")
THEIR_TINY = dict(numEpoch_1st=2, lr_step_schedule=[1], sizeBatch=8, numTrainFet=4, numEpoch_2nd=2, sizeBatch_valid=10)


def key_map(model: str, theirs: dict) -> dict:
    """Their state-dict names ("fet.layer1.0.conv1.weight", "clf.classifier.weight") -> ours."""
    depth = int(model.split("-")[1])
    per_stage = (depth - 4) // 6 if model.startswith("wrn") else (depth - 2) // 9

    def block(j):  # our block index -> their "layer<s>.<i>"
        return f"layer{int(j) // per_stage + 1}.{int(j) % per_stage}"

    branch = ["bn1", "conv1", "bn2", None, "conv2", "bn3", None, "conv3", "bn4"]  # PyramidNet branch index -> name
    rules = [(r"trunk\.conv\.(.*)", lambda m: f"fet.conv1.{m[1]}"),
             (r"trunk\.stem\.0\.(.*)", lambda m: f"fet.conv1.{m[1]}"),
             (r"trunk\.stem\.1\.(.*)", lambda m: f"fet.bn1.{m[1]}"),
             (r"trunk\.blocks\.(\d+)\.shortcut\.(.*)", lambda m: f"fet.{block(m[1])}.shortcut.0.{m[2]}"),
             (r"trunk\.blocks\.(\d+)\.(bn1|conv1|bn2|conv2)\.(.*)", lambda m: f"fet.{block(m[1])}.{m[2]}.{m[3]}"),
             (r"trunk\.blocks\.(\d+)\.branch\.(\d+)\.(.*)", lambda m: f"fet.{block(m[1])}.{branch[int(m[2])]}.{m[3]}"),
             (r"head\.bn\.(.*)", lambda m: f"fet.{'bn_out' if model.startswith('wrn') else 'bn_final'}.{m[1]}"),
             (r"head\.mlp\.(.*)", lambda m: f"fet.MLP.{m[1]}"),
             (r"classifier\.(.*)", lambda m: f"clf.classifier.{m[1]}")]
    out = {}
    for k in theirs:
        for pattern, name in rules:
            m = re.fullmatch(pattern, k)
            if m:
                out[name(m)] = k
                break
    return out


# --- our side -----------------------------------------------------------------------------------------
def _uniform(k, n):
    return (np.asarray(k, np.float64) + 0.5) / n  # the middle of bin k of n


def augment_uniforms(n: int, draws: list, args) -> dict:
    """Their draws inside one data_augment call (n images, in their order) -> scaled's named uniforms."""
    u = {"crop": np.full((2, n), 0.5), "flip": np.full(n, 0.5), "cutout": np.full((2, n), 0.5),
         "erase": np.full((4, n, 1), 0.5), "erase_on": np.full(n, 0.99)}  # 0.99: not erased
    pos = 0

    def take(kind):
        nonlocal pos
        if pos >= len(draws) or draws[pos][0] != kind:
            got = draws[pos][0] if pos < len(draws) else "nothing"
            raise CrossCheckError(f"their data_augment drew {got} where the harness expected {kind}")
        pos += 1
        return draws[pos - 1]

    for i in range(n):
        _, (_, hi), v = take("np.randint")
        u["crop"][:, i] = _uniform(v, hi)  # their offsets 0..hi-1
        u["flip"][i] = take("random")[2]
        if args.flgCutout:
            _, (_, hi), v = take("np.randint")
            u["cutout"][:, i] = _uniform(v, hi)
        elif args.flgRandomErasing:
            u["erase_on"][i] = on = take("random")[2]
            if on < 0.5:
                u["erase"][0, i, 0], u["erase"][1, i, 0] = take("uniform")[2], take("uniform")[2]
                if pos < len(draws) and draws[pos][0] == "randint":  # the rectangle fitted
                    for row in (2, 3):
                        _, (a, b), k = take("randint")
                        u["erase"][row, i, 0] = _uniform(k - a, b - a + 1)
    if pos != len(draws):
        raise CrossCheckError(f"their data_augment drew {len(draws) - pos} numbers the harness did not hand over")
    return {k: torch.from_numpy(v) for k, v in u.items()}


class ReplayRun(Run):
    """scaled's Run on the tiny .npz, in authors' mode, whose draw methods replay their draws and
    whose `track` records each step in our names (it is called right after each optimiser step)."""

    def __init__(self, cfg, args):
        super().__init__(cfg)
        self.args, self.trace, self.queues, self._weak = args, Trace(), {}, False
        self.count = {1: 0, 2: 0}

    def replay(self, events: list, initial: dict) -> None:
        for e in events:
            self.queues.setdefault(e[0], []).append(e)
        sd = self.net.state_dict()
        if set(initial) != set(sd):
            raise CrossCheckError(f"state-dict names differ: theirs only {sorted(set(initial) - set(sd))[:3]}, "
                                  f"ours only {sorted(set(sd) - set(initial))[:3]}")
        self.net.load_state_dict({k: v.to(sd[k].dtype) for k, v in initial.items()})  # identical start

    def pop(self, kind: str):
        if not self.queues.get(kind):
            raise CrossCheckError(f"scaled asked for a {kind} draw their code never made")
        return self.queues[kind].pop(0)

    def _order(self, n):
        return self.pop("order")[1]

    def _weak_indices(self, n_c):
        idx = torch.from_numpy(self.pop("np.randint")[2])
        if idx.shape != (n_c,):
            raise CrossCheckError(f"weak batch of {n_c} indices asked for; they drew {tuple(idx.shape)}")
        return idx

    def _augment_draws(self, n):
        _, m, draws, _ = self.pop("weak augment" if self._weak else "augment")
        if m != n:
            raise CrossCheckError(f"scaled augments a batch of {n}; their data_augment got {m}")
        u = augment_uniforms(n, draws, self.args)

        def uniform(name, shape):
            if tuple(u[name].shape) != tuple(shape):
                raise CrossCheckError(f"scaled asked for {name} draws of shape {tuple(shape)}, not {tuple(u[name].shape)}")
            return u[name]

        return draw_params(n, self.data.x_train.shape[2:], None, self.aug, uniform=uniform)

    def sample_weak_batch(self, n_c):
        self._weak = True
        try:
            return super().sample_weak_batch(n_c)
        finally:
            self._weak = False

    def _augmented(self, idx, n, lo=0, hi=None):
        x = super()._augmented(idx, n, lo, hi)
        stage, i = self.pos[0], self.count[self.pos[0]]
        self.trace.add(f"stage {stage}", "augmented weak batch" if self._weak else "augmented batch", i,
                       **{"x_c" if self._weak else "x": x})
        return x

    def track(self, loss):
        stage, i = self.pos[0], self.count[self.pos[0]]
        phase, p = f"stage {stage}", dict(self.net.named_parameters())
        own = {n: q for n, q in p.items() if (n.startswith("classifier.") == (stage == 2))}
        self.trace.add(phase, "loss", i, loss=loss)
        self.trace.add(phase, "gradients", i, **{n: q.grad for n, q in own.items()})
        self.trace.add(phase, "parameters", i, **own)
        self.trace.add(phase, "BN running statistics", i, **{n: b for n, b in self.net.named_buffers()})
        if stage == 1 and i % self.cfg.refresh == 0:
            self.trace.add(phase, "weak classifier", i, **{"weak W": self.theta["W"], "weak b": self.theta["b"]})
        self.count[stage] += 1
        super().track(loss)

    def end_epoch(self, stage, epoch, n, classifier, by="own classifier", every=None):
        super().end_epoch(stage, epoch, n, classifier, by, every)
        rec = self.records[-1]
        if stage == 1:
            self.trace.add("stage 1", "learning rate", epoch, lr=rec["lr"])
        self.trace.add(f"stage {stage}", "test error", epoch, error=rec["test_error"])


@contextlib.contextmanager
def replayed_inits_and_shakedrop(run: ReplayRun):
    """scaled.foca's classifier inits and ShakeDrop's draws come from their recorded ones, and
    compute_features records what it computes (both functions are looked up at call time)."""
    real = scaled_foca.init_classifier, scaled_foca.compute_features, scaled_shakedrop.draw_shakedrop

    def init_classifier(n_features, n_classes, std, gen, device, dtype=torch.float32):
        w = run.pop("init")[1].to(device, dtype)  # (K, D)
        if w.shape != (n_classes, n_features):
            raise CrossCheckError(f"classifier init {(n_classes, n_features)} asked for; theirs is {tuple(w.shape)}")
        return {"W": w, "b": torch.zeros(n_classes, device=device, dtype=dtype)}

    def compute_features(net, x):
        f = real[1](net, x)  # (N, D)
        stage, i = run.pos[0], run.count[run.pos[0]]
        run.trace.add(f"stage {stage}", "weak-batch features" if stage == 1 else "features", i,
                      **{"f_c" if stage == 1 else "f": f})
        return f

    def draw_shakedrop(n, p_survive, device, dtype, generator=None, gate="batch", uniform=None):
        r = run.pop("shakedrop")[1]
        if r["n"] != n or abs(r["p"] - p_survive) > 1e-12:
            raise CrossCheckError(f"ShakeDrop of {n} samples with p={p_survive} asked for; theirs had {r['n']}, p={r['p']}")
        u = torch.full((3, n), 0.5, dtype=torch.float64)
        u[0, 0] = r["p"] / 2 if r["gate"] == 1 else (1 + r["p"]) / 2
        if r["alpha"] is not None:
            u[1] = (r["alpha"].double() + 1) / 2
        if r["beta"] is not None:
            u[2] = r["beta"].double()
        return real[2](n, p_survive, device, dtype, generator, gate, uniform=u)

    scaled_foca.init_classifier, scaled_foca.compute_features, scaled_shakedrop.draw_shakedrop = (
        init_classifier, compute_features, draw_shakedrop)
    try:
        yield
    finally:
        scaled_foca.init_classifier, scaled_foca.compute_features, scaled_shakedrop.draw_shakedrop = real


def tiny_npz(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    path = folder / "tiny-authors.npz"
    np.savez(path, x_train=rng.integers(0, 256, (N_TRAIN, 32, 32, 3), dtype=np.uint8),
             y_train=rng.integers(0, K, N_TRAIN), x_test=rng.integers(0, 256, (N_TEST, 32, 32, 3), dtype=np.uint8),
             y_test=rng.integers(0, K, N_TEST))
    return path


def traces(their_args: dict, preset: str, ours: dict, **cfg_changes) -> tuple[Trace, Trace]:
    """(theirs, ours) for one tiny network. cfg_changes set scaled's config differently (the tests
    use them to show that a difference from the authors' behaviour is caught)."""
    ref = authors_ref.load()
    args = authors_ref.default_args(ref, **their_args, **THEIR_TINY)
    with tempfile.TemporaryDirectory(prefix="crosscheck_authors_") as tmp:
        over = {**TINY, **ours, "dataset": str(tiny_npz(Path(tmp))), **cfg_changes}
        cfg = apply_overrides(PRESETS[preset][0], [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                                                   for k, v in over.items()])
        run = ReplayRun(cfg, args)  # loads the data: the folder may go
    d = run.data
    data = authors_ref.their_data(d.x_train.numpy(), d.y_train.numpy(), d.x_test.numpy(), d.y_test.numpy(),
                                  d.mean, d.std, cfg.n_c, AUGMENT[cfg.augment].cutout // 2)
    theirs, events, initial = authors_ref.run_theirs(ref, args, data, key_map(cfg.model, run.net.state_dict()))
    run.replay(events, initial)
    with replayed_inits_and_shakedrop(run):
        scaled_foca.train_foca(run)  # stage 1
        scaled_foca.train_classifier(run)  # stage 2
    left = {k: len(v) for k, v in run.queues.items() if v}
    if left:
        raise CrossCheckError(f"their code drew {left} that scaled never asked for")
    return theirs, run.trace


def parity_rows(nets: tuple = ("wrn", "pyramidnet"), **cfg_changes) -> list[Row]:
    """One row per (network, stage, tensor kind): the largest relative difference over every step.
    nets: which of NETS to run (by the start of their names)."""
    rows = []
    for name, their_args, preset, ours in NETS:
        if not name.startswith(nets):
            continue
        try:
            theirs, mine = traces(their_args, preset, ours, **cfg_changes)
        except authors_ref.ReferenceMissing as e:
            return [Row("tiny WRN and PyramidNet, stages 1-2, every step", PAIR, math.nan, TOL, skipped=str(e))]
        except CrossCheckError as e:  # scaled consumed the draws differently: one failing row that says how
            rows.append(Row(f"{name}: draws handed over", PAIR, math.inf, TOL, str(e)))
            continue
        rows += compare(theirs, mine, PAIR, TOL, f"{name} (authors' mode)", per_step_scale=True)
    return rows


PAIR = "authors vs scaled"
