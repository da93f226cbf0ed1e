"""Batched data augmentation on the device, with every random draw from an explicit torch.Generator.

    from scaled.augment import PRESETS, augment, normalize
    gen = torch.Generator(device=ds.x_train.device).manual_seed(0)
    xb = augment(ds.x_train[idx], gen, PRESETS["cifar10"], ds.mean, ds.std)  # uint8 (N,C,H,W) -> float (N,C,H,W)
    xe = normalize(ds.x_test[:500], ds.mean, ds.std)                          # evaluation: no augmentation

The operations, in the order of docs/algorithm.md, each with its own draw per sample:
zero-pad `pad` px and crop back to H x W at a random offset (0..2P, or 0..2P-1 as the authors'
code draws it: `crop_offsets`); horizontal flip with probability 1/2; normalise with the training
split's mean and std; cutout, a `cutout` x `cutout` square filled with 0 whose centre is anywhere in
the image and which is clipped at the border (DeVries & Taylor, 2017); random erasing with
probability erase_p and area 2-40% of the image, either torchvision's RandomErasing (aspect
0.3-3.33 log-uniform, up to 10 tries for a rectangle that fits, else nothing) or the authors' (one
try, aspect uniform in [0.3, 1/0.3]): `erase_draw`.

`draw_params` makes all the draws as a dict of tensors and `apply_params` uses them, so the
per-image `reference_one` (plain slicing, the readable specification) can be handed the very same
draws in a test. Every draw starts as U[0, 1) numbers asked for by name (`uniform(name, shape)`),
so a cross-check can hand in another program's draws (scripts/crosscheck/authors.py).
Crop and flip are one gather on the uint8 images; cutout and erasing are masks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    pad: int = 4  # zero padding per side before the random crop (4 px at 32x32, docs/algorithm.md); 0 = no crop
    flip: bool = True  # horizontal flip with probability 1/2
    cutout: int = 16  # side of the cutout square after normalisation (16 CIFAR-10, 8 CIFAR-100); 0 = off
    erase: bool = False  # random erasing (the PyramidNet + ShakeDrop + RE rows)
    erase_p: float = 0.5  # probability of erasing an image (Zhong et al., 2020)
    erase_area: tuple[float, float] = (0.02, 0.4)  # erased fraction of the image area, uniform
    erase_aspect: tuple[float, float] = (0.3, 3.33)  # height / width, log-uniform as in torchvision
    erase_tries: int = 10  # draws of (area, aspect) until the rectangle fits; none fits -> no erasing
    # "torchvision": up to erase_tries draws, aspect log-uniform in erase_aspect; "authors": the FOCA
    # code's single try with the aspect uniform in [0.3, 1/0.3] (then erase_tries is not used).
    erase_draw: str = "torchvision"
    # "0..2P": every crop position; "0..2P-1": the authors' np.random.randint(0, 2P), never the last row/column.
    crop_offsets: str = "0..2P"
    # "zero": 0 after normalisation (the mean colour, as cutout; Zhong et al.'s CIFAR code writes the
    # raw channel means, also near 0); "random": N(0, 1) per pixel, the paper's random-value mode.
    erase_fill: str = "zero"


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(pad=0, flip=False, cutout=0),  # evaluation
    "cifar10": AugmentConfig(cutout=16),  # WRN-28-10 + cutout rows
    "cifar100": AugmentConfig(cutout=8),
    "cifar10-re": AugmentConfig(cutout=0, erase=True),  # PyramidNet + ShakeDrop + RE rows
    "cifar100-re": AugmentConfig(cutout=0, erase=True),
    # 64x64: the CIFAR sizes doubled. Cutout 16 = a quarter of the side, CIFAR-100's ratio, because Tiny
    # ImageNet has CIFAR-100's 500 images per class and more classes (our choice; unpublished).
    "tinyimagenet": AugmentConfig(pad=8, cutout=16),
}


NAMES = (*PRESETS, "auto")


def auto_config(size: int) -> AugmentConfig:
    """"auto", the default for data of your own: CIFAR's pad ratio (4 px at 32, H/8) and the
    CIFAR-100 / Tiny ImageNet cutout ratio (a quarter of the side), flip on; any channel count."""
    return AugmentConfig(pad=max(1, round(size / 8)), flip=True, cutout=max(1, round(size / 4)))


def get(name: str, size: int) -> AugmentConfig:
    """A PRESETS entry by name, or "auto" sized to images of side `size`."""
    if name not in NAMES:
        raise ValueError(f"--augment={name!r}: choose one of {', '.join(NAMES)}")
    return auto_config(size) if name == "auto" else PRESETS[name]


def normalize(x, mean, std):
    """uint8 (N, C, H, W) -> float32 (N, C, H, W), (x / 255 - mean) / std per channel."""
    # In place on a fresh float copy: on the CPU each new (N, C, H, W) buffer costs more than the math.
    return x.to(torch.float32, copy=True).div_(255.0).sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


ERASE_DRAWS, CROP_OFFSETS = ("torchvision", "authors"), ("0..2P", "0..2P-1")
AUTHORS_ASPECT = (0.3, 1 / 0.3)  # the authors' code: random.uniform(0.3, 1 / 0.3)


def _index(u, k: int):
    """U[0, 1) -> uniform {0..k-1}, in float64 so that k * u never rounds up to k."""
    return (u.double() * k).floor().long().clamp(0, k - 1)


def draw_params(n: int, size: tuple[int, int], gen: torch.Generator | None, cfg: AugmentConfig,
                channels: int = 3, uniform=None) -> dict:
    """All random draws for n images of size (H, W). Keys, each (N,) int64 unless said: dy, dx crop
    offsets; flip (N,) bool; cy, cx cutout centres; ey, ex, eh, ew erased rectangle (eh = ew = 0:
    none); noise (N, C, H, W) for erase_fill "random".

    uniform(name, shape) -> U[0, 1) tensor: where the numbers come from; None draws them from gen
    (on its device). The names, in the order asked: "crop" (2, N), "flip" (N,), "cutout" (2, N),
    then with erasing "erase" (4, N, T) (area, aspect, top, left for T tries) and "erase_on" (N,)."""
    if cfg.erase_draw not in ERASE_DRAWS or cfg.crop_offsets not in CROP_OFFSETS:
        raise ValueError(f"erase_draw={cfg.erase_draw!r} / crop_offsets={cfg.crop_offsets!r}: choose "
                         f"{' or '.join(ERASE_DRAWS)} / {' or '.join(CROP_OFFSETS)}")
    H, W = size
    dev = gen.device if gen is not None else None
    if uniform is None:
        uniform = lambda name, shape: torch.rand(shape, generator=gen, device=dev)  # noqa: E731
    crop, flip, cut = uniform("crop", (2, n)), uniform("flip", (n,)), uniform("cutout", (2, n))
    offsets = max(1, 2 * cfg.pad + (cfg.crop_offsets == "0..2P"))  # how many positions the crop may take
    p = {"dy": _index(crop[0], offsets), "dx": _index(crop[1], offsets),
         "flip": flip < (0.5 if cfg.flip else 0.0), "cy": _index(cut[0], H), "cx": _index(cut[1], W)}
    zeros = torch.zeros(n, dtype=torch.int64, device=flip.device)
    p.update(ey=zeros, ex=zeros, eh=zeros, ew=zeros)
    if cfg.erase:
        authors = cfg.erase_draw == "authors"
        lo, hi = cfg.erase_area
        u = uniform("erase", (4, n, 1 if authors else cfg.erase_tries)).double()  # (4, N, T)
        target = H * W * (lo + (hi - lo) * u[0])  # (N, T) erased area in pixels
        if authors:
            aspect = AUTHORS_ASPECT[0] + (AUTHORS_ASPECT[1] - AUTHORS_ASPECT[0]) * u[1]  # (N, 1) uniform
        else:
            log_a, log_b = math.log(cfg.erase_aspect[0]), math.log(cfg.erase_aspect[1])
            aspect = torch.exp(log_a + (log_b - log_a) * u[1])  # (N, T) log-uniform
        h = torch.round(torch.sqrt(target * aspect)).long()  # (N, T) half to even, as Python's round
        w = torch.round(torch.sqrt(target / aspect)).long()
        fits = (h < H) & (w < W)  # (N, T)
        first = fits.int().argmax(dim=1, keepdim=True)  # (N, 1) first try that fits (0 if none)
        h, w = h.gather(1, first)[:, 0], w.gather(1, first)[:, 0]  # (N,)
        on = fits.any(dim=1) & (uniform("erase_on", (n,)) < cfg.erase_p)  # (N,)
        ey = (u[2, :, 0] * (H - h + 1)).floor().long().clamp_max(H - h)  # (N,) uniform top row in [0, H - h]
        ex = (u[3, :, 0] * (W - w + 1)).floor().long().clamp_max(W - w)
        p.update(ey=ey * on, ex=ex * on, eh=h * on, ew=w * on)
        if cfg.erase_fill == "random":
            if gen is None:
                raise ValueError("erase_fill='random' draws normal noise: pass a generator")
            p["noise"] = torch.randn(n, channels, H, W, generator=gen, device=dev)
        elif cfg.erase_fill != "zero":
            raise ValueError(f"erase_fill={cfg.erase_fill!r}: choose zero or random")
    return p


def _box_mask(y0, x0, h, w, H: int, W: int):
    """(N,) top-left corners and sizes -> (N, 1, H, W) bool, True inside the box clipped to the image."""
    r = torch.arange(H, device=y0.device)
    c = torch.arange(W, device=y0.device)
    rows = (r >= y0[:, None]) & (r < (y0 + h)[:, None])  # (N, H)
    cols = (c >= x0[:, None]) & (c < (x0 + w)[:, None])  # (N, W)
    return (rows[:, :, None] & cols[:, None, :])[:, None]  # (N, 1, H, W)


def apply_params(x, p: dict, cfg: AugmentConfig, mean, std):
    """uint8 (N, C, H, W) and draw_params' draws -> augmented float32 (N, C, H, W)."""
    N, C, H, W = x.shape
    dev = x.device
    if cfg.pad or cfg.flip:  # crop and flip as one gather from the zero-padded uint8 images
        P = cfg.pad
        xp = F.pad(x, (P, P, P, P))  # (N, C, H+2P, W+2P)
        r = torch.arange(H, device=dev)
        c = torch.arange(W, device=dev)
        c = torch.where(p["flip"][:, None], W - 1 - c, c)  # (N, W) flipped column order
        idx = (p["dy"][:, None, None] + r[:, None]) * (W + 2 * P) + p["dx"][:, None, None] + c[:, None, :]
        x = xp.flatten(2).gather(2, idx.view(N, 1, H * W).expand(N, C, H * W)).view(N, C, H, W)
    x = normalize(x, mean, std)  # (N, C, H, W) float32
    if cfg.cutout:
        s = torch.full_like(p["cy"], cfg.cutout)
        x.masked_fill_(_box_mask(p["cy"] - cfg.cutout // 2, p["cx"] - cfg.cutout // 2, s, s, H, W), 0.0)
    if cfg.erase:
        m = _box_mask(p["ey"], p["ex"], p["eh"], p["ew"], H, W)  # (N, 1, H, W)
        x = torch.where(m, p["noise"], x) if "noise" in p else x.masked_fill_(m, 0.0)
    return x


def augment(x, gen: torch.Generator, cfg: AugmentConfig, mean, std):
    """uint8 (N, C, H, W) on gen's device -> augmented float32 (N, C, H, W), independent draws per image."""
    if gen.device != x.device and not (gen.device.type == x.device.type == "cuda"):
        raise ValueError(f"generator is on {gen.device} but the images are on {x.device}; "
                         f"make it with torch.Generator(device={str(x.device)!r})")
    return apply_params(x, draw_params(x.shape[0], x.shape[2:], gen, cfg, x.shape[1]), cfg, mean, std)


def reference_one(img, p: dict, i: int, cfg: AugmentConfig, mean, std):
    """The specification: image i of a batch, one operation at a time with slicing. img (C, H, W) uint8."""
    C, H, W = img.shape
    P = cfg.pad
    out = F.pad(img, (P, P, P, P))  # (C, H+2P, W+2P) zero padding
    dy, dx = int(p["dy"][i]), int(p["dx"][i])
    out = out[:, dy:dy + H, dx:dx + W]  # (C, H, W) random crop
    if bool(p["flip"][i]):
        out = out.flip(2)
    out = normalize(out[None], mean, std)[0]  # (C, H, W) float
    if cfg.cutout:
        y0, x0 = int(p["cy"][i]) - cfg.cutout // 2, int(p["cx"][i]) - cfg.cutout // 2
        out[:, max(y0, 0):max(y0 + cfg.cutout, 0), max(x0, 0):max(x0 + cfg.cutout, 0)] = 0.0  # clipped
    if cfg.erase:
        y0, x0, h, w = (int(p[k][i]) for k in ("ey", "ex", "eh", "ew"))
        box = (slice(None), slice(y0, y0 + h), slice(x0, x0 + w))
        out[box] = p["noise"][i][box] if "noise" in p else 0.0
    return out
