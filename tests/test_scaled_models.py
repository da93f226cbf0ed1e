"""scaled/models: parameter counts, Table 1 heads, ShakeDrop's gradient against its formula, and tiny
WRN / PyramidNet forward + backward on a real CIFAR-10 batch (skipped without ../shared/data)."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from scaled.models import FeatureNet, build_model, draw_shakedrop, survival_prob  # noqa: E402
from scaled.models import shakedrop as sd  # noqa: E402
from scaled.models.pyramidnet import Bottleneck  # noqa: E402

DATA = Path(os.environ["FOCA_DATA"])  # conftest.py defaults it to ../shared/data



def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


# --- sizes -----------------------------------------------------------------------------------------
def test_wrn_28_10_parameter_count():
    with torch.device("meta"):  # no memory, no init cost: only the shapes
        net = build_model("wrn-28-10", 10, head="C")
    # 36,479,194 is the published WRN-28-10 (trunk + closing BN + 640x10 classifier).
    assert n_params(net.trunk) == 36_471_504
    assert n_params(net.trunk) + n_params(net.head) + n_params(net.classifier) == 36_479_194


@pytest.mark.parametrize("variant", ["authors", "zagoruyko"])
def test_wrn_downsampling_block_variants(variant):
    """authors: stride on the 2nd conv, projection of the raw input; zagoruyko: stride on the 1st
    conv, projection of relu(bn1(x)). Written out with F.conv2d on the block's own weights."""
    from scaled.models.wrn import PreActBlock

    torch.manual_seed(0)
    blk = PreActBlock(4, 8, stride=2, block=variant).double()
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)  # (N, C_in, H, W)
    a = F.relu(blk.bn1(x))
    s1, s2 = (1, 2) if variant == "authors" else (2, 1)
    r = F.conv2d(F.relu(blk.bn2(F.conv2d(a, blk.conv1.weight, stride=s1, padding=1))), blk.conv2.weight,
                 stride=s2, padding=1)  # (N, 8, 4, 4)
    short = F.conv2d(x if variant == "authors" else a, blk.shortcut.weight, stride=2)
    torch.testing.assert_close(blk(x), r + short, rtol=1e-12, atol=1e-12)
    assert blk.conv1.stride == (s1, s1) and blk.conv2.stride == (s2, s2)
    with pytest.raises(ValueError, match="wrn_block"):
        PreActBlock(4, 8, 2, block="resnet")


def test_wrn_28_10_authors_block_costs_more_multiply_adds():
    """The authors' block runs a downsampling block's first conv at full resolution: 5.95 vs 5.24
    GMAC per 32x32 image for WRN-28-10 (forward, convolutions and matmuls), same parameters."""
    from torch.utils.flop_counter import FlopCounterMode

    gmac, params = {}, {}
    for variant in ("authors", "zagoruyko"):
        with torch.device("meta"):
            net = build_model("wrn-28-10", 10, wrn_block=variant)
            with FlopCounterMode(display=False) as counter:
                net.eval()(torch.empty(1, 3, 32, 32))
        gmac[variant] = counter.get_total_flops() / 2e9
        params[variant] = n_params(net)
    assert params["authors"] == params["zagoruyko"]
    assert gmac["authors"] == pytest.approx(5.95, abs=0.01) and gmac["zagoruyko"] == pytest.approx(5.24, abs=0.01), gmac


def test_pyramidnet_272_200_parameter_count():
    with torch.device("meta"):
        net = build_model("pyramidnet-272-200", 10, head="C", shakedrop=True)
    # Published as 26.0 M (PyramidNet paper) / 26.2 M (AutoAugment's table); 90 bottleneck blocks.
    assert 25.5e6 < n_params(net.trunk) < 26.5e6, n_params(net.trunk)
    assert net.trunk.out_channels == 4 * (16 + 200)
    assert len(net.trunk.blocks) == 90


@pytest.mark.parametrize("head, size, dim", [("A", 32, 64 * 8 * 8), ("B", 32, 64 * 8 * 8), ("C", 32, 64),
                                             ("D", 32, 128), ("D", 64, 128), ("B", 64, 64 * 16 * 16)])
