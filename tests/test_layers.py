"""Every backward in minifoca against centred finite differences (float64, relative error < 1e-6)
and against the same expression in torch autograd (float64, < 1e-10). docs/gradients.md derives
each one and names the test here that checks it."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minifoca import layers as L
from minifoca.foca import foca_step
from minifoca.models import MLP, classifier_backward, classifier_forward, init_classifier
from minifoca.optim import SGD
from checks import assert_close, numeric_grad

FD_TOL, TORCH_TOL = 1e-6, 1e-10
N, D, H, K = 6, 5, 4, 3


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def T(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def check(name, analytic, fd, torch_grad):
    assert_close(f"{name} vs finite differences", analytic, fd, FD_TOL)
    assert_close(f"{name} vs torch autograd", analytic, torch_grad.detach().numpy(), TORCH_TOL)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(rng, bias):
    x, W, b = rng.normal(size=(N, D)), rng.normal(size=(H, D)), rng.normal(size=H) if bias else None
    dout = rng.normal(size=(N, H))
    out, cache = L.linear_forward(x, W, b)
    dx, dW, db = L.linear_backward(dout, cache)
    loss = lambda: float((L.linear_forward(x, W, b)[0] * dout).sum())  # noqa: E731
    tx, tW, tb = T(x), T(W), T(b) if bias else None
    F.linear(tx, tW, tb).backward(torch.tensor(dout))
    check("dx", dx, numeric_grad(loss, x), tx.grad)
    check("dW", dW, numeric_grad(loss, W), tW.grad)
    if bias:
        check("db", db, numeric_grad(loss, b), tb.grad)
    else:
        assert db is None


def test_relu(rng):
    x, dout = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    out, cache = L.relu_forward(x)
    dx = L.relu_backward(dout, cache)
    tx = T(x)
    torch.relu(tx).backward(torch.tensor(dout))
    check("dx", dx, numeric_grad(lambda: float((L.relu_forward(x)[0] * dout).sum()), x), tx.grad)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm(rng, train):
    x, dout = rng.normal(2.0, 3.0, size=(N, H)), rng.normal(size=(N, H))
    gamma, beta = rng.normal(size=H), rng.normal(size=H)
    run0 = {"mean": rng.normal(size=H), "var": rng.uniform(0.5, 2.0, size=H)}

    def fwd():
        running = {k: v.copy() for k, v in run0.items()}
        return L.batchnorm_forward(x, gamma, beta, running, train), running

    (out, cache), running = fwd()
    dx, dgamma, dbeta = L.batchnorm_backward(dout, cache)
    loss = lambda: float((fwd()[0][0] * dout).sum())  # noqa: E731
    tx, tg, tb = T(x), T(gamma), T(beta)
    rm, rv = torch.tensor(run0["mean"]), torch.tensor(run0["var"])
    tout = F.batch_norm(tx, rm, rv, tg, tb, training=train, momentum=0.1, eps=1e-5)
    tout.backward(torch.tensor(dout))
    assert_close("BN output vs torch", out, tout.detach().numpy(), TORCH_TOL)
    assert_close("BN running mean vs torch", running["mean"], rm.numpy(), TORCH_TOL)
    assert_close("BN running var vs torch", running["var"], rv.numpy(), TORCH_TOL)
    check("dx", dx, numeric_grad(loss, x), tx.grad)
    check("dgamma", dgamma, numeric_grad(loss, gamma), tg.grad)
    check("dbeta", dbeta, numeric_grad(loss, beta), tb.grad)


def test_softmax_ce(rng):
    logits, t = rng.normal(size=(N, K)) * 3, rng.integers(0, K, N)
    loss, cache = L.softmax_ce_forward(logits, t)
    dlogits = L.softmax_ce_backward(1.0, cache)
    tl = T(logits)
    tloss = F.cross_entropy(tl, torch.tensor(t))
    tloss.backward()
    assert abs(float(loss) - tloss.item()) < 1e-12, "softmax CE loss differs from torch"
    check("dlogits", dlogits, numeric_grad(lambda: float(L.softmax_ce_forward(logits, t)[0]), logits), tl.grad)


def test_weight_decay(rng):
    ps = [rng.normal(size=(H, D)), rng.normal(size=H)]
    pen, cache = L.weight_decay_forward(ps, 0.01)
    grads = L.weight_decay_backward(1.0, cache)
    tps = [T(p) for p in ps]
    (0.5 * 0.01 * sum((p * p).sum() for p in tps)).backward()
    for i, (p, g, tp) in enumerate(zip(ps, grads, tps)):
        check(f"dp{i}", g, numeric_grad(lambda: L.weight_decay_forward(ps, 0.01)[0], p), tp.grad)


def torch_mlp_logits(model: MLP, tparams: dict, theta: dict, x, train: bool):
    """The same F_phi and C_theta written with torch.nn.functional (the autograd oracle)."""
    h = torch.tensor(x)
    for i in range(model.n_layers):
        h = F.linear(h, tparams[f"W{i}"], tparams.get(f"b{i}"))
        if f"gamma{i}" in tparams:
            h = F.batch_norm(h, torch.tensor(model.state[f"mean{i}"]), torch.tensor(model.state[f"var{i}"]),
                             tparams[f"gamma{i}"], tparams[f"beta{i}"], training=train)
        if model._has_relu(i):
            h = torch.relu(h)
    return F.linear(h, torch.tensor(theta["W"]), torch.tensor(theta["b"]))


@pytest.mark.parametrize("bn,train,linear_last", [(True, True, False), (True, False, False),
                                                  (False, True, False), (True, True, True)])
def test_phi_gradient_of_one_foca_step(rng, bn, train, linear_last):
    """The whole phi-gradient of one FOCA step (theta constant), BN in train mode included."""
    model = MLP((D, 7, 6, H), bn, rng, linear_last=linear_last)
    for k, v in model.params.items():  # non-trivial BN affine parameters
        if k.startswith(("gamma", "beta")):
            v += rng.normal(0, 0.3, v.shape)
    theta = init_classifier(H, K, rng)
    x, t = rng.normal(size=(N, D)), rng.integers(0, K, N)
    state0 = {k: v.copy() for k, v in model.state.items()}

    def loss():
        model.state = {k: v.copy() for k, v in state0.items()}
        f, _ = model.forward(x, train)
        return float(L.softmax_ce_forward(classifier_forward(theta, f)[0], t)[0])

    tparams = {k: T(v) for k, v in model.params.items()}
    F.cross_entropy(torch_mlp_logits(model, tparams, theta, x, train), torch.tensor(t)).backward()
    if train:  # foca_step itself (lr 0 leaves phi unchanged, so the finite differences still apply)
        _, dphi = foca_step(model, theta, x, t, SGD(model.params, lr=0.0))
    else:  # eval mode: the same chain by hand, BN with running statistics
        f, cache = model.forward(x, train=False)
        logits, c_cls = classifier_forward(theta, f)
        df, _ = classifier_backward(L.softmax_ce_backward(1.0, L.softmax_ce_forward(logits, t)[1]), c_cls)
        dphi = model.backward(df, cache)
    assert sorted(dphi) == sorted(model.params), "a parameter has no gradient"
    for name, p in model.params.items():
        check(f"d{name}", dphi[name], numeric_grad(loss, p), tparams[name].grad)


def test_classifier_gradient(rng):
    f, t = rng.normal(size=(N, H)), rng.integers(0, K, N)
    theta = init_classifier(H, K, rng)
    logits, cache = classifier_forward(theta, f)
    df, dtheta = classifier_backward(L.softmax_ce_backward(1.0, L.softmax_ce_forward(logits, t)[1]), cache)
    tW, tb, tf = T(theta["W"]), T(theta["b"]), T(f)
    F.cross_entropy(F.linear(tf, tW, tb), torch.tensor(t)).backward()
    loss = lambda: float(L.softmax_ce_forward(classifier_forward(theta, f)[0], t)[0])  # noqa: E731
    check("dW", dtheta["W"], numeric_grad(loss, theta["W"]), tW.grad)
    check("db", dtheta["b"], numeric_grad(loss, theta["b"]), tb.grad)
    check("df", df, numeric_grad(loss, f), tf.grad)
