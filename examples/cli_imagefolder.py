"""The command line on a folder of images: `python -m scaled.train --dataset=imagefolder:PATH`.

    python examples/cli_imagefolder.py --data path/to/folder     # class sub-folders, or train/ + val/ (or test/)
    python examples/cli_imagefolder.py --tiny                    # a made-up 4-class folder, ~1 min on 2 CPU cores

It prints the command and runs it. The folder is decoded once into the cache (scaled/imagefolder.py);
the network is torchvision's ResNet-18 with its classifier removed and the paper's head D on its
last map; augmentation `auto` pads H/8, flips, and cuts out a quarter of the side. What you should
see: the run's announcement, then its JSON summary (val and test error of stage 2, trace_ratio) as
the last line; the run folder (config.json, metrics.jsonl, checkpoint.pt) resumes with --resume.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def command(data: Path, out: Path, tiny: bool) -> list[str]:
    cmd = [sys.executable, "-m", "scaled.train", "--preset", "smoke", f"--dataset=imagefolder:{data}",
           "--model=torchvision:resnet18", "--augment=auto", "--train_subset=0", "--eval_subset=0",
           f"--out_dir={out}", "--name=imagefolder", "--overwrite"]
    if tiny:  # 192 images: batches of 32, 32 held out for validation, 1 epoch of each stage
        cmd += ["--val_size=32", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--epochs=1", "--finetune_epochs=0"]
    return cmd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="an ImageFolder folder")
    p.add_argument("--tiny", action="store_true", help="made-up data, one epoch per stage: the test suite's run")
    p.add_argument("--out", type=Path, default=Path("runs/example"))
    a = p.parse_args(argv)
    if a.data is None:
        if not a.tiny:
            p.error("--data PATH (or --tiny)")
        from tiny_data import write_imagefolder
        a.data = write_imagefolder(a.out / "tiny-data" / "shapes")
    cmd = command(a.data, a.out, a.tiny)
    print("$ " + " ".join(["python", *cmd[1:]]), file=sys.stderr)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
