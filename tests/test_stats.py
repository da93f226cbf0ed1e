"""scripts/studies/stats.py against independent computations: simulations with known variance components
(the se must match the spread of the gap over many simulated studies), a brute-force two-way bootstrap,
scipy's binomial test, constructed lines with a known slope, and a packing round trip."""
from __future__ import annotations

import math

import numpy as np
import pytest

from scripts.studies.stats import (crossover, describe_gap, pack_correct, paired_gap, sign_test, slope_bootstrap,
                                   unpack_correct, unpaired_diff, verdict)


def binary_study(rng, s: int, m: int, gap: float, seed_sd: float, image_sd: float = 0.2):
    """One simulated paired study: (S, M) 0/1 errors of two arms on the same freshly drawn test images.
    Image difficulty q_i is shared by both arms (the positive correlation pairing exploits), each arm
    also finds some images harder than the other does (N(0, image_sd), the image term of the gap), and
    each seed shifts its arm's error probability by N(0, seed_sd)."""
    q = rng.beta(0.3, 0.6, m)  # (M,) mostly easy or hard images, as a trained network sees them
    pa = np.clip(q + gap + rng.normal(0, image_sd, m) + rng.normal(0, seed_sd, (s, 1)), 0, 1)  # (S, M)
    pb = np.clip(q + rng.normal(0, image_sd, m) + rng.normal(0, seed_sd, (s, 1)), 0, 1)  # (S, M)
    return rng.random((s, m)) < pa, rng.random((s, m)) < pb


# --- paired_gap ------------------------------------------------------------------------------------
def test_paired_gap_se_is_the_spread_of_the_gap_under_known_variance_components():
    """D[s, i] = a_s + b_i + e_si, Gaussian: Var(mean D) = va / S + vb / M + ve / (S M) exactly."""
    rng = np.random.default_rng(0)
    s, m, n = 3, 400, 2000
    sa, sb, sd_e = 0.03, 0.3, 0.4
    d = rng.normal(0, sa, (n, s, 1)) + rng.normal(0, sb, (n, 1, m)) + rng.normal(0, sd_e, (n, s, m))  # (n, S, M)
    fits = [paired_gap(x, np.zeros_like(x)) for x in d]
    truth = math.sqrt(sa ** 2 / s + sb ** 2 / m + sd_e ** 2 / (s * m))
    empirical = d.mean((1, 2)).std()
    rms_se = math.sqrt(np.mean([f["se"] ** 2 for f in fits]))
    assert empirical == pytest.approx(truth, rel=0.05), "the simulation itself is off"
    assert rms_se == pytest.approx(empirical, rel=0.10), f"se {rms_se:.5f} vs the gap's spread {empirical:.5f}"
    # the parts: se_seed^2 estimates va / S, se_image^2 estimates vb / M + ve / (S M)
    assert math.sqrt(np.mean([f["se_image"] ** 2 for f in fits])) == pytest.approx(
        math.sqrt(sb ** 2 / m + sd_e ** 2 / (s * m)), rel=0.05)
    assert all(f["se"] ** 2 == pytest.approx(f["se_seed"] ** 2 + f["se_image"] ** 2) for f in fits[:20])


def test_paired_gap_se_matches_simulated_0_1_studies_and_its_image_term_stays_with_more_seeds():
    spread = {}
    for seeds in (2, 16):
        rng = np.random.default_rng(seeds)
        fits = [paired_gap(*binary_study(rng, seeds, 1000, 0.05, 0.01)) for _ in range(500)]
        spread[seeds] = np.std([f["gap"] for f in fits])
        rms_se = math.sqrt(np.mean([f["se"] ** 2 for f in fits]))
        assert rms_se == pytest.approx(spread[seeds], rel=0.15), f"{seeds} seeds: se {rms_se:.5f}, {spread[seeds]:.5f}"
    # the same images for every seed: 8x the seeds keeps much more than the 1 / sqrt(8) = 0.35 of an se over seeds alone
    assert spread[16] > 0.45 * spread[2], spread


