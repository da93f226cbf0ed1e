"""The GPU scripts, run in their CPU smoke mode (tiny networks, synthetic or few images), so that the
one device call they are written for does not fail on a typo. No timing is asserted here."""
import json
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_gpu_bench_tiny_writes_json_and_table(tmp_path):
    r = run("scripts.gpu_bench", "--tiny", "--steps=2", f"--out={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / "gpu_bench.json").read_text())
    for item in ("wrn28 FOCA R=32", "wrn28 E2E", "wrn28 reference fp32 loop", "wrn28 FOCA R=1",
                 "pyr272 FOCA R=32", "pyr272 E2E", "pyr272 reference fp32 loop"):
        assert out["items"][item]["images_per_s"] > 0, item
    assert out["card"]["torch"] == torch.__version__ and out["matmul_peak_tflops"] > 0
    assert {row["preset"] for row in out["projection"]} >= {"table1-A", "wrn28-c10-foca", "pyr272-c100-e2e"}
    assert "| item | images/s |" in r.stdout


def test_gpu_budget_tiny_runs_both_methods_and_seeds(tmp_path):
    r = run("scripts.gpu_budget", "--tiny", "--minutes=0.5", f"--out={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / "budget.json").read_text())
    assert [len(out["runs"][m]) for m in ("foca", "e2e")] == [2, 2]
    assert out["epochs"] >= 1 and all(run["epochs"] == out["epochs"] for rs in out["runs"].values() for run in rs)
    assert all(run["metrics"] for rs in out["runs"].values() for run in rs), "per-epoch metrics missing"
    assert (tmp_path / "budget_features.png").stat().st_size > 10_000
    assert "| foca |" in r.stdout and "| e2e |" in r.stdout


def test_gpu_scripts_refuse_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        return
    r = run("scripts.gpu_bench", f"--out={tmp_path}")
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr, r.stderr[-500:]
    r = run("scripts.gpu_budget", f"--out={tmp_path}", "--data=/nonexistent.npz")
    assert r.returncode == 2 and "--data must be the CIFAR-10 arrays file" in r.stderr, r.stderr[-500:]
    data = tmp_path / "x.npz"
    data.write_bytes(b"")
    r = run("scripts.gpu_budget", f"--out={tmp_path}", f"--data={data}")
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr, r.stderr[-500:]