def test_head_feature_dims(head, size, dim):
    gen = torch.Generator().manual_seed(0)
    net = build_model("wrn-10-1", 7, head=head, image_size=size).eval()
    x = torch.randn(2, 3, size, size, generator=gen)  # (N, 3, H, W)
    assert net.compute_features(x).shape == (2, dim) and net.feature_dim == dim
    assert net(x).shape == (2, 7)


def test_head_d_is_the_papers_2lp():
    net = build_model("wrn-10-1", 10, head="D")
    lin = [m for m in net.head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features, m.bias) for m in lin] == [(64, 128, None), (128, 128, None)]
    assert [type(m).__name__ for m in net.head.mlp] == ["Linear", "BatchNorm1d", "ReLU"] * 2
    c = net.classifier
    assert isinstance(c, torch.nn.Linear) and c.bias is not None and (c.in_features, c.out_features) == (128, 10)
    assert torch.all(c.bias == 0) and abs(c.weight.std().item() - 0.1) < 0.015  # N(0, 0.1^2), docs/algorithm.md


def test_builder_errors_say_what_is_accepted():
    with pytest.raises(ValueError, match="wrn-<depth>-<k>"):
        build_model("resnet-50", 10)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        build_model("wrn-12-1", 10)
    with pytest.raises(ValueError, match="9n \\+ 2"):
        build_model("pyramidnet-12-8", 10)
    with pytest.raises(ValueError, match="Table 1"):
        build_model("wrn-10-1", 10, head="E")


# --- ShakeDrop -------------------------------------------------------------------------------------
def test_shakedrop_forward_and_backward_follow_the_formula():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, 4, 4, dtype=torch.float64, generator=gen, requires_grad=True)  # (N, C, H, W)
    dout = torch.randn(64, 3, 4, 4, dtype=torch.float64, generator=gen)
    d = draw_shakedrop(64, 0.6, "cpu", torch.float64, gen, gate="sample")
    b, alpha, beta = (d[k].double().view(-1, 1, 1, 1) for k in ("b", "alpha", "beta"))
    assert 0 < d["b"].sum() < 64, "want both open and closed gates in the batch"
    out = sd.ShakeDropFunction.apply(x, d["fwd_scale"], d["bwd_scale"])
    out.backward(dout)
    torch.testing.assert_close(out, x * (b + alpha - b * alpha), rtol=0, atol=1e-15)
    torch.testing.assert_close(x.grad, dout * (b + beta - b * beta), rtol=0, atol=1e-15)
    # Gate open: identity both ways. Gate closed: alpha forward, beta backward.
    open_ = d["b"] == 1
    torch.testing.assert_close(x.grad[open_], dout[open_])
    torch.testing.assert_close(x.grad[~open_], dout[~open_] * beta[~open_])


def test_shakedrop_draws_per_sample_with_the_right_distribution():
    gen = torch.Generator().manual_seed(2)
    d = draw_shakedrop(200_000, 0.7, "cpu", torch.float32, gen, gate="sample")
    assert abs(d["b"].mean().item() - 0.7) < 0.005
    assert d["alpha"].min() >= -1 and d["alpha"].max() <= 1 and abs(d["alpha"].mean().item()) < 0.01
    assert d["beta"].min() >= 0 and d["beta"].max() <= 1 and abs(d["beta"].mean().item() - 0.5) < 0.01
    # E[b + alpha - b*alpha] = p: what eval mode multiplies by.
    assert abs(d["fwd_scale"].mean().item() - 0.7) < 0.005


def test_shakedrop_batch_gate_is_one_draw_per_batch_with_probability_p():
    """The authors' gate: every sample of a batch shares b; over many batches P(b = 1) = p."""
    gen = torch.Generator().manual_seed(6)
    gates = []
    for _ in range(4000):
        d = draw_shakedrop(8, 0.7, "cpu", torch.float32, gen, gate="batch")
        assert d["b"].min() == d["b"].max(), "one gate per mini-batch"
        closed = d["b"] == 0
        assert torch.equal(d["fwd_scale"][closed], d["alpha"][closed])  # alpha still per sample
        gates.append(d["b"][0].item())
    assert abs(sum(gates) / len(gates) - 0.7) < 4 * (0.7 * 0.3 / 4000) ** 0.5
    with pytest.raises(ValueError, match="shakedrop_gate"):
        sd.ShakeDrop(0.5, gate="image")


