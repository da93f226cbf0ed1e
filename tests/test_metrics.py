"""The feature statistics of minifoca/metrics.py (the README's tables and the point-like claim rest
on them) against computations that share no code with it, and against constructed features whose
statistics are known in closed form.

Independent: S_w and S_b from one-hot matrix products, S_w against sklearn's LDA `covariance_`,
S_w + S_b against the total covariance, the Fisher eigenvalue as the largest root of the generalised
symmetric problem S_b v = lambda S_w v (scipy.linalg.eigh) and as the Rayleigh quotient of sklearn's
first LDA direction. Constructed: isotropic classes (S_w = sigma^2 I) at known distances, a dead or
between-class-only direction (what the pseudo-inverse drops), classes collapsed to points, and
classes of one sample. Letters: N samples, D feature dim, K classes.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from minifoca.metrics import feature_stats, scatter
from tests.checks import assert_close

TOL = 1e-9  # float64 throughout; the two computations differ only by rounding


# --- independent computations --------------------------------------------------------------------
def scatter_by_onehot(f, t):
    """S_w, S_b as matrix products: Y (N, K) one-hot, class means M = Y^T f / N_k, no loop over classes."""
    f = np.asarray(f, np.float64)
    _, k = np.unique(t, return_inverse=True)
    y = np.eye(k.max() + 1)[k]  # (N, K)
    means = (y.T @ f) / y.sum(0)[:, None]  # (K, D)
    own = y @ means  # (N, D): each sample's class mean
    within, between = f - own, own - f.mean(0)  # (N, D)
    return within.T @ within / len(f), between.T @ between / len(f)


def live_basis(s_w, tol=1e-10):
    """Orthonormal basis (D, r) of the directions in which the features vary within classes."""
    lam, u = np.linalg.eigh(s_w)
    return u[:, lam > tol * max(lam.max(), 1e-300)]


def fisher_by_eigh(s_w, s_b):
    """Largest lambda of S_b v = lambda S_w v on the live subspace of S_w (scipy's generalised eigh)."""
    u = live_basis(s_w)
    return float(scipy.linalg.eigh(u.T @ s_b @ u, u.T @ s_w @ u, eigvals_only=True).max())


def stats_independent(f, t) -> dict:
    s_w, s_b = scatter_by_onehot(f, t)
    s_t = np.cov(np.asarray(f, np.float64).T, bias=True).reshape(s_w.shape)  # total = within + between
    return {"trace_ratio": np.trace(s_b) / np.trace(s_w), "fisher_eigenvalue": fisher_by_eigh(s_w, s_b),
            "within_spread": np.sqrt(np.trace(s_w) / np.trace(s_t))}


def assert_stats(got: dict, want: dict, tol=TOL):
    assert set(got) == set(want), f"metric keys {sorted(got)} != {sorted(want)}"
    for key in want:
        assert_close(key, got[key], want[key], tol)


# --- constructed features ------------------------------------------------------------------------
def isotropic_classes(means, sigma, sizes, rng):
    """Class k: its mean +- sigma sqrt(D) along each of D orthonormal axes, repeated sizes[k] times:
    mean exactly means[k], within-class covariance exactly sigma^2 I. -> f (N, D), t (N,)."""
    means = np.asarray(means, np.float64)  # (K, D)
    d = means.shape[1]
    q = np.linalg.qr(rng.normal(size=(d, d)))[0]  # (D, D) a random rotation: no axis is special
    star = sigma * np.sqrt(d) * np.concatenate([q, -q])  # (2D, D): mean 0, covariance sigma^2 I
    f = np.concatenate([np.tile(m + star, (r, 1)) for m, r in zip(means, sizes)])  # (N, D)
    t = np.repeat(np.arange(len(means)), [2 * d * r for r in sizes])  # (N,)
    return f, t


def random_features(rng, n=120, d=5, k=4):
    t = rng.integers(0, k, n)
    return rng.normal(0, 3, (k, d))[t] + rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), t


