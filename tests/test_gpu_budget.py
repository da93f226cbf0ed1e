"""Run 2 of the GPU plan and `make cifar10-budget` (one code: scripts/studies/budget.py) on the CPU in tiny
mode, fed staged CIFAR-10 parts in the shared copy's format; the staging decoder on the real parts.
Own file so that pytest-xdist runs it beside tests/test_gpu_scripts.py."""
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.test_gpu_scripts import ENV, REPO, assert_collectable, wait_for

SHARED = Path(os.environ["FOCA_DATA"]) / "cifar10"


def write_part(path: Path, images: np.ndarray, labels: np.ndarray, key: str) -> None:
    """The shared copy's format: 1000-image sprites (10 x 100 tiles of 32x32) as lossless WebP."""
    from PIL import Image

    blobs = []
    for i in range(0, len(images), 1000):
        sprite = images[i:i + 1000].reshape(10, 100, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(320, 3200, 3)
        buf = io.BytesIO()
        Image.fromarray(sprite).save(buf, "WEBP", lossless=True)
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(path, webp=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets, **{key: labels})


def staged_halves(tmp_path: Path):
    """Two folders like gpu_stage1/ and gpu_stage2/: one training part each, the test part in both."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3000, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 3000)
    for name, part in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        write_part(tmp_path / name / f"cifar10_train_webp_p{part:02d}.npz", x[part * 1000:(part + 1) * 1000],
                   y[part * 1000:(part + 1) * 1000], "y_train")
        write_part(tmp_path / name / "cifar10_test_first1000_webp_p00.npz", x[2000:], y[2000:], "y_test")
    return x, y


def test_staged_parts_decode_to_the_images(tmp_path):
    from scripts.gpu.stage_cifar10 import assemble

    x, y = staged_halves(tmp_path)
    info = assemble(tmp_path / "c.npz", [tmp_path / "b", tmp_path / "a", tmp_path / "missing"])
    z = np.load(tmp_path / "c.npz")
    assert np.array_equal(z["x_train"], x[:2000]) and np.array_equal(z["y_train"], y[:2000])
    assert np.array_equal(z["x_test"], x[2000:]) and info["train_parts"] == ["p00", "p01"]
    assert not info["complete"] and info["train_images"] == 2000


@pytest.mark.skipif(not (SHARED / "unpack.py").is_file(), reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
def test_staged_shared_copy_matches_unpack_checksums(tmp_path):
    from scripts.gpu.stage_cifar10 import assemble

    info = assemble(tmp_path / "c.npz", [SHARED])
    assert info["complete"] and info["sha256"] == "ok" and info["train_images"] == 50000


def test_gpu_budget_tiny_brings_back_everything(tmp_path):
    """scripts/gpu/budget.sh as run 2 calls it, tiny: both methods, both seeds, <= 8 files, runs archived
    without weights, the figure, and the table last."""
    staged_halves(tmp_path)
    out = tmp_path / "out"
    # Generous minutes with at most 2 epochs: the sizing still runs, and a loaded 2-core machine (a fresh
    # clone's make test, 2 xdist workers beside other runs) no longer sizes 0 epochs and fails.
    r = subprocess.run(["bash", "scripts/gpu/budget.sh", "--tiny", "--max-epochs=2"], cwd=REPO, capture_output=True,
                       text=True, timeout=900, env={**ENV, "OUT": str(out), "MINUTES": "8",
                                         "PARTS": f"{tmp_path / 'a'},{tmp_path / 'b'}"})
    assert r.returncode == 0, r.stdout[-3000:]
    assert_collectable(out)
    d = json.loads((out / "budget.json").read_text())
    assert d["data"]["train_parts"] == ["p00", "p01"] and d["data"]["train"] == 1500  # 2,000 less 500 for val
    assert [len(d["runs"][m]) for m in ("foca", "e2e")] == [2, 2] and not d["skipped"] and not d["stopped"]
    assert d["epochs"] >= 1 and all(run["epochs"] == d["epochs"] for rs in d["runs"].values() for run in rs)
    assert all(run["metrics"] and "error" not in run for rs in d["runs"].values() for run in rs)
    assert d["summary"]["foca"]["finetune_test_error"][2] == (1 if d["finetune_epochs"] else 0)
    for m in ("foca", "e2e"):
        assert {"images_per_s", "eval_s", "checkpoint_s", "fixed_s"} <= set(d["probe"][m])
    with tarfile.open(out / "budget_runs.tar.gz") as tar:
        names = tar.getnames()
    assert "budget-foca-s0/metrics.jsonl" in names and "budget-e2e-s1/summary.json" in names
    assert not [n for n in names if n.endswith("checkpoint.pt")], "weights must stay on the box"
    assert (out / "budget_features.png").stat().st_size > 10_000
    tail = (out / "budget.log").read_text().strip().splitlines()
    assert "| method | val error | test error | n | seconds per run |" in tail[-8:]


def test_budget_json_is_complete_after_sigkill(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "scripts.studies.budget", "--tiny", "--minutes=8", "--max-epochs=2",
                             f"--out={tmp_path}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    reached = wait_for(tmp_path / "budget.json", lambda d: len(d["runs"]["foca"]) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached, "the budget never finished a run"
    d = json.loads((tmp_path / "budget.json").read_text())
    assert d["epochs"] >= 1 and d["probe"]["foca"]["images_per_s"] > 0 and d["predicted_s"] > 0
    assert len(d["runs"]["foca"]) + len(d["runs"]["e2e"]) < 4, "killed too late to test anything"
    run = d["runs"]["foca"][0]
    assert run["metrics"] and run["test_error"] is not None and run["wall_s"] > 0
    assert d["summary"]["foca"]["test_error"][2] == 1