def test_unpaired_diff_does_not_shrink_the_image_term_with_seeds():
    """Arms scored on the same images, only per-seed fractions kept. Under the old formula
    (binomial terms divided by the seeds) 16 seeds claim a third of the real spread; unpaired_diff
    stays at or above it (conservative: within-image noise counted in full)."""
    rng = np.random.default_rng(1)
    s, m = 16, 1000
    d, se_new, se_old = [], [], []
    for _ in range(600):
        qa, qb = rng.beta(0.2, 0.4, m), rng.beta(0.2, 0.4, m)  # (M,) independent difficulties per arm
        a = (rng.random((s, m)) < qa).mean(1)  # (S,) per-seed error fractions on the same images
        b = (rng.random((s, m)) < qb).mean(1)
        f = unpaired_diff(list(a), list(b), m)
        d.append(f["gap"])
        se_new.append(f["se"])
        pa, pb = a.mean(), b.mean()
        se_old.append(math.sqrt(a.var(ddof=1) / s + b.var(ddof=1) / s
                                + pa * (1 - pa) / (m * s) + pb * (1 - pb) / (m * s)))  # binomial terms / seeds
    empirical = np.std(d)
    assert 0.95 * empirical < math.sqrt(np.mean(np.square(se_new))) < 1.5 * empirical
    assert math.sqrt(np.mean(np.square(se_old))) < 0.6 * empirical, "the test lost its teeth"


def test_unpaired_diff_formula_and_keys():
    f = unpaired_diff([0.30, 0.32], [0.20], 1000)
    want = math.sqrt(0.02 ** 2 / 2 / 2 + 0.31 * 0.69 / 1000 + 0.2 * 0.8 / 1000)  # var([.30, .32], ddof 1) = 2e-4
    assert f["gap"] == pytest.approx(0.11) and f["se"] == pytest.approx(want)
    assert (f["seeds_a"], f["seeds_b"], f["images"]) == (2, 1, 1000)


def test_paired_gap_se_matches_a_brute_force_two_way_bootstrap():
    """Resampling seed rows and image columns by explicit index draws; many seeds and strong image effects,
    where the bootstrap's extra residual term (about ve / (S M), which it counts twice) is small."""
    rng = np.random.default_rng(2)
    a, b = binary_study(rng, 40, 300, 0.05, 0.02, image_sd=0.4)
    d = a.astype(float) - b  # (S, M)
    boots = []
    for _ in range(3000):
        rows, cols = rng.integers(0, 40, 40), rng.integers(0, 300, 300)
        boots.append(d[rows][:, cols].mean())
    assert paired_gap(a, b)["se"] == pytest.approx(np.std(boots), rel=0.10)


def test_paired_gap_with_one_seed_has_no_seed_term():
    rng = np.random.default_rng(3)
    a, b = binary_study(rng, 1, 500, 0.05, 0.0)
    f = paired_gap(a, b)
    dd = a[0].astype(float) - b[0]
    assert f["se"] == pytest.approx(math.sqrt(dd.var(ddof=1) / 500)) and f["se_seed"] is None
    assert f["seed_term"] == "not estimable (1 seed)" and f["seeds"] == 1 and f["images"] == 500
    assert f["gap"] == pytest.approx(dd.mean()) and f["seed_gaps"] == [pytest.approx(dd.mean())]


# --- sign test, verdicts, prose --------------------------------------------------------------------
def test_sign_test_is_the_binomial_tail():
    try:
        from scipy.stats import binomtest
    except ImportError:  # exact sums, written independently
        def binomtest(k, n, p, alternative):
            return type("R", (), {"pvalue": sum(math.factorial(n) / (math.factorial(j) * math.factorial(n - j))
                                                for j in range(k, n + 1)) * 0.5 ** n})
    for n in range(1, 13):
        for w in range(n + 1):
            assert sign_test(w, n) == pytest.approx(binomtest(w, n, 0.5, alternative="greater").pvalue, rel=1e-9)
    assert sign_test(2, 2) == 0.25 and sign_test(0, 2) == 1.0 and sign_test(5, 5) < 0.05 < sign_test(4, 4)


