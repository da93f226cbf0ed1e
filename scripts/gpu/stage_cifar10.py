"""Carry the shared CIFAR-10 copy to the GPU box, where one call takes at most 64 MiB of files.

    python -m scripts.gpu.stage_cifar10 split [DATA]               # here: gpu_stage1/ and gpu_stage2/
    python3 -m scripts.gpu.stage_cifar10 assemble OUT.npz DIR...   # on the box: every part found -> arrays

The shared copy ($FOCA_DATA/cifar10, ../shared/data by default) is 10 training parts and 1 test part
of lossless WebP sprites, 86 MB: more than one call carries. `split` copies 4 training parts and the
test part into gpu_stage1/ (run 1 carries it and copies it to /tmp/foca_stage1; the box keeps both
while it stays warm, 30 s after a call) and the other 6 with the test part into gpu_stage2/ (run 2),
and checks each folder plus the working tree against the limit. `assemble` decodes every part it
finds (each part once, by name) in the folders given: all 10 give the 50,000 training images,
checked against unpack.py's SHA-256; when run 1's half is gone (the box was released between the
calls) run 2's 6 parts still give 30,000, and what was found is returned to be reported.
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
HALVES = {"gpu_stage1": range(0, 4), "gpu_stage2": range(4, 10)}
TEST = "cifar10_test_first1000_webp_p00.npz"


def tree_mib() -> float:
    """The working tree as a device call copies it: tracked and untracked, not ignored."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           text=True).stdout.split("\0")
    return sum((REPO / n).stat().st_size for n in names if n and (REPO / n).is_file()) / 2 ** 20


def split(src: Path) -> dict:
    if not (src / "unpack.py").is_file():
        raise SystemExit(f"error: no shared CIFAR-10 copy in {src} (expected unpack.py and its parts); "
                         "pass the data folder: python -m scripts.gpu.stage_cifar10 split DATA")
    sizes, tree = {}, tree_mib()
    for name, parts in HALVES.items():
        dest = REPO / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        for f in [*(f"cifar10_train_webp_p{i:02d}.npz" for i in parts), TEST, "unpack.py"]:
            shutil.copy2(src / f, dest / f)
        sizes[name] = sum(p.stat().st_size for p in dest.iterdir()) / 2 ** 20
        total = sizes[name] + tree
        print(f"{name}/: {len(parts)} training parts + test, {sizes[name]:.1f} MiB; with the working tree "
              f"({tree:.1f} MiB) {total:.1f} of {LIMIT_MIB} MiB")
        if total > LIMIT_MIB - 1:
            raise SystemExit(f"error: {name} and the working tree exceed one call's {LIMIT_MIB} MiB; "
                             "move parts from gpu_stage2 to gpu_stage1 in HALVES")
    return sizes


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
    if argv[:1] == ["split"] and len(argv) <= 2:
        split(Path(argv[1] if len(argv) == 2 else os.environ.get("FOCA_DATA", REPO.parent / "shared" / "data")) / "cifar10")
        return 0
    if argv[:1] == ["assemble"] and len(argv) >= 3:
        print(json.dumps(assemble(Path(argv[1]), argv[2:])))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
