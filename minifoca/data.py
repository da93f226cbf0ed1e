"""Datasets for the MLP reference, as flat float arrays with a deterministic train/val/test split.

    digits   scikit-learn's 1,797 real 8x8 digits; fixed split 1,257 train / 180 val / 360 test
    fashion  Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files); last 5,000 train -> val
    cifar10  the arrays file ../shared/data/cifar10/unpack.py writes; last 5,000 train -> val,
             test = the 1,000 official test images it holds ("test1k")

The split never depends on the run's seed, so every method and seed sees the same examples, and
the test split is only read for the final report. Inputs are standardised with training-split
statistics.
"""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parent.parent


class DataError(RuntimeError):
    """A dataset is missing or damaged; the message says how to get it."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (N, D) float
    t_train: np.ndarray  # (N,) int64
    x_val: np.ndarray
    t_val: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    n_classes: int
    protocol: str  # what the test split is, stated next to every number


def data_root(data_dir: str = "") -> Path:
    """--data_dir, else $FOCA_DATA; the folder that holds cifar10/ and tiny-imagenet/."""
    root = data_dir or os.environ.get("FOCA_DATA", "")
    if not root:
        raise DataError("no data folder: pass --data_dir=PATH or set FOCA_DATA=PATH "
                        "(the folder with cifar10/ and tiny-imagenet/, e.g. ../shared/data)")
    if not Path(root).is_dir():
        raise DataError(f"data folder {root} does not exist (from --data_dir or FOCA_DATA)")
    return Path(root)


def cache_dir() -> Path:
    """Where derived files go ($FOCA_CACHE, default .cache/ in the repo); the data folder may be
    read-only."""
    d = Path(os.environ.get("FOCA_CACHE", REPO / ".cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def cifar10_arrays(data_dir: str = "") -> Path:
    """Path of the CIFAR-10 arrays .npz: <root>/cifar10.npz if present, else unpacked once from
    <root>/cifar10/*.npz parts with their unpack.py into the cache (about 3 s)."""
    root = data_root(data_dir)
    if (root / "cifar10.npz").is_file():
        return root / "cifar10.npz"
    unpack = root / "cifar10" / "unpack.py"
    if not unpack.is_file():
        raise DataError(f"no CIFAR-10 in {root}: expected cifar10.npz or cifar10/unpack.py with its parts")
    out = cache_dir() / "cifar10.npz"  # the parts' checksums are verified by unpack.py once
    if out.is_file():
        return out
    tmp = out.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: parallel loaders never collide
    res = subprocess.run([sys.executable, str(unpack), str(tmp)], capture_output=True, text=True)
    if res.returncode != 0:
        raise DataError(f"unpacking CIFAR-10 failed: {res.stderr.strip() or res.stdout.strip()}")
    os.replace(tmp, out)  # atomic: a killed unpack never leaves a half-written cache
    return out


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzip or plain."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\0\0" or raw[2] != 8:
        raise DataError(f"{path}: not an IDX file of uint8")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _standardise(x_train, *others):
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    return [(x - mean) / std for x in (x_train, *others)]


def _tail_split(x, t, val_size):
    if not 0 < val_size < len(x):
        raise DataError(f"val_size={val_size} must be between 1 and {len(x) - 1}")
    return x[:-val_size], t[:-val_size], x[-val_size:], t[-val_size:]


def load(name: str, data_dir: str = "", val_size: int = 180) -> Dataset:
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("digits needs scikit-learn: pip install scikit-learn") from None

        d = load_digits()
        order = np.random.default_rng(0).permutation(len(d.target))  # fixed: not the run seed
        x, t = d.data[order].astype(np.float64) / 16.0, d.target[order].astype(np.int64)
        x_tv, t_tv, x_te, t_te = x[:-360], t[:-360], x[-360:], t[-360:]
        protocol = "digits: fixed 360-image test split"
    elif name == "fashion":
        if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
            raise DataError(f"Fashion-MNIST not found in {FASHION_DIR}: "
                            "apt-get install dataset-fashion-mnist (make setup does it as root)")
        rd = lambda s: read_idx(FASHION_DIR / f"{s}-ubyte.gz")  # noqa: E731
        x_tv = rd("train-images-idx3").reshape(60000, -1) / 255.0
        t_tv = rd("train-labels-idx1").astype(np.int64)
        x_te, t_te = rd("t10k-images-idx3").reshape(10000, -1) / 255.0, rd("t10k-labels-idx1").astype(np.int64)
        protocol = "fashion: official 10,000-image test set"
    elif name == "cifar10":
        z = np.load(cifar10_arrays(data_dir))
        x_tv, t_tv = z["x_train"].reshape(len(z["x_train"]), -1) / 255.0, z["y_train"].astype(np.int64)
        x_te, t_te = z["x_test"].reshape(len(z["x_test"]), -1) / 255.0, z["y_test"].astype(np.int64)
        protocol = ("cifar10: test1k (first 1,000 official test images)" if len(t_te) == 1000
                    else f"cifar10: {len(t_te)} official test images")
    else:
        raise DataError(f"unknown dataset {name!r}: choose digits, fashion or cifar10")
    x_tr, t_tr, x_va, t_va = _tail_split(x_tv, t_tv, val_size)
    x_tr, x_va, x_te = _standardise(x_tr, x_va, x_te)
    return Dataset(name, x_tr, t_tr, x_va, t_va, x_te, t_te, int(t_tv.max()) + 1, protocol)
