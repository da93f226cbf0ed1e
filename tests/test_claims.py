"""The real-data claim on digits, over 5 seeds (MLP 64-256-256-32 with BN, 2000 phi steps, n_c 100,
64 weak steps, R 1: the digits preset).

Calibration (this implementation, 2026-11-26, 2-core CPU, `python -m scripts.studies.digits_claims`):
per seed 0..4, test error FOCA 1.39/1.39/1.67/1.39/1.11 % vs E2E 1.39 % in every seed (360 test
images: one image is 0.28 points); one-label-per-class error FOCA 1.25/1.39/1.25/1.17/0.94 % vs E2E
2.03/1.86/1.72/1.72/1.81 % (ratio 0.52-0.81); trace ratio FOCA 8.8-9.3 vs E2E 4.1-4.5 (>= 1.97x).
So on digits FOCA MATCHES E2E's test error (it does not beat it, unlike the issue's prototype) and
its features are simpler: the asserted margins below sit just outside the worst seed.
"""
import numpy as np
import pytest

from scripts.studies.digits_claims import run_seeds

SEEDS = range(5)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_seeds(SEEDS, out_dir=str(tmp_path_factory.mktemp("claims")))


def per_seed(results, key):
    return np.array([r[key] for r in results["foca"]]), np.array([r[key] for r in results["e2e"]])


def test_foca_matches_e2e_test_error(results):
    foca, e2e = per_seed(results, "test_error")
    assert np.all(foca <= e2e + 3 / 360), f"FOCA worse than E2E by > 3 test images: {foca} vs {e2e}"
    assert foca.mean() <= e2e.mean() + 1 / 360, f"mean test error FOCA {foca.mean():.4f} vs E2E {e2e.mean():.4f}"


def test_foca_features_need_fewer_labels(results):
    foca, e2e = per_seed(results, "few_label_error")
    assert np.all(foca < 0.9 * e2e), f"one-label error FOCA {foca} vs E2E {e2e}"


def test_foca_features_are_more_point_like(results):
    foca, e2e = per_seed(results, "trace_ratio")
    assert np.all(foca > 1.8 * e2e), f"tr(S_b)/tr(S_w) FOCA {foca} vs E2E {e2e}"
