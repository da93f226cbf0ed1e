"""What every GPU script shares: the card's description, a JSON file rewritten after every item (so a
kill at any moment keeps what was measured), SIGTERM turned into an exception (so `timeout` still
lets the script write its file and print its table), and synthetic images of the real shapes.

The GPU box's limits shape these (scripts/gpu/README.md): results come back as at most 8 files of at
most 16 MiB, at most 2 folders deep, and a call is killed at its time limit.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np


# The exit status of a script that ran correctly but left something unmeasured for lack of time (a run
# stopped at its deadline, an item skipped, SIGTERM from the caller's timeout): not 1, which is kept
# for a real failure, so the call's table and exit status can tell the two apart.
TIME_EXIT = 3
NOT_MEASURED = "not measured: time"


class Stopped(Exception):
    """SIGTERM arrived (the caller's timeout): stop measuring, keep what is written."""


def stop_on_sigterm() -> None:
    def handler(signum, frame):
        raise Stopped(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def card() -> dict:
    """The machine: torch, CUDA, the GPU (nvidia-smi), TF32 settings, what can decode the staged data."""
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv), "cpus": os.cpu_count(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            # torch's defaults: convolutions may use TF32, matmuls may not; "fp32" numbers say which
            "tf32_convolutions": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()[:200]
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = "not available"
    try:
        from PIL import features
        info["pil_webp"] = bool(features.check("webp"))
    except ImportError:
        info["pil_webp"] = None
    try:
        import torchvision
        info["torchvision"] = torchvision.__version__
    except ImportError:
        info["torchvision"] = None
    return info


def write_json(path, obj) -> None:
    """Atomic: a kill during the write leaves the previous complete file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def pack(folder: Path, archive: Path, skip=("checkpoint.pt", "checkpoint.tmp")) -> None:
    """folder -> one .tar.gz (atomic), leaving out weights: the box returns few, small files."""
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file() and p.name not in skip:
                tar.add(p, arcname=str(p.relative_to(folder)))
    os.replace(tmp, archive)


def synthetic_npz(folder: Path, size: int, classes: int, n: int, n_test: int = 512) -> str:
    """Random uint8 images (throughput does not depend on pixel values), as an arrays file."""
    path = Path(folder) / f"synthetic-{size}-{classes}-{n}-{n_test}.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x_train=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                 y_train=rng.integers(0, classes, n),
                 x_test=rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8),
                 y_test=rng.integers(0, classes, n_test))
        os.replace(tmp, path)
    return str(path)


def error_text(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"
