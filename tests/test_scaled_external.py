"""FOCA on your own network and data (issue 21): torchvision, timm and factory networks train and
resume exactly after a kill; grayscale arrays and image folders load and train; every misfit is
one line and exit status 2; the Python API (scaled/api.py) and the examples/ scripts run."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(REPO / "examples"), os.environ.get("PYTHONPATH")]))}
HAVE_TIMM = importlib.util.find_spec("timm") is not None
TINY = ["--train_subset=0", "--eval_subset=0", "--val_size=32", "--n_f=32", "--stage2_batch=32", "--n_c=20",
        "--augment=auto"]


def cli(*args, env=ENV):
    return subprocess.run([sys.executable, "-m", "scaled.train", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO, env=env)


def summary_of(r):
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def arrays(path: Path, shape=(16, 16, 3), n_train=192, n_test=64, classes=4) -> str:
    """Random uint8 images of `shape` per image ((H, W), (H, W, C) or (C, H, W))."""
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8), y_train=rng.integers(0, classes, n_train),
             x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8), y_test=rng.integers(0, classes, n_test))
    return str(path)


# --- each kind of network: a tiny run, killed after its first epoch, resumes exactly ----------------
@pytest.mark.parametrize("ref", [
    "torchvision:resnet18",
    pytest.param("timm:resnet18", marks=pytest.mark.skipif(not HAVE_TIMM, reason="timm not installed (pip install timm)")),
    "own_factory:small_cnn",  # examples/own_factory.py, found through PYTHONPATH
])
def test_network_kind_trains_and_resumes_exactly(tmp_path, ref):
    common = ["--preset", "smoke", f"--dataset={arrays(tmp_path / 'rgb16.npz')}", f"--model={ref}", *TINY,
              "--epochs=2", "--finetune_epochs=1", f"--out_dir={tmp_path}"]
    full = summary_of(cli(*common, "--name=full"))
    r = subprocess.run([sys.executable, "-m", "scaled.train", *common, "--name=killed"], cwd=REPO, capture_output=True,
                       text=True, timeout=600, env={**ENV, "FOCA_TEST_KILL_AFTER": "1"})
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert json.loads((tmp_path / "killed" / "config.json").read_text())["model"] == ref  # what --resume rebuilds
    resumed = summary_of(cli("--resume", str(tmp_path / "killed")))
    for key in ("val_error", "test_error", "trace_ratio", "finetune_test_error"):
        assert resumed[key] == full[key], f"{ref} {key}: resumed {resumed[key]} != uninterrupted {full[key]}"
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["net"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a), f"{ref}: weights differ after the resume"


# --- any image data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,want", [((28, 28), (1, 28, 28)), ((28, 28, 1), (1, 28, 28)),
                                        ((12, 12, 3), (3, 12, 12)), ((3, 12, 12), (3, 12, 12)),
                                        ((12, 12, 5), (5, 12, 12))])
def test_arrays_of_any_channel_count_load_channels_first(tmp_path, shape, want):
    from scaled.data import load_dataset

    d = load_dataset(arrays(tmp_path / "a.npz", shape), val=False)
    assert tuple(d.x_train.shape[1:]) == want and d.mean.shape == (want[0],) and d.num_classes == 4
    assert torch.allclose(d.mean, d.x_train.double().div(255).mean(dim=(0, 2, 3)).float())  # statistics from the data


def test_grayscale_28x28_arrays_train(tmp_path):
    """The issue's crash: a 28x28 single-channel arrays file through the smoke preset's WRN."""
    s = summary_of(cli("--preset", "smoke", f"--dataset={arrays(tmp_path / 'gray.npz', (28, 28))}", *TINY,
                       "--epochs=1", "--finetune_epochs=0", f"--out_dir={tmp_path}", "--name=g"))
    assert 0 <= s["test_error"] <= 1 and np.isfinite(s["trace_ratio"])


def write_folder(root: Path, sizes=((16, 16),), mode="RGB", split=True, per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in (("train", "val") if split else ("",)):
        for k in range(3):
            for i in range(per_class):
                w, h = sizes[i % len(sizes)]
                img = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
                (root / part / f"c{k}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).convert(mode).save(root / part / f"c{k}" / f"{i}.png")
    return root


def test_imagefolder_layouts(tmp_path, monkeypatch):
    from minifoca.data import DataError
    from scaled.data import load_dataset

    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    d = load_dataset(f"imagefolder:{write_folder(tmp_path / 'split')}", val=False)
    assert tuple(d.x_train.shape) == (18, 3, 16, 16) and len(d.x_test) == 18 and d.num_classes == 3
    assert d.y_train.tolist() == sorted(d.y_train.tolist()) and "val/" in d.protocol
    assert len(list((tmp_path / "cache").glob("imagefolder-*.npz"))) == 1  # decoded once, then read from the cache
    assert torch.equal(load_dataset(f"imagefolder:{tmp_path / 'split'}", val=False).x_test, d.x_test)
    one = load_dataset(f"imagefolder:{write_folder(tmp_path / 'one', mode='L', split=False, per_class=10)}", val=False)
    assert tuple(one.x_train.shape) == (27, 1, 16, 16) and len(one.x_test) == 3  # grayscale; last 10% of each class
    mixed = write_folder(tmp_path / "mixed", sizes=((20, 16), (16, 24)))
    with pytest.raises(DataError, match="--image_size"):
        load_dataset(f"imagefolder:{mixed}", val=False)
    assert tuple(load_dataset(f"imagefolder:{mixed}", val=False, image_size=12).x_train.shape[1:]) == (3, 12, 12)
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nothing'}", val=False)


# --- every misfit: one line, exit status 2, before training ------------------------------------------
@pytest.mark.parametrize("model,data,extra,message", [
    ("torchvision:resnet-99", "rgb", [], "has no classification model"),
    ("no_such_module:net", "rgb", [], "cannot import no_such_module"),
    ("tests.factories:missing", "rgb", [], "has no callable 'missing'"),
    ("tests.factories:needs_width", "rgb", [], "requires width"),
    ("tests.factories:not_a_module", "rgb", [], "not a torch.nn.Module"),
    ("tests.factories:rgb_only", "gray", [], "does not take 1x28x28 images"),  # channel count
    ("torchvision:alexnet", "rgb", [], "does not take 3x16x16 images"),  # the map shrinks to nothing
    ("tests.factories:tokens", "rgb", [], "returns (2, 64, 16)"),
    ("tests.factories:pooled", "rgb", ["--head=A"], "use --head=C or --head=D"),
    ("wrn-10-1", "folder", [], "no such folder"),
    pytest.param("timm:resnet18", "rgb", [], "pip install timm",
                 marks=pytest.mark.skipif(HAVE_TIMM, reason="timm is installed here")),
])
def test_misfit_is_one_line_and_exit_2(tmp_path, model, data, extra, message):
    dataset = {"rgb": arrays(tmp_path / "rgb.npz"), "gray": arrays(tmp_path / "g.npz", (28, 28)),
               "folder": f"imagefolder:{tmp_path / 'nowhere'}"}[data]
    r = cli("--preset", "smoke", f"--dataset={dataset}", f"--model={model}", *TINY, *extra, f"--out_dir={tmp_path}")
    assert r.returncode == 2, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert message in r.stderr and "Traceback" not in r.stderr and len(lines) == 1, r.stderr[-2000:]
    assert not list(tmp_path.glob("*/metrics.jsonl")), "a misfit must stop before any training"


# --- own data that does not fit (issue 29): one line naming the file or folder ------------------------
def test_corrupt_image_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from scaled.train import main

    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    root = write_folder(tmp_path / "bad")
    (root / "train" / "c1" / "3.png").write_bytes(b"not a png at all")
    good = (root / "val" / "c2" / "0.png").read_bytes()
    (root / "val" / "c2" / "0.png").write_bytes(good[:len(good) // 2])  # truncated: the header still reads
    for broken in ("train/c1/3.png", "val/c2/0.png"):
        assert main(["--preset", "own-cpu", f"--dataset=imagefolder:{root}", f"--out_dir={tmp_path}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{root / broken}: not a readable image" in err[0], err
        (root / broken).unlink()


def test_empty_class_folder_is_refused_by_name(tmp_path, monkeypatch):
    from minifoca.data import DataError
    from scaled.data import load_dataset

    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    root = write_folder(tmp_path / "f")
    (root / "train" / "empty").mkdir()
    (root / "train" / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=f"{root / 'train' / 'empty'}: a class folder with no images"):
        load_dataset(f"imagefolder:{root}", val=False)


def test_a_classifier_left_on_a_factory_is_warned_about():
    import warnings

    import torchvision

    from scaled.api import foca_network
    from scaled.models import build_model
    from tests import factories

    with pytest.warns(UserWarning, match="as many as the data's classes: if that is a classifier, remove it"):
        build_model("tests.factories:classifier_left_on", 7, image_size=8)
    with pytest.warns(UserWarning, match="remove it"):
        foca_network(factories.classifier_left_on(num_classes=5), 5, image_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # features of another width, and torchvision's own classifier removed: no warning
        foca_network(factories.pooled(3), 16 + 1, image_size=8)
        foca_network(torchvision.models.resnet18(weights=None, num_classes=128), 128, image_size=32)
    with pytest.raises(ValueError) as e:
        build_model("torchvision:resnet-99", 4)
    assert "torchvision.models has no classification model" in str(e.value) and "torchvision torchvision" not in str(e.value)
