"""Networks from elsewhere as FOCA trunks: torchvision, timm, or a factory of your own.

    build_model("torchvision:resnet18", 10, head="D", image_size=32, in_channels=1)
    build_model("timm:resnet18", 10)            # needs timm: pip install timm (the [timm] extra)
    build_model("mypkg.nets:small_cnn", 10)     # any importable callable with no required arguments

The reference is the run's `model` field, saved in config.json, so --resume and stage 3 rebuild
the same network (a factory must then still import: same PYTHONPATH). Every network is built with
random weights (weights=None, pretrained=False): FOCA trains the feature extractor itself.

What becomes the trunk (images (N, C, H, W) -> a map (N, C', h, w) or pooled features (N, D')):
  torchvision  the classifier is removed. ResNet/ResNeXt/Wide ResNet, RegNet, ShuffleNetV2 and
               MNASNet: everything before their global pooling -> the last map. Models with a
               `features` block (VGG, AlexNet, DenseNet, SqueezeNet, MobileNet, EfficientNet,
               ConvNeXt): that block -> the last map. The rest (ViT, Swin, MaxViT, GoogLeNet,
               Inception): the last Linear becomes the identity -> pooled features (N, D').
               With C != 3 channels the first conv is rebuilt for C (its weights are random anyway).
  timm         create_model(name, num_classes=0, in_chans=C, img_size=H when the model takes it),
               then forward_features: a CNN's map;
               for token outputs (ViTs) forward_head(pre_logits=True), the pooled features.
  factory      "package.module:function": called with in_channels, image_size and num_classes for
               each of those keywords it names, nothing else; its forward is the trunk as it is.
head.py says what each head does with a map and with pooled features (A and B need a map).

Each network is probed once with a forward of two blank images of the data's shape (in eval mode,
no gradient, no random draws; on the meta device when built there): a network that does not take
them, or returns anything but (N, C', h, w) or (N, D'), is a ValueError of one line, before training.
"""
from __future__ import annotations

import importlib
import inspect
import warnings

import torch
from torch import nn

from .head import FeatureHead, FeatureNet

KINDS = ("torchvision:NAME", "timm:NAME", "package.module:factory")


def is_external(name: str) -> bool:
    return ":" in name


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


# --- torchvision -------------------------------------------------------------------------------------
def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _adapt_first_conv(net: nn.Module, in_channels: int) -> None:
    """Rebuild the first Conv2d for in_channels inputs (same shape otherwise; random weights)."""
    for path, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            if m.in_channels != in_channels:
                _replace(net, path, nn.Conv2d(in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                              m.dilation, m.groups, m.bias is not None, m.padding_mode))
            return


def torchvision_trunk(name: str, in_channels: int = 3, image_size: int = 224) -> nn.Module:
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)  # classification models only
    if name not in names:
        raise ValueError(f"--model=torchvision:{name}: {tvm.__name__} has no classification model "
                         f"{name!r}; e.g. {', '.join(n for n in ('resnet18', 'mobilenet_v3_small', 'convnext_tiny'))} "
                         f"({len(names)} in torchvision.models.list_models())")
    kw = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    if name.startswith("vit_"):
        kw["image_size"] = image_size  # ViT's position embedding is sized for the images
    try:
        net = tvm.get_model(name, weights=None, **kw)
    except Exception as e:  # e.g. RegNet's widths need real tensors: not on the meta device
        raise ValueError(f"--model=torchvision:{name}: building it failed ({_first_line(e)})") from None
    if in_channels != 3:
        _adapt_first_conv(net, in_channels)
    return torchvision_features(net)


