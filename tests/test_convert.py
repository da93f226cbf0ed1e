"""scaled/convert.py: minifoca parameters <-> torch state dicts, both ways, for the digits MLP (scaled's
"mlp-..." network) and the toy's networks (no BN, linear last layer). A conversion is right when the
two networks then compute the same features (train and eval mode) in float64, not merely when a
round trip returns what went in (a swapped pair of keys survives a round trip)."""
import numpy as np
import pytest
import torch

from minifoca.models import MLP, init_classifier
from scaled.convert import layer_keys, minifoca_to_state_dict, state_dict_to_minifoca, torch_twin
from scaled.models import build_model
from checks import assert_close

TOL = 1e-12



def mlp(kind: str, rng):
    if kind == "digits":  # minifoca's digits MLP with BN, smaller widths
        return MLP((12, 16, 8), True, rng)
    return MLP((2, 16, 16, 2), False, rng, linear_last=True)  # the toy's network shape


def scramble(model, rng):
    """Non-trivial BN parameters and running statistics, so a swapped key shows up."""
    for name in model.params:
        if not name.startswith("W"):
            model.params[name] = rng.normal(size=model.params[name].shape)
    for name in model.state:
        model.state[name] = rng.uniform(0.5, 2.0, model.state[name].shape) if name.startswith("var") \
            else rng.normal(size=model.state[name].shape)


def test_digits_keys_are_mlptrunk_layout():
    keys = layer_keys(MLP((64, 256, 256, 32), True, np.random.default_rng(0)))
    assert keys["W2"] == "trunk.layers.6.weight" and keys["gamma1"] == "trunk.layers.4.weight"
    assert keys["var0"] == "trunk.layers.1.running_var"
    net_keys = set(build_model("mlp-64-256-256-32", 10).state_dict())
    assert set(keys.values()) <= net_keys


@pytest.mark.parametrize("kind", ["digits", "toy"])
@pytest.mark.parametrize("train", [True, False])
def test_twin_computes_the_same_features_and_logits(kind, train):
    rng = np.random.default_rng(0)
    model = mlp(kind, rng)
    scramble(model, rng)
    theta = init_classifier(model.widths[-1], 3, rng)
    net = torch_twin(model, 3, theta).train(train)
    x = rng.normal(size=(7, model.widths[0]))  # (N, D_in)
    f, _ = model.forward(x, train)
    with torch.no_grad():
        tf = net.compute_features(torch.from_numpy(x))  # once: train mode moves the running statistics
        logits = net.classifier(tf)
    assert_close(f"{kind} features (train={train})", tf.numpy(), f, TOL)
    assert_close(f"{kind} logits (train={train})", logits.numpy(), f @ theta["W"].T + theta["b"], TOL)
    for name, key in layer_keys(model).items():  # running statistics moved the same way in train mode
        if name in model.state:
            assert_close(f"{kind} {name} after forward", net.state_dict()[key].numpy(), model.state[name], TOL)


@pytest.mark.parametrize("kind", ["digits", "toy"])
def test_round_trip_torch_to_minifoca_and_back(kind):
    rng = np.random.default_rng(1)
    model, theta = mlp(kind, rng), init_classifier(mlp(kind, rng).widths[-1], 3, rng)
    net = torch_twin(model, 3, theta)
    with torch.no_grad():  # a torch net with every value different from the minifoca model's
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(p.numel())))
        for name, b in net.named_buffers():
            if "running" in name:
                b.copy_(torch.rand(b.shape, dtype=b.dtype) + 0.5)
    sd = net.state_dict()
    state_dict_to_minifoca(sd, model, theta)
    back = minifoca_to_state_dict(model, theta)
    for key, value in back.items():
        if "num_batches_tracked" not in key:
            assert_close(f"{key} after torch -> minifoca -> torch", value.numpy(), sd[key].numpy(), 0.0)
    x = rng.normal(size=(5, model.widths[0]))
    with torch.no_grad():
        assert_close("logits after conversion", net.eval()(torch.from_numpy(x)).numpy(),
                     model.forward(x, False)[0] @ theta["W"].T + theta["b"], TOL)


def test_conversion_copies_instead_of_aliasing():
    model = mlp("digits", np.random.default_rng(2))
    sd = minifoca_to_state_dict(model)
    model.params["W0"] += 1.0  # minifoca's SGD updates in place
    assert not np.allclose(sd["trunk.layers.0.weight"].numpy(), model.params["W0"])


def test_bad_state_dict_names_the_key():
    model = mlp("digits", np.random.default_rng(3))
    sd = minifoca_to_state_dict(model)
    del sd["trunk.layers.4.weight"]
    with pytest.raises(ValueError, match="trunk.layers.4.weight"):
        state_dict_to_minifoca(sd, model)
    sd = minifoca_to_state_dict(model)
    sd["trunk.layers.0.weight"] = torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="shape"):
        state_dict_to_minifoca(sd, model)
