"""A finished run, used: its network and the transform that turns new images into what it was trained on.

    from scaled.api import load_run
    net, transform = load_run("runs/scaled/own-cpu-s0-20261204-101500")   # eval mode, on the CPU
    x = torch.stack([transform(path) for path in my_images])                # (N, C, S, S) float
    f = net.compute_features(x)                                            # (N, D) FOCA's features
    logits = net(x)                                                        # (N, K) stage 2's classifier (3's after fine-tuning)

scaled.train writes transform.json into every run folder: the per-channel mean and std the run
normalised with (its norm_stats), the image side S and channel count the network takes, and the
resize of --image_size. The transform decodes a file or PIL image exactly as scaled/imagefolder.py
decoded the training images (mode L or RGB; shorter side to S and centre crop when the run resized),
then normalises as the engine evaluates (scaled/augment.py normalize): the features of an image
through it are the features the engine computes for that image (tests/test_scaled_api.py).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from minifoca.runlog import write_json

from .augment import normalize
from .config import ScaledConfig
from .engine import CHECKPOINT, load_checkpoint
from .imagefolder import image_array
from .models import FeatureNet, build_model

TRANSFORM = "transform.json"


def read_config(run_dir) -> ScaledConfig:
    """The ScaledConfig a run folder's config.json holds (lists back to tuples; extra keys ignored)."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    return ScaledConfig(**{f.name: (tuple(saved[f.name]) if isinstance(saved[f.name], list) else saved[f.name])
                           for f in dataclasses.fields(ScaledConfig) if f.name in saved})


def save_transform(run) -> None:
    """transform.json in the run's folder: what load_run's transform needs (rank 0, at the start)."""
    d = run.data
    write_json(Path(run.rundir.path) / TRANSFORM, {
        "mean": d.mean.tolist(), "std": d.std.tolist(), "image_size": d.image_size, "channels": d.x_train.shape[1],
        "resize": run.cfg.image_size, "num_classes": run.num_classes}, indent=1)


class Transform:
    """An image -> the float32 (C, S, S) tensor the run's network takes. Accepts a path, a PIL image,
    or uint8 pixels (C, S, S) (a tensor or array, already the run's size). Usable as a torchvision
    dataset's transform: ImageFolder(root, transform=transform)."""

    def __init__(self, mean, std, image_size: int, channels: int, resize: int = 0, **_):
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self.image_size, self.channels, self.resize = image_size, channels, resize

    def __call__(self, image) -> torch.Tensor:
        if isinstance(image, (str, Path)):
            from PIL import Image

            with Image.open(image) as im:
                return self(im.copy())
        if hasattr(image, "convert"):  # PIL: decoded as the run's images were
            if self.channels not in (1, 3):
                raise ValueError(f"the run's images have {self.channels} channels; pass uint8 (C, H, W) pixels")
            image = torch.from_numpy(np.ascontiguousarray(image_array(image, self.channels == 1, self.resize)
                                                          .transpose(2, 0, 1)))  # (C, H, W)
        x = torch.as_tensor(image)
        want = (self.channels, self.image_size, self.image_size)
        if x.dtype != torch.uint8 or tuple(x.shape) != want:
            raise ValueError(f"an image of {x.dtype} {tuple(x.shape)}; the run's network takes uint8 {want}"
                             + ("" if self.resize else " (the run did not resize: give images of its size)"))
        return normalize(x[None], self.mean, self.std)[0]  # (C, S, S)


def load_run(run_dir, device: str = "cpu") -> tuple[FeatureNet, Transform]:
    """A run folder of scaled.train -> (its network as the last checkpoint left it, in eval mode on
    device; the Transform of its images). A network from a factory needs the same PYTHONPATH."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).is_file() or not (run_dir / TRANSFORM).is_file():
        missing = CHECKPOINT if not (run_dir / CHECKPOINT).is_file() else TRANSFORM
        raise ValueError(f"{run_dir}: no {missing}; load_run needs a folder scaled.train wrote (transform.json "
                         "since 2026-12-04: older runs must be trained again)")
    cfg, t = read_config(run_dir), json.loads((run_dir / TRANSFORM).read_text())
    net = build_model(cfg.model, t["num_classes"], cfg.head, t["image_size"], cfg.shakedrop, wrn_block=cfg.wrn_block,
                      shakedrop_gate=cfg.shakedrop_gate, in_channels=t["channels"])
    net.load_state_dict(load_checkpoint(run_dir / CHECKPOINT)["net"])
    net.to(device, torch.float64 if cfg.precision == "fp64" else torch.float32).eval()
    return net, Transform(**t)
