"""make bench-data: images/s of scaled/augment.py's batched pipeline against torchvision transforms in
a DataLoader, on the CPU and, when CUDA is there, on the GPU. A benchmark, not a test.

    python -m scripts.bench.data [--data_dir=PATH] [--preset=cifar10] [--batch=512] [--workers=2]
                                 [--seconds=4] [--threads=0] [--json=PATH]

Both pipelines do the same work per image: pad 4 + random 32x32 crop, horizontal flip, normalise,
cutout (the `cifar10` preset; `cifar10-re` swaps cutout for random erasing), and draw a shuffled
minibatch from the training set. The batched pipeline indexes the uint8 tensor that already lives on
the device; the baseline decodes nothing either (arrays in memory) but goes image by image through
PIL and torchvision transforms in `--workers` DataLoader processes, then (GPU row) is copied over.

Takes about 30 s on 2 CPU cores. The numbers depend on the machine and its load: compare rows of one run.
On a CPU shared with other jobs, --threads=1 can be many times faster than torch's default of one
thread per core: every parallel op waits for its slowest thread, and a descheduled one stalls it.
Data: the real CIFAR-10 from --data_dir / $FOCA_DATA when present, else random images of the same shape.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np
import torch

from minifoca.cli import ArgParser
from minifoca.data import DataError
from scaled.augment import PRESETS, augment
from scaled.data import Splits, load_dataset


def time_batches(step, seconds: float, sync=lambda: None) -> tuple[float, int]:
    """Run step() (returns images done) for about `seconds` after warm-up calls -> (images/s, images)."""
    for _ in range(3):  # the first calls pay for fresh memory pages (and worker start-up), not the work
        step()
    sync()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += step()
    sync()
    return done / (time.perf_counter() - t0), done


def bench_batched(ds, cfg, device, batch: int, seconds: float) -> float:
    x, mean, std = ds.x_train.to(device), ds.mean.to(device), ds.std.to(device)  # (N, C, H, W) uint8
    gen = torch.Generator(device=device).manual_seed(0)
    state = {"perm": torch.randperm(len(x), generator=gen, device=device), "i": 0}

    def step():
        if state["i"] + batch > len(x):  # a new epoch-wise shuffle
            state["perm"], state["i"] = torch.randperm(len(x), generator=gen, device=device), 0
        idx = state["perm"][state["i"]:state["i"] + batch]
        state["i"] += batch
        augment(x[idx], gen, cfg, mean, std)  # (B, C, H, W) float32
        return batch

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    return time_batches(step, seconds, sync)[0]


class Cutout:
    """DeVries & Taylor's cutout on a normalised (C, H, W) tensor; torch's global RNG, which the
    DataLoader seeds per worker, as torchvision's own transforms do."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, x):
        H, W = x.shape[1:]
        cy, cx = torch.randint(H, ()).item(), torch.randint(W, ()).item()
        x[:, max(cy - self.size // 2, 0):cy + self.size - self.size // 2,
          max(cx - self.size // 2, 0):cx + self.size - self.size // 2] = 0.0
        return x


class ArrayImages(torch.utils.data.Dataset):
    def __init__(self, x_hwc: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x_hwc, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def torchvision_loader(ds, cfg, device, batch: int, workers: int):
    """The reference implementations' pipeline: PIL + torchvision transforms per image in DataLoader
    workers (the same operations as `cfg`), batches pinned for the copy to the GPU."""
    import torchvision.transforms as T

    H = ds.image_size
    ops = [T.RandomCrop(H, padding=cfg.pad), T.RandomHorizontalFlip(), T.ToTensor(),
           T.Normalize(ds.mean.tolist(), ds.std.tolist())]
    ops += [Cutout(cfg.cutout)] if cfg.cutout else []
    ops += [T.RandomErasing(cfg.erase_p, cfg.erase_area, cfg.erase_aspect)] if cfg.erase else []
    data = ArrayImages(ds.x_train.permute(0, 2, 3, 1).cpu().numpy(), ds.y_train.cpu().numpy(), T.Compose(ops))
    return torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers,
                                       drop_last=True, persistent_workers=workers > 0,
                                       pin_memory=torch.device(device).type == "cuda")


def bench_torchvision(ds, cfg, device, batch: int, workers: int, seconds: float) -> float:
    loader = torchvision_loader(ds, cfg, device, batch, workers)
    state = {"it": iter(loader)}

    def step():
        try:
            xb, _ = next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            xb, _ = next(state["it"])
        xb.to(device, non_blocking=True)
        return len(xb)

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    return time_batches(step, seconds, sync)[0]


def main(argv=None) -> int:
    ap = ArgParser("python -m scripts.bench.data", __doc__)
    ap.add_argument("--data_dir", default="", help="shared data folder (none: $FOCA_DATA)")
    ap.add_argument("--preset", default="cifar10", choices=[k for k in PRESETS if k.startswith("cifar")],
                    help="scaled.augment preset to time")
    ap.add_argument("--batch", type=int, default=512, help="images per batch")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader workers")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed seconds per row")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", default="", help="also write the results here (rewritten after every row)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    try:
        ds = load_dataset("cifar10", data_dir=args.data_dir, val=False)
        source = f"real CIFAR-10 ({len(ds.x_train):,} training images)"
    except DataError as e:
        print(f"note: {e}; using random images of the same shape", file=sys.stderr)
        gen = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (50000, 3, 32, 32), dtype=torch.uint8, generator=gen)
        y = torch.zeros(50000, dtype=torch.int64)
        ds = Splits("random", x, y, None, None, x[:0], y[:0], torch.full((3,), 0.5), torch.full((3,), 0.29),
                    10, 32, "random images")
        source = "random uint8 images"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    hw = {"cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"torch threads {torch.get_num_threads()}"}  # the batched rows' threads; workers use 1 each
    if "cuda" in devices:
        hw["cuda"] = torch.cuda.get_device_name()
    print(f"bench-data: preset {args.preset}, batch {args.batch}, {source}; ~{args.seconds:g} s per row; "
          f"torch CPU threads {torch.get_num_threads()}")
    for d in devices:
        print(f"  {d}: {hw[d]}")
    rows = []

    def save():  # after every row, atomically: a kill keeps the rows measured (the GPU plan's call)
        if args.json:
            tmp = args.json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(dict(preset=args.preset, batch=args.batch, workers=args.workers, data=source,
                               hardware=hw, torch=torch.__version__, rows=rows), fh, indent=1)
            os.replace(tmp, args.json)

    for d in devices:
        rows.append(dict(pipeline="scaled.augment (batched on device)", device=d,
                         images_per_s=bench_batched(ds, cfg, d, args.batch, args.seconds)))
        save()
        rows.append(dict(pipeline=f"torchvision + DataLoader ({args.workers} workers)", device=d,
                         images_per_s=bench_torchvision(ds, cfg, d, args.batch, args.workers, args.seconds)))
        save()
    print(f"\n| {'pipeline':<40} | {'device':<6} | {'images/s':>10} |\n|{'-' * 42}|{'-' * 8}|{'-' * 12}|")
    for r in rows:
        print(f"| {r['pipeline']:<40} | {r['device']:<6} | {r['images_per_s']:>10,.0f} |")
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
