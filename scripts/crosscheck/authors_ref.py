"""The authors' side of the authors' cross-check: their code, imported and driven on the CPU in
float64, with every random number it draws recorded so that scaled can be handed the same ones.

Their code is the public DensoITLab/FOCA-v1 (the code the 2021 paper's numbers came from), found in
$FOCA_V1_DIR (default: ../shared/ref/FOCA-v1 beside the checkout); point FOCA_V1_DIR at your own
clone of it. Nothing of it is copied here: its modules are imported and its functions called
(`data_augment`, `train_classifier`, `init_weight`, `lr_schedule`, `valid`, `set_args`, the networks).
Its `train()` needs the CIFAR pickles and a GPU, so `run_theirs` writes out the loop it runs
(stage 1, then stage 2) around those functions.

Patches made while their functions run (`patched`), the smallest that let them run here:
  1. `Tensor.cuda(...)` is the identity, and casts floating tensors to float64: on their GPU it
     moves a batch to the device; here the comparison runs on the CPU in float64.
  2. Their ShakeDrop returns its input itself when the gate is open, and the block then adds the
     shortcut in place on that output, which current torch refuses ("Output 0 of
     ShakeDropFunction is a view and is being modified inplace"); such an output is cloned (the
     same values; their backward still runs).
Recording, which changes no number: their module's `np.random` and `random` are wrapped so each
draw is logged (`random.uniform` is computed as CPython defines it, a + (b - a) * random()),
init_weight and data_augment are wrapped to log the classifier init and the augmented batch, and
ShakeDrop's draws from torch's global generator are read back by replaying the generator from the
state before the call (checked to end in the very state their code left).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import math
import os
import random as _py_random
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .trace import CrossCheckError, Trace

REPO = Path(__file__).resolve().parents[2]


class ReferenceMissing(RuntimeError):
    """The authors' code is not where FOCA_V1_DIR says (tests skip with this message)."""


def reference_dir() -> Path:
    return Path(os.environ.get("FOCA_V1_DIR") or REPO.parent / "shared" / "ref" / "FOCA-v1")


@functools.lru_cache(maxsize=None)
def load():
    """-> namespace with their modules: .train (train.py), .wrn (wide_resnet.py), .pyr (pyramid_resnet.py)."""
    d = reference_dir()
    missing = [f for f in ("train.py", "wide_resnet.py", "pyramid_resnet.py") if not (d / f).is_file()]
    if missing:
        raise ReferenceMissing(f"the authors' code is not in {d} (no {', '.join(missing)}): set FOCA_V1_DIR "
                               "to a clone of github.com/DensoITLab/FOCA-v1")
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic  # train.py sets both at import
    sys.path.insert(0, str(d))  # train.py imports wide_resnet and pyramid_resnet by name
    try:
        wrn, pyr = importlib.import_module("wide_resnet"), importlib.import_module("pyramid_resnet")
        spec = importlib.util.spec_from_file_location("foca_v1_train", d / "train.py")
        train = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train)
    except ImportError as e:
        raise ReferenceMissing(f"the authors' train.py does not import here ({e}); it needs numpy, torch and scipy")
    finally:
        sys.path.remove(str(d))
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags
    return type("Reference", (), {"train": train, "wrn": wrn, "pyr": pyr, "dir": d})


def default_args(ref, **changes):
    """Their set_args() with an empty command line (the official defaults), then `changes`."""
    argv, sys.argv = sys.argv, ["train.py"]
    try:
        args = ref.train.set_args(0)
    finally:
        sys.argv = argv
    for k, v in changes.items():
        setattr(args, k, v)
    return args


# --- recording their draws -------------------------------------------------------------------------
class _NumpyRandom:
    def __init__(self, events):
        self._events = events

    def randint(self, low, high=None, size=None):
        v = np.random.randint(low, high, size)
        self._events.append(("np.randint", (low, high), np.array(v)))
        return v

    def __getattr__(self, name):
        return getattr(np.random, name)


class _Numpy:  # stands for `np` inside their train.py
    def __init__(self, events):
        self.random = _NumpyRandom(events)

    def __getattr__(self, name):
        return getattr(np, name)


class _Random:  # stands for `random` inside their train.py
    def __init__(self, events):
        self._events = events

    def random(self):
        u = _py_random.random()
        self._events.append(("random", (), u))
        return u

    def uniform(self, a, b):
        u = _py_random.random()
        self._events.append(("uniform", (a, b), u))
        return a + (b - a) * u  # CPython's definition of random.uniform

    def randint(self, a, b):
        k = _py_random.randint(a, b)
        self._events.append(("randint", (a, b), k))
        return k

    def __getattr__(self, name):
        return getattr(_py_random, name)


def _replayed(state) -> torch.Generator:
    g = torch.Generator()
    g.set_state(state)
    return g


