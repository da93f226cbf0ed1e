"""A checkpoint written on CUDA resumes on the CPU (issue 23 item 3), shown without a GPU: the smoke
run is killed after its first epoch, its device generators' states are replaced by CUDA-shaped ones
(16 bytes: seed and offset, where a CPU generator's state is 5056 bytes), and `--resume` must finish
every stage with exit 0, no traceback, one line saying the generators were reseeded, and the same
words in the summary. Same-device resume stays exact: tests/test_scaled_engine.py."""
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
HAVE_CIFAR = (Path(os.environ["FOCA_DATA"]) / "cifar10" / "unpack.py").is_file()
DEVICE_GENS = ("aug", "weak", "shake")  # on the run's device; "data" is a CPU generator on every device


def train(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scaled.train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})


def cuda_shaped(seed: int) -> torch.Tensor:
    """What torch.Generator("cuda").get_state() returns: the seed and the Philox offset, 16 bytes."""
    return torch.tensor(list(struct.pack("<QQ", seed, 4 * seed)), dtype=torch.uint8)


@pytest.mark.skipif(not HAVE_CIFAR, reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
def test_smoke_checkpoint_with_cuda_generator_states_resumes_on_the_cpu(tmp_path):
    killed = train("--preset", "smoke", f"--out_dir={tmp_path}", "--name=run", env={"FOCA_TEST_KILL_AFTER": "1"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    path = tmp_path / "run" / "checkpoint.pt"
    ck = torch.load(path, map_location="cpu", weights_only=True)
    assert [ck["gens"][k].numel() for k in DEVICE_GENS] == [5056] * 3, "a CPU run's states are 5056 bytes"
    for i, k in enumerate(DEVICE_GENS):
        ck["gens"][k] = cuda_shaped(100 + i)
    torch.save(ck, path)
    with pytest.raises(RuntimeError, match="5056"):  # what Run._restore ran into before issue 23
        torch.Generator().set_state(ck["gens"]["aug"])
    shutil.copytree(tmp_path / "run", tmp_path / "again")

    r = train("--resume", str(tmp_path / "run"))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    notes = [line for line in r.stderr.splitlines() if "reseeded" in line]
    assert notes == ["note: generators aug, weak, shake reseeded from (seed 0, stage 1, epoch 1): the checkpoint "
                     "was written on another device type, so this run continues, but not exactly as the "
                     "uninterrupted run would"], r.stderr[-2000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["resume_reseeded"] == [notes[0][len("note: "):]]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["resume_reseeded"] == summary["resume_reseeded"]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["epoch"]) for x in records] == [(1, 1), (1, 2), (2, 1), (3, 1)]
    assert "finetune_test_error" in summary and 0 <= summary["test_error"] <= 1

    # the reseeded continuation is a function of (seed, stage, epoch): a second resume lands on the same numbers
    again = json.loads(train("--resume", str(tmp_path / "again")).stdout.strip().splitlines()[-1])
    for key in ("val_error", "test_error", "finetune_test_error", "trace_ratio"):
        assert again[key] == summary[key], key
