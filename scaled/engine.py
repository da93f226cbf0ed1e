"""The run machinery under scaled/foca.py's stages: data on the device, generators, checkpoints,
exact resume, logging, evaluation and DDP. One Run per training run.

Determinism: every random number comes from four generators seeded from cfg.seed: "data" (CPU:
epoch permutations and the weak classifier's n_c sample), "aug" (device: augmentation draws for
the whole global batch), "weak" (device: classifier inits) and "shake" (device, per rank:
ShakeDrop, reseeded every epoch from (seed, rank, stage, epoch)). A checkpoint every
checkpoint_every epochs (and at every stage's end) holds them all with the model, the optimiser, the
current weak classifier and the metrics so far, so `--resume` continues a killed run exactly
(on CPU the final metrics equal an uninterrupted run's bit for bit: tests/test_scaled_engine.py).
Checkpoints hold only tensors and plain data and are loaded onto the CPU with weights_only=True
(load_checkpoint): a checkpoint written on a GPU resumes on any device, and a run folder from
someone else cannot execute code. Across device types (a CUDA checkpoint resumed on the CPU, or back)
the device generators cannot continue (a CUDA state is not a CPU one): they are reseeded from (seed,
stage, epoch), said on stderr and in the summary ("resume_reseeded"); on the same device type the
resume stays exact.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import pickle
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from minifoca.foca import NonFiniteLoss
from minifoca.metrics import feature_stats

from . import dist, interrupt
from .augment import apply_params, draw_params, get as augment_config, normalize
from .config import sized_to_data
from .data import channel_stats, default_val_size, load_dataset
from .few_labels import few_label_error, label_sets
from .models import build_model
from .progress import Progress

CHECKPOINT = "checkpoint.pt"


def load_checkpoint(path) -> dict:
    """A checkpoint with every tensor on the CPU: generator states must be CPU tensors whatever the
    run's device (map_location=device put them on the GPU, and set_rng_state raised TypeError);
    Run._restore moves the rest. weights_only=True: tensors, dicts, lists, tuples, numbers, strings."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds more than tensors and plain data ({str(e).splitlines()[0][:150]}); "
                         "scaled.engine did not write it: start the run afresh") from None
    except EOFError:
        raise ValueError(f"{path} is truncated: start the run afresh") from None


class Phi(nn.Module):
    """F_phi alone (trunk + head) as a module, so DDP in stage 1 of FOCA sees exactly the
    parameters that get gradients (the classifier is unused there)."""

    def __init__(self, net):
        super().__init__()
        self.trunk, self.head = net.trunk, net.head

    def forward(self, x):
        return self.head(self.trunk(x))  # (N, D)


