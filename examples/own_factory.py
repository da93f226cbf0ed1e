"""A network of your own: `--model=own_factory:small_cnn` (any importable package.module:function).

    PYTHONPATH=examples python -m scaled.train --preset smoke --model=own_factory:small_cnn --dataset=my.npz
    python examples/own_factory.py --tiny          # that command on a made-up 28x28 grayscale arrays file

The factory is called with no arguments but the keywords it names of in_channels, image_size and
num_classes, and returns an nn.Module mapping images (N, C, H, W) to a map (N, C', H', W') or to
features (N, D). small_cnn returns a map; head D (BN -> ReLU -> GAP -> 2-LP) turns it into FOCA's
features. The run's config.json records "own_factory:small_cnn", so --resume needs the same
PYTHONPATH. What you should see: the run's JSON summary as the last line.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from torch import nn


def small_cnn(in_channels: int = 3, width: int = 32) -> nn.Module:
    """(N, C, H, W) -> (N, 2 * width, H/4, W/4): three conv-BN-ReLU, two of them stride 2."""
    def block(c_in, c_out, stride):
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*block(in_channels, width, 1), *block(width, width, 2), *block(width, 2 * width, 2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="an arrays .npz or imagefolder:PATH")
    p.add_argument("--tiny", action="store_true", help="made-up 28x28 grayscale data: the test suite's run")
    p.add_argument("--out", type=Path, default=Path("runs/example"))
    a = p.parse_args(argv)
    if a.data is None:
        if not a.tiny:
            p.error("--data PATH (or --tiny)")
        from tiny_data import write_arrays
        a.data = write_arrays(a.out / "tiny-data" / "gray28.npz")
    cmd = [sys.executable, "-m", "scaled.train", "--preset", "smoke", "--model=own_factory:small_cnn",
           f"--dataset={a.data}", "--augment=auto", "--train_subset=0", "--eval_subset=0", f"--out_dir={a.out}",
           "--name=own-factory", "--overwrite"]
    if a.tiny:
        cmd += ["--val_size=32", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--epochs=1", "--finetune_epochs=0"]
    here = str(Path(__file__).resolve().parent)  # where own_factory.py is: the module must import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    print(f"$ PYTHONPATH={here} python " + " ".join(cmd[1:]), file=sys.stderr)
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
