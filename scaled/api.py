"""FOCA in your own PyTorch code: no ScaledConfig, no Run, your DataLoader (docs/api.md).

    from scaled.api import FocaLoss, foca_network, train_classifier, compute_all_features, feature_stats
    net = foca_network(torchvision.models.resnet18(weights=None), num_classes=10, in_channels=3, image_size=32)
    foca = FocaLoss(num_classes=10, n_c=100, refresh=32, generator=torch.Generator().manual_seed(0),
                    sampler=weak_sampler(train_set, 100, torch.Generator().manual_seed(1)))  # n -> (x_c, t_c)
    opt = torch.optim.SGD(foca_parameters(net), lr=0.03, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for x, t in loader:                                                 # stage 1
        loss = foca(net, x, t)                                          # a new weak classifier every R calls
        opt.zero_grad(); loss.backward(); opt.step()
    train_classifier(net, loader)                                       # stage 2: net.classifier on frozen features
    f, t = compute_all_features(net, test_loader)                       # (N, D), (N,) eval mode
    feature_stats(f, t)                                                 # trace_ratio, fisher_eigenvalue, within_spread
    net, transform = load_run("runs/scaled/<run>")                      # a scaled.train run, for new images

FocaLoss is scaled.foca's, the object the engine's stage 1 runs on (so `make crosscheck` holds it
to minifoca and the authors' code). The defaults of every function are the paper's (scaled/config.py).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from minifoca.metrics import feature_stats as _feature_stats

from .engine import Phi as features_module
from .foca import FocaLoss, compute_features, features_of, init_classifier, weak_loss
from .inference import Transform, load_run
from .models import FeatureHead, FeatureNet, build_model
from .models.external import as_trunk, check_width, probe

__all__ = ["FocaLoss", "foca_network", "foca_parameters", "train_classifier", "compute_all_features",
           "feature_stats", "error_rate", "weak_loss", "weak_sampler", "WeakSampler", "features_module",
           "load_run", "Transform"]


class WeakSampler:
    """SampleMinibatch(d, n_c) over a dataset: n indices uniform WITH replacement (Algorithm 1) from
    `generator` (CPU), the items stacked: (x (n, ...), t (n,)) on `device`. Its state_dict is its
    generator's, which FocaLoss.state_dict saves with its own."""

    def __init__(self, dataset, n_c: int, generator: torch.Generator, device=None):
        self.dataset, self.n_c, self.generator, self.device = dataset, n_c, generator, device

    def __call__(self, n: int | None = None):
        idx = torch.randint(len(self.dataset), (n or self.n_c,), generator=self.generator)  # (n,)
        items = [self.dataset[i] for i in idx.tolist()]
        x = torch.stack([torch.as_tensor(a) for a, _ in items])  # (n, C, H, W)
        t = torch.as_tensor([int(b) for _, b in items])  # (n,)
        return (x, t) if self.device is None else (x.to(self.device), t.to(self.device))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def weak_sampler(dataset, n_c: int, generator: torch.Generator, device=None) -> WeakSampler:
    """FocaLoss's sampler for any map-style dataset of (x, t) items (a torchvision ImageFolder, a
    TensorDataset): n_c -> (x_c, t_c), uniform with replacement, drawn from generator."""
    return WeakSampler(dataset, n_c, generator, device)