# --- against the independent computations ---------------------------------------------------------
@pytest.mark.parametrize("seed, n, d, k", [(0, 120, 5, 4), (1, 60, 3, 2), (2, 300, 8, 10), (3, 40, 2, 7)])
def test_scatter_equals_onehot_products_sklearn_lda_and_the_total_covariance(seed, n, d, k):
    rng = np.random.default_rng(seed)
    f, t = random_features(rng, n, d, k)
    t = np.array([3, 11, 5, 40, 8, 17, 23, 2, 9, 31])[t]  # labels need not be 0..K-1
    s_w, s_b = scatter(f, t)
    w_ref, b_ref = scatter_by_onehot(f, t)
    assert_close("S_w vs one-hot products", s_w, w_ref, TOL)
    assert_close("S_b vs one-hot products", s_b, b_ref, TOL)
    # sklearn: covariance_ = sum_k (N_k / N) * biased class covariance = S_w (priors = class frequencies)
    lda = LinearDiscriminantAnalysis(solver="lsqr", store_covariance=True).fit(f, t)
    assert_close("S_w vs sklearn LDA covariance_", s_w, lda.covariance_, TOL)
    assert_close("S_w + S_b vs total covariance", s_w + s_b, np.cov(f.T, bias=True), TOL)


@pytest.mark.parametrize("seed, n, d, k", [(0, 120, 5, 4), (1, 60, 3, 2), (2, 300, 8, 10), (3, 40, 2, 7)])
def test_statistics_equal_scipy_generalised_eigh_and_sklearn_lda(seed, n, d, k):
    rng = np.random.default_rng(seed)
    f, t = random_features(rng, n, d, k)
    got = feature_stats(f, t)
    assert_stats(got, stats_independent(f, t))
    # sklearn's eigen solver solves the same generalised problem; its first direction's Rayleigh
    # quotient v^T S_b v / v^T S_w v is the largest eigenvalue
    v = LinearDiscriminantAnalysis(solver="eigen").fit(f, t).scalings_[:, 0]  # (D,)
    s_w, s_b = scatter_by_onehot(f, t)
    assert_close("fisher_eigenvalue vs sklearn LDA direction", got["fisher_eigenvalue"],
                 (v @ s_b @ v) / (v @ s_w @ v), TOL)


def test_float32_input_is_computed_in_float64():
    """scaled hands over float32 features: the statistics are those of the same values in float64."""
    f, t = random_features(np.random.default_rng(4))
    f32 = f.astype(np.float32)
    assert_stats(feature_stats(f32, t), stats_independent(f32.astype(np.float64), t))


# --- constructed cases with a known answer --------------------------------------------------------
@pytest.mark.parametrize("sigma", [1.0, 0.25, 1e-3])
@pytest.mark.parametrize("sizes", [(1, 1), (1, 3)])
def test_two_isotropic_classes_at_a_known_distance(sigma, sizes):
    """S_w = sigma^2 I, S_b = p1 p2 d d^T (p_k = class fractions): tr S_w = D sigma^2,
    tr S_b = p1 p2 |d|^2 = the Fisher eigenvalue times sigma^2."""
    rng = np.random.default_rng(5)
    dim, dist = 4, 3.0
    d = dist * np.linalg.qr(rng.normal(size=(dim, dim)))[0][0]  # (D,) |d| = 3 in a random direction
    f, t = isotropic_classes([d, 0 * d], sigma, sizes, rng)
    p1 = sizes[0] / sum(sizes)
    tb, tw = p1 * (1 - p1) * dist ** 2, dim * sigma ** 2
    want = {"trace_ratio": tb / tw, "fisher_eigenvalue": tb / sigma ** 2, "within_spread": np.sqrt(tw / (tw + tb))}
    assert_stats(feature_stats(f, t), want)


@pytest.mark.parametrize("k, dim", [(3, 3), (5, 7)])
def test_isotropic_classes_at_the_vertices_of_a_simplex(k, dim):
    """Classes at a e_1 .. a e_K (pairwise distance a sqrt 2), equal sizes: S_b = a^2/K (I - 11^T/K)
    on those axes, so tr S_b = a^2 (K - 1) / K and its K - 1 equal eigenvalues over sigma^2 give a^2 / (K sigma^2)."""
    a, sigma = 2.0, 0.5
    f, t = isotropic_classes(a * np.eye(k, dim), sigma, [2] * k, np.random.default_rng(6))
    tb, tw = a ** 2 * (k - 1) / k, dim * sigma ** 2
    want = {"trace_ratio": tb / tw, "fisher_eigenvalue": a ** 2 / (k * sigma ** 2), "within_spread": np.sqrt(tw / (tw + tb))}
    assert_stats(feature_stats(f, t), want)


