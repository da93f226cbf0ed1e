"""Image datasets for scaled/: the whole uint8 dataset as (N, C, H, W) tensors on the device.

    from scaled.data import load_dataset
    ds = load_dataset("cifar10", data_dir="", val=True, device="cuda")   # data_dir "" -> $FOCA_DATA
    ds.x_train  # (N, 3, 32, 32) uint8 on the device; ds.y_train (N,) int64; also x_val/y_val, x_test/y_test
    ds.mean, ds.std   # (3,) float32 per-channel statistics of the training split, in [0, 1] units
    ds.protocol       # what val and test are; print it next to every number

Augmentation and normalisation run batched on the device (scaled/augment.py).

Names and where they are looked for under the data folder (--data_dir, else $FOCA_DATA):

    cifar10       cifar-10-batches-py/ (the official python folder, what torchvision downloads), else
                  the project's shared copy (cifar10.npz, or cifar10/ parts unpacked once into the cache
                  by minifoca.data.cifar10_arrays: all 50,000 training images, 1,000 test images)
    cifar100      cifar-100-python/ (official python folder; fine labels)
    tinyimagenet  tiny-imagenet-200/ or tiny-imagenet-200.zip, also inside tiny-imagenet/ (the shared
                  subset tiny-imagenet/tiny-imagenet-200-subset.zip); JPEGs decoded once with PIL and
                  cached as .npz under minifoca.data.cache_dir(). The labelled official val set is the
                  test split here (the official test labels are not public); classes in wnids.txt order.
    cifar10-npz   the shared CIFAR-10 arrays file only; any path ending in .npz: an arrays file with
                  x_train, y_train, x_test, y_test (what cifar10/unpack.py writes); images uint8 of any
                  channel count: (N, H, W) grayscale, (N, H, W, C) or (N, C, H, W), square
    imagefolder:PATH  class sub-folders of image files (torchvision's ImageFolder layout, with train/
                  and val/ or test/ when present), decoded once into the cache (scaled/imagefolder.py)

`download=True` fetches CIFAR-10/100 with torchvision (and the Tiny ImageNet zip from its official
address) into the data folder when nothing is found there. The official CIFAR pickles are read
here rather than through torchvision's Dataset classes, which reject any file whose MD5 differs
from the official one (and so the small files a test writes in the same format).

Validation (val=True): CIFAR and .npz hold out the LAST val_size (5,000) training images; Tiny
ImageNet and image folders, whose training images are ordered by class, hold out the last share of
each class (val_size None: default_val_size, 10% of the training images, at most 5,000 except for
Tiny ImageNet). The test split is always loaded, for the final report only. Any missing or wrong path raises one
DataError saying what was looked for and how to fix it.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minifoca.data import DataError, cache_dir, cifar10_arrays, data_root

NAMES = ("cifar10", "cifar100", "tinyimagenet", "digits", "cifar10-npz", "<path>.npz", "imagefolder:<path>")
TIN_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


@dataclass
class Splits:
    name: str
    x_train: torch.Tensor  # (N, C, H, W) uint8 on the device
    y_train: torch.Tensor  # (N,) int64
    x_val: torch.Tensor | None  # (V, C, H, W) uint8, None when val=False
    y_val: torch.Tensor | None  # (V,)
    x_test: torch.Tensor  # (T, C, H, W) uint8
    y_test: torch.Tensor  # (T,)
    mean: torch.Tensor  # (C,) float32, per-channel mean of x_train / 255 (channel_stats)
    std: torch.Tensor  # (C,) float32, per-channel std of x_train / 255
    num_classes: int
    image_size: int  # H = W
    protocol: str  # "val: ...; test: ..." stated next to every number

    def describe(self) -> str:
        n_val = 0 if self.x_val is None else len(self.x_val)
        return (f"{self.name}: {len(self.x_train):,} train / {n_val:,} val / {len(self.x_test):,} test, "
                f"{self.num_classes} classes, {self.image_size}x{self.image_size}"
                + (f", {self.x_train.shape[1]} channel{'s' * (self.x_train.shape[1] > 1)}" if self.x_train.shape[1] != 3 else "") + f", on {self.x_train.device}; "
                f"{self.protocol}")


# --- readers: each returns uint8 (N, C, H, W) numpy arrays and int64 labels ----------------------
def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")  # the official files are Python 2 pickles


def _read_cifar_folder(folder: Path, c100: bool) -> tuple:
    """The official cifar-10-batches-py / cifar-100-python folder -> x_tr, y_tr, x_te, y_te."""
    train_files = ["train"] if c100 else [f"data_batch_{i}" for i in range(1, 6)]
    missing = [f for f in train_files + ["test" if c100 else "test_batch"] if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}; expected the official python version "
                        "of CIFAR (pass download=True / --download to fetch it)")
    key = "fine_labels" if c100 else "labels"  # CIFAR-100's 100-way labels

    def read(files):
        parts = [_unpickle(folder / f) for f in files]
        x = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32)  # rows are channel-major
        return x, np.concatenate([np.asarray(p[key], np.int64) for p in parts])

    return (*read(train_files), *read(["test" if c100 else "test_batch"]))


def _read_npz(path: Path) -> tuple:
    z = np.load(path)
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
    if missing:
        raise DataError(f"{path}: no {', '.join(sorted(missing))}; an arrays file needs x_train, "
                        "y_train, x_test, y_test")
    xs = [channels_first(z[k], f"{path}: {k}") for k in ("x_train", "x_test")]
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise DataError(f"{path}: x_train images are {xs[0].shape[1:]} but x_test's {xs[1].shape[1:]} (C, H, W)")
    return xs[0], z["y_train"].astype(np.int64), xs[1], z["y_test"].astype(np.int64)


def channels_first(x: np.ndarray, what: str) -> np.ndarray:
    """uint8 images of any channel count -> (N, C, H, W): (N, H, W) is grayscale (C = 1); a 4-D
    array is (N, H, W, C) when its axes 1 and 2 are the square side, else (N, C, H, W)."""
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataError(f"{what} is {x.dtype} {x.shape}; expected uint8 (N, H, W), (N, H, W, C) or (N, C, H, W)")
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.shape[1] == x.shape[2] and x.shape[3] != x.shape[2]:
        x = x.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if x.shape[2] != x.shape[3]:
        raise DataError(f"{what} is {x.shape}: images must be square (H = W); crop or resize them")
    return x


def _read_digits() -> tuple:
    """scikit-learn's 8x8 digits as 1x8x8 uint8 images (0..16 scaled to 0..255), split exactly as
    minifoca.data.load("digits"): the same fixed permutation, the last 360 for test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))  # minifoca's fixed split
    x = np.round(d.images[order] * (255 / 16)).astype(np.uint8)[:, None]  # (1797, 1, 8, 8)
    t = d.target[order].astype(np.int64)
    return x[:-360], t[:-360], x[-360:], t[-360:]