class Run:
    def __init__(self, cfg, resume_from: Path | None = None):
        """resume_from: a run folder whose checkpoint to continue. The caller sets `rundir` (a
        minifoca.runlog.RunDir, rank 0 only) before training; without one nothing is written."""
        self.cfg, self.rundir = cfg, None
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("no CUDA GPU on this machine: the paper presets need one; "
                               "--device=cpu runs only the smoke presets in reasonable time")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.rank, self.world, self.device = dist.init(cfg.device)
        if cfg.n_f % (self.world * cfg.micro_batches) or cfg.stage2_batch % (self.world * cfg.micro_batches):
            raise ValueError(f"n_f={cfg.n_f} and stage2_batch={cfg.stage2_batch} must divide into "
                             f"{self.world} ranks x {cfg.micro_batches} micro-batches")
        self.dtype = torch.float64 if cfg.precision == "fp64" else torch.float32
        cuda = self.device.startswith("cuda")
        self.memory_format = torch.channels_last if cuda and cfg.channels_last else torch.contiguous_format
        torch.backends.cudnn.benchmark = cuda
        self._load_data()
        torch.manual_seed(cfg.seed)  # the network's initial weights
        self.net = build_model(cfg.model, self.num_classes, cfg.head, self.data.image_size, cfg.shakedrop,
                               wrn_block=cfg.wrn_block, shakedrop_gate=cfg.shakedrop_gate,
                               in_channels=self.data.x_train.shape[1])  # probes the data's shape: ValueError
        if self.world > 1 and cuda and cfg.sync_bn:  # (gloo on CPU has no SyncBatchNorm: BN per rank)
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
        self.net.to(self.device, self.dtype, memory_format=self.memory_format)
        self.gens = {name: torch.Generator(dev).manual_seed(cfg.seed * 1000 + i + (self.rank if name == "shake" else 0))
                     for i, (name, dev) in enumerate([("data", "cpu"), ("aug", self.device),
                                                      ("weak", self.device), ("shake", self.device)])}
        self.net.set_generator(self.gens["shake"])
        self.theta, self.step, self.pos, self.records, self.results = None, 0, (1, 0), [], {}
        self._modules, self.opt, self._opt_state, self.seconds = {}, None, None, 0.0
        self._tic = time.perf_counter()
        # what rank 0 prints per epoch (scaled/progress.py); the checkpoint on disk (None: none yet)
        self.progress, self.saved_pos = Progress("auto" if self.rank == 0 else "quiet"), None
        if resume_from is not None:
            self._restore(load_checkpoint(Path(resume_from) / CHECKPOINT))

    # --- data ----------------------------------------------------------------------------------------
    def _load_data(self):
        cfg = self.cfg
        d = load_dataset(cfg.dataset, cfg.data_dir, val=cfg.val_size != 0, device=self.device, download=cfg.download,
                         val_size=cfg.val_size if cfg.val_size > 0 else None, image_size=cfg.image_size)
        n_all = len(d.y_train) + (0 if d.y_val is None else len(d.y_val))  # before the val split
        self.aug = dataclasses.replace(augment_config(cfg.augment, d.image_size), crop_offsets=cfg.crop_offsets,
                                       erase_draw=cfg.erase_draw)
        if cfg.norm_stats == "padded":  # the authors': over the zero-padded training images (docs/algorithm.md)
            d.mean, d.std = channel_stats(d.x_train, pad=self.aug.pad, unbiased=True)
        if cfg.train_subset:
            d.x_train, d.y_train = d.x_train[:cfg.train_subset], d.y_train[:cfg.train_subset]
        if cfg.eval_subset:
            d.x_test, d.y_test = d.x_test[:cfg.eval_subset], d.y_test[:cfg.eval_subset]
            if d.x_val is not None:
                d.x_val, d.y_val = d.x_val[:cfg.eval_subset], d.y_val[:cfg.eval_subset]
        if cfg.train_subset or cfg.eval_subset:  # say so next to every number
            d.protocol += (f"; subsets: first {len(d.y_train):,} training images, first "
                           f"{len(d.y_test):,} val/test images" if cfg.eval_subset else
                           f"; subset: first {len(d.y_train):,} training images")
        # the own presets' fields at -1 (FROM_DATA), sized now; config.json records the sized values
        self.cfg = cfg = sized_to_data(cfg, default_val_size(cfg.dataset, n_all), len(d.y_train), d.num_classes)
        if len(d.y_train) < max(cfg.n_f, cfg.stage2_batch):
            raise ValueError(f"{len(d.y_train)} training images are fewer than one batch (n_f={cfg.n_f}, "
                             f"stage2_batch={cfg.stage2_batch}): pass --n_f and --stage2_batch of at most "
                             f"{len(d.y_train)}" + (", or raise --train_subset" if cfg.train_subset else ""))
        for name, batch in (("n_f", cfg.n_f), ("stage2_batch", cfg.stage2_batch)):
            rest = len(d.y_train) % batch  # a kept last batch is split over ranks and micro-batches
            if cfg.last_batch == "keep" and 0 < rest < 2 * self.world * cfg.micro_batches:
                raise ValueError(f"{len(d.y_train)} training images leave a last batch of {rest} for {name}={batch}: "
                                 f"too few for BatchNorm on {self.world} x {cfg.micro_batches} chunks; pass "
                                 "--last_batch=drop or change train_subset")
        self.data, self.num_classes = d, d.num_classes

    def _prepare(self, x):
        return x.to(self.dtype).contiguous(memory_format=self.memory_format)

    def batches(self, batch: int):
        """One epoch of the epoch-wise shuffle; its last partial batch kept or dropped (cfg.last_batch).
        Yields this rank's slice of each global batch, augmented, as a list of micro-batches [(x, t), ...]."""
        y_all, n = self.data.y_train, len(self.data.y_train)
        perm = self._to_device(self._order(n))  # same on every rank
        keep = self.cfg.last_batch == "keep"
        tic, steps = time.perf_counter(), -(-n // batch) if keep else n // batch
        bar = self.progress.bar(steps, f"stage {self.pos[0]} epoch {self.pos[1] + 1}")
        for i in bar:
            interrupt.check(self.device, self.step, self.cfg.check_every)  # SIGINT/SIGTERM: stop before this step
            g = perm[i * batch:(i + 1) * batch]  # (B,) the global batch; shorter only as a kept last one
            lo, hi = self.rank * len(g) // self.world, (self.rank + 1) * len(g) // self.world
            idx = g[lo:hi]  # (B / world,)
            x = self._augmented(idx, len(g), lo, hi)  # (B / world, C, H, W)
            m = self.cfg.micro_batches
            yield list(zip(x.chunk(m), y_all[idx].chunk(m)))
            bar.set_postfix(img_s=f"{min(n, (i + 1) * batch) / (time.perf_counter() - tic):.0f}", refresh=False)
        self._epoch_images = n if keep else steps * batch

    def steps_per_epoch(self, batch: int) -> int:
        """Optimiser steps in one epoch of batches(batch)."""
        n = len(self.data.y_train)
        return -(-n // batch) if self.cfg.last_batch == "keep" else n // batch

    def sample_weak_batch(self, n_c: int):
        """SampleMinibatch(d, n_c): uniform WITH replacement, augmented like training data; the
        same draws on every rank (the whole batch, not a slice)."""
        idx = self._to_device(self._weak_indices(n_c))  # (n_c,)
        return self._augmented(idx, n_c), self.data.y_train[idx]

    def _to_device(self, idx):
        """Host-drawn indices to the device without draining the GPU's queue: a plain .to(cuda)
        from pageable memory blocks until the copy is done; from pinned memory it is queued."""
        if not self.device.startswith("cuda"):
            return idx.to(self.device)
        return idx.pin_memory().to(self.device, non_blocking=True)

    # The run's random draws, one method each, so that a cross-check can replay another program's.
    def _order(self, n: int):
        return torch.randperm(n, generator=self.gens["data"])  # (n,) this epoch's order

    def _weak_indices(self, n_c: int):
        return torch.randint(len(self.data.y_train), (n_c,), generator=self.gens["data"])  # (n_c,)

    def _augment_draws(self, n: int) -> dict:
        x_all = self.data.x_train
        return draw_params(n, x_all.shape[2:], self.gens["aug"], self.aug, x_all.shape[1])

    def _augmented(self, idx, n: int, lo: int = 0, hi: int | None = None):
        """Training images idx, augmented with the draws made for all n images of the global batch
        and sliced [lo:hi]: every rank draws the same numbers and applies its own part."""
        p = {k: v[lo:hi] for k, v in self._augment_draws(n).items()}
        return self._prepare(apply_params(self.data.x_train[idx], p, self.aug, self.data.mean, self.data.std))

    # --- modules, optimisers, precision -----------------------------------------------------------------
    def module(self, name: str):
        """"phi" (trunk + head), "net" (logits) or "classifier", DDP-wrapped when distributed."""
        if name not in self._modules:
            base = {"phi": lambda: Phi(self.net), "net": lambda: self.net,
                    "classifier": lambda: self.net.classifier}[name]()
            if self.cfg.compile and name != "classifier":
                base = torch.compile(base)
            self._modules = {name: dist.wrap(base, self.device)}  # one DDP wrapper at a time
        return self._modules[name]

    def optimizer(self, stage: int):
        """Stage 1 FOCA: phi's parameters; E2E and stage 3: all; stage 2: the classifier's."""
        cfg, net = self.cfg, self.net
        if stage == 2:
            params, lr, wd = net.classifier.parameters(), cfg.stage2_lr, cfg.weak_wd
            mom = cfg.weak_momentum
        else:
            params = Phi(net).parameters() if stage == 1 and cfg.method == "foca" else net.parameters()
            lr, wd, mom = (cfg.lr if stage == 1 else cfg.finetune_lr), cfg.wd, cfg.momentum
        self.opt = torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd, nesterov=True)
        if self._opt_state is not None and self._opt_state[0] == stage:  # resumed inside this stage
            self.opt.load_state_dict(self._opt_state[1])
            self._opt_state = None  # kept until its own stage asks: earlier stages pass through first
        return self.opt

    @staticmethod
    def set_lr(opt, lr: float) -> None:
        for g in opt.param_groups:
            g["lr"] = lr

    def autocast(self):
        if self.cfg.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    # --- epochs, tracking, checkpoints ---------------------------------------------------------------
    def epochs(self, stage: int, n: int):
        """The epochs of `stage` still to run (all of them, or the rest after a resume)."""
        if self.pos[0] > stage:
            return
        start = self.pos[1] if self.pos[0] == stage else 0
        self.pos = (stage, start)
        self._losses, self._first_bad = [], None
        for epoch in range(start, n):
            self.pos, self._train_tic = (stage, epoch), time.perf_counter()
            # ShakeDrop's stream is per rank; reseeding it from (seed, rank, stage, epoch) makes a
            # resumed run exact on every rank without saving every rank's generator state.
            self.gens["shake"].manual_seed(((self.cfg.seed * 7919 + self.rank) * 10 + stage) * 100003 + epoch)
            yield epoch
        self.pos = (stage + 1, 0)

    def starting(self, stage: int) -> bool:
        """True when `stage` begins now (not resumed in its middle)."""
        return self.pos[0] < stage or self.pos == (stage, 0)

    def track(self, loss) -> None:
        """Keeps the step's loss on the device; looks for a non-finite one every check_every steps."""
        self.step += 1
        self._losses.append(loss)
        if self.step % self.cfg.check_every == 0:
            self._check_finite()

    def _check_finite(self):
        if not self._losses:
            return
        vals = torch.stack(self._losses).float().cpu()  # one host sync
        bad = (~torch.isfinite(vals)).nonzero()
        if len(bad):
            step = self.step - len(vals) + int(bad[0]) + 1
            raise NonFiniteLoss(f"stage {self.pos[0]}: loss is {float(vals[bad[0]])} at step {step} "
                                f"(epoch {self.pos[1] + 1}); lower the learning rate or check the data")

    def end_epoch(self, stage: int, epoch: int, n: int, classifier, by: str = "own classifier", every=None):
        """Closes an epoch: the record (loss, lr, time, and every eval_every epochs the error of
        `classifier` on val, or on test when the run has no validation split: logged for the learning
        curve, never used to choose anything), the checkpoint, the log line."""
        self._check_finite()
        loss = dist.all_reduce_sum(torch.stack(self._losses).sum().float()) / (self.world * len(self._losses))
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        train_s = time.perf_counter() - self._train_tic
        lr = self.opt.param_groups[0]["lr"]
        rec = {"stage": stage, "epoch": epoch + 1, "step": self.step, "lr": lr, "train_loss": float(loss),
               "train_seconds": round(train_s, 3), "images_per_s": round(self._epoch_images / train_s, 1)}
        if classifier is not None and ((epoch + 1) % (every or self.cfg.eval_every) == 0 or epoch + 1 == n):
            split, tic = "val" if self.data.x_val is not None else "test", time.perf_counter()
            rec[f"{split}_error"], rec[f"{split}_error_by"] = self.evaluate(classifier, split), by
            rec["eval_seconds"] = round(time.perf_counter() - tic, 3)  # for the time models (scripts/studies/budget.py)
        self._losses = []
        self.records.append(rec)
        self.pos = (stage, epoch + 1)
        self.seconds += self.lap()
        saved = (epoch + 1) % self.cfg.checkpoint_every == 0 or epoch + 1 == n
        if saved:
            tic = time.perf_counter()
            self._save()
            # in the log line (the checkpoint just written holds the record without it)
            rec["checkpoint_seconds"] = round(time.perf_counter() - tic, 3)
        if self.rank == 0 and self.rundir is not None:
            self.rundir.log(rec)
        self.progress.epoch(rec, n, self.seconds)
        try:
            interrupt.check(self.device, self.step, every=0)  # a signal during the epoch's end: keep it
        except interrupt.Interrupted:
            if not saved:
                self._save()
            raise
        if os.environ.get("FOCA_TEST_KILL_AFTER") == str(len(self.records)):  # tests: crash right here
            os.kill(os.getpid(), signal.SIGKILL)

    def lap(self) -> float:
        """Seconds since the last lap (or the start); the run's total `seconds` sums the laps."""
        now = time.perf_counter()
        lap, self._tic = now - self._tic, now
        return lap

    def _save(self):
        if self.rank != 0 or self.rundir is None:
            return
        state = {"pos": self.pos, "step": self.step, "net": self.net.state_dict(), "opt_stage": self.pos[0],
                 "opt": self.opt.state_dict(), "theta": self.theta, "records": self.records,
                 "results": self.results, "seconds": self.seconds,
                 "gens": {k: g.get_state() for k, g in self.gens.items()}, "torch_rng": torch.get_rng_state()}
        path = Path(self.rundir.path) / CHECKPOINT
        torch.save(state, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)  # atomic: a kill never leaves half a checkpoint
        self.saved_pos = self.pos

    def _restore(self, s: dict):
        self.net.load_state_dict(s["net"])
        self.pos, self.step = tuple(s["pos"]), s["step"]
        self.theta = None if s["theta"] is None else {k: v.to(self.device) for k, v in s["theta"].items()}
        # copies: the notes and records this run adds must not reach the caller's checkpoint dict
        self.records, self.results = copy.deepcopy(s["records"]), copy.deepcopy(s["results"])
        self.seconds = s["seconds"]
        self._opt_state = (s["opt_stage"], s["opt"])  # optimizer.load_state_dict moves it to the device
        other = []  # generators whose saved state is another device type's (a CUDA state is 16 bytes, a CPU one 5056)
        for i, (k, g) in enumerate(self.gens.items()):
            state = s["gens"][k].cpu()  # a CUDA generator's state is a CPU tensor too
            if state.numel() == g.get_state().numel():
                g.set_state(state)
            else:  # no CPU stream continues a CUDA one (nor back): a fresh stream, seeded from where the run stands
                g.manual_seed(((self.cfg.seed * 7919 + 1000 + i) * 10 + self.pos[0]) * 100003 + self.pos[1])
                other.append(k)
        torch.set_rng_state(s["torch_rng"].cpu())
        if other:
            note = (f"generators {', '.join(other)} reseeded from (seed {self.cfg.seed}, stage {self.pos[0]}, "
                    f"epoch {self.pos[1]}): the checkpoint was written on another device type, so this run "
                    "continues, but not exactly as the uninterrupted run would")
            self.results.setdefault("resume_reseeded", []).append(note)  # in summary.json and the last line
            if self.rank == 0:
                print(f"note: {note}", file=sys.stderr)

    # --- evaluation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, split: str):
        """Eval-mode features of a whole split, (N, D) float32, and its labels."""
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        return self.features_of(x), y

    @torch.no_grad()
    def features_of(self, x):
        """Eval-mode features (N, D) of stored images x (N, C, H, W), normalised as for evaluation."""
        self.net.eval()
        out = []
        for i in range(0, len(x), self.cfg.eval_batch):
            with self.autocast():
                xb = self._prepare(normalize(x[i:i + self.cfg.eval_batch], self.data.mean, self.data.std))
                out.append(self.net.compute_features(xb).to(self.dtype))
        self.net.train()
        return torch.cat(out)

    def evaluate(self, classifier, split: str) -> float:
        """Error of `classifier` (an nn.Linear or a {"W", "b"} weak classifier) on `split`."""
        if getattr(self.data, f"x_{split}") is None:
            return float("nan")
        f, y = self.features(split)
        with torch.no_grad():
            logits = classifier(f) if isinstance(classifier, nn.Module) else f @ classifier["W"].T + classifier["b"]
        return int((logits.argmax(1) != y).sum()) / len(y)  # exact: wrong / all

    def few_label_probe(self, f_test, y_test) -> dict:
        """scaled/few_labels.py on the finished network: k labelled training images per class for each
        k in cfg.few_labels -> {"few_label_error": error at the first k, "few_label_errors": {k: error}}.
        Its own generators (seeded from the seed), so no training stream moves and a resume repeats it."""
        cfg, y_train = self.cfg, self.data.y_train
        if not cfg.few_labels:
            return {}
        pick = torch.Generator().manual_seed(cfg.seed * 1000 + 90)
        init = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + 91)
        errs = {}
        fewest = int(torch.bincount(y_train.cpu(), minlength=self.num_classes).min())
        for k in cfg.few_labels:
            if k > fewest:  # a small subset: not measured, rather than a crash after training
                errs[str(k)] = None
                continue
            sets = label_sets(y_train, self.num_classes, k, cfg.few_label_draws, pick)  # draws x (K * k,)
            used = torch.unique(torch.cat(sets))  # only these training images need features
            where = torch.empty(len(y_train), dtype=torch.long)
            where[used] = torch.arange(len(used))
            f_used = self.features_of(self.data.x_train[used.to(y_train.device)])  # (U, D)
            errs[str(k)] = few_label_error(f_used, y_train[used.to(y_train.device)], f_test, y_test,
                                           self.num_classes, cfg, [where[s] for s in sets], init)
        return {"few_label_error": errs[str(cfg.few_labels[0])], "few_label_errors": errs}

    def report(self, prefix: str = "") -> dict:
        """Final-epoch errors of net.classifier (never selected on test), and test-feature statistics.
        val_error is None when the run has no validation split (val_size=0, the authors' protocol)."""
        val = None if self.data.x_val is None else self.evaluate(self.net.classifier, "val")
        out = {f"{prefix}val_error": val, f"{prefix}test_error": self.evaluate(self.net.classifier, "test")}
        if not prefix:
            f, y = self.features("test")
            out.update(feature_stats(f.double().cpu().numpy(), y.cpu().numpy()))
            out.update(self.few_label_probe(f, y))
            if self.rank == 0 and self.rundir is not None:
                np.savez(Path(self.rundir.path) / "features_test.npz", f=f.half().cpu().numpy(), t=y.cpu().numpy())
        return out
