"""minifoca's datasets: deterministic, disjoint splits; the real files read as documented."""
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from minifoca import data as D


def test_digits_split_is_fixed_and_disjoint():
    a, b = D.load("digits"), D.load("digits")
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.t_train, b.t_train)
    assert (len(a.t_train), len(a.t_val), len(a.t_test)) == (1257, 180, 360) and a.n_classes == 10
    rows = {r.tobytes() for r in a.x_train}
    assert not any(r.tobytes() in rows for r in a.x_test), "a test image is in the training split"
    assert abs(a.x_train.mean()) < 1e-6  # standardised with training statistics


def test_idx_reader(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\0\0\x08\x03" + b"".join(int(n).to_bytes(4, "big") for n in arr.shape) + arr.tobytes())
    assert np.array_equal(D.read_idx(path), arr)
    path.write_bytes(b"junk" * 4)
    with pytest.raises(D.DataError, match="not an IDX"):
        D.read_idx(path)


FASHION_MD5 = {"train-images-idx3": "f4a8712d7a061bf5bd6d2ca38dc4d50a", "t10k-labels-idx1": "15d484375f8d13e6eb1aabb0c3f46965"}


@pytest.mark.skipif(not (D.FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_is_the_official_data():
    for name, md5 in FASHION_MD5.items():  # of the uncompressed official files (data README)
        with gzip.open(D.FASHION_DIR / f"{name}-ubyte.gz") as fh:
            assert hashlib.md5(fh.read()).hexdigest() == md5, f"{name}: not the official file"
    ds = D.load("fashion", val_size=5000)
    assert ds.x_train.shape == (55000, 784) and ds.x_test.shape == (10000, 784) and ds.n_classes == 10


def _cifar_parts():
    return Path(os.environ["FOCA_DATA"]) / "cifar10" / "unpack.py"


@pytest.mark.skipif(not _cifar_parts().is_file(), reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
def test_cifar10_from_the_shared_copy():
    ds = D.load("cifar10", val_size=5000)
    assert ds.x_train.shape == (45000, 3072) and ds.x_val.shape == (5000, 3072) and ds.x_test.shape == (1000, 3072)
    assert np.bincount(np.concatenate([ds.t_train, ds.t_val])).tolist() == [5000] * 10
    assert "test1k" in ds.protocol


def test_missing_data_folder_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("FOCA_DATA", raising=False)
    with pytest.raises(D.DataError, match="--data_dir"):
        D.load("cifar10")
    with pytest.raises(D.DataError, match="does not exist"):
        D.load("cifar10", data_dir="/no/such/folder")
