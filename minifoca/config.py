"""minifoca's one typed config, its presets, and the `--key=value` override parser (shared by scaled).

Every field says why it has its default. Presets are small named instances; `--key=value`
overrides are converted to the field's type and an unknown key is an error, never a new key.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from .cli import fields, unknown


@dataclass
class Config:
    # Fields with a fixed set of values; apply_overrides rejects anything else.
    CHOICES: typing.ClassVar[dict] = {
        "dataset": ("digits", "fashion", "cifar10"), "method": ("foca", "e2e"),
        "backend": ("numpy", "cupy"), "dtype": ("float32", "float64"),
        "schedule": ("constant", "step", "cosine", "wsd"), "finetune_schedule": ("constant", "step", "cosine"),
    }
    # Numeric fields that must be >= 1 (counts, sizes, learning rates) or >= 0; checked by apply_overrides.
    POSITIVE: typing.ClassVar[tuple] = ("steps", "n_f", "n_c", "refresh", "weak_steps", "stage2_epochs",
                                        "stage2_batch", "eval_every", "few_labels", "few_label_draws",
                                        "val_size", "threads", "lr", "weak_lr", "stage2_lr", "finetune_lr")
    NON_NEGATIVE: typing.ClassVar[tuple] = ("finetune_epochs", "wd", "weak_wd", "momentum", "weak_momentum")
    # --- what runs -------------------------------------------------------------------------------
    dataset: str = "digits"  # digits | fashion | cifar10 (flattened for an MLP)
    method: str = "foca"  # foca (Algorithm 1 + stage 2) | e2e (the same network, jointly trained)
    seed: int = 0  # one NumPy Generator seeded with this draws every random number of the run
    backend: str = "numpy"  # numpy | cupy (same numbers: randomness is drawn on the host)
    dtype: str = "float32"  # float32 for runs; the gradient tests use float64
    data_dir: str = ""  # root of the real data (cifar10/ inside); "" -> $FOCA_DATA
    val_size: int = 180  # validation examples held out of the training split (digits: 10%)
    out_dir: str = "runs/minifoca"  # each run writes a folder below this
    threads: int = 1  # BLAS threads; 1 is fastest for these small matrices (threads spin and contend)
    # --- network: F_phi = [Linear -> BN -> ReLU] x L, C_theta = Linear(D -> K) with bias ----------
    widths: tuple[int, ...] = (256, 256, 32)  # hidden widths then feature dim D (input dim from data)
    bn: bool = True  # BN in F_phi (Table 1 row B: it helps FOCA); False -> Linear with bias
    init_std: float = 0.0  # F_phi weight init std; 0 -> He normal sqrt(2/fan_in) (ReLU MLP)
    # --- stage 1, the phi update (Algorithm 1 line 7) ---------------------------------------------
    steps: int = 2000  # phi steps n_i (the digits setting)
    n_f: int = 128  # minibatch for phi, epoch-wise shuffle (docs/algorithm.md default)
    lr: float = 0.03  # phi SGD learning rate (docs/algorithm.md)
    momentum: float = 0.9  # Nesterov momentum (docs/algorithm.md)
    wd: float = 5e-4  # phi weight decay, BN parameters too (docs/algorithm.md)
    schedule: str = "step"  # constant | step | cosine
    milestones: tuple[float, ...] = (0.5, 0.667, 0.833)  # fractions of training: 300/400/500 of 600
    lr_gamma: float = 0.1  # lr factor at each milestone
    # --- the weak classifier (Algorithm 1 lines 4-6) ----------------------------------------------
    n_c: int = 100  # examples per weak classifier, sampled with replacement (~10 per class)
    refresh: int = 1  # R: a new weak classifier every R phi steps; 1 is the paper, 32 the code
    weak_steps: int = 64  # full-batch steps of ComputeClassifier (docs/algorithm.md)
    weak_lr: float = 0.03  # ComputeClassifier SGD lr (docs/algorithm.md)
    weak_momentum: float = 0.9  # Nesterov (docs/algorithm.md)
    weak_wd: float = 1e-2  # on W and b (docs/algorithm.md)
    weak_init_std: float = 0.1  # W ~ N(0, 0.1^2), b = 0 (docs/algorithm.md)
    # --- stage 2: a fresh classifier on frozen features, all training data ------------------------
    stage2_epochs: int = 50  # the paper's 5 epochs of 390 steps; digits has 9 steps per epoch
    stage2_lr: float = 0.003  # docs/algorithm.md, constant
    stage2_batch: int = 128  # docs/algorithm.md
    stage2_bn_train: bool = False  # True: BN batch statistics as the authors' code; False: eval mode
    # --- stage 3: end-to-end fine-tuning after FOCA (our recipe; the paper publishes none) -------
    finetune_epochs: int = 0  # 0 skips stage 3
    finetune_lr: float = 1e-3  # small: start from the stage-2 solution, do not destroy it
    finetune_schedule: str = "cosine"  # stage 3's lr schedule: constant | step | cosine (from finetune_lr to 0)
    # --- evaluation ------------------------------------------------------------------------------
    eval_every: int = 20  # evaluate val error every this many epochs of stage 1 (and at the end)
    few_labels: int = 1  # labels per class for the few-label probe of the frozen features
    few_label_draws: int = 10  # random labelled sets averaged for that probe


PRESETS: dict[str, Config] = {
    "digits": Config(),
    "fashion": Config(dataset="fashion", val_size=5000, widths=(512, 512, 64), steps=6000,
                      stage2_epochs=5, eval_every=2),
    "cifar10": Config(dataset="cifar10", val_size=5000, widths=(1024, 512, 128), steps=6000,
                      stage2_epochs=5, eval_every=2),
}
# What each preset is for (`--help` prints these beside the fields each one changes).
ABOUT: dict[str, str] = {
    "digits": "scikit-learn's 8x8 digits, fixed 1,257 / 180 / 360 split: the issue's setting, seconds on a CPU",
    "fashion": "Fashion-MNIST 60k/10k, 784 inputs; the last 5,000 training images for validation",
    "cifar10": "CIFAR-10 flattened: an MLP is a weak model here (about 40-45% error); it exercises the loader",
}


# --- overrides -----------------------------------------------------------------------------------
def _convert(raw: str, typ, key: str):
    """'raw' -> a value of the field's type; a ValueError naming the option when it is not one."""
    is_tuple = typing.get_origin(typ) is tuple
    item = typing.get_args(typ)[0] if is_tuple else typ
    bools = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        if typ is bool:
            return bools[raw.lower()]
        if is_tuple:
            return tuple(item(v) for v in raw.split(",") if v.strip())
        return typ(raw)
    except (KeyError, ValueError):
        kind = f"comma-separated list of {item.__name__}" if is_tuple else typ.__name__
        raise ValueError(f"--{key}={raw!r} is not a valid {kind}") from None