def _same_state(g: torch.Generator, what: str) -> None:
    if not torch.equal(g.get_state(), torch.get_rng_state()):
        raise CrossCheckError(f"their {what} drew more from torch's generator than the harness read back")


@contextlib.contextmanager
def patched(ref, events: list | None, dtype=torch.float64):
    """Their functions with the patches and recorders of the module docstring, for the duration.
    events None: the two patches only, no recording, and .cuda() casts to `dtype` (the benchmark).
    events gets, in order: draws ("np.randint", "random", "uniform", "randint"), ("init", W) from
    init_weight, ("augment", n, [draws inside], output) from data_augment, ("shakedrop", record);
    run_theirs adds ("order", permutation) and renames the weak batch's augment "weak augment"."""
    tr, sd = ref.train, ref.pyr.ShakeDropFunction
    saved = dict(np=tr.np, random=tr.random, init_weight=tr.init_weight, data_augment=tr.data_augment,
                 cuda=torch.Tensor.cuda, fwd=sd.forward, bwd=sd.backward)

    def init_weight(args, net, optimizer):
        saved["init_weight"](args, net, optimizer)
        events.append(("init", [m.weight.detach().clone() for m in net.modules() if isinstance(m, torch.nn.Linear)][0]))

    def data_augment(args, image_org, length):
        start = len(events)
        out = saved["data_augment"](args, image_org, length)
        inside = events[start:]
        del events[start:]
        events.append(("augment", image_org.shape[0], inside, out.detach().clone()))
        return out

    def forward(ctx, x, training, p_drop, alpha_range):
        state = torch.get_rng_state()
        out = saved["fwd"](ctx, x, training, p_drop, alpha_range)
        ctx.record = {"gate": None}
        if training and events is not None:  # read back the gate (and alpha) their forward drew
            g = _replayed(state)
            gate = torch.zeros(1).bernoulli_(p_drop, generator=g)
            alpha = torch.zeros(x.shape[0]).uniform_(*alpha_range, generator=g) if gate.item() == 0 else None
            _same_state(g, "ShakeDrop forward")
            ctx.record = {"p": p_drop, "gate": gate.item(), "alpha": alpha, "beta": None, "n": x.shape[0]}
            events.append(("shakedrop", ctx.record))
        return out.clone() if out is x else out  # patch 2: no in-place add on an input returned as-is

    def backward(ctx, grad_output):
        state = torch.get_rng_state()
        grads = saved["bwd"](ctx, grad_output)
        if ctx.record["gate"] == 0 and events is not None:  # read back the beta their backward drew
            g = _replayed(state)
            ctx.record["beta"] = torch.rand(grad_output.shape[0], generator=g)
            _same_state(g, "ShakeDrop backward")
        return grads

    if events is not None:
        tr.np, tr.random, tr.init_weight, tr.data_augment = _Numpy(events), _Random(events), init_weight, data_augment
    torch.Tensor.cuda = lambda self, *a, **k: self.to(dtype) if self.is_floating_point() else self  # patch 1
    sd.forward, sd.backward = staticmethod(forward), staticmethod(backward)
    try:
        yield
    finally:
        tr.np, tr.random, tr.init_weight, tr.data_augment = (saved[k] for k in ("np", "random", "init_weight",
                                                                                 "data_augment"))
        torch.Tensor.cuda = saved["cuda"]
        sd.forward, sd.backward = staticmethod(saved["fwd"]), staticmethod(saved["bwd"])


# --- their run ---------------------------------------------------------------------------------------
def their_data(x_train, y_train, x_test, y_test, mean, std, n_c: int, co_length: int) -> dict:
    """Their `data` dict, built as their get_dataset builds it (/255, zero-pad 4 px, normalise per
    channel), in float32 like theirs, with the given statistics (ours, float32: the rows
    "normalisation statistics" check those against theirs separately). x: uint8 (N, 3, 32, 32)."""
    tr = torch.from_numpy(x_train).float() / 255  # (N, 3, 32, 32)
    padded = torch.zeros(len(tr), 3, 40, 40)
    padded[:, :, 4:-4, 4:-4] = tr  # (N, 3, 40, 40)
    te = torch.from_numpy(x_test).float() / 255
    for c in range(3):
        te[:, c] = (te[:, c] - mean[c]) / std[c]
        padded[:, c] = (padded[:, c] - mean[c]) / std[c]
    return {"train": {"input": padded, "label": torch.from_numpy(y_train), "num": len(tr)},
            "valid": {"input": te, "label": torch.from_numpy(y_test), "num": len(te)},
            "numClass": int(max(y_train.max(), y_test.max())) + 1, "sizeBatch_clf": n_c, "co_length": co_length}