def _tin_source(root: Path, download: bool) -> Path:
    """The Tiny ImageNet folder or zip under root (see the module docstring for the places)."""
    places = [root / "tiny-imagenet-200", root / "tiny-imagenet-200.zip", root / "tiny-imagenet" /
              "tiny-imagenet-200", root / "tiny-imagenet" / "tiny-imagenet-200.zip",
              root / "tiny-imagenet" / "tiny-imagenet-200-subset.zip", root]
    for p in places:
        if (p.is_dir() and (p / "wnids.txt").is_file()) or (p.is_file() and zipfile.is_zipfile(p)):
            return p
    if download:
        from torchvision.datasets.utils import download_and_extract_archive
        download_and_extract_archive(TIN_URL, str(root))
        return root / "tiny-imagenet-200"
    raise DataError(f"no Tiny ImageNet in {root}: expected tiny-imagenet-200/ (with wnids.txt) or "
                    "tiny-imagenet-200.zip there or in tiny-imagenet/ (or pass --download)")


def _read_tinyimagenet(src: Path) -> tuple:
    """Decode every JPEG of the official layout (folder or zip) once; cache the arrays as .npz.
    Returns the arrays and the number of classes (wnids.txt's length: 200 for the official set)."""
    from PIL import Image

    stat = src.stat() if src.is_file() else (src / "wnids.txt").stat()
    tag = hashlib.sha1(f"{src.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    cached = cache_dir() / f"tinyimagenet-{tag}.npz"
    if cached.is_file():
        return _read_npz(cached), len(np.load(cached)["wnids"])
    if src.is_file():
        zf = zipfile.ZipFile(src)
        names = zf.namelist()
        top = next((n[: -len("wnids.txt")] for n in names if n.endswith("wnids.txt")), None)
        if top is None:
            raise DataError(f"{src}: no wnids.txt inside; expected the official tiny-imagenet-200 layout")
        read = lambda rel: zf.read(top + rel)  # noqa: E731
        listing = [n[len(top):] for n in names if n.startswith(top)]
    else:
        read = lambda rel: (src / rel).read_bytes()  # noqa: E731
        listing = [p.relative_to(src).as_posix() for p in src.glob("train/*/images/*.JPEG")]
    try:
        wnids = read("wnids.txt").decode().split()
        ann = [line.split("\t")[:2] for line in read("val/val_annotations.txt").decode().splitlines() if line]
    except (KeyError, FileNotFoundError) as e:
        raise DataError(f"{src}: {e}; expected wnids.txt and val/val_annotations.txt (official layout)") from None
    label = {w: i for i, w in enumerate(wnids)}
    index = lambda rel: int(rel.rsplit("_", 1)[1].split(".")[0])  # noqa: E731  n01443537_12.JPEG -> 12
    train = sorted((label[rel.split("/")[1]], index(rel), rel) for rel in listing
                   if rel.startswith("train/") and rel.endswith(".JPEG"))
    val = [(label[w], "val/images/" + f) for f, w in ann]

    def decode(rels):
        x = np.stack([np.asarray(Image.open(io.BytesIO(read(r))).convert("RGB")) for r in rels])
        if x.shape[1:] != (64, 64, 3):
            raise DataError(f"{src}: images are {x.shape[1:]}, expected 64x64x3")
        return x  # (N, 64, 64, 3); a few official images are greyscale, hence convert("RGB")

    if not train:
        raise DataError(f"{src}: no train/<wnid>/images/*.JPEG found")
    arrays = dict(x_train=decode([r for _, _, r in train]), y_train=np.array([c for c, _, _ in train]),
                  x_test=decode([r for _, r in val]), y_test=np.array([c for c, _ in val]), wnids=np.array(wnids))
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: parallel loaders never collide
    np.savez(tmp, **arrays)
    tmp.replace(cached)  # atomic: a killed run never leaves a half-written cache
    return _read_npz(cached), len(wnids)


def _shared_cifar10(root: Path) -> Path:
    """The project's shared CIFAR-10 copy under root, unpacked once into the cache."""
    # Checked here because cifar10_arrays falls back to an unpacked cache from ANY earlier root,
    # which would hide a wrong --data_dir.
    if not ((root / "cifar10.npz").is_file() or (root / "cifar10" / "unpack.py").is_file()):
        raise DataError(f"no CIFAR-10 in {root}: expected cifar-10-batches-py/ (official), cifar10.npz or "
                        "cifar10/unpack.py with its parts (the shared copy); or pass --download")
    return cifar10_arrays(str(root))


# --- the one entry point ---------------------------------------------------------------------------
def channel_stats(x: torch.Tensor, pad: int = 0, unbiased: bool = False) -> tuple:
    """Per-channel mean and std of uint8 (N, C, H, W) in [0, 1] units, as float32 (C,) tensors,
    summed in float64 in chunks (no float copy of the dataset).

    pad > 0 counts a zero border of `pad` px per side as pixels, and unbiased divides by m - 1:
    together the authors' statistics, which their code takes with torch.mean / torch.std over the
    zero-padded (H + 2P) x (W + 2P) training images (`norm_stats="padded"`)."""
    N, C, H, W = x.shape
    s = torch.zeros(C, dtype=torch.float64, device=x.device)
    s2 = torch.zeros_like(s)
    for i in range(0, N, 4096):
        c = x[i:i + 4096].double() / 255.0  # (n, C, H, W)
        s += c.sum(dim=(0, 2, 3))
        s2 += (c * c).sum(dim=(0, 2, 3))
    m = N * (H + 2 * pad) * (W + 2 * pad)  # pixels per channel, the zero border included
    mean = s / m
    var = (s2 - m * mean * mean).clamp_min(0.0) / (m - 1 if unbiased else m)
    return mean.float(), var.sqrt().float()


def _val_indices(y: np.ndarray, val_size: int, per_class: bool) -> np.ndarray:
    """Boolean mask of held-out training images: the last val_size, or the last share of each class."""
    if not 0 < val_size < len(y):
        raise DataError(f"--val_size={val_size}: the data has {len(y):,} training images, so hold out between 1 "
                        f"and {len(y) - 1:,} (--val_size=-1: 10% of them; --val_size=0: no validation split)")
    mask = np.zeros(len(y), bool)
    if not per_class:
        mask[-val_size:] = True
        return mask
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        mask[idx[len(idx) - max(1, round(len(idx) * val_size / len(y))):]] = True
    return mask


def default_val_size(name: str, n: int) -> int:
    """Held out when no val_size is given: Tiny ImageNet 10% (of each class); else 10%, at most 5,000 (CIFAR's)."""
    return n // 10 if name == "tinyimagenet" else min(5000, n // 10)


def load_dataset(name: str, data_dir: str = "", val: bool = True, device="cpu", download: bool = False,
                 val_size: int | None = None, image_size: int = 0) -> Splits:
    """Load `name` (see the module docstring) onto `device`; raises DataError on a missing dataset.
    image_size: imagefolder only, the side every image is resized to (0: keep their common size)."""
    if name.startswith("imagefolder:"):
        from .imagefolder import read_imagefolder

        arrays, k, test = read_imagefolder(name.partition(":")[2], image_size)
    elif name.endswith(".npz"):
        path = Path(name)
        if not path.is_file():
            raise DataError(f"arrays file {path} does not exist")
        arrays, k, test = _read_npz(path), None, f"test: {path.name} x_test"
    elif name == "digits":  # shipped with scikit-learn: no data folder needed
        arrays, k, test = _read_digits(), 10, "test: digits' fixed 360-image split (as minifoca)"
    else:
        root = data_root(data_dir)
        if name in ("cifar10", "cifar100"):
            folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
            k = 10 if name == "cifar10" else 100
            if not folder.is_dir() and name == "cifar10" and not download:
                arrays = _read_npz(_shared_cifar10(root))
            else:
                if not folder.is_dir() and not download:
                    raise DataError(f"no {name} in {root}: expected {folder.name}/ there (or pass --download)")
                if not folder.is_dir():
                    import torchvision.datasets as tvd
                    (tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100)(str(root), download=True)
                arrays = _read_cifar_folder(folder, c100=name == "cifar100")
            n_test = len(arrays[3])
            test = ("test1k: first 1,000 official test images" if n_test == 1000
                    else f"test: {n_test:,} official test images")
        elif name == "cifar10-npz":
            arrays, k, test = _read_npz(_shared_cifar10(root)), 10, "test1k: first 1,000 official test images"
        elif name == "tinyimagenet":
            arrays, k = _read_tinyimagenet(_tin_source(root, download))
            test = f"test: official val set ({len(arrays[3]):,} images)"
        else:
            raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(NAMES)}")
    x_tr, y_tr, x_te, y_te = arrays
    k = k or int(max(y_tr.max(), y_te.max())) + 1
    per_class = name == "tinyimagenet" or name.startswith("imagefolder:")  # images ordered by class
    protocol = f"val: none (trained on all {len(y_tr):,} training images); {test}"
    x_va = y_va = None
    if val:
        v = val_size or default_val_size(name, len(y_tr))
        hold = _val_indices(y_tr, v, per_class)
        x_va, y_va, x_tr, y_tr = x_tr[hold], y_tr[hold], x_tr[~hold], y_tr[~hold]
        where = (f"last {hold.sum() // k} images of each class" if per_class
                 else f"train[:{len(y_tr)}] / train[{len(y_tr)}:]")
        protocol = f"val: {where} ({hold.sum():,} images); {test}"
    dev = torch.device(device)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)  # noqa: E731
    x_tr = t(x_tr)
    mean, std = channel_stats(x_tr)
    return Splits(name, x_tr, t(y_tr), None if x_va is None else t(x_va), None if y_va is None else t(y_va),
                  t(x_te), t(y_te), mean, std, k, x_tr.shape[-1], protocol)