@pytest.mark.parametrize("rotated", [False, True])
def test_a_dead_feature_direction_changes_nothing(rotated):
    """A dead ReLU unit (a column that is 0 for every sample) has no variance at all: the pseudo-inverse
    drops it, so every statistic equals that of the live features. rotated: the dead direction is
    oblique (features in an affine D-dim subspace of D+1 dims), so it is not a zero row of S_w."""
    rng = np.random.default_rng(7)
    f, t = random_features(rng)
    dead = np.concatenate([f, np.zeros((len(f), 1))], axis=1)  # (N, D + 1)
    if rotated:
        q = np.linalg.qr(rng.normal(size=(f.shape[1] + 1,) * 2))[0]
        dead = (dead + 2.5) @ q.T  # an offset and a rotation change no statistic
    assert np.linalg.matrix_rank(scatter(dead, t)[0], tol=1e-8) == f.shape[1]
    assert_stats(feature_stats(dead, t), stats_independent(f, t))


def test_a_direction_without_within_class_variance_is_dropped_not_divided_by_zero():
    """A unit that is constant inside each class but differs between classes: S_w is 0 along it and
    S_b is not. pinv(S_w) S_b is then block triangular, so the Fisher eigenvalue is that of the other
    units (documented in feature_stats); the traces still count the unit."""
    rng = np.random.default_rng(8)
    f, t = random_features(rng)
    extra = np.concatenate([f, (2.0 * t)[:, None]], axis=1)  # (N, D + 1)
    got = feature_stats(extra, t)
    assert np.isfinite(got["fisher_eigenvalue"])
    assert_close("fisher_eigenvalue", got["fisher_eigenvalue"], stats_independent(f, t)["fisher_eigenvalue"], TOL)
    s_w, s_b = scatter_by_onehot(extra, t)
    assert_close("trace_ratio", got["trace_ratio"], np.trace(s_b) / np.trace(s_w), TOL)


def test_classes_collapsed_to_points():
    """Every sample at its class mean: no within-class spread (0) and an unbounded trace ratio.
    The Fisher eigenvalue is not defined here (S_w = 0 up to rounding); see the report."""
    rng = np.random.default_rng(9)
    t = np.repeat(np.arange(3), [5, 7, 3])
    f = rng.normal(size=(3, 4))[t]  # (N, D)
    got = feature_stats(f, t)
    assert got["within_spread"] < 1e-12 and got["trace_ratio"] > 1e12, got
    s_w, s_b = scatter(f, t)
    assert np.abs(s_w).max() < 1e-30
    assert_close("S_b of collapsed classes", s_b, np.cov(f.T, bias=True), TOL)  # all spread is between classes


def test_one_sample_per_class():
    """A class of one sample has no within-class scatter but weighs 1/N in S_b; mixed with a class
    of isotropic spread sigma^2 I and size n2: S_w = n2/N sigma^2 I."""
    rng = np.random.default_rng(10)
    dim, sigma = 3, 0.5
    big, t_big = isotropic_classes(np.zeros((1, dim)), sigma, [2], rng)  # 12 samples, mean 0
    singles = np.array([[4.0, 0, 0], [0, -2.0, 0]])  # two classes of one sample each
    f, t = np.concatenate([big, singles]), np.concatenate([t_big, [1, 2]])
    n = len(f)
    s_w, s_b = scatter(f, t)
    assert_close("S_w", s_w, len(big) / n * sigma ** 2 * np.eye(dim), TOL)
    m = singles.sum(0) / n  # (D,) overall mean: the big class sits at 0
    want_b = (len(big) * np.outer(m, m) + sum(np.outer(x - m, x - m) for x in singles)) / n
    assert_close("S_b", s_b, want_b, TOL)
    assert_stats(feature_stats(f, t), stats_independent(f, t))
    only_singles = feature_stats(singles, np.array([0, 1]))  # every class one sample: nothing within
    assert only_singles["within_spread"] == 0.0 and only_singles["trace_ratio"] > 1e12
