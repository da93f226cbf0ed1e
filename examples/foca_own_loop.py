"""FOCA in a plain PyTorch loop: a torchvision network, your own data through your own DataLoader,
stage 2, the feature statistics and the PCA figure. No ScaledConfig, no run folder.

    python examples/foca_own_loop.py --data path/to/folder       # ImageFolder: class sub-folders (train/, val/)
    python examples/foca_own_loop.py --data path/to/arrays.npz   # x_train (N, H, W[, C]) uint8, y_train, x_test, y_test
    python examples/foca_own_loop.py --tiny                      # ~10 s on 2 CPU cores: a made-up 4-class folder

What you should see: a line per epoch (loss against the weak classifiers), then one JSON line with
the test error of the stage-2 classifier and the trace ratio, and pca.png beside --out. This is
the route for data too large to keep on the device (docs/api.md, "Where it stops"): only the
batches the DataLoader yields are ever there.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader, RandomSampler, TensorDataset
from torchvision import transforms as T

from minifoca.plots import pca_histograms
from scaled.api import FocaLoss, compute_all_features, error_rate, feature_stats, foca_network, foca_parameters, \
    train_classifier


def datasets(path: Path, size: int):
    """-> (train set with augmentation, train set without, test set, K, C): (x (C, H, W) float, t) items."""
    if path.suffix == ".npz":  # arrays: normalise with the training set's statistics, flip + crop by hand
        z = np.load(path)
        x_tr, x_te = (torch.from_numpy(z[k]).float().div(255) for k in ("x_train", "x_test"))
        x_tr, x_te = ((x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)) for x in (x_tr, x_te))  # (N, C, H, W)
        mean, std = x_tr.mean(dim=(0, 2, 3), keepdim=True), x_tr.std(dim=(0, 2, 3), keepdim=True)
        t_tr, t_te = torch.from_numpy(z["y_train"]).long(), torch.from_numpy(z["y_test"]).long()
        train = TensorDataset((x_tr - mean) / std, t_tr)
        return train, train, TensorDataset((x_te - mean) / std, t_te), int(t_tr.max()) + 1, x_tr.shape[1]
    root = path / "train" if (path / "train").is_dir() else path
    test_root = next((path / d for d in ("val", "test") if (path / d).is_dir()), root)
    plain = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    aug = T.Compose([T.Resize(size), T.RandomCrop(size, padding=max(1, size // 8)), T.RandomHorizontalFlip(),
                     T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    train = torchvision.datasets.ImageFolder(str(root), aug)
    return (train, torchvision.datasets.ImageFolder(str(root), plain),
            torchvision.datasets.ImageFolder(str(test_root), plain), len(train.classes), 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="an ImageFolder folder or an arrays .npz")
    p.add_argument("--tiny", action="store_true", help="made-up data, 3 epochs: the test suite's run")
    p.add_argument("--model", default="resnet18", help="a torchvision classification model")
    p.add_argument("--size", type=int, default=32, help="ImageFolder images are resized to this side")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("runs/example"))
    a = p.parse_args(argv)
    torch.manual_seed(0)
    if a.data is None:
        if not a.tiny:
            p.error("--data PATH (or --tiny)")
        from tiny_data import write_imagefolder
        a.data = write_imagefolder(a.out / "tiny-data" / "shapes")
    if a.tiny:
        a.size, a.epochs = 16, 3
    train, train_plain, test, k, c = datasets(a.data, a.size)
    size = train[0][0].shape[-1]
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(train, batch_size=32, shuffle=True, drop_last=True, generator=g)
    # SampleMinibatch(d, n_c): uniform with replacement, from the augmented training set
    weak = iter(DataLoader(train, batch_size=40, sampler=RandomSampler(train, True, 10**9, generator=g)))

    backbone = torchvision.models.get_model(a.model, weights=None)  # random weights: FOCA trains them
    if c != 3:  # the first conv for the data's channel count (torchvision builds every model for RGB)
        backbone.conv1 = torch.nn.Conv2d(c, 64, 7, 2, 3, bias=False)
    net = foca_network(backbone, num_classes=k, head="D", in_channels=c, image_size=size)
    foca = FocaLoss(num_classes=k, n_c=40, refresh=4, weak_steps=32, generator=torch.Generator().manual_seed(1),
                    sampler=lambda n: next(weak))
    opt = torch.optim.SGD(foca_parameters(net), lr=0.03, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for epoch in range(a.epochs):  # stage 1: phi against a new weak classifier every R = 4 steps
        losses = []
        for x, t in loader:
            loss = foca(net, x, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: FOCA loss {np.mean(losses):.3f}", file=sys.stderr)
    # BN's running statistics lag far behind a network that changed fast in a short run: re-estimate
    # them on the training images (torch's own helper) so that eval-mode features are what training saw
    torch.optim.swa_utils.update_bn(DataLoader(train_plain, batch_size=100), net)
    # stage 2: the paper's lr 0.003 is for 50,000 images x 5 epochs; a small set needs a larger step
    train_classifier(net, DataLoader(train, batch_size=32, shuffle=True, generator=g), epochs=5, lr=0.05)
    test_loader = DataLoader(test, batch_size=100)
    f, t = compute_all_features(net, test_loader)
    a.out.mkdir(parents=True, exist_ok=True)
    pca_histograms({"FOCA": f.numpy()}, t.numpy(), path=a.out / "pca.png", title=f"FOCA {a.model}, test features")
    print(json.dumps({"test_error": error_rate(net, test_loader), "train_error": error_rate(net, DataLoader(train_plain, 100)),
                      **feature_stats(f, t), "figure": str(a.out / "pca.png")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
