"""Part 1: co-adaptation on a 2-class problem with 2-D features (the slides' "2-class regression" toy).

The slides' worst case: E2E can reach features that are excessively complex, good only for its one
decision boundary, and fragile under a small change. With two classes and 2-D features a linear
classifier theta looks at ONE direction w = W_1 - W_0; the other, u (perpendicular to w), is its
null direction: moving every feature along u by any amount leaves every softmax, hence the E2E loss
L(C_theta(F(x)), t), exactly unchanged. So

    F_warp(x) = F_E2E(x) + a * s * g(x) * u      g(x) = sin(20 x_1) cos(20 x_2), s = std of w.F/|w|

is as good as the trained E2E solution for the E2E objective, for every amplitude a: E2E cannot
tell them apart. FOCA's objective, the expected loss over random weak classifiers fitted on n_c
examples, can: a weak classifier picks up some weight along u (its random init, and chance
correlations in 20 examples), and then the spread along u costs loss. Measured (`make toy`), it
does so only partly: x1.2-1.5 at a = 3, and the penalty stops growing for larger a, while a
1-label re-fit and a 10-degree rotation of the boundary keep getting worse. We measure both
objectives on the constructed solution and on the two trained ones, then probe all three:
re-fitting the classifier on a few labels, rotating the boundary slightly, adding feature noise
(isotropic noise cannot see the warp: it moves features along w exactly as without it).
g is smooth (if fast), so an MLP could represent F_warp; it is constructed, not trained, and the
demo says so.
"""
from __future__ import annotations

import numpy as np

from minifoca import foca
from minifoca.backend import array_module, to_device, to_host
from minifoca.layers import softmax_ce_forward
from minifoca.metrics import error_rate
from minifoca.models import classifier_forward

from .config import minifoca_config
from .data import toy_dataset
from .methods import DATA, METHODS, PROBE, stream, train_both


def null_direction(theta) -> tuple[np.ndarray, np.ndarray]:
    """-> (w / |w|, u): the unit discriminative direction of a 2-class, 2-D linear classifier and the
    unit direction it ignores (host arrays (2,))."""
    W = to_host(theta["W"])  # (2, 2): K = 2 classes, D = 2 features
    if W.shape != (2, 2):
        raise ValueError(f"the null-direction construction needs K = 2 classes and D = 2 features, got W {W.shape}")
    w = (W[1] - W[0]) / np.linalg.norm(W[1] - W[0])  # (2,)
    return w, np.array([-w[1], w[0]])  # u is w turned by 90 degrees


def warp_input(x) -> np.ndarray:
    """g(x) (N,): a wiggle of the input plane fast enough to be blind to the class (moons: class means
    of g differ by 0.001 std; slow ones such as sin(3 x_1) carry class information along u, which
    helps every classifier instead of being ignorable; `class_blindness` measures it per run)."""
    return np.sin(20 * x[:, 0]) * np.cos(20 * x[:, 1])


def class_blindness(x, t) -> float:
    """|mean g(class 1) - mean g(class 0)| / std g: about 0 when the warp carries no class information."""
    g, t = warp_input(to_host(x)), to_host(t)
    return float(abs(g[t == 1].mean() - g[t == 0].mean()) / g.std())


def warped_features(f, x, theta, a: float, xp):
    """F_warp = f + a * s * g(x) * u (N, 2), s = std of the features along w (so a is in units of
    the spread the classifier does use). x (N, 2) host inputs; f (N, 2) on the backend."""
    w, u = null_direction(theta)
    s = float(np.std(to_host(f) @ w))
    shift = a * s * warp_input(to_host(x))[:, None] * u[None, :]  # (N, 2) computed on the host
    return f + to_device(xp, shift, f.dtype)


def e2e_objective(f, t, theta) -> float:
    """The E2E objective at the trained classifier: mean cross-entropy of C_theta on features f."""
    return float(softmax_ce_forward(classifier_forward(theta, f)[0], t)[0])


