"""The studies' statistics: gaps between two arms measured on the same test images (numpy only).

Letters: S seeds, M test images, H horizons (training lengths). Errors are fractions, never %.

Every seed is evaluated on the SAME M test images, so the test-set part of a standard error does not
shrink with seeds: a hard image is hard for every seed. Two arms are compared paired: seed s of arm
a against seed s of arm b, image i against image i, D[s, i] = err_a[s, i] - err_b[s, i] in {-1, 0, 1}.
Seeds and images are both random samples (of training randomness and of the image population), crossed,
so the model is D[s, i] = mu + a_s + b_i + e_si with variances va, vb, ve, and the gap's variance is

    Var(mean D) = va / S + vb / M + ve / (S M)                 (the image term vb / M does not go with S)

Checked in tests/test_stats.py against simulations with known va, vb, ve and a brute-force bootstrap.
"""
from __future__ import annotations

import base64
import math

import numpy as np


def paired_gap(err_a, err_b) -> dict:
    """Gap mean(err_a - err_b) and its se from the two-way crossed random-effects ANOVA.

    err_a, err_b: (S, M) 0/1 errors, row s = seed s of each arm, column i = image i of the same test set.
    Mean squares of D (S, M):  MS_seed = M var_s(row means), MS_image = S var_i(column means) (ddof 1),
    MS_resid = sum (D - row mean - column mean + grand mean)^2 / ((S - 1)(M - 1)). Their expectations
    are ve + M va, ve + S vb and ve, so
        se^2 = (MS_seed + MS_image - MS_resid) / (S M)   (unbiased for va / S + vb / M + ve / (S M))
    split into se_seed^2 = max(MS_seed - MS_resid, 0) / (S M)  (estimates va / S: the part more seeds shrink)
    and se_image^2 = MS_image / (S M)  (estimates vb / M + ve / (S M): the part only more images shrink);
    se^2 = se_seed^2 + se_image^2, i.e. clipped at the image-only term when MS_seed < MS_resid.
    With S = 1 there is no seed-to-seed spread: se = se_image = sqrt(var_i(D) / M) (ddof 1),
    se_seed = None and "seed_term" says it was not estimable.
    """
    d = np.asarray(err_a, float) - np.asarray(err_b, float)  # (S, M)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"paired_gap wants (seeds, images) arrays of equal shape, got {np.shape(d)}")
    s, m = d.shape
    out = {"gap": float(d.mean()), "seeds": s, "images": m, "seed_gaps": [float(x) for x in d.mean(1)]}
    if s == 1:
        se = math.sqrt(d[0].var(ddof=1) / m) if m > 1 else math.nan
        return {**out, "se": se, "se_seed": None, "se_image": se, "seed_term": "not estimable (1 seed)"}
    rows, cols = d.mean(1), d.mean(0)  # (S,), (M,)
    ms_seed, ms_image = m * rows.var(ddof=1), s * cols.var(ddof=1)
    resid = d - rows[:, None] - cols[None, :] + d.mean()  # (S, M)
    ms_resid = float((resid ** 2).sum()) / ((s - 1) * (m - 1)) if m > 1 else 0.0
    se_seed2, se_image2 = max(ms_seed - ms_resid, 0.0) / (s * m), ms_image / (s * m)
    return {**out, "se": math.sqrt(se_seed2 + se_image2), "se_seed": math.sqrt(se_seed2),
            "se_image": math.sqrt(se_image2)}