def foca_network(backbone: nn.Module | str, num_classes: int, head: str = "D", in_channels: int = 3,
                 image_size: int = 32, hidden: int = 128) -> FeatureNet:
    """Any backbone -> a FeatureNet: trunk (the backbone, its classifier removed), Table 1's head,
    and a fresh classifier Linear(D, K). backbone: a module (torchvision classification models and
    timm models lose their classifier, anything else must map (N, C, H, W) to a map or (N, D)), or
    a name build_model knows ("wrn-16-4", "torchvision:resnet18", "timm:NAME", "pkg.mod:factory").
    The trunk is probed with two blank (in_channels, image_size, image_size) images: a misfit
    raises ValueError naming it. net.compute_features(x) -> (N, D); net(x) -> logits (N, K)."""
    if isinstance(backbone, str):
        return build_model(backbone, num_classes, head, image_size, in_channels=in_channels, hidden=hidden)
    trunk = as_trunk(backbone)
    channels, spatial, vector = probe(trunk, type(backbone).__name__, in_channels, image_size)
    if trunk is backbone:  # neither torchvision's nor timm's: a classifier left on would be the trunk's end
        check_width(type(backbone).__name__, channels, vector, num_classes)
    return FeatureNet(trunk, FeatureHead(head, channels, spatial, hidden, vector=vector), num_classes)


def foca_parameters(net: nn.Module) -> list[nn.Parameter]:
    """phi's parameters: all but net.classifier's (stage 1 of FOCA never trains the classifier)."""
    skip = {id(p) for p in net.classifier.parameters()} if hasattr(net, "classifier") else set()
    return [p for p in net.parameters() if id(p) not in skip]


def train_classifier(net: nn.Module, loader: Iterable, num_classes: int | None = None, epochs: int = 5,
                     lr: float = 0.003, momentum: float = 0.9, wd: float = 1e-2, init_std: float = 0.1,
                     generator: torch.Generator | None = None, bn_train: bool = False) -> nn.Linear:
    """Stage 2: a fresh classifier (W ~ N(0, init_std^2), b = 0) fitted on frozen features of the
    batches of `loader` (iterated once per epoch; (x, t) pairs, augmented or not as you choose) by
    SGD (Nesterov, weight decay on W and b), the engine's stage-2 recipe. Features are computed
    without gradient, BN in eval mode unless bn_train (the authors' code uses batch statistics).
    It becomes net.classifier when net has one; returned either way."""
    device = next(net.parameters()).device
    dtype = next(net.parameters()).dtype
    clf = getattr(net, "classifier", None)
    if clf is None:
        if num_classes is None:
            raise ValueError("train_classifier: net has no classifier; pass num_classes")
        x0, _ = next(iter(loader))
        clf = nn.Linear(compute_features(net, x0.to(device)).shape[1], num_classes).to(device, dtype)
    theta = init_classifier(clf.in_features, clf.out_features, init_std, generator, device, dtype)
    with torch.no_grad():
        clf.weight.copy_(theta["W"])
        clf.bias.copy_(theta["b"])
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=momentum, weight_decay=wd, nesterov=True)
    was = net.training
    for _ in range(epochs):
        for x, t in loader:
            net.train(bn_train)
            f = compute_features(net, x.to(device))  # (N, D) frozen
            loss = F.cross_entropy(clf(f), t.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.train(was)
    return clf


@torch.no_grad()
def compute_all_features(net: nn.Module, loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode features of every batch of `loader`: (N, D) float32 and labels (N,), on the CPU."""
    was, device = net.training, next(net.parameters()).device
    net.eval()
    fs, ts = [], []
    for x, t in loader:
        fs.append(features_of(net, x.to(device)).float().cpu())
        ts.append(torch.as_tensor(t).cpu())
    net.train(was)
    return torch.cat(fs), torch.cat(ts)


def feature_stats(f: torch.Tensor, t: torch.Tensor) -> dict[str, float]:
    """The paper's feature statistics of features f (N, D) with labels t (N,): trace_ratio
    (tr S_b / tr S_w), fisher_eigenvalue and within_spread (minifoca/metrics.py defines them)."""
    return _feature_stats(f.double().cpu().numpy(), t.cpu().numpy())


def error_rate(net: nn.Module, loader: Iterable) -> float:
    """Error of net's own classifier (eval mode) on every batch of `loader`: wrong / all."""
    f, t = compute_all_features(net, loader)
    with torch.no_grad():
        logits = net.classifier(f.to(next(net.classifier.parameters())))  # (N, K)
    return int((logits.argmax(1).cpu() != t).sum()) / len(t)