def test_verdict_and_describe_gap():
    assert verdict(-0.05, 0.01) == "holds" and verdict(0.05, 0.01) == "reversed"
    assert verdict(0.01, 0.01) == "inconclusive"
    assert verdict(0.05, 0.01, lower_is_claimed=False) == "holds" and verdict(math.nan, 0.01) == "not measured"
    assert describe_gap("FOCA", "E2E", 0.073, 0.015, "at 5 epochs") == \
        "FOCA trails E2E by 7.3 +- 1.5 (se) points at 5 epochs"
    assert describe_gap("FOCA", "E2E", -0.073, 0.015) == "FOCA leads E2E by 7.3 +- 1.5 (se) points"
    assert describe_gap("FOCA", "E2E", 0.004, 0.015, "at 5 epochs") == \
        "no difference resolved: FOCA - E2E = +0.4 +- 1.5 (se) points at 5 epochs, within 2 se"


# --- slope and crossover ---------------------------------------------------------------------------
def sloped_study(rng, x, slope, s=3, m=1500):
    """H horizons of one study: the same images throughout, each seed's shift shared by its horizons."""
    q = rng.beta(0.3, 0.6, m)  # (M,)
    u = rng.normal(0, 0.01, (s, 1))  # (S, 1) a seed's trunk, the same at every horizon
    ea, eb = [], []
    for xh in x:
        ea.append(rng.random((s, m)) < np.clip(q + 0.10 + slope * xh + u, 0, 1))
        eb.append(rng.random((s, m)) < q)
    return ea, eb


def test_slope_bootstrap_point_estimate_is_ols_and_the_ci_covers_the_true_slope():
    x = [math.log2(e) for e in (5, 10, 20, 40)]
    rng = np.random.default_rng(4)
    covered = {-0.02: 0, 0.0: 0}
    excludes = {-0.02: 0, 0.0: 0}
    for slope in covered:
        for _ in range(12):
            ea, eb = sloped_study(rng, x, slope)
            fit = slope_bootstrap(x, ea, eb, n_boot=400, rng=rng)
            g = np.array([a.mean() - b.mean() for a, b in zip(ea, eb)])  # (H,) OLS by hand: cov / var
            xc = np.array(x) - np.mean(x)
            assert fit["slope"] == pytest.approx(xc @ g / (xc @ xc)) and fit["n_boot"] == 400
            assert fit["intercept"] == pytest.approx(g.mean() - fit["slope"] * np.mean(x))
            lo, hi = fit["ci"]
            covered[slope] += lo <= slope <= hi
            excludes[slope] += not lo <= 0 <= hi
    assert covered[-0.02] >= 10 and covered[0.0] >= 10, covered  # 95% intervals: 12 of 12 expected, >= 10 allowed
    assert excludes[-0.02] == 12 and excludes[0.0] <= 2, excludes


def test_crossover_only_when_the_slope_is_resolved():
    x = [math.log2(e) for e in (5, 10, 20, 40)]
    assert crossover({"slope": -0.01, "intercept": 0.07, "ci": [-0.02, 0.001], "x": x})["epochs"] is None
    far = crossover({"slope": -0.01, "intercept": 0.07, "ci": [-0.015, -0.005], "x": x})
    assert far["epochs"] == pytest.approx(2 ** 7) and "beyond the measured 5-40" in far["said"]
    inside = crossover({"slope": -0.02, "intercept": 0.08, "ci": [-0.03, -0.01], "x": x})
    assert inside["epochs"] == pytest.approx(16) and "inside the measured range" in inside["said"]
    widening = crossover({"slope": 0.02, "intercept": 0.01, "ci": [0.01, 0.03], "x": x})
    assert widening["epochs"] is None and "widens" in widening["said"]
    assert "no crossover within the measured range" in crossover(
        {"slope": 0.0, "intercept": 0.07, "ci": [-0.01, 0.01], "x": x})["said"]


# --- packing -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 7, 8, 9, 1000, 6000])
def test_pack_correct_round_trips(m):
    bits = np.random.default_rng(m).random(m) < 0.7
    text = pack_correct(bits)
    assert isinstance(text, str) and len(text) <= 4 * math.ceil(math.ceil(m / 8) / 3)
    got = unpack_correct(text, m)
    assert got.dtype == bool and got.shape == (m,) and (got == bits).all()
    assert (unpack_correct(pack_correct(list(bits)), m) == bits).all()