def unpaired_diff(a, b, m: int) -> dict:
    """Gap mean(a) - mean(b) of per-seed error fractions on the same m images, without per-image data.

        se^2 = s_a^2 / n_a + s_b^2 / n_b + p_a (1 - p_a) / m + p_b (1 - p_b) / m
    (s: sample std over seeds, n: seeds, p: mean error). The binomial terms are the image terms and are
    NOT divided by the seeds (every seed sees the same images). Conservative: it counts within-image
    noise in full and ignores the positive correlation of two arms scored on the same images.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or not len(b):
        raise ValueError("unpaired_diff needs at least one seed on each side")
    pa, pb = float(a.mean()), float(b.mean())
    var = sum(x.var(ddof=1) / len(x) if len(x) > 1 else 0.0 for x in (a, b))  # seed terms
    var += (pa * (1 - pa) + pb * (1 - pb)) / m  # image terms
    return {"gap": pa - pb, "se": math.sqrt(max(var, 0.0)), "seeds_a": len(a), "seeds_b": len(b), "images": m}


def sign_test(wins: int, n: int) -> float:
    """One-sided p = P(X >= wins), X ~ Binomial(n, 1/2): every one of n = 2 seeds agreeing gives 0.25."""
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def verdict(d: float, se: float, lower_is_claimed: bool = True) -> str:
    """A gap's verdict: "holds" when the claimed direction (d < 0 if lower_is_claimed, else d > 0) is beyond 2 se,
    "reversed" when the opposite direction is, else "inconclusive"."""
    if d is None or se is None or math.isnan(d) or math.isnan(se):
        return "not measured"
    claimed = -d if lower_is_claimed else d
    return "holds" if claimed > 2 * se else "reversed" if claimed < -2 * se else "inconclusive"


def describe_gap(name_a: str, name_b: str, d: float, se: float, where: str = "") -> str:
    """Prose for an error gap d = err_a - err_b (fractions) with its se, in points (percent of images):
    "FOCA trails E2E by 7.3 +- 1.5 (se) points at 5 epochs" (higher error), "... leads ..." (lower), or
    "no difference resolved: FOCA - E2E = +0.4 +- 1.5 (se) points ..., within 2 se"."""
    at = f" {where}" if where else ""
    if abs(d) <= 2 * se:
        return (f"no difference resolved: {name_a} - {name_b} = {100 * d:+.1f} +- {100 * se:.1f} (se) points"
                f"{at}, within 2 se")
    return f"{name_a} {'trails' if d > 0 else 'leads'} {name_b} by {100 * abs(d):.1f} +- {100 * se:.1f} (se) points{at}"


def _fit(x, gaps) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(gaps, float), 1)
    return float(slope), float(intercept)


def slope_bootstrap(x, errs_a, errs_b, n_boot: int = 2000, rng=None) -> dict:
    """OLS line gap_h = intercept + slope x_h through the H per-horizon gaps, with a two-way bootstrap CI.

    x: (H,) log2(epochs); errs_a[h], errs_b[h]: (S, M) 0/1 errors at horizon h, row s the same seed at
    every horizon (runs of one seed share a trunk) and column i the same image. Each bootstrap draw
    resamples seed rows and image columns independently, with replacement, the SAME draw at every
    horizon (so the shared trunk and the shared images stay shared); 95% CI = 2.5 and 97.5 percentiles
    of the n_boot slopes. With S = 2 the seed resampling sees two values: read the CI as rough.
    Returns {"slope", "intercept", "ci": [lo, hi], "n_boot", "x"} (slope in error fraction per doubling).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    ds = [np.asarray(a, float) - np.asarray(b, float) for a, b in zip(errs_a, errs_b)]  # H x (S, M)
    s, m = ds[0].shape
    if len(ds) != len(x) or len(ds) < 2 or any(d.shape != (s, m) for d in ds):
        raise ValueError(f"slope_bootstrap wants >= 2 horizons of equal (S, M) arrays, one per x; got "
                         f"{[d.shape for d in ds]} for {len(x)} x")
    slope, intercept = _fit(x, [d.mean() for d in ds])
    xc = np.asarray(x, float) - np.mean(x)  # (H,) the OLS slope is sum xc gap / sum xc^2
    slopes = []
    for lo in range(0, n_boot, 250):  # chunks keep the (B, M) weights small
        b = min(250, n_boot - lo)
        ws = rng.multinomial(s, np.full(s, 1 / s), size=b).astype(float)  # (B, S) times each seed is drawn
        wi = rng.multinomial(m, np.full(m, 1 / m), size=b).astype(float)  # (B, M) times each image is drawn
        gaps = np.stack([np.einsum("bs,sm,bm->b", ws, d, wi) for d in ds], 1) / (s * m)  # (B, H)
        slopes.append(gaps @ xc / (xc @ xc))  # (B,)
    lo_hi = np.percentile(np.concatenate(slopes), [2.5, 97.5])
    return {"slope": slope, "intercept": intercept, "ci": [float(lo_hi[0]), float(lo_hi[1])], "n_boot": n_boot,
            "x": [float(v) for v in x]}


def crossover(fit: dict) -> dict:
    """Where the fitted gap line reaches 0, as epochs = 2^(-intercept / slope), said only when the slope's
    CI excludes 0. Ahead of the measured range it is an extrapolation along a straight line in log2(epochs);
    inside the range the sign changed where it was measured; behind it the gap widens with training."""
    lo, hi = fit["ci"]
    span = f"the slope's 95% CI [{100 * lo:+.2f}, {100 * hi:+.2f}] points per doubling"
    if lo <= 0 <= hi or fit["slope"] == 0:
        return {"epochs": None, "said": f"no crossover within the measured range: {span} includes 0"}
    x0 = min(-fit["intercept"] / fit["slope"], 1000.0)  # 2^1000 epochs: "never", without a float overflow
    xs = fit.get("x") or [x0]
    first, last = 2 ** min(xs), 2 ** max(xs)
    if x0 > max(xs):
        return {"epochs": 2 ** x0, "said": f"the line reaches a zero gap at about {2 ** x0:.0f} epochs, beyond the "
                                            f"measured {first:g}-{last:g} (an extrapolation; {span})"}
    if x0 >= min(xs):
        return {"epochs": 2 ** x0, "said": f"the gap changes sign inside the measured range, near {2 ** x0:.0f} "
                                            f"epochs ({span})"}
    return {"epochs": None, "said": f"no crossover ahead: the gap widens with epochs over {first:g}-{last:g} ({span})"}


def pack_correct(bools) -> str:
    """Per-image correctness (M,) bools -> base64 of np.packbits (M / 8 bytes), for run summaries."""
    return base64.b64encode(np.packbits(np.asarray(bools, bool)).tobytes()).decode("ascii")


def unpack_correct(text: str, m: int) -> np.ndarray:
    """pack_correct's inverse: (m,) bools."""
    return np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8), count=m).astype(bool)