def test_shakedrop_module_train_uses_its_generator_and_eval_scales_by_p():
    m = sd.ShakeDrop(0.75)
    x = torch.randn(32, 2, 3, 3)
    m.generator = torch.Generator().manual_seed(3)
    y = m(x)
    d = draw_shakedrop(32, 0.75, "cpu", torch.float32, torch.Generator().manual_seed(3))
    torch.testing.assert_close(y, x * d["fwd_scale"].view(-1, 1, 1, 1))
    torch.testing.assert_close(m.eval()(x), 0.75 * x)
    # No host synchronisation per block: nothing in the per-step path reads a value back.
    src = inspect.getsource(sd.ShakeDrop.forward) + inspect.getsource(draw_shakedrop)
    assert ".item()" not in src and ".cpu()" not in src and ".tolist()" not in src


def test_survival_probability_is_linear_to_one_half():
    net = build_model("pyramidnet-29-24", 10, shakedrop=True)  # n = 3 blocks per stage, L = 9
    ps = [m.p_survive for m in net.modules() if isinstance(m, sd.ShakeDrop)]
    assert ps == pytest.approx([1 - (l / 9) * 0.5 for l in range(1, 10)])
    assert ps[-1] == 0.5 and survival_prob(9, 9) == 0.5


def test_pyramidnet_block_gradient_with_shakedrop():
    """The whole block's input gradient: branch scaled by beta-gates, shortcut unscaled (no in-place add)."""
    torch.manual_seed(0)  # only the block's weight init; the ShakeDrop draws come from `gen` below
    blk = Bottleneck(c_in=8, width=4, stride=2, p_survive=0.5).double()  # pads 8 -> 16 channels
    x = torch.randn(16, 8, 6, 6, dtype=torch.float64, requires_grad=True)
    dout = torch.randn(16, 16, 3, 3, dtype=torch.float64)
    blk.shakedrop.generator = torch.Generator().manual_seed(5)
    blk(x).backward(dout)
    d = draw_shakedrop(16, 0.5, "cpu", torch.float64, torch.Generator().manual_seed(5))
    x2 = x.detach().clone().requires_grad_(True)
    s = F.pad(F.avg_pool2d(x2, 2, 2), (0, 0, 0, 0, 0, 8))  # (N, 16, 3, 3)
    ref = (blk.branch(x2) * d["bwd_scale"].view(-1, 1, 1, 1) * dout).sum() + (s * dout).sum()
    ref.backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)


# --- a real batch through tiny networks --------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_batch():
    if not (DATA / "cifar10" / "unpack.py").is_file():
        pytest.skip(f"real CIFAR-10 not found at {DATA}/cifar10 (set FOCA_DATA to the shared data folder)")
    from scaled.augment import PRESETS, augment
    from scaled.data import load_dataset

    ds = load_dataset("cifar10", data_dir=str(DATA), val=True)
    gen = torch.Generator().manual_seed(0)
    x = augment(ds.x_train[:32], gen, PRESETS["cifar10"], ds.mean, ds.std)  # (32, 3, 32, 32)
    return x, ds.y_train[:32]


@pytest.mark.parametrize("name, shake", [("wrn-10-1", False), ("pyramidnet-11-8", True)])
def test_tiny_nets_train_on_a_real_cifar10_batch(cifar_batch, name, shake):
    torch.manual_seed(0)  # weight init only
    x, y = cifar_batch
    net = build_model(name, 10, head="D", shakedrop=shake)
    assert isinstance(net, FeatureNet)
    net.set_generator(torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    losses = []
    for _ in range(4):
        f = net.compute_features(x)  # (N, 128)
        assert f.shape == (32, 128) and torch.all(f >= 0)  # the last ReLU's output
        loss = F.cross_entropy(net.classifier(f), y)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(x)).all()