def torchvision_features(net: nn.Module) -> nn.Module:
    """A built torchvision classification model -> its trunk (the module docstring says which part)."""
    import torchvision.models as tvm

    if isinstance(net, (tvm.ResNet, tvm.RegNet)):  # ... -> avgpool -> flatten -> fc
        return nn.Sequential(*list(net.children())[:-2])
    if isinstance(net, tvm.ShuffleNetV2):  # ... -> conv5 -> mean over (h, w) -> fc
        return nn.Sequential(net.conv1, net.maxpool, net.stage2, net.stage3, net.stage4, net.conv5)
    if isinstance(net, tvm.MNASNet):  # layers -> mean over (h, w) -> classifier
        return net.layers
    if isinstance(getattr(net, "features", None), nn.Module) and not isinstance(net, tvm.SwinTransformer):
        return net.features  # Swin's features are (N, h, w, C): it takes the pooled route below
    last = [p for p, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    _replace(net, last, nn.Identity())  # the classifier's input: the network's pooled features
    return net


# --- timm ----------------------------------------------------------------------------------------------
class TimmTrunk(nn.Module):
    """A timm model's forward_features: a CNN's map (N, C, h, w) (channels moved first when timm
    returns (N, h, w, C)), or for tokens (N, L, D) its own pooling, forward_head(pre_logits=True)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        info = getattr(model, "feature_info", None)
        self.channels = info[-1]["num_chs"] if info else getattr(model, "num_features", None)

    def forward(self, x):
        z = self.model.forward_features(x)
        if z.dim() == 4:
            return z if z.shape[1] == self.channels or z.shape[-1] != self.channels else z.permute(0, 3, 1, 2)
        return self.model.forward_head(z, pre_logits=True)  # (N, D)


def timm_trunk(name: str, in_channels: int = 3, image_size: int = 224) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ValueError(f"--model=timm:{name} needs timm: pip install timm (or pip install -e '.[timm]')") from None
    if not timm.is_model(name):
        raise ValueError(f"--model=timm:{name}: timm has no model {name!r}; timm.list_models('*{name[:6]}*') "
                         "lists similar names")
    kw = dict(pretrained=False, num_classes=0, in_chans=in_channels)
    try:  # ViTs and Swins size their position embeddings / windows to img_size; CNNs take no such keyword
        return TimmTrunk(timm.create_model(name, img_size=image_size, **kw))
    except TypeError:
        return TimmTrunk(timm.create_model(name, **kw))


# --- a factory of your own ----------------------------------------------------------------------------
FACTORY_KEYWORDS = ("in_channels", "image_size", "num_classes")


def resolve_factory(ref: str):
    """'package.module:function' -> the callable and the keywords it accepts; ValueError otherwise."""
    mod_name, _, attr = ref.rpartition(":")
    if not mod_name or not attr:
        raise ValueError(f"--model={ref}: write torchvision:NAME, timm:NAME or package.module:factory")
    try:
        obj = importlib.import_module(mod_name)
    except Exception as e:  # ImportError, or the module's own error while importing
        raise ValueError(f"--model={ref}: cannot import {mod_name} ({_first_line(e)}); put the folder that "
                         "holds it on PYTHONPATH") from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise ValueError(f"--model={ref}: {mod_name} has no callable {attr!r}")
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        params = {}
    required = [p.name for p in params.values() if p.default is p.empty and p.name not in FACTORY_KEYWORDS
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if required:
        raise ValueError(f"--model={ref}: {attr} requires {', '.join(required)}; give them defaults (it is "
                         f"called with no arguments but {', '.join(FACTORY_KEYWORDS)})")
    return obj, [k for k in FACTORY_KEYWORDS if k in params]


def factory_trunk(ref: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    fn, keywords = resolve_factory(ref)
    given = {"in_channels": in_channels, "image_size": image_size, "num_classes": num_classes}
    try:
        net = fn(**{k: given[k] for k in keywords})
    except Exception as e:
        raise ValueError(f"--model={ref}: calling it failed ({_first_line(e)})") from None
    if not isinstance(net, nn.Module):
        raise ValueError(f"--model={ref}: returned {type(net).__name__}, not a torch.nn.Module")
    return net


# --- the probe and the one entry point ---------------------------------------------------------------
def check_ref(ref: str) -> None:
    """What can be checked without the data: the kind, the name, the import (ValueError: one line)."""
    kind, _, name = ref.partition(":")
    if kind == "torchvision":
        import torchvision.models as tvm
        if name not in tvm.list_models(module=tvm):
            torchvision_trunk(name)  # raises with the message
    elif kind == "timm":
        try:
            import timm  # noqa: F401
        except ImportError:
            timm_trunk(name)  # raises with the message
    else:
        resolve_factory(ref)


def probe(trunk: nn.Module, ref: str, in_channels: int, image_size: int) -> tuple[int, int, bool]:
    """-> (channels C', spatial h*w, vector?) of trunk's output on two blank images (N=2: BN-safe)."""
    p = next(iter(trunk.parameters()), None)
    x = torch.zeros(2, in_channels, image_size, image_size, device=p.device if p is not None else None,
                    dtype=p.dtype if p is not None and p.is_floating_point() else None)  # (2, C, H, W)
    was = trunk.training
    trunk.eval()
    try:
        with torch.no_grad():
            z = trunk(x)
    except Exception as e:
        raise ValueError(f"--model={ref} does not take {in_channels}x{image_size}x{image_size} images "
                         f"({_first_line(e)}); pick a network for this channel count and size") from None
    finally:
        trunk.train(was)
    shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
    if not isinstance(z, torch.Tensor) or z.dim() not in (2, 4) or 0 in z.shape:
        raise ValueError(f"--model={ref} returns {shape} for {in_channels}x{image_size}x{image_size} images; "
                         "the heads take a map (N, C', H', W') or features (N, D): return one of those")
    return z.shape[1], (z.shape[2] * z.shape[3] if z.dim() == 4 else 1), z.dim() == 2


def check_width(ref: str, channels: int, vector: bool, num_classes: int) -> None:
    """A warning when the trunk ends in num_classes features: most likely a classifier left on,
    which FOCA would train as a K-dimensional feature extractor and follow with its own head."""
    if vector and channels == num_classes:
        warnings.warn(f"{ref} returns {channels} features, as many as the data's classes: if that is a "
                      "classifier, remove it (return the features before it); if not, ignore this", stacklevel=3)


def as_trunk(backbone: nn.Module) -> nn.Module:
    """Any module as a trunk: torchvision's classifiers and timm models lose their classifier as
    above; anything else is used as it is (its forward must give a map or pooled features)."""
    if type(backbone).__module__.startswith("torchvision.models"):
        return torchvision_features(backbone)
    if hasattr(backbone, "forward_features") and hasattr(backbone, "forward_head"):  # timm's interface
        if hasattr(backbone, "reset_classifier"):
            backbone.reset_classifier(0)
        return TimmTrunk(backbone)
    return backbone


def build_external(ref: str, num_classes: int, head: str = "D", image_size: int = 32, in_channels: int = 3,
                   hidden: int = 128) -> FeatureNet:
    kind, _, name = ref.partition(":")
    if kind == "torchvision":
        trunk = torchvision_trunk(name, in_channels, image_size)
    elif kind == "timm":
        trunk = timm_trunk(name, in_channels, image_size)
    else:
        trunk = factory_trunk(ref, in_channels, image_size, num_classes)
    channels, spatial, vector = probe(trunk, ref, in_channels, image_size)
    if kind not in ("torchvision", "timm"):
        check_width(f"--model={ref}", channels, vector, num_classes)
    return FeatureNet(trunk, FeatureHead(head, channels, spatial, hidden, vector=vector), num_classes)
