"""scaled/augment.py and scaled/data.py: batched augmentation against the per-image reference, the
distributions of its draws, and every loader on real data (skipped without ../shared/data) or on small
files written here in the official formats."""
from __future__ import annotations

import dataclasses
import io
import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minifoca.data import DataError  # noqa: E402
from scaled.augment import PRESETS, AugmentConfig, apply_params, augment, draw_params, normalize, reference_one  # noqa: E402
from scaled.data import load_dataset  # noqa: E402

DATA = Path(os.environ["FOCA_DATA"])  # conftest.py defaults it to ../shared/data
MEAN, STD = torch.tensor([0.49, 0.48, 0.45]), torch.tensor([0.25, 0.24, 0.26])



# --- augmentation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset, fill, size", [("cifar10", "zero", 32), ("cifar100", "zero", 32),
                                                ("cifar10-re", "zero", 32), ("cifar100-re", "random", 32),
                                                ("tinyimagenet", "zero", 64), ("none", "zero", 32)])
def test_batched_augmentation_equals_the_per_image_reference(preset, fill, size):
    cfg = dataclasses.replace(PRESETS[preset], erase_fill=fill)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (96, 3, size, size), dtype=torch.uint8, generator=gen)  # (N, C, H, W)
    p = draw_params(96, (size, size), gen, cfg)
    got = apply_params(x, p, cfg, MEAN, STD)  # (N, C, H, W) float32
    want = torch.stack([reference_one(x[i], p, i, cfg, MEAN, STD) for i in range(96)])
    diff = (got - want).abs().max().item()
    assert diff == 0.0, f"batched vs reference ({preset}): max |diff| {diff}, tolerance 0"
    if cfg.cutout:  # the draws covered clipped squares at the border
        assert ((p["cy"] < cfg.cutout // 2) | (p["cx"] >= size - cfg.cutout // 2)).any()
    if cfg.erase:
        assert 0 < (p["eh"] > 0).sum() < 96
    if cfg.pad:
        assert p["flip"].any() and not p["flip"].all() and p["dy"].max() == 2 * cfg.pad


def test_augment_draws_independently_per_image_and_follows_the_generator():
    x = torch.full((8, 3, 32, 32), 200, dtype=torch.uint8)
    cfg = PRESETS["cifar10"]
    a = augment(x, torch.Generator().manual_seed(7), cfg, MEAN, STD)
    b = augment(x, torch.Generator().manual_seed(7), cfg, MEAN, STD)
    assert torch.equal(a, b)  # all randomness came from the generator
    assert len({tuple((a[i] == 0).flatten().nonzero().flatten().tolist()) for i in range(8)}) > 1
    torch.testing.assert_close(normalize(x, MEAN, STD)[0, :, 0, 0], (200 / 255 - MEAN) / STD)


def _chi2(counts: torch.Tensor) -> float:
    """Pearson's statistic of counts against the uniform distribution."""
    e = counts.sum().item() / len(counts)
    return float(((counts.double() - e) ** 2 / e).sum())


def test_crop_offsets_flips_and_cutout_centres_are_uniform_and_independent():
    n = 90_000
    p = draw_params(n, (32, 32), torch.Generator().manual_seed(1), PRESETS["cifar10"])
    # chi-square critical values at p = 0.001: df 8 -> 26.1, df 80 -> 124.8, df 31 -> 61.1
    assert _chi2(torch.bincount(p["dy"], minlength=9)) < 26.1
    assert _chi2(torch.bincount(p["dx"], minlength=9)) < 26.1
    assert _chi2(torch.bincount(p["dy"] * 9 + p["dx"], minlength=81)) < 124.8  # jointly: independent
    assert _chi2(torch.bincount(p["cy"], minlength=32)) < 61.1
    assert abs(p["flip"].float().mean().item() - 0.5) < 4 * 0.5 / math.sqrt(n)


def test_cutout_area_has_the_exact_distribution():
    """A 16x16 square centred anywhere in 32x32, clipped: the area's law follows by enumerating centres."""
    H, s, n = 32, 16, 6000
    extent = [min(c - s // 2 + s, H) - max(c - s // 2, 0) for c in range(H)]  # rows kept per centre row
    exact = np.zeros(s * s + 1)
    for ey in extent:
        for ex in extent:
            exact[ey * ex] += 1 / H**2
    cfg = AugmentConfig(pad=0, flip=False, cutout=s)
    x = torch.full((n, 1, H, H), 255, dtype=torch.uint8)  # normalised to 1.0 with mean 0, std 1
    out = augment(x, torch.Generator().manual_seed(2), cfg, torch.zeros(1), torch.ones(1))
    areas = (out == 0).sum(dim=(1, 2, 3))  # (N,) cut-out pixels
    emp = torch.bincount(areas, minlength=s * s + 1).double().numpy() / n
    assert set(np.flatnonzero(emp)) <= set(np.flatnonzero(exact)), "an area the law does not allow"
    tv = 0.5 * np.abs(emp - exact).sum()
    assert tv < 0.03, f"total variation between empirical and exact cutout areas {tv:.4f}, tolerance 0.03"
    assert abs(emp[s * s] - (17 / 32) ** 2) < 0.03  # the full square: centre in the 17 inner rows and cols


def test_random_erasing_matches_torchvision_statistics():
    """Same law as torchvision's RandomErasing.get_params (area 2-40%, log-uniform aspect, 10 tries)."""
    from torchvision.transforms import RandomErasing

    n, H = 4000, 32
    cfg = AugmentConfig(pad=0, flip=False, cutout=0, erase=True, erase_p=1.0)
    p = draw_params(n, (H, H), torch.Generator().manual_seed(3), cfg)
    ours = (p["eh"] * p["ew"]).double() / H**2  # (N,) erased fraction, 0 = no rectangle fitted
    torch.manual_seed(3)  # torchvision draws from the global generator (a test may seed it)
    img = torch.zeros(3, H, H)
    tv = []
    for _ in range(n):
        i, j, h, w, v = RandomErasing.get_params(img, scale=cfg.erase_area, ratio=cfg.erase_aspect, value=[0])
        tv.append(0.0 if (h, w) == (H, H) and v is img else h * w / H**2)
    tv = torch.tensor(tv, dtype=torch.float64)
    for name, f in (("P(erased)", lambda a: (a > 0).double()), ("mean area", lambda a: a)):
        a, b = f(ours), f(tv)
        se = math.sqrt(a.var().item() / n + b.var().item() / n)
        assert abs(a.mean().item() - b.mean().item()) < 4 * se + 1e-9, f"{name}: {a.mean():.4f} vs {b.mean():.4f}"
    done = ours[ours > 0]
    assert done.min() > 0.015 and done.max() < 0.45  # 2-40% of the image up to rounding of h and w
    assert (p["ey"] + p["eh"]).max() <= H and (p["ex"] + p["ew"]).max() <= H  # always inside the image
    half = draw_params(n, (H, H), torch.Generator().manual_seed(4), dataclasses.replace(cfg, erase_p=0.5))
    assert abs((half["eh"] > 0).double().mean().item() - 0.5 * (ours > 0).double().mean().item()) < 0.04


# --- real data ---------------------------------------------------------------------------------------
def _need(rel: str):
    if not (DATA / rel).exists():
        pytest.skip(f"{DATA / rel} not found: set FOCA_DATA to the shared data folder (see shared/data/README.md)")


def test_cifar10_shared_copy():
    _need("cifar10/unpack.py")
    ds = load_dataset("cifar10", data_dir=str(DATA), val=True)
    assert ds.x_train.shape == (45000, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert ds.x_val.shape == (5000, 3, 32, 32) and ds.x_test.shape == (1000, 3, 32, 32)
    assert ds.y_train.dtype == torch.int64 and ds.num_classes == 10 and ds.image_size == 32
    assert ds.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # the official first labels
    assert torch.bincount(ds.y_val, minlength=10).min() > 450
    assert "train[:45000]" in ds.protocol and "test1k" in ds.protocol
    # shared/data/README.md: mean 0.4914/0.4822/0.4465 over all 50,000; 45,000 of them are close
    torch.testing.assert_close(ds.mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=2e-3, rtol=0)
    torch.testing.assert_close(ds.std, torch.tensor([0.2470, 0.2435, 0.2616]), atol=2e-3, rtol=0)


def test_tinyimagenet_real_subset():
    _need("tiny-imagenet/tiny-imagenet-200-subset.zip")
    ds = load_dataset("tinyimagenet", data_dir=str(DATA), val=True)  # decodes once (~10 s), then cached
    assert ds.num_classes == 200 and ds.image_size == 64
    assert ds.x_train.shape == (9000, 3, 64, 64) and ds.x_val.shape == (1000, 3, 64, 64)
    assert ds.x_test.shape == (10000, 3, 64, 64)  # the official val set, 50 per class
    assert torch.bincount(ds.y_test, minlength=200).tolist() == [50] * 200
    assert torch.bincount(ds.y_val, minlength=200).tolist() == [5] * 200  # last 10% of each class
    assert "official val set" in ds.protocol
    out = augment(ds.x_train[:16], torch.Generator().manual_seed(0), PRESETS["tinyimagenet"], ds.mean, ds.std)
    assert out.shape == (16, 3, 64, 64) and torch.isfinite(out).all()


# --- small files in the official formats ------------------------------------------------------------
def _write_cifar(folder: Path, c100: bool, n_train: int, n_test: int, rng) -> dict:
    folder.mkdir(parents=True)
    arrays = {}
    key = "fine_labels" if c100 else "labels"
    k = 100 if c100 else 10
    files = {"train": n_train, "test": n_test} if c100 else {
        **{f"data_batch_{i}": n_train // 5 for i in range(1, 6)}, "test_batch": n_test}
    for fname, m in files.items():
        data = rng.integers(0, 256, (m, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B
        labels = rng.integers(0, k, m).tolist()
        d = {"data": data, key: labels, "filenames": [f"{i}.png" for i in range(m)], "batch_label": fname}
        if c100:
            d["coarse_labels"] = [y // 5 for y in labels]
        with open(folder / fname, "wb") as fh:
            pickle.dump(d, fh, protocol=2)  # the official files are Python 2 pickles, protocol 2
        arrays[fname] = (data.reshape(m, 3, 32, 32), np.asarray(labels))
    return arrays


def test_cifar100_official_pickle_format(tmp_path):
    arrays = _write_cifar(tmp_path / "cifar-100-python", True, 400, 60, np.random.default_rng(0))
    ds = load_dataset("cifar100", data_dir=str(tmp_path), val=True, val_size=100)
    assert ds.num_classes == 100 and ds.x_train.shape == (300, 3, 32, 32) and ds.x_val.shape == (100, 3, 32, 32)
    x, y = arrays["train"]
    assert np.array_equal(ds.x_train.numpy(), x[:300]) and np.array_equal(ds.x_val.numpy(), x[300:])
    assert np.array_equal(ds.y_val.numpy(), y[300:]) and np.array_equal(ds.x_test.numpy(), arrays["test"][0])
    assert "train[:300] / train[300:]" in ds.protocol and "60 official test images" in ds.protocol
    torch.testing.assert_close(ds.mean.double(), torch.from_numpy(x[:300].mean(axis=(0, 2, 3)) / 255))
    full = load_dataset("cifar100", data_dir=str(tmp_path), val=False)
    assert full.x_val is None and len(full.x_train) == 400 and "val: none" in full.protocol


def test_cifar10_official_folder_wins_over_the_shared_copy(tmp_path):
    arrays = _write_cifar(tmp_path / "cifar-10-batches-py", False, 50, 20, np.random.default_rng(1))
    ds = load_dataset("cifar10", data_dir=str(tmp_path), val=False)
    assert np.array_equal(ds.x_train.numpy()[:10], arrays["data_batch_1"][0])
    assert np.array_equal(ds.y_test.numpy(), arrays["test_batch"][1]) and ds.num_classes == 10


def test_npz_arrays_file(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (120, 32, 32, 3), dtype=np.uint8)  # (N, H, W, C), as unpack.py writes
    np.savez(tmp_path / "a.npz", x_train=x[:100], y_train=np.arange(100) % 4, x_test=x[100:], y_test=np.arange(20) % 4)
    ds = load_dataset(str(tmp_path / "a.npz"), val=True, val_size=10)
    assert ds.x_train.shape == (90, 3, 32, 32) and ds.num_classes == 4
    assert np.array_equal(ds.x_val.numpy(), x[90:100].transpose(0, 3, 1, 2))


def _tin_files(rng) -> dict:
    """A 3-class Tiny ImageNet in the official layout: relative path -> bytes."""
    from PIL import Image

    def jpeg(grey=False):
        a = rng.integers(0, 256, (64, 64) if grey else (64, 64, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG")
        return buf.getvalue()

    wnids = ["n02", "n01", "n03"]  # wnids.txt order, not sorted, fixes the labels
    files = {"wnids.txt": "\n".join(wnids).encode() + b"\n", "words.txt": b""}
    for w in wnids:
        for i in range(12):  # index 10 sorts before 2 as text: the loader orders by number
            files[f"train/{w}/images/{w}_{i}.JPEG"] = jpeg(grey=(i == 3))
    ann = []
    for i in range(6):
        files[f"val/images/val_{i}.JPEG"] = jpeg()
        ann.append(f"val_{i}.JPEG\t{wnids[i % 3]}\t0\t0\t63\t63")
    files["val/val_annotations.txt"] = "\n".join(ann).encode() + b"\n"
    return files


def test_tinyimagenet_folder_and_zip_give_the_same_arrays_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    files = _tin_files(np.random.default_rng(3))
    folder, zroot = tmp_path / "f", tmp_path / "z"
    zroot.mkdir()
    with zipfile.ZipFile(zroot / "tiny-imagenet-200.zip", "w") as zf:
        for rel, data in files.items():
            zf.writestr("tiny-imagenet-200/" + rel, data)
            p = folder / "tiny-imagenet-200" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    a = load_dataset("tinyimagenet", data_dir=str(folder), val=True)
    b = load_dataset("tinyimagenet", data_dir=str(zroot), val=True)
    for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert a.num_classes == 3 and a.x_train.shape == (33, 3, 64, 64) and a.x_val.shape == (3, 3, 64, 64)
    assert a.y_val.tolist() == [0, 1, 2] and a.y_test.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(list((tmp_path / "cache").glob("tinyimagenet-*.npz"))) == 2  # one per source
    c = load_dataset("tinyimagenet", data_dir=str(zroot), val=False)  # from the cache
    assert len(c.x_train) == 36 and torch.equal(c.x_test, b.x_test)


def test_wrong_or_missing_paths_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FOCA_DATA", raising=False)
    with pytest.raises(DataError, match="--data_dir"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("cifar10", data_dir=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="tiny-imagenet-200"):
        load_dataset("tinyimagenet", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="unknown dataset 'svhn'"):
        load_dataset("svhn", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="x_train"):
        load_dataset(str(tmp_path / "bad.npz"))
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(DataError, match="missing train, test"):
        load_dataset("cifar100", data_dir=str(tmp_path))