def weak_classifiers(f, t, n_classes: int, cfg, rng: np.random.Generator, draws: int) -> list[dict]:
    """`draws` samples theta ~ Theta_phi: each ComputeClassifier on n_c examples of f drawn with
    replacement (Algorithm 1 lines 4-6)."""
    out = []
    for _ in range(draws):
        idx = foca.sample_minibatch(rng, len(t), cfg.n_c)  # (n_c,)
        out.append(foca.compute_classifier(f[idx], t[idx], n_classes, cfg, rng))
    return out


def foca_objective(f, t, weak: list[dict]) -> float:
    """FOCA's objective, mean over the data of E_{theta ~ Theta_phi} L, by Monte Carlo: the mean
    cross-entropy on all of f of the weak classifiers `weak` (fitted on f with weak_classifiers;
    draw them from a fresh rng with the same seed to compare features under the same draws)."""
    return float(np.mean([e2e_objective(f, t, theta) for theta in weak]))


def tilt_degrees(weak: list[dict], theta) -> float:
    """Mean absolute angle between each weak classifier's direction W_1 - W_0 and theta's (2 classes):
    how far the weak classifiers turn towards the direction theta ignores."""
    w = to_host(theta["W"][1] - theta["W"][0])
    angles = [np.degrees(np.arccos(np.clip(v @ w / np.linalg.norm(v) / np.linalg.norm(w), -1, 1)))
              for v in (to_host(th["W"][1] - th["W"][0]) for th in weak)]
    return float(np.mean(angles))


def rotate_classifier(theta, degrees: float, pivot: np.ndarray) -> dict:
    """theta whose decision boundaries are rotated by `degrees` about the feature-space point `pivot`:
    logits W R^T (f - p) + W p + b, i.e. the classifier applied to features rotated back about p."""
    xp = array_module(theta["W"])
    W, b = to_host(theta["W"]), to_host(theta["b"])  # (K, 2), (K,)
    r = np.deg2rad(degrees)
    R = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])  # (2, 2)
    W_rot = W @ R.T  # (K, 2)
    b_rot = b + W @ pivot - W_rot @ pivot  # (K,)
    return {"W": to_device(xp, W_rot, theta["W"].dtype), "b": to_device(xp, b_rot, theta["b"].dtype)}


def boundary_centre(theta, f, t) -> np.ndarray:
    """The point of the 2-class boundary nearest the midpoint of the two class means (host (2,))."""
    f, t = to_host(f), to_host(t)
    W, b = to_host(theta["W"]), to_host(theta["b"])
    w, c = W[1] - W[0], b[1] - b[0]
    m = 0.5 * (f[t == 0].mean(axis=0) + f[t == 1].mean(axis=0))  # (2,)
    return m - (w @ m + c) * w / (w @ w)


def probes(f_train, t_train, f_test, t_test, theta, cfg, tc, rng) -> dict:
    """Fragility of one (features, classifier) pair, all errors on the test split:
    few_label_error   a classifier re-fitted on tc.few_labels labels per class (frozen features)
    rotated_error     the boundary rotated by +-tc.rotate_deg degrees about its centre (mean of both)
    noisy_error       Gaussian feature noise, std tc.noise_frac x the distance between class means"""
    xp = array_module(f_test)
    err = lambda th, f: error_rate(classifier_forward(th, f)[0], t_test)  # noqa: E731
    pivot = boundary_centre(theta, f_train, t_train)
    f_host, t_host = to_host(f_train), to_host(t_train)
    gap = np.linalg.norm(f_host[t_host == 1].mean(axis=0) - f_host[t_host == 0].mean(axis=0))
    noisy = [err(theta, f_test + to_device(xp, tc.noise_frac * gap * rng.standard_normal(f_test.shape),
                                         f_test.dtype)) for _ in range(tc.noise_draws)]
    return {"test_error": err(theta, f_test),
            "few_label_error": foca.few_label_error(f_train, t_train, f_test, t_test, 2, cfg, rng),
            "rotated_error": float(np.mean([err(rotate_classifier(theta, s * tc.rotate_deg, pivot), f_test)
                                            for s in (-1, 1)])),
            "noisy_error": float(np.mean(noisy))}


