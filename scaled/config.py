"""scaled's one typed config. Field names are minifoca.config.Config's wherever the meaning is the
same (n_c, n_f, refresh, weak_*, stage2_*, finetune_*, lr, momentum, wd, schedule, milestones), so
the shared functions (minifoca.foca.compute_classifier, minifoca.optim.lr_at) accept either.
Presets, one per paper row, live in scaled/presets.py; `--key=value` overrides go through
minifoca.config.apply_overrides (types checked, unknown keys rejected).

Where scaled differs from the authors' code (DensoITLab/FOCA-v1, which the paper's numbers came
from), the difference is a field, listed in FIDELITY with both values and why ours exists. The
paper presets use the authors' values; `--fidelity=ours` (or `authors`) sets every one of them at
once, and a later `--key=value` still wins. What we never copy: selecting on the test set (their
stage 2 reports the minimum test error over its 5 epochs; we report the final epoch) and unseeded
randomness (their numpy stream is never seeded; every draw here comes from a seeded generator).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, replace

FROM_DATA = -1  # val_size, n_c, stage2_epochs, stage2_lr at -1: sized from the data once it is loaded (sized_to_data)


@dataclass
class ScaledConfig:
    CHOICES: typing.ClassVar[dict] = {
        "method": ("foca", "e2e"), "head": ("A", "B", "C", "D"),
        "schedule": ("constant", "step", "cosine", "wsd"), "finetune_schedule": ("constant", "step", "cosine"),
        "precision": ("bf16", "fp32", "fp64"), "wrn_block": ("authors", "zagoruyko"),
        "shakedrop_gate": ("batch", "sample"), "norm_stats": ("padded", "clean"),
        "crop_offsets": ("0..2P-1", "0..2P"), "last_batch": ("keep", "drop"),
        "erase_draw": ("authors", "torchvision"),
    }
    # One option that stands for several fields (minifoca.config.apply_overrides expands it in place).
    MACROS: typing.ClassVar[dict] = {}  # filled below from FIDELITY
    # Checked by minifoca.config.apply_overrides: >= 1, and >= 0.
    POSITIVE: typing.ClassVar[tuple] = ("epochs", "n_f", "n_c", "refresh", "weak_steps", "stage2_epochs",
                                        "stage2_batch", "eval_every", "eval_batch", "micro_batches",
                                        "check_every", "checkpoint_every", "few_label_draws", "lr", "weak_lr", "stage2_lr", "finetune_lr")
    FROM_DATA: typing.ClassVar[tuple] = ("val_size", "n_c", "stage2_epochs", "stage2_lr")  # may be -1 (FROM_DATA), the own presets
    NON_NEGATIVE: typing.ClassVar[tuple] = ("train_subset", "eval_subset", "finetune_epochs", "wd", "weak_wd",
                                            "momentum", "weak_momentum", "val_size", "threads", "image_size")
    # --- what runs -------------------------------------------------------------------------------
    method: str = "foca"  # foca (stages 1-2, optional 3) | e2e (the same network trained jointly)
    dataset: str = "cifar10"  # cifar10, cifar100, tinyimagenet, digits, cifar10-npz, PATH.npz, or imagefolder:PATH (class sub-folders)
    seed: int = 0  # seeds every generator (data order, augmentation, weak classifiers, init)
    data_dir: str = ""  # data folder; "" -> $FOCA_DATA
    download: bool = False  # fetch CIFAR / Tiny ImageNet with torchvision when missing (needs internet)
    image_size: int = 0  # imagefolder:PATH only: resize images to S x S (shorter side, centre crop); 0 keeps theirs
    # Held out of training for every choice (CIFAR: the last 5,000 images; Tiny ImageNet: the last
    # 10% of each class). 0 trains on every training image, as the authors did (the paper presets):
    # then nothing is chosen at all, and the per-epoch log records the test error for the curves.
    # -1: sized from the data (10% of the training images, at most 5,000; the own presets).
    val_size: int = 0
    train_subset: int = 0  # use only the first N training images (0 = all): smoke runs and tests
    eval_subset: int = 0  # evaluate on the first N val/test images (0 = all): smoke runs
    out_dir: str = "runs/scaled"  # each run writes a folder below this
    # --- network -----------------------------------------------------------------------------------
    model: str = "wrn-28-10"  # scaled.models.build_model name, or torchvision:NAME, timm:NAME, package.module:factory
    head: str = "D"  # Table 1 row: D = GAP -> 2-LP, the paper's "global features" head
    shakedrop: bool = False  # PyramidNet only
    wrn_block: str = "authors"  # stride on the 2nd conv, raw-input projection (FIDELITY); zagoruyko: WRN's own
    shakedrop_gate: str = "batch"  # one Bernoulli gate per mini-batch per block (authors); sample: per image
    augment: str = "cifar10"  # a scaled.augment.PRESETS name (cutout 16 for CIFAR-10), or auto: sized to the images
    norm_stats: str = "padded"  # mean/std over the zero-padded training images, padding included (authors)
    crop_offsets: str = "0..2P-1"  # crop positions drawn; the authors never reach the last one
    erase_draw: str = "authors"  # random erasing: one try, uniform aspect (authors) or torchvision's
    last_batch: str = "keep"  # an epoch ends with its partial batch (authors: 391 steps of 128 on 50k)
    # --- stage 1: phi (FOCA) or the whole network (E2E) ------------------------------------------
    epochs: int = 600  # docs/algorithm.md: 600 epochs for FOCA
    n_f: int = 128  # global minibatch for phi, epoch-wise shuffle
    lr: float = 0.03  # docs/algorithm.md
    momentum: float = 0.9  # Nesterov
    wd: float = 5e-4  # BN parameters too
    schedule: str = "step"  # constant | step (x lr_gamma at each milestone) | cosine; per epoch
    milestones: tuple[float, ...] = (0.5, 0.667, 0.833)  # fractions: epochs 300/400/500 of 600
    lr_gamma: float = 0.1  # lr factor at each milestone (the authors' lr_drop_rate)
    # --- the weak classifier (Algorithm 1) -----------------------------------------------------------
    n_c: int = 100  # ~10 per class (CIFAR-100: 1000); -1: 10 per class of the data
    refresh: int = 32  # R: the authors' code; 1 is Algorithm 1 as printed
    weak_steps: int = 64  # full-batch steps on the fixed features: never a trunk pass each
    weak_lr: float = 0.03  # ComputeClassifier's SGD learning rate (the authors' lr_clf)
    weak_momentum: float = 0.9  # Nesterov, also stage 2's
    weak_wd: float = 1e-2  # on W and b, also stage 2's (the authors' wdr_clf)
    weak_init_std: float = 0.1  # W ~ N(0, std^2), b = 0: every weak classifier and stage 2's start
    # --- stage 2: fresh classifier on frozen features --------------------------------------------
    stage2_epochs: int = 5  # the final-epoch error is reported (the authors print the minimum over these)
    stage2_lr: float = 0.003  # constant; -1: scaled to the data's size (sized_to_data says how)
    stage2_batch: int = 128  # with last_batch, as stage 1
    stage2_bn_train: bool = True  # BN batch statistics, as the authors' code; False: eval mode
    # --- stage 3: end-to-end fine-tuning after FOCA (our recipe; the paper publishes none) -------
    finetune_epochs: int = 0  # 0 skips stage 3
    finetune_lr: float = 1e-3  # a thirtieth of stage 1's lr: refine the stage-2 solution, do not restart
    finetune_schedule: str = "cosine"  # over finetune_epochs, to 0
    # --- evaluation --------------------------------------------------------------------------------
    eval_every: int = 10  # val (no val split: test, logged only) error every this many epochs, and at each stage end
    eval_batch: int = 1000  # images per evaluation forward pass: a memory setting, not part of the recipe
    # The few-label probe at the end (scaled/few_labels.py, minifoca's few_label_error): k labelled
    # training images per class on frozen features, for each k; few_label_error is the first k's.
    few_labels: tuple[int, ...] = (1, 5, 10)
    few_label_draws: int = 10  # random labelled sets averaged per k (minifoca's default)
    # --- runtime -----------------------------------------------------------------------------------
    device: str = "cuda"  # cuda | cpu | cuda:N; cpu only for smoke runs and tests
    threads: int = 0  # CPU threads for torch (0: torch's default); 1 when processes share the cores
    precision: str = "bf16"  # bf16 autocast (GPU), fp32, or fp64 (CPU parity tests)
    channels_last: bool = True  # memory format for convolutions on GPU (ignored on CPU)
    compile: bool = False  # torch.compile the network (pays off on long runs)
    sync_bn: bool = True  # under DDP on GPUs: BN statistics over the global batch, as on one GPU
    micro_batches: int = 1  # split each rank's batch into this many chunks (gradient accumulation)
    check_every: int = 50  # steps between checks for a non-finite loss (one host sync each)
    # Epochs between checkpoints (and always at a stage's last epoch); a resume redoes at most
    # checkpoint_every - 1 epochs and is still exact (WRN-28-10 writes ~290 MB per checkpoint).
    checkpoint_every: int = 1
    weak_graph: bool = True  # CUDA: ComputeClassifier's steps as one CUDA graph, bias folded (scaled/weak_graph.py)


# --- where scaled differs from the authors' code ---------------------------------------------------
# field -> (the authors' value, our value, why ours exists). docs/fidelity.md's table "where scaled differs
# from the authors' code" quotes these rows (python -m scaled.recipes renders them; tests/test_recipes.py holds the copy to them).
FIDELITY: dict[str, tuple] = {
    "wrn_block": ("authors", "zagoruyko",
                  "Zagoruyko's WRN (stride on the first conv, projection of the pre-activated input): "
                  "12% fewer conv MACs, the network the WRN and cutout papers report"),
    "shakedrop_gate": ("batch", "sample",
                       "a gate per image: the same expectation with less variance per step"),
    "val_size": (0, 5000, "a validation split, so that any choice is made without the test set"),
    "norm_stats": ("padded", "clean",
                   "statistics of the images themselves; the padded ones shrink the mean by 36% (32x32 of 40x40)"),
    "crop_offsets": ("0..2P-1", "0..2P", "every crop position, symmetric (theirs never shifts by +4)"),
    "erase_draw": ("authors", "torchvision",
                   "Zhong et al.'s and torchvision's law: up to 10 tries, log-uniform aspect"),
    "last_batch": ("keep", "drop", "equal batches, so every step has the same BN statistics and DDP splits evenly"),
    "stage2_bn_train": (True, False,
                        "stage 2 on the features the model is evaluated with (BN running statistics)"),
}
ScaledConfig.MACROS["fidelity"] = {
    "authors": {k: v[0] for k, v in FIDELITY.items()},
    "ours": {k: v[1] for k, v in FIDELITY.items()},
}


def fidelity(cfg: ScaledConfig) -> str:
    """"authors", "ours", or "mixed: <fields at our value>" (printed and saved with every run)."""
    ours = [k for k, (theirs, _, _) in FIDELITY.items() if getattr(cfg, k) != theirs]  # e.g. any val_size > 0
    if not ours:
        return "authors"
    return "ours" if len(ours) == len(FIDELITY) else "mixed: ours for " + ", ".join(ours)


def sized_to_data(cfg: ScaledConfig, val_size: int, n_train: int, k: int) -> ScaledConfig:
    """cfg with each field at FROM_DATA sized from the loaded data: val_size as load_dataset held out,
    n_c = 10 per class of the K classes, stage2_lr for n_train training images (after the val split)."""
    sized = {}
    if cfg.val_size == FROM_DATA:
        sized["val_size"] = val_size
    if cfg.n_c == FROM_DATA:
        sized["n_c"] = 10 * k  # the paper's ~10 per class: CIFAR-10 100, CIFAR-100 1000
    # The paper's stage 2 is lr 0.003 for 1,955 steps (5 epochs x 391 batches of 128 of CIFAR's 50,000
    # images): lr x steps = 5.9. Fewer steps take a proportionally larger lr, at most 0.05
    # (examples/foca_own_loop.py's stage-2 lr on 192 images); below 5.9 / 0.05 = 118 steps the lr cannot
    # grow further, so small data gets more epochs instead (a 20-class, 600-image folder got 15 steps
    # at 0.05 and its stage 2 stayed far from converged).
    per_epoch = max(1, n_train // cfg.stage2_batch if cfg.last_batch == "drop" else -(-n_train // cfg.stage2_batch))
    if cfg.stage2_epochs == FROM_DATA:
        sized["stage2_epochs"] = max(5, -(-118 // per_epoch))
    if cfg.stage2_lr == FROM_DATA:
        steps = sized.get("stage2_epochs", cfg.stage2_epochs) * per_epoch
        sized["stage2_lr"] = float(f"{min(0.05, 0.003 * 1955 / steps):.3g}")
    return replace(cfg, **sized)
