"""Algorithm 1's pieces do what the paper says, and training is sane on small problems."""
import dataclasses

import numpy as np
import pytest

from minifoca import foca
from minifoca.config import Config
from minifoca.data import Dataset
from minifoca.layers import softmax_ce_forward
from minifoca.models import MLP, classifier_forward, init_classifier
from minifoca.optim import SGD

K = 4


def blobs(rng, n=200, d=6, k=K, sep=4.0):
    centres = rng.normal(0, sep, (k, d))
    t = rng.integers(0, k, n)
    return centres[t] + rng.normal(size=(n, d)), t


def small_data(rng):
    x, t = blobs(rng, n=400)
    return Dataset("blobs", x[:240], t[:240], x[240:320], t[240:320], x[320:], t[320:], K, "blobs")


def small_cfg(**kw):
    base = dict(widths=(16, 8), steps=60, n_f=32, n_c=40, weak_steps=16, stage2_epochs=3,
                stage2_batch=16, eval_every=1, few_label_draws=2)
    return dataclasses.replace(Config(), **{**base, **kw})


def test_sample_minibatch_is_with_replacement():
    idx = foca.sample_minibatch(np.random.default_rng(0), 10, 1000)
    assert idx.min() >= 0 and idx.max() < 10
    assert len(np.unique(idx)) == 10  # all indices reachable
    assert len(np.unique(foca.sample_minibatch(np.random.default_rng(0), 50, 50))) < 50  # repeats


def test_epoch_sampler_is_a_shuffle_per_epoch():
    s = foca.EpochSampler(10, 3, np.random.default_rng(0))
    epoch = np.concatenate([s.next() for _ in range(s.per_epoch)])
    assert s.epoch == 1 and s.epoch_done and len(set(epoch.tolist())) == 9  # 3 batches, last 1 dropped
    s.next()
    assert s.epoch == 2
    with pytest.raises(ValueError, match="batch size"):
        foca.EpochSampler(3, 4, np.random.default_rng(0))


def test_initial_loss_is_ln_k():
    """A tiny-init classifier on any features gives uniform predictions: loss = ln K."""
    rng = np.random.default_rng(0)
    model = MLP((6, 16, 8), True, rng)
    x, t = blobs(rng)
    theta = init_classifier(8, K, rng, std=1e-6)
    loss, _ = softmax_ce_forward(classifier_forward(theta, foca.compute_features(model, x))[0], t)
    assert abs(float(loss) - np.log(K)) < 1e-4


def test_compute_classifier_fits_its_batch_and_is_reproducible():
    rng = np.random.default_rng(0)
    f, t = blobs(rng, n=40)
    cfg = Config()
    th1 = foca.compute_classifier(f, t, K, cfg, np.random.default_rng(5))
    th2 = foca.compute_classifier(f, t, K, cfg, np.random.default_rng(5))
    assert all(np.array_equal(th1[k], th2[k]) for k in th1), "same rng, different classifier"
    err = float((classifier_forward(th1, f)[0].argmax(1) != t).mean())
    assert err < 0.1, f"ComputeClassifier does not fit its own separable batch (error {err:.2f})"


def test_foca_step_keeps_theta_constant():
    rng = np.random.default_rng(0)
    model = MLP((6, 16, 8), True, rng)
    x, t = blobs(rng, n=32)
    theta = init_classifier(8, K, rng)
    before = {k: v.copy() for k, v in theta.items()}
    W0 = model.params["W0"].copy()
    foca.foca_step(model, theta, x, t, SGD(model.params, lr=0.1, momentum=0.9, nesterov=True))
    assert all(np.array_equal(before[k], theta[k]) for k in theta), "foca_step changed theta"
    assert not np.array_equal(W0, model.params["W0"]), "foca_step did not update phi"


@pytest.mark.parametrize("refresh", [1, 7])
def test_weak_classifier_refreshed_every_r_steps(monkeypatch, refresh):
    calls = []
    real = foca.compute_classifier
    monkeypatch.setattr(foca, "compute_classifier", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    data, cfg = small_data(rng), small_cfg(refresh=refresh)
    foca.train_foca(MLP((6, 16, 8), True, rng), data, cfg, rng)
    assert len(calls) == -(-cfg.steps // refresh)  # ceil(steps / R)


def test_overfits_twenty_examples():
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(20, 6)), np.arange(20) % K  # random labels: only memorising fits them
    model = MLP((6, 64, 32), True, rng)
    theta = init_classifier(32, K, rng)
    opt_phi, opt_theta = SGD(model.params, 0.1, 0.9, 0.0, True), SGD(theta, 0.1, 0.9, 0.0, True)
    for _ in range(300):
        loss, _, _ = foca.e2e_step(model, theta, x, t, opt_phi, opt_theta)
    assert float(loss) < 0.05, f"cannot overfit 20 examples (loss {float(loss):.3f})"


def test_all_stages_run_and_learn():
    rng = np.random.default_rng(0)
    data, cfg = small_data(rng), small_cfg(finetune_epochs=2)
    logs = []
    model = MLP((6, *cfg.widths), True, rng)
    foca.train_foca(model, data, cfg, rng, logs.append)
    theta = foca.train_classifier(model, data, cfg, rng, logs.append)
    err2 = foca.evaluate(model, theta, data.x_test, data.t_test)
    foca.fine_tune(model, theta, data, cfg, rng, logs.append)
    assert err2 < 0.2, f"stage 2 on separable blobs: test error {err2:.2f}"
    assert {r["stage"] for r in logs} == {1, 2, 3}
    stage1 = [r for r in logs if r["stage"] == 1]
    assert stage1[-1]["val_error_by"] == "weak classifier" and "val_error" in stage1[-1]
    e2e = MLP((6, *cfg.widths), True, rng)
    th = foca.train_e2e(e2e, init_classifier(8, K, rng), data, dataclasses.replace(cfg, steps=200), rng)
    assert foca.evaluate(e2e, th, data.x_test, data.t_test) < 0.2


def test_nan_loss_stops_with_the_step():
    rng = np.random.default_rng(0)
    data = small_data(rng)
    data.x_train[5, 0] = np.nan
    with pytest.raises(foca.NonFiniteLoss, match="at step"):
        foca.train_foca(MLP((6, 16, 8), True, rng), data, small_cfg(), rng)


def test_compute_classifier_equals_torch_loop():
    """ComputeClassifier = weak_steps of torch.optim.SGD (Nesterov, weight decay on W and b) on the
    full fixed batch, from the same initial theta."""
    import torch
    import torch.nn.functional as F

    from checks import assert_close

    rng = np.random.default_rng(3)
    f, t = blobs(rng, n=30)
    cfg = Config()
    theta0 = init_classifier(6, K, rng)
    ours = foca.compute_classifier(f, t, K, cfg, rng, theta0=theta0)
    W, b = (torch.tensor(theta0[k], requires_grad=True) for k in ("W", "b"))
    opt = torch.optim.SGD([W, b], cfg.weak_lr, cfg.weak_momentum, weight_decay=cfg.weak_wd, nesterov=True)
    for _ in range(cfg.weak_steps):
        opt.zero_grad()
        F.cross_entropy(F.linear(torch.tensor(f), W, b), torch.tensor(t)).backward()
        opt.step()
    assert_close("weak W after 64 steps", ours["W"], W.detach().numpy(), 1e-10)
    assert_close("weak b after 64 steps", ours["b"], b.detach().numpy(), 1e-10)