def coadapt_seed(run: dict, cfg, tc, seed: int) -> dict:
    """Objectives and probes for one seed of train_both's output on a 2-class problem.
    -> {"cases": {case: {"e2e_objective", "foca_objective", probes...}}, "curve": {"a": [...], key: [...]}}
    cases: e2e and foca (the trained solutions), coadapted (the E2E solution warped by tc.warp);
    curve: the same numbers for the E2E solution warped by each amplitude in tc.warp_curve."""
    data, xp = run["data"], run["e2e"]["model"].xp
    feats = {m: (foca.features(run[m]["model"], data.x_train), foca.features(run[m]["model"], data.x_test))
             for m in ("e2e", "foca")}
    theta_e2e = run["e2e"]["theta"]

    def warp(a):  # (train, test) features of the E2E solution warped along its null direction
        return tuple(warped_features(f, x, theta_e2e, a, xp) for f, x in zip(feats["e2e"], (data.x_train, data.x_test)))

    def numbers(f_tr, f_te, theta):  # the same weak-classifier draws for every case (same rng seed)
        weak = weak_classifiers(f_tr, data.t_train, 2, cfg, stream(seed, PROBE), tc.objective_draws)
        return {"e2e_objective": e2e_objective(f_tr, data.t_train, theta),
                "foca_objective": foca_objective(f_tr, data.t_train, weak), "weak_tilt_deg": tilt_degrees(weak, theta),
                **probes(f_tr, data.t_train, f_te, data.t_test, theta, cfg, tc, stream(seed, PROBE))}

    feats["coadapted"] = warp(tc.warp)
    thetas = {"e2e": theta_e2e, "foca": run["foca"]["theta"], "coadapted": theta_e2e}
    cases = {case: numbers(*feats[case], thetas[case]) for case in thetas}
    pivot = boundary_centre(theta_e2e, feats["coadapted"][0], data.t_train)  # for the picture's dashed lines
    curve = {"a": list(tc.warp_curve)}
    for a in tc.warp_curve:
        for key, value in numbers(*warp(a), theta_e2e).items():
            curve.setdefault(key, []).append(value)
    return {"cases": cases, "curve": curve, "class_blindness": class_blindness(data.x_train, data.t_train),
            "f_coadapted": to_host(feats["coadapted"][1]),
            "rotated": [{k: to_host(v) for k, v in rotate_classifier(theta_e2e, sgn * tc.rotate_deg, pivot).items()}
                        for sgn in (-1, 1)],
            "weak": {case: [(to_host(th["W"]), to_host(th["b"])) for th in  # a few, for the picture
                             weak_classifiers(feats[case][0], data.t_train, 2, cfg, stream(seed, PROBE), 8)]
                     for case in ("e2e", "foca")}}


def coadapt_job(tc, seed: int, keep_picture: bool) -> dict:
    """Part 1 for one seed: train FOCA and E2E on the 2-class toy, then coadapt_seed. Host results only
    (it may run in a worker process). -> {"metrics", "coadapt", and with keep_picture "picture"}."""
    host = toy_dataset(tc.coadapt_data, tc.coadapt_train, tc.coadapt_test, tc.coadapt_noise, stream(seed, DATA))
    cfg = minifoca_config(tc)
    run = train_both(host, tc.hidden, cfg, seed, tc.track_every)
    res = coadapt_seed(run, cfg, tc, seed)
    out = {"metrics": {m: run[m]["metrics"] for m in METHODS},
           "coadapt": {k: res[k] for k in ("cases", "curve", "class_blindness")}}
    if keep_picture:
        out["picture"] = {"x": host.x_test, "t": host.t_test, "coadapted": res["f_coadapted"], "weak": res["weak"],
                          "rotate_deg": tc.rotate_deg, "warp": tc.warp, "rotated": res["rotated"],
                          **{m: run[m]["f_test"] for m in METHODS},
                          **{f"theta_{m}": {k: to_host(v) for k, v in run[m]["theta"].items()} for m in METHODS}}
    return out
