"""Factories for --model=tests.factories:NAME in tests/test_scaled_external.py (importable from the
repository root, as a user's module is from PYTHONPATH): one that fits, and one per misfit."""
import torch
from torch import nn


def tiny_cnn(in_channels: int = 3):
    """(N, C, H, W) -> (N, 16, H/2, W/2): a map."""
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, 2, 1))


def pooled(in_channels: int = 3):
    """(N, C, H, W) -> (N, 16): already pooled features (heads C and D only)."""
    return nn.Sequential(tiny_cnn(in_channels), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def rgb_only():
    """Takes no in_channels: a 3-channel first conv whatever the data."""
    return tiny_cnn(3)


def tokens():
    """(N, C, H, W) -> (N, L, 16): a token sequence the heads cannot take."""
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = tiny_cnn(3)

        def forward(self, x):
            return self.net(x).flatten(2).transpose(1, 2)  # (N, h*w, 16)
    return Tokens()


def needs_width(width):
    return tiny_cnn(3)


def not_a_module():
    return torch.zeros(3)


def classifier_left_on(in_channels: int = 3, num_classes: int = 10):
    """(N, C, H, W) -> (N, K): a classifier at the end, which FOCA's trunk must not have (a warning)."""
    return nn.Sequential(pooled(in_channels), nn.Linear(16, num_classes))
