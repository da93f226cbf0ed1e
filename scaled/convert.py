"""minifoca parameters <-> scaled (torch) state dicts, for the "mlp-..." FeatureNet and its kin.

A minifoca MLP (minifoca/models.py) and its torch twin hold the same numbers under different names:

    minifoca                    torch state-dict key (layer i of L, j = its first module)
    params["W{i}"]   (H, D)     trunk.layers.{j}.weight        Linear (same (H, D) layout)
    params["b{i}"]   (H,)       trunk.layers.{j}.bias          layers without BN
    params["gamma{i}"] (H,)     trunk.layers.{j+1}.weight      BatchNorm1d
    params["beta{i}"]  (H,)     trunk.layers.{j+1}.bias
    state["mean{i}"]   (H,)     trunk.layers.{j+1}.running_mean
    state["var{i}"]    (H,)     trunk.layers.{j+1}.running_var  (both unbiased, momentum 0.1)
    theta["W"] (K, D), ["b"]    classifier.weight, classifier.bias

Layer i is [Linear, BatchNorm1d if it has BN, ReLU unless it is a linear last layer], so j counts
those modules. With BN everywhere this is scaled.models.MLPTrunk (j = 3i); the toy's networks
(no BN, linear last layer) follow the same rule; scaled has no model of that shape, so
`torch_twin` builds one from plain torch layers.
`torch_twin` builds that network. BN's num_batches_tracked has no minifoca counterpart (torch reads it only with momentum=None): it
is written as 0 and ignored on the way back.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from minifoca.backend import to_device, to_host

from .models import FeatureNet, IdentityHead, build_model


def layer_keys(model) -> dict[str, str]:
    """minifoca name -> torch key, for every entry of model.params and model.state."""
    keys, j = {}, 0
    for i in range(model.n_layers):
        keys[f"W{i}"] = f"trunk.layers.{j}.weight"
        if f"gamma{i}" in model.params:  # BN follows the Linear
            bn = f"trunk.layers.{j + 1}"
            keys.update({f"gamma{i}": f"{bn}.weight", f"beta{i}": f"{bn}.bias",
                         f"mean{i}": f"{bn}.running_mean", f"var{i}": f"{bn}.running_var"})
            j += 1
        else:
            keys[f"b{i}"] = f"trunk.layers.{j}.bias"
        last_linear = model.linear_last and i == model.n_layers - 1
        j += 1 if last_linear else 2  # the Linear (and BN, counted above), then the ReLU
    return keys


CLASSIFIER_KEYS = {"W": "classifier.weight", "b": "classifier.bias"}


def minifoca_to_state_dict(model, theta: dict | None = None) -> dict[str, torch.Tensor]:
    """A state dict for the torch twin of `model` (and its classifier when theta is given), on
    the CPU in the model's dtype. The tensors are copies: minifoca's SGD updates its arrays in
    place, and torch must not see that. Load with strict=False when theta is None."""
    arrays, sd = {**model.params, **model.state}, {}
    for name, key in layer_keys(model).items():
        sd[key] = torch.from_numpy(np.array(to_host(arrays[name])))
        if name.startswith("mean"):
            sd[key.replace("running_mean", "num_batches_tracked")] = torch.tensor(0)
    if theta is not None:
        sd.update({key: torch.from_numpy(np.array(to_host(theta[name]))) for name, key in CLASSIFIER_KEYS.items()})
    return sd


def state_dict_to_minifoca(sd: dict, model, theta: dict | None = None) -> None:
    """Copy a torch state dict into `model` (and `theta`, from the classifier) IN PLACE, on the
    model's backend and dtype. A missing key or a shape that differs is a ValueError naming it."""
    pairs = [(model.params if name in model.params else model.state, name, key)
             for name, key in layer_keys(model).items()]
    if theta is not None:
        pairs += [(theta, name, key) for name, key in CLASSIFIER_KEYS.items()]
    for target, name, key in pairs:
        if key not in sd:
            raise ValueError(f"state dict has no {key!r} for minifoca's {name!r} "
                             f"(keys: {', '.join(list(sd)[:6])}, ...): is it the twin of this MLP?")
        value = sd[key].detach().cpu().numpy()
        if value.shape != target[name].shape:
            raise ValueError(f"{key}: shape {value.shape} != minifoca's {name} {target[name].shape}")
        target[name] = to_device(model.xp, value, model.dtype)


class _TwinTrunk(nn.Module):
    """Layer i = Linear (with bias when it has no BN) -> BatchNorm1d (if BN) -> ReLU (unless it is
    a linear last layer): the rule layer_keys names, for any minifoca MLP."""

    def __init__(self, model):
        super().__init__()
        layers = []
        for i, (d_in, h) in enumerate(zip(model.widths[:-1], model.widths[1:])):
            has_bn = f"gamma{i}" in model.params
            layers += [nn.Linear(d_in, h, bias=not has_bn)] + ([nn.BatchNorm1d(h)] if has_bn else [])
            layers += [] if model.linear_last and i == model.n_layers - 1 else [nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x.flatten(1))  # (N, D), as MLPTrunk


def torch_twin(model, n_classes: int, theta: dict | None = None) -> FeatureNet:
    """The FeatureNet computing what minifoca's `model` computes, with its weights (and theta's),
    in the model's dtype on the CPU: scaled's own "mlp-..." network when every layer has BN and
    a ReLU (minifoca's digits MLP), else the same layers built here (the toy's networks)."""
    widths = model.widths
    with torch.random.fork_rng():  # the init below is overwritten; leave the caller's torch stream alone
        if model.bn and not model.linear_last:
            net = build_model("mlp-" + "-".join(map(str, widths)), n_classes)
        else:
            net = FeatureNet(_TwinTrunk(model), IdentityHead(widths[-1]), n_classes)
    net.to(torch.float64 if model.dtype == np.float64 else torch.float32)
    missing, unexpected = net.load_state_dict(minifoca_to_state_dict(model, theta), strict=False)
    if unexpected or any(k not in CLASSIFIER_KEYS.values() for k in missing):
        raise RuntimeError(f"torch twin of {widths} does not match layer_keys: missing {missing}, "
                           f"unexpected {unexpected}")
    return net
