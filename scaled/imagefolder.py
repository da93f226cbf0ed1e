"""`--dataset=imagefolder:PATH`: a folder of class sub-folders (torchvision's ImageFolder layout),
decoded once with PIL and cached as .npz arrays, as the Tiny ImageNet loader does.

    PATH/train/<class>/*.png + PATH/val/<class>/... (or PATH/test/...)   train and test splits
    PATH/<class>/*.jpg                                                    one set: the last 10% of
                                                                          each class (in file-name
                                                                          order) is the test split

Classes are the training sub-folders in sorted order (ImageFolder's class_to_idx); a test folder
may lack some classes but not add any, and a class folder without images is refused (as ImageFolder
does). A file PIL cannot read is one DataError naming it. Files are what torchvision's ImageFolder accepts
(.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp). Every image becomes 1 channel when all
training images are grayscale (PIL modes 1, L, I, I;16, F), else RGB (alpha dropped). Sizes: when
every image has the same square size it is kept; otherwise `image_size` S must be given and each
image is resized (shorter side to S, bilinear) and centre-cropped to S x S.

The cache file's name hashes the folder, every file's path, size and time and S: editing any image
or the size makes a new cache entry; the old ones can be deleted (minifoca.data.cache_dir()).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from minifoca.data import DataError, cache_dir

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
GRAY = ("1", "L", "I", "I;16", "F")
TEST_SHARE = 0.1  # a single folder: this share of each class (its last files) is the test split


def _listing(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """-> (class names, [(file, label)]) in ImageFolder's order: classes sorted, files sorted."""
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is not None and set(found) - set(classes):
        raise DataError(f"{folder}: classes {sorted(set(found) - set(classes))[:3]} are not in the training folder")
    names = classes if classes is not None else found
    label = {c: i for i, c in enumerate(names)}
    files = []
    for c in found:
        mine = [(p, label[c]) for p in sorted((folder / c).rglob("*")) if p.suffix.lower() in EXTENSIONS and p.is_file()]
        if not mine:  # torchvision's ImageFolder refuses it too: a class that cannot be learnt or tested
            raise DataError(f"{folder / c}: a class folder with no images ({' '.join(EXTENSIONS)}); add images "
                            "or remove the folder")
        files += mine
    return names, files


def _layout(root: Path):
    """-> (train files, test files or None, class names, where the test split comes from)."""
    if not root.is_dir():
        raise DataError(f"imagefolder:{root}: no such folder; expected class sub-folders of images, or "
                        "train/ and val/ (or test/) holding them")
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if (root / "train").is_dir():
        classes, train = _listing(root / "train")
        test = _listing(test_dir, classes)[1] if test_dir is not None else None
        about = f"test: {test_dir.name}/ ({len(test):,} images)" if test else ""
    else:
        classes, train, test, about = *_listing(root), None, ""
    if not train:
        raise DataError(f"imagefolder:{root}: no images found in class sub-folders ({', '.join(EXTENSIONS)})")
    if len(classes) < 2:
        raise DataError(f"imagefolder:{root}: {len(classes)} class folder found; FOCA needs at least 2 classes")
    if not test:  # hold out the last share of each class, as _val_indices does for Tiny ImageNet
        labels = np.array([t for _, t in train])
        keep = np.ones(len(train), bool)
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            keep[idx[len(idx) - max(1, round(len(idx) * TEST_SHARE)):]] = False
        if keep.all() or not keep.any():
            raise DataError(f"imagefolder:{root}: too few images to hold out a test split; add val/ or test/")
        test = [f for f, k in zip(train, keep) if not k]
        train = [f for f, k in zip(train, keep) if k]
        about = f"test: the last {TEST_SHARE:.0%} of each class ({len(test):,} images; no val/ or test/ folder)"
    return train, test, classes, about


def image_array(im, gray: bool, size: int) -> np.ndarray:
    """A PIL image -> (H, W, C) uint8: mode L or RGB, resized (shorter side to size, bilinear) and
    centre-cropped to size x size when size > 0. The one place an image becomes pixels: the cache's
    images and a finished run's transform (scaled/inference.py) are made here."""
    from PIL import Image

    im = im.convert("L" if gray else "RGB")
    if size and im.size != (size, size):
        w, h = im.size
        s = size / min(w, h)
        im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
        left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
        im = im.crop((left, top, left + size, top + size))
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def _open(path: Path, then):
    """then(the opened PIL image); a file PIL cannot read (corrupt, truncated, not an image) is one DataError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return then(im)
    except (OSError, ValueError, SyntaxError) as e:  # UnidentifiedImageError is an OSError; truncated: OSError
        raise DataError(f"{path}: not a readable image ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__}); "
                        "replace or remove it") from None


def _decode(files, gray: bool, size: int) -> np.ndarray:
    """-> (N, H, W, C) uint8, resized and centre-cropped to size x size when size > 0."""
    return np.stack([_open(path, lambda im: image_array(im, gray, size)) for path, _ in files])


def read_imagefolder(path: str, image_size: int = 0) -> tuple[tuple, int, str]:
    """-> ((x_train, y_train, x_test, y_test) as (N, C, H, W) uint8 and int64 labels, K, test protocol)."""
    root = Path(path).expanduser()
    train, test, classes, about = _layout(root)
    files = train + test
    h = hashlib.sha1(f"{root.resolve()}|{image_size}|{len(train)}".encode())
    for p, t in files:
        st = p.stat()
        h.update(f"{p}|{t}|{st.st_size}|{st.st_mtime_ns}".encode())
    cached = cache_dir() / f"imagefolder-{h.hexdigest()[:12]}.npz"
    if cached.is_file():
        z = np.load(cached)
        return (z["x_train"], z["y_train"], z["x_test"], z["y_test"]), len(z["classes"]), about
    sizes, gray = set(), True
    for p, _ in files:
        size, mode = _open(p, lambda im: (im.size, im.mode))
        sizes.add(size)
        gray &= mode in GRAY
    if not image_size:
        (w, h0), *more = sorted(sizes)
        if more or w != h0:
            raise DataError(f"imagefolder:{root}: images come in {len(sizes)} sizes (e.g. "
                            f"{', '.join(f'{a}x{b}' for a, b in sorted(sizes)[:3])}); pass --image_size=S to resize "
                            "them (shorter side to S, centre crop)")
    arrays = {"x_train": _decode(train, gray, image_size).transpose(0, 3, 1, 2),  # (N, C, H, W)
              "y_train": np.array([t for _, t in train], np.int64),
              "x_test": _decode(test, gray, image_size).transpose(0, 3, 1, 2),
              "y_test": np.array([t for _, t in test], np.int64), "classes": np.array(classes)}
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: parallel loaders never collide
    np.savez(tmp, **arrays)
    tmp.replace(cached)  # atomic: a killed run never leaves a half-written cache
    return tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")), len(classes), about