def apply_overrides(cfg, args: list[str], known=(), hide=()):
    """Return a copy of dataclass `cfg` with `--key=value` args applied (types checked); a bare
    `--flag` sets a bool field to true. Raises ValueError naming the key for an unknown key (with
    the close ones, among the fields and `known`, the caller's own options, less `hide`), a missing value
    or a bad one.
    A class may define MACROS = {option: {value: {field: value, ...}}}: such an option sets all
    those fields where it stands, so a later --key=value still wins (scaled's --fidelity)."""
    hints = fields(type(cfg))
    macros = getattr(type(cfg), "MACROS", {})
    changes = {}
    for arg in args:
        if not arg.startswith("--"):
            raise ValueError(f"unexpected argument {arg!r}: options are --key=value or --key value")
        key, eq, raw = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in hints and key not in macros:
            raise ValueError(unknown(key, [k for k in [*hints, *macros, *known] if k not in hide]))
        if not eq and hints.get(key) is not bool:
            raise ValueError(f"--{key} needs a value: --{key}=VALUE or --{key} VALUE")
        if key in macros:
            if raw not in macros[key]:
                raise ValueError(f"--{key}={raw!r}: choose one of {', '.join(macros[key])}")
            changes.update(macros[key][raw])
            continue
        changes[key] = _convert(raw if eq else "true", hints[key], key)
        allowed = getattr(type(cfg), "CHOICES", {}).get(key)
        if allowed and changes[key] not in allowed:
            raise ValueError(f"--{key}={raw!r}: choose one of {', '.join(allowed)}")
    out = dataclasses.replace(cfg, **changes)
    check(out)
    return out


def check(cfg) -> None:
    """ValueError naming the first field out of range (the classes' POSITIVE / NON_NEGATIVE lists;
    tuples of ints, e.g. widths, must be non-empty and positive)."""
    cls = type(cfg)
    sized = {n for n in getattr(cls, "FROM_DATA", ()) if getattr(cfg, n) == -1}  # -1: sized from the data later
    for name in getattr(cls, "POSITIVE", ()):
        if not getattr(cfg, name) > 0 and name not in sized:
            raise ValueError(f"--{name}={getattr(cfg, name)}: must be > 0")
    for name in getattr(cls, "NON_NEGATIVE", ()):
        if getattr(cfg, name) < 0 and name not in sized:
            raise ValueError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    widths = getattr(cfg, "widths", None)
    if widths is not None and (not widths or min(widths) < 1):
        raise ValueError(f"--widths={','.join(map(str, widths))}: needs at least one width, all >= 1")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


