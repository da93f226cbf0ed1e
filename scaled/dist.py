"""Multi-process training under torchrun (DistributedDataParallel), and the single-process no-ops.

    torchrun --nproc_per_node=4 -m scaled.train --preset wrn28-c10-foca

Rules that keep every rank computing the same thing (tests/test_scaled_dist.py checks them):
- the global batch stays the preset's n_f; each rank takes its contiguous 1/world slice;
- the data permutation, the augmentation draws and the weak classifier's sample come from
  generators seeded identically on every rank, so all ranks draw the same numbers for the
  whole global batch and apply their slice (a 2-rank run equals a 1-rank run with 2 micro-batches);
- the weak classifier is computed on every rank and then broadcast from rank 0, so it is
  bit-identical everywhere;
- rank 0 alone logs, writes checkpoints and prints.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init(device: str) -> tuple[int, int, str]:
    """-> (rank, world, device). Starts the process group when torchrun's variables are set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank, world, device


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def wrap(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """DDP around `module` when distributed, else the module itself."""
    if not active():
        return module
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def broadcast_(*tensors: torch.Tensor) -> None:
    if active():
        for t in tensors:
            dist.broadcast(t, 0)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(t)
    return t


def barrier() -> None:
    if active():
        dist.barrier()


def shutdown() -> None:
    if active():
        dist.destroy_process_group()