def run_theirs(ref, args, data: dict, key: dict, seed: int = 0):
    """Their stage 1 and stage 2 as train() runs them, float64 on the CPU.
    key: their state-dict name ("fet.conv1.weight", "clf.classifier.bias") -> ours.
    -> (trace in our names, events, their initial state in our names)."""
    np.random.seed(seed)  # their numpy stream is never seeded; here it is, so the check repeats
    _py_random.seed(seed)
    torch.manual_seed(seed)
    nets = {"wide_resnet": (ref.wrn.Wide_ResNet_fet, ref.wrn.Wide_ResNet_clf),
            "pyramid_resnet": (ref.pyr.Pyramid_ResNet_fet, ref.pyr.Pyramid_ResNet_clf)}[args.network]
    with contextlib.redirect_stdout(io.StringIO()):  # their constructors print the network's name
        fet, clf = nets[0](args).double(), nets[1](args, data["numClass"]).double()
    net = {"fet": fet, "clf": clf, "device": None}
    opt = {"fet": torch.optim.SGD(fet.parameters(), lr=args.init_lr_fet, momentum=args.mr, weight_decay=args.wdr_fet,
                                  nesterov=args.flgNesterov),
           "clf": torch.optim.SGD(clf.parameters(), lr=args.lr_clf, momentum=args.mr, weight_decay=args.wdr_clf,
                                  nesterov=args.flgNesterov)}  # as their set_network makes them
    ours = lambda prefix, d: {key[f"{prefix}.{k}"]: v for k, v in d.items()}  # noqa: E731
    initial = {**ours("fet", fet.state_dict()), **ours("clf", clf.state_dict())}
    initial = {k: v.detach().clone() for k, v in initial.items()}
    feats = []
    fet.register_forward_hook(lambda m, i, out: feats.append(out.detach().clone()))
    events, trace, tr = [], Trace(), ref.train
    num, B = data["train"]["num"], args.sizeBatch
    steps = math.ceil(num / B)  # their sizeEpoch: the last partial batch is kept

    def batch(perm, b):
        idx = perm[b * B:(b + 1) * B]
        x = tr.data_augment(args, data["train"]["input"][idx], data["co_length"])  # float32 (B, 3, 32, 32)
        return x, x.cuda(), data["train"]["label"][idx]  # .cuda(): float64 here (patch 1)

    def step(phase, i, loss, which):
        """Their optimiser step on `which` ("fet" in stage 1, "clf" in stage 2), and what it leaves."""
        module = net[which]
        opt[which].zero_grad()
        loss.backward()
        opt[which].step()
        trace.add(phase, "loss", i, loss=loss)
        trace.add(phase, "gradients", i, **ours(which, {n: q.grad for n, q in module.named_parameters()}))
        trace.add(phase, "parameters", i, **ours(which, dict(module.named_parameters())))
        trace.add(phase, "BN running statistics", i, **ours("fet", dict(fet.named_buffers())))

    with patched(ref, events):
        it = 0
        for epoch in range(1, args.numEpoch_1st + 1):  # --- stage 1 ---
            perm = torch.randperm(num)
            events.append(("order", perm))
            tr.lr_schedule(args, opt, epoch - 1)
            for b in range(steps):
                it += 1
                i = it - 1
                if it % args.numTrainFet == 1:
                    tr.train_classifier(args, data, net, opt)
                    j = max(k for k, e in enumerate(events) if e[0] == "augment")
                    events[j] = ("weak augment", *events[j][1:])  # scaled augments it after the phi batch
                    w = clf.classifier
                    trace.add("stage 1", "augmented weak batch", i, x_c=events[j][3])
                    trace.add("stage 1", "weak-batch features", i, f_c=feats[-1])
                    trace.add("stage 1", "weak classifier", i, **{"weak W": w.weight, "weak b": w.bias})
                x32, x, t = batch(perm, b)
                trace.add("stage 1", "augmented batch", i, x=x32)
                step("stage 1", i, F.cross_entropy(clf(fet(x)), t), "fet")
            trace.add("stage 1", "learning rate", epoch - 1, lr=opt["fet"].param_groups[0]["lr"])
            trace.add("stage 1", "test error", epoch - 1, error=tr.valid(args, data, net)[1] / 100)
        tr.init_weight(args, clf, opt["clf"])  # --- stage 2 ---
        opt["clf"].param_groups[0]["lr"] = args.lr_clf_2nd
        i = 0
        for epoch in range(args.numEpoch_2nd):
            perm = torch.randperm(num)
            events.append(("order", perm))
            for b in range(steps):
                x32, x, t = batch(perm, b)
                trace.add("stage 2", "augmented batch", i, x=x32)
                with torch.no_grad():
                    f = fet(x)
                trace.add("stage 2", "features", i, f=f)
                step("stage 2", i, F.cross_entropy(clf(f), t), "clf")
                i += 1
            trace.add("stage 2", "test error", epoch, error=tr.valid(args, data, net)[1] / 100)
    return trace, events, initial

