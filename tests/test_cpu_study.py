"""The CPU study (make cifar10-cpu = scripts/studies/budget.py --cpu): its scheduling, its verdicts and one
tiny run end to end, rerun to show it keeps what finished."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.studies.budget import makespan
from scripts.studies.study_report import claims, larger_every_seed, lower, mean_sd

REPO = Path(__file__).resolve().parent.parent


def test_makespan_is_the_greedy_lanes_finish():
    assert makespan([10, 10, 10, 10], 2) == 20
    assert makespan([30, 10, 10, 10], 2) == 30  # lane 2 takes the three short ones
    assert makespan([5, 7], 1) == 12


def test_mean_and_sample_std():
    assert mean_sd([0.1, 0.3]) == pytest.approx((0.2, 0.1414213562373095))
    assert mean_sd([0.25]) == (0.25, 0.0)


def test_verdicts_follow_two_standard_errors():
    # 1,000 test images, errors 10% vs 20%: far beyond 2 se either way
    assert lower([0.10, 0.10], [0.20, 0.20], 1000)[0] == "holds"
    assert lower([0.20, 0.20], [0.10, 0.10], 1000)[0] == "does not hold"
    # 0.5 points apart on 1,000 images: the binomial terms alone (~0.95 points) make it noise
    v, d, se = lower([0.100, 0.100], [0.105, 0.105], 1000)
    assert v == "inconclusive" and d == pytest.approx(-0.005) and se > 0.0025
    assert larger_every_seed([3, 4], [1, 2]) == "holds"
    assert larger_every_seed([0, 4], [1, 2]) == "inconclusive"
    assert larger_every_seed([0, 1], [1, 2]) == "does not hold"


def test_claims_read_the_runs_they_are_given():
    run = lambda e, ft=None, tr=1.0: {"test_error": e, "finetune_test_error": ft, "trace_ratio": tr,
                                      "fisher_eigenvalue": tr, "few_label_errors": {"1": e}, "metrics": []}
    res = {"data": {"test": 1000}, "finetune_epochs": 2,
           "runs": {"foca": [run(0.10, 0.02, 5.0), run(0.11, 0.03, 6.0)], "e2e": [run(0.30), run(0.31)],
                    "foca-C": [run(0.10), run(0.11)]}}
    got = {c["claim"].split(":")[0]: c["verdict"] for c in claims(res)}
    assert got["Table 2"] == "holds"
    assert got["Fig. 1"] == "does not hold"  # fine-tuning dropped the error by 8 points
    assert got["Table 1"] == "inconclusive"
    assert got["point-like features"] == "holds"


@pytest.mark.skipif(not (Path(os.environ.get("FOCA_DATA", REPO.parent / "shared" / "data")) / "cifar10").is_dir(),
                    reason="no real data: the CPU study trains on the real CIFAR-10 copy")
def test_tiny_cpu_study_runs_every_arm_and_a_rerun_keeps_them(tmp_path):
    cmd = [sys.executable, "-m", "scripts.studies.budget", "--tiny", "--cpu", "--seeds=1", "--minutes=6", "--max-epochs=2",
           f"--out={tmp_path}", f"--runs-dir={tmp_path / 'runs'}"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    d = json.loads((tmp_path / "study.json").read_text())
    assert "train[:49500]" in d["data"]["protocol"], "tiny mode should train on the real copy"
    done = {a: [x for x in rs if "error" not in x] for a, rs in d["runs"].items()}
    assert all(done[a] for a in ("foca", "e2e", "foca-C")), (d["skipped"], d["stopped"], r.stderr[-1500:])
    assert set(done["foca"][0]["few_label_errors"]) == {"1", "5", "10"}
    assert {c["claim"].split(":")[0] for c in d["claims"]} >= {"Table 2", "Fig. 1", "Table 1", "few labels"}
    assert "| claim | verdict |" in (tmp_path / "table.md").read_text()
    r2 = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    d2 = json.loads((tmp_path / "study.json").read_text())
    assert "already sized" in r2.stderr and d2["epochs"] == d["epochs"]
    assert [x["test_error"] for x in d2["runs"]["foca"]] == [x["test_error"] for x in d["runs"]["foca"]]
    assert d2["runs"] == d["runs"], "finished runs were rerun or their records changed"
