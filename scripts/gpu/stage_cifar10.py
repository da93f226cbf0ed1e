"""Carry the shared CIFAR-10 copy to the GPU box, where one call takes at most 64 MiB of files.

    python -m scripts.gpu.stage_cifar10 stage [DATA] [--parts=N]   # here: gpu_stage/, the most parts that fit
    python3 -m scripts.gpu.stage_cifar10 assemble OUT.npz DIR...   # on the box: every part found -> arrays

The shared copy ($FOCA_DATA/cifar10, ../shared/data by default) is 10 training parts of 5,000 images
(lossless WebP sprites, ~8.1 MiB each) and a 1,000-image test part (1.6 MiB): 83 MB, more than one
call carries. `stage` copies the test part, unpack.py and as many training parts as fit beside the
working tree under the limit less 1 MiB (7 on 2026-12-04: 58.0 MiB + a 1.6 MiB tree = 59.7 of 64;
8 would be 66.1 without the tree) into gpu_stage/, the one folder the plan's single call carries
(scripts/gpu/README.md), and prints the sizes. `assemble` decodes every part it finds (each part once,
by name) in the folders given: all 10 give the 50,000 training images, checked against unpack.py's
SHA-256; fewer give 5,000 per part, and what was found is returned to be reported.
Decoding needs Pillow with WebP, else torchvision.io.decode_webp.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
LIMIT_MIB = 64  # what one device call carries: the working tree and the carried folders together
STAGE = "gpu_stage"
TEST = "cifar10_test_first1000_webp_p00.npz"


# The CPU scaling study's committed checkpoints (docs/scaling.md): 1.7 MB each, their number changes
# every session; they travel with a call like any tracked file, so `stage` counts them, but the
# README's tree size leaves them out to stay true between sessions.
STUDY_STATE = ("results/cpu-scaling/trunks/", "results/cpu-scaling/partial/")


def tree_mib(exclude: tuple = ()) -> float:
    """The working tree as a device call copies it: tracked and untracked, not ignored (less the paths
    starting with one of `exclude`)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           text=True).stdout.split("\0")
    return sum((REPO / n).stat().st_size for n in names
               if n and (REPO / n).is_file() and not n.startswith(exclude)) / 2 ** 20


def part_name(i: int) -> str:
    return f"cifar10_train_webp_p{i:02d}.npz"


def stage(src: Path, parts: int = 0, dest: Path = REPO / STAGE) -> dict:
    """gpu_stage/: the test part, unpack.py and `parts` training parts (0: the most that fit)."""
    if not (src / "unpack.py").is_file():
        raise SystemExit(f"error: no shared CIFAR-10 copy in {src} (expected unpack.py and its parts); "
                         "pass the data folder: python -m scripts.gpu.stage_cifar10 stage DATA")
    mib = {f: (src / f).stat().st_size / 2 ** 20 for f in [TEST, "unpack.py", *map(part_name, range(10))]}
    tree = tree_mib()
    fixed = tree + mib[TEST] + mib["unpack.py"]
    fits = 0
    while fits < 10 and fixed + sum(mib[part_name(i)] for i in range(fits + 1)) <= LIMIT_MIB - 1:
        fits += 1
    n = parts or fits
    if n > fits or n < 1:
        raise SystemExit(f"error: {n} training parts with the test part and the working tree ({tree:.1f} MiB) exceed "
                         f"one call's {LIMIT_MIB} MiB less 1; at most {fits} fit")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    for f in [*map(part_name, range(n)), TEST, "unpack.py"]:
        shutil.copy2(src / f, dest / f)
    size = sum(p.stat().st_size for p in dest.iterdir()) / 2 ** 20
    print(f"{dest.name}/: {n} training parts ({n * 5000:,} images: {n * 5000 - 5000:,} train + 5,000 val) + the "
          f"1,000-image test part, {size:.1f} MiB; with the working tree ({tree:.1f} MiB) {size + tree:.1f} of "
          f"{LIMIT_MIB} MiB; {fits} parts fit")
    return {"parts": n, "stage_mib": round(size, 2), "tree_mib": round(tree, 2), "fit": fits}


def _decode(blob: bytes) -> np.ndarray:
    """One lossless WebP sprite (320 x 3200, 10 x 100 tiles) -> (1000, 32, 32, 3) uint8."""
    try:
        from PIL import Image, features

        if not features.check("webp"):
            raise ImportError("Pillow without WebP")
        g = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))  # (320, 3200, 3)
    except ImportError:
        import torch
        from torchvision.io import decode_webp

        g = decode_webp(torch.frombuffer(bytearray(blob), dtype=torch.uint8)).permute(1, 2, 0).numpy()
    return g.reshape(10, 32, 100, 32, 3).transpose(0, 2, 1, 3, 4).reshape(1000, 32, 32, 3)


def _read_part(path: Path, key: str):
    z = np.load(path)
    blob, off = z["webp"].tobytes(), z["offsets"]
    x = np.concatenate([_decode(blob[off[i]:off[i + 1]]) for i in range(len(off) - 1)])
    return x, z[key].astype(np.int64)


def _expected_sha(dirs) -> dict | None:
    for d in dirs:
        f = Path(d) / "unpack.py"
        if f.is_file():
            spec = importlib.util.spec_from_file_location("cifar10_unpack", f)
            mod = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(mod)  # defines its checksums and functions; main() does not run
                return mod.SHA256
            except (ImportError, AttributeError):  # it imports Pillow at the top
                return None
    return None


def assemble(out: Path, dirs) -> dict:
    """Decode every part in `dirs` (first copy of each name wins) into the arrays file `out`."""
    tic = time.perf_counter()
    found = {}
    for d in map(Path, dirs):
        for p in sorted(d.glob("cifar10_*_webp_p*.npz")) if d.is_dir() else []:
            found.setdefault(p.name, p)
    train = sorted(n for n in found if "_train_" in n)
    if not train or TEST not in found:
        raise SystemExit(f"error: no CIFAR-10 parts in {' '.join(map(str, dirs))} (need training parts and {TEST}); "
                         "stage them with `python -m scripts.gpu.stage_cifar10 split`")
    xs, ys = zip(*(_read_part(found[n], "y_train") for n in train))
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    x_test, y_test = _read_part(found[TEST], "y_test")
    info = {"train_parts": [n[-7:-4] for n in train], "train_images": len(y_train), "test_images": len(y_test),
            "complete": len(train) == 10, "from": sorted({str(found[n].parent) for n in found})}
    want = _expected_sha(dirs)
    if len(train) == 10 and want:
        ok = hashlib.sha256(x_train.tobytes()).hexdigest() == want["x_train"]
        info["sha256"] = "ok" if ok else "MISMATCH"
        if not ok:
            raise SystemExit("error: the decoded training images do not match unpack.py's SHA-256: a damaged copy")
    else:
        info["sha256"] = "not checked (a subset of the parts)" if want else "not checked (no unpack.py)"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    os.replace(tmp, out)
    info["seconds"] = round(time.perf_counter() - tic, 1)
    return info


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stage"]:
        rest = [a for a in argv[1:] if not a.startswith("--parts")]
        parts = [int(a.split("=")[1]) for a in argv[1:] if a.startswith("--parts=")]
        if len(rest) <= 1 and len(parts) + len(rest) == len(argv) - 1:
            data = Path(rest[0] if rest else os.environ.get("FOCA_DATA", REPO.parent / "shared" / "data"))
            stage(data / "cifar10", parts[0] if parts else 0)
            return 0
    if argv[:1] == ["assemble"] and len(argv) >= 3:
        print(json.dumps(assemble(Path(argv[1]), argv[2:])))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
