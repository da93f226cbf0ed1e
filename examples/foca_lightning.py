"""FOCA's stage 1 as a Lightning module (needs `pip install lightning`; not a project dependency).

    python examples/foca_lightning.py --tiny          # a made-up 4-class folder, 2 epochs on the CPU

FocaLoss is the objective; Lightning owns the loop, the devices and the checkpoints. The weak
classifier's state (theta, the call count, the generators) goes into Lightning's checkpoint through
on_save_checkpoint, so a resumed fit continues exactly. Under DDP (Trainer(strategy="ddp")) every
rank computes theta from the same weak batch (same seeds) and rank 0's is broadcast after each refresh.
What you should see: Lightning's summary, then one JSON line with the last FOCA loss.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import lightning as L
import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms as T

from scaled.api import FocaLoss, foca_network, foca_parameters, weak_loss, weak_sampler


class Foca(L.LightningModule):
    def __init__(self, train_set, k: int, size: int):
        super().__init__()
        self.net = foca_network(torchvision.models.resnet18(weights=None), num_classes=k, image_size=size)
        self.foca = FocaLoss(num_classes=k, n_c=40, refresh=4, weak_steps=32, generator=torch.Generator().manual_seed(1),
                             sampler=weak_sampler(train_set, 40, torch.Generator().manual_seed(2)))

    def training_step(self, batch, _):
        x, t = batch
        theta = self.foca.next_classifier(self.net)  # a new weak classifier every R steps
        if self.foca.fresh and self.trainer.world_size > 1:
            theta = self.trainer.strategy.broadcast(theta, src=0)  # one classifier on every rank
            self.foca.theta = theta
        loss = weak_loss(self.net.compute_features(x), t, theta)
        self.log("foca_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(foca_parameters(self.net), lr=0.03, momentum=0.9, nesterov=True, weight_decay=5e-4)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["foca"] = self.foca.state_dict()

    def on_load_checkpoint(self, checkpoint):
        self.foca.load_state_dict(checkpoint["foca"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="an ImageFolder folder (class sub-folders)")
    p.add_argument("--tiny", action="store_true", help="made-up data, 2 epochs: the test's run")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("runs/example"))
    a = p.parse_args(argv)
    if a.data is None:
        if not a.tiny:
            p.error("--data PATH (or --tiny)")
        from tiny_data import write_imagefolder
        a.data = write_imagefolder(a.out / "tiny-data" / "shapes") / "train"
    size, epochs = (16, 2) if a.tiny else (32, a.epochs)
    aug = T.Compose([T.Resize(size), T.CenterCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                     T.Normalize([0.5] * 3, [0.25] * 3)])
    train = torchvision.datasets.ImageFolder(str(a.data), aug)
    L.seed_everything(0)
    model = Foca(train, len(train.classes), size)
    trainer = L.Trainer(max_epochs=epochs, accelerator="auto", devices=1, default_root_dir=str(a.out / "lightning"),
                        logger=False, enable_progress_bar=False)
    trainer.fit(model, DataLoader(train, batch_size=32, shuffle=True, drop_last=True))
    print(json.dumps({"foca_loss": float(trainer.callback_metrics["foca_loss"]), "calls": model.foca.calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
