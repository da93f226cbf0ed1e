"""The numbers the reports print, against independent computations and constructed cases:
mean and sample std over seeds in every place that forms them (scaled/report_runs.py, scripts/studies/budget.py,
scripts/studies/digits_claims.py, toy/report.py) against Python's `statistics`; error counting (minifoca's
error_rate, scaled's Run.evaluate) against classifiers whose mistakes are known, exactly wrong / all;
the feature statistics scaled reports against the test split's eval-mode features; and the time per
target (scaled/report_time.py) against the arithmetic written out for constructed run folders.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from minifoca.metrics import error_rate

SEEDS = [0.0263, 0.0271, 0.0259, 0.0302]  # test errors of four seeds: sample and population std differ


def fmt(values, scale=1.0) -> str:
    v = [scale * x for x in values]
    return f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f}"


# --- mean and sample std over seeds ----------------------------------------------------------------
def test_report_mean_std_and_pm_are_the_sample_statistics():
    from scaled.report_runs import mean_std, pm

    m, s, n = mean_std(SEEDS + [None, float("nan")])  # unfinished and diverged runs are left out
    assert n == 4 and math.isclose(m, statistics.mean(SEEDS), rel_tol=1e-12)
    assert math.isclose(s, statistics.stdev(SEEDS), rel_tol=1e-12), f"std {s} is not the sample std"
    assert mean_std([0.03]) == (0.03, None, 1) and mean_std([None])[2] == 0
    assert pm(SEEDS) == fmt(SEEDS, 100) and pm([0.03]) == "3.00" and pm([]) == "-"
    assert pm([247.0, 231.5], 1.0) == fmt([247.0, 231.5])


def test_budget_mean_std_is_the_sample_statistics_in_percent():
    from scripts.studies.budget import mean_std

    runs = [{"test_error": x} for x in SEEDS] + [{"test_error": None}, {}]
    m, s, n = mean_std(runs, "test_error")
    assert n == 4 and math.isclose(m, 100 * statistics.mean(SEEDS), rel_tol=1e-12)
    assert math.isclose(s, 100 * statistics.stdev(SEEDS), rel_tol=1e-12), f"std {s} is not the sample std"
    assert mean_std(runs[:1], "test_error") == [100 * SEEDS[0], 0.0, 1]
    assert mean_std([{}], "test_error") == [None, None, 0]


def test_digits_claims_table_is_the_sample_statistics():
    from scripts.studies.digits_claims import KEYS, table

    rng = np.random.default_rng(0)
    runs = [{k: float(rng.uniform(0.01, 0.1) if k.endswith("error") else rng.uniform(1, 300)) for k in KEYS}
            for _ in range(3)]
    row = table({"foca": runs}).splitlines()[2]
    want = [fmt([r[k] for r in runs], 100 if k.endswith("error") else 1) for k in KEYS]
    assert row == "| foca (n=3) | " + " | ".join(want) + " |"


def test_toy_report_ms_is_the_sample_statistics():
    from toy.report import ms

    d = ms(SEEDS)
    assert math.isclose(d["mean"], statistics.mean(SEEDS), rel_tol=1e-12)
    assert math.isclose(d["std"], statistics.stdev(SEEDS), rel_tol=1e-12), f"std {d['std']} is not the sample std"
    assert d["per_seed"] == SEEDS and ms([0.5])["std"] == 0.0


# --- error counting --------------------------------------------------------------------------------
def test_error_rate_counts_wrong_over_all():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 37)  # (N,)
    for c in range(5):  # logits that always name class c: wrong exactly where t != c
        logits = np.tile(np.eye(5)[c], (37, 1)) + 0.1 * rng.random((37, 5))  # (N, K)
        assert error_rate(logits, t) == int((t != c).sum()) / 37


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.test_eval_path import tiny_run

    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("numbers") / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8), y_train=rng.integers(0, 10, 96),
             x_test=rng.integers(0, 256, (43, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, 43))
    return tiny_run(path)


def test_engine_evaluate_counts_wrong_over_all_exactly(run):
    """Classifiers that name one class c for every image (weights 0, bias e_c): exactly the test
    images not of class c are wrong, and the error is that count over 43 (not a float32 mean)."""
    import torch

    y = run.data.y_test
    for c in range(10):
        want = int((y != c).sum()) / len(y)
        weak = {"W": torch.zeros(10, run.net.classifier.in_features, dtype=torch.float64),
                "b": torch.eye(10, dtype=torch.float64)[c]}
        lin = torch.nn.Linear(run.net.classifier.in_features, 10, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.zero_(), lin.bias.copy_(weak["b"])
        assert run.evaluate(weak, "test") == want, f"weak classifier naming {c}: {run.evaluate(weak, 'test')!r} != {want!r}"
        assert run.evaluate(lin, "test") == want, f"nn.Linear naming {c}: {run.evaluate(lin, 'test')!r} != {want!r}"


def test_engine_report_statistics_are_those_of_the_eval_mode_test_features(run):
    from tests.test_eval_path import direct_eval_features
    from tests.test_metrics import assert_stats, stats_independent

    want = stats_independent(direct_eval_features(run, "test").numpy(), run.data.y_test.numpy())
    got = run.report()
    assert_stats({k: got[k] for k in want}, want, tol=1e-9)


# --- time per target --------------------------------------------------------------------------------
def fake(preset, seed, device, rates_by_stage, seconds=None, **over):
    from minifoca.config import to_dict
    from scaled.presets import PRESETS
    from scaled.report_runs import RunInfo, recipe_overrides

    config = {**to_dict(PRESETS[preset][0]), "seed": seed, "preset": preset, **over}
    records = [{"stage": s, "epoch": i + 1, "images_per_s": r} for s, rs in rates_by_stage.items() for i, r in enumerate(rs)]
    summary = {"device": device, "seconds": seconds} if seconds is not None else None
    return RunInfo(Path(f"/runs/{preset}-s{seed}"), config, summary, records, preset, recipe_overrides(config, preset))


def test_time_per_target_is_the_written_out_arithmetic():
    """Images/s: the mean over epochs without each stage's first (warm-up) one. A FOCA run: stage-1
    epochs x images per epoch (the paper presets keep the last partial batch: all 50,000) / FOCA's rate,
    + stage-2 epochs x 50,000 / stage 2's rate. Finished runs count as measured: their mean seconds."""
    from minifoca.config import to_dict
    from scaled.presets import PRESETS
    from scaled.report_time import Timing, hours, projected_seconds, rates

    card = "NVIDIA H200"
    # a finished FOCA run of another recipe (100 epochs): its rates project the paper recipe
    runs = [fake("wrn28-c10-foca", 0, card, {1: [100.0, 1000.0, 1200.0], 2: [10.0, 4000.0]}, 5000.0, epochs=100),
            fake("wrn28-c10-e2e", 0, card, {1: [50.0, 2000.0, 2400.0]}, seconds=30000.0),
            fake("wrn28-c10-e2e", 1, card, {1: [2200.0]}, seconds=34000.0)]
    r = rates(runs)
    key = ("wrn-28-10", 32, runs[0].config["precision"], card)
    assert r[(*key, "foca")][0] == 1100.0 and r[(*key, "stage2")][0] == 4000.0
    assert r[(*key, "e2e")][0] == statistics.mean([2000.0, 2400.0, 2200.0])  # one-epoch run: its only epoch
    cfg = to_dict(PRESETS["wrn28-c10-foca"][0])
    assert cfg["last_batch"] == "keep" and cfg["finetune_epochs"] == 0
    want = cfg["epochs"] * 50000 / 1100.0 + cfg["stage2_epochs"] * 50000 / 4000.0
    got, how = projected_seconds(cfg, card, r)
    assert math.isclose(got, want, rel_tol=1e-12), f"projected {got} s, written out {want} s"
    dropped = {**cfg, "last_batch": "drop", "train_subset": 1000}  # 7 full batches of 128 per epoch
    want = cfg["epochs"] * 896 / 1100.0 + cfg["stage2_epochs"] * 896 / 4000.0
    assert math.isclose(projected_seconds(dropped, card, r)[0], want, rel_tol=1e-12)
    timing = Timing(runs)
    assert timing.run_seconds("wrn28-c10-e2e", runs[1].config, card) == (32000.0, "measured")
    matched = runs[1].config | {"epochs": 600}  # e2e-matched: no run of its own, projected from e2e's rate
    per_seed = [projected_seconds(cfg, card, r)[0], 32000.0, projected_seconds(matched, card, r)[0]]
    total, _ = timing.group("cifar10", 3, card)
    assert math.isclose(total, 3 * sum(per_seed), rel_tol=1e-12)
    assert [hours(s) for s in (None, 59, 61, 3600, 5 * 3600)] == ["?", "59 s", "1.0 min", "1.0 h", "5.0 h"]
