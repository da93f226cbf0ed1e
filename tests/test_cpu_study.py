"""The CPU study (make cifar10-cpu = scripts/studies/budget.py --cpu): its scheduling, its verdicts and one
tiny run end to end, rerun to show it keeps what finished."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.studies.budget import makespan
from scripts.studies.stats import pack_correct, paired_gap
from scripts.studies.study_report import claims, gap, mean_sd

REPO = Path(__file__).resolve().parent.parent


def test_makespan_is_the_greedy_lanes_finish():
    assert makespan([10, 10, 10, 10], 2) == 20
    assert makespan([30, 10, 10, 10], 2) == 30  # lane 2 takes the three short ones
    assert makespan([5, 7], 1) == 12


def test_mean_and_sample_std():
    assert mean_sd([0.1, 0.3]) == pytest.approx((0.2, 0.1414213562373095))
    assert mean_sd([0.25]) == (0.25, 0.0)


def test_verdicts_follow_two_standard_errors():
    run = lambda e: {"test_error": e}
    # 1,000 test images, errors 10% vs 20%: far beyond 2 se either way
    g = gap([run(0.10), run(0.10)], [run(0.20), run(0.20)], "test_error", "test_error", 1000)
    assert g["method"] == "unpaired" and g["gap"] == pytest.approx(-0.10)
    # 0.5 points apart on 1,000 images: the image terms alone (~1.3 points, not divided by the seeds) make it noise
    g = gap([run(0.100)] * 8, [run(0.105)] * 8, "test_error", "test_error", 1000)
    assert g["se"] == pytest.approx(((0.1 * 0.9 + 0.105 * 0.895) / 1000) ** 0.5)


def test_gap_is_paired_when_the_runs_carry_per_image_correctness():
    rng = np.random.default_rng(0)
    ca, cb = rng.random((2, 300)) < 0.7, rng.random((2, 300)) < 0.8  # (S, M) correct
    ra = [{"seed": s, "test_error": 1 - ca[s].mean(), "correct_test": pack_correct(ca[s])} for s in (0, 1)]
    rb = [{"seed": s, "test_error": 1 - cb[s].mean(), "correct_test": pack_correct(cb[s])} for s in (1, 0)]
    g = gap(ra, rb, "test_error", "test_error", 300, "correct_test", "correct_test")
    want = paired_gap(~ca, ~cb)  # rb listed in another order: paired by seed, not by position
    assert g["method"] == "paired" and g["gap"] == pytest.approx(want["gap"]) and g["se"] == pytest.approx(want["se"])
    del rb[0]["correct_test"]
    assert gap(ra, rb, "test_error", "test_error", 300, "correct_test", "correct_test")["method"] == "unpaired"


def test_claims_read_the_runs_they_are_given():
    run = lambda e, ft=None, tr=1.0: {"test_error": e, "finetune_test_error": ft, "trace_ratio": tr,
                                      "fisher_eigenvalue": tr, "few_label_errors": {"1": e}, "metrics": []}
    res = {"data": {"test": 1000}, "finetune_epochs": 2, "epochs": 2,
           "runs": {"foca": [run(0.10, 0.02, 5.0), run(0.11, 0.03, 6.0)], "e2e": [run(0.30), run(0.31)],
                    "foca-C": [run(0.10), run(0.11)]}}
    got = {c["claim"].split(":")[0]: c["verdict"] for c in claims(res)}
    assert got["Table 2"] == "holds"
    assert got["Fig. 1"] == "reversed"  # fine-tuning dropped the error by 8 points
    assert got["Table 1"] == "inconclusive"
    assert got["point-like features"] == "inconclusive (sign test p = 0.25)"  # 2 of 2 seeds: p = 0.25
    res["runs"]["e2e"] = [run(0.30), run(0.31)] * 3  # 6 seeds: the sign test can reach p < 0.05
    res["runs"]["foca"] = [run(0.10, 0.02, 5.0), run(0.11, 0.03, 6.0)] * 3
    assert {c["claim"].split(":")[0]: c["verdict"] for c in claims(res)}["point-like features"] == "holds"
    said = {c["claim"].split(":")[0]: c["numbers"] for c in claims(res)}
    assert said["Table 2"].startswith("FOCA leads E2E by 20.0 +- ") and "(se) points at 2 epochs" in said["Table 2"]
    # few labels relative to each arm's own full-data error: here both lose nothing (few-label error = test error)
    rel = [c for c in claims(res) if c["claim"].startswith("few labels, relative")]
    assert "FOCA +0.0, E2E +0.0 points; FOCA - E2E = +0.0" in rel[0]["numbers"] and rel[0]["verdict"] == "inconclusive"
    assert rel[2]["verdict"] == "not measured"  # no 10-label errors in these runs


@pytest.mark.skipif(not (Path(os.environ.get("FOCA_DATA", REPO.parent / "shared" / "data")) / "cifar10").is_dir(),
                    reason="no real data: the CPU study trains on the real CIFAR-10 copy")
@pytest.mark.slow  # 160 s beside a study (2026-12-04): make test-slow
def test_tiny_cpu_study_runs_every_arm_and_a_rerun_keeps_them(tmp_path):
    cmd = [sys.executable, "-m", "scripts.studies.budget", "--tiny", "--cpu", "--seeds=1", "--minutes=10", "--max-epochs=2",
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
