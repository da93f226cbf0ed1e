"""scaled's one typed config. Field names are minifoca.config.Config's wherever the meaning is the
same (n_c, n_f, refresh, weak_*, stage2_*, finetune_*, lr, momentum, wd, schedule, milestones), so
the shared functions (minifoca.foca.compute_classifier, minifoca.optim.lr_at) accept either.
Presets, one per paper row, live in scaled/presets.py; `--key=value` overrides go through
minifoca.config.apply_overrides (types checked, unknown keys rejected).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass


@dataclass
class ScaledConfig:
    CHOICES: typing.ClassVar[dict] = {
        "method": ("foca", "e2e"), "head": ("A", "B", "C", "D"),
        "schedule": ("constant", "step", "cosine"), "finetune_schedule": ("constant", "step", "cosine"),
        "precision": ("bf16", "fp32", "fp64"),
    }
    # Checked by minifoca.config.apply_overrides: >= 1, and >= 0.
    POSITIVE: typing.ClassVar[tuple] = ("epochs", "n_f", "n_c", "refresh", "weak_steps", "stage2_epochs",
                                        "stage2_batch", "eval_every", "eval_batch", "micro_batches",
                                        "check_every", "val_size", "lr", "weak_lr", "stage2_lr", "finetune_lr")
    NON_NEGATIVE: typing.ClassVar[tuple] = ("train_subset", "eval_subset", "finetune_epochs", "wd", "weak_wd",
                                            "momentum", "weak_momentum")
    # --- what runs -------------------------------------------------------------------------------
    method: str = "foca"  # foca (stages 1-2, optional 3) | e2e (the same network trained jointly)
    dataset: str = "cifar10"  # a scaled.data name: cifar10, cifar100, tinyimagenet, cifar10-npz, *.npz
    seed: int = 0  # seeds every generator (data order, augmentation, weak classifiers, init)
    data_dir: str = ""  # data folder; "" -> $FOCA_DATA
    download: bool = False  # fetch CIFAR / Tiny ImageNet with torchvision when missing (needs internet)
    val_size: int = 5000  # held out of training for every choice (CIFAR: the last 5,000 images); >= 1
    train_subset: int = 0  # use only the first N training images (0 = all): smoke runs and tests
    eval_subset: int = 0  # evaluate on the first N val/test images (0 = all): smoke runs
    out_dir: str = "runs/scaled"  # each run writes a folder below this
    # --- network -----------------------------------------------------------------------------------
    model: str = "wrn-28-10"  # scaled.models.build_model name
    head: str = "D"  # Table 1 row: D = GAP -> 2-LP, the paper's "global features" head
    shakedrop: bool = False  # PyramidNet only
    augment: str = "cifar10"  # a scaled.augment.PRESETS name (cutout 16 for CIFAR-10)
    # --- stage 1: phi (FOCA) or the whole network (E2E) ------------------------------------------
    epochs: int = 600  # docs/FOCA.md: 600 epochs for FOCA
    n_f: int = 128  # global minibatch for phi, epoch-wise shuffle
    lr: float = 0.03  # docs/FOCA.md
    momentum: float = 0.9  # Nesterov
    wd: float = 5e-4  # BN parameters too
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.667, 0.833)  # fractions: epochs 300/400/500 of 600
    lr_gamma: float = 0.1
    # --- the weak classifier (Algorithm 1) -----------------------------------------------------------
    n_c: int = 100  # ~10 per class (CIFAR-100: 1000)
    refresh: int = 32  # R: the authors' code; 1 is Algorithm 1 as printed
    weak_steps: int = 64  # full-batch steps on the fixed features: never a trunk pass each
    weak_lr: float = 0.03
    weak_momentum: float = 0.9
    weak_wd: float = 1e-2
    weak_init_std: float = 0.1
    # --- stage 2: fresh classifier on frozen features --------------------------------------------
    stage2_epochs: int = 5
    stage2_lr: float = 0.003
    stage2_batch: int = 128
    stage2_bn_train: bool = False  # True: BN batch statistics, as the authors' code; False: eval mode
    # --- stage 3: end-to-end fine-tuning after FOCA (our recipe; the paper publishes none) -------
    finetune_epochs: int = 0  # 0 skips stage 3
    finetune_lr: float = 1e-3  # a thirtieth of stage 1's lr: refine the stage-2 solution, do not restart
    finetune_schedule: str = "cosine"
    # --- evaluation --------------------------------------------------------------------------------
    eval_every: int = 10  # validation error every this many stage-1 epochs, and at every stage end
    eval_batch: int = 1000
    # --- runtime -----------------------------------------------------------------------------------
    device: str = "cuda"  # cuda | cpu | cuda:N; cpu only for smoke runs and tests
    precision: str = "bf16"  # bf16 autocast (GPU), fp32, or fp64 (CPU parity tests)
    channels_last: bool = True  # memory format for convolutions on GPU (ignored on CPU)
    compile: bool = False  # torch.compile the network (pays off on long runs)
    sync_bn: bool = True  # under DDP on GPUs: BN statistics over the global batch, as on one GPU
    micro_batches: int = 1  # split each rank's batch into this many chunks (gradient accumulation)
    check_every: int = 50  # steps between checks for a non-finite loss (one host sync each)
