"""scaled/api.py: FOCA in your own loop (FocaLoss, the engine's own objective), any backbone as a
FOCA network, stage 2 and the feature statistics as functions; and examples/ in their tiny modes."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from scaled.api import (FocaLoss, compute_all_features, error_rate, feature_stats, foca_network, foca_parameters, load_run,
                        train_classifier)
from scaled.foca import compute_classifier, compute_features, weak_loss
from scaled.models import build_model

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(REPO / "examples"), os.environ.get("PYTHONPATH")]))}


def blobs(n: int, k: int = 3, d: int = 12, seed: int = 0):
    """n points of k well separated Gaussian classes in d dims: x (n, d), t (n,)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(k, (n,), generator=g)
    centres = torch.randn(k, d, generator=torch.Generator().manual_seed(99)) * 4  # (k, d)
    return centres[t] + torch.randn(n, d, generator=g), t


def test_foca_loss_refreshes_every_r_calls_with_compute_classifiers_numbers():
    torch.manual_seed(0)
    net = build_model("mlp-12-16-8", 3).double()
    drawn = []

    def sampler(n):
        drawn.append(blobs(n, seed=len(drawn) + 1))
        return drawn[-1][0].double(), drawn[-1][1]

    foca = FocaLoss(num_classes=3, n_c=12, refresh=3, weak_steps=8, generator=torch.Generator().manual_seed(5),
                    sampler=sampler)
    twin = torch.Generator().manual_seed(5)  # the same init draws, by hand
    x, t = blobs(20)
    x = x.double()
    for call in range(7):
        loss = foca(net, x, t)
        assert foca.fresh == (call % 3 == 0) and len(drawn) == call // 3 + 1, f"call {call}: refresh every R = 3 calls"
        if foca.fresh:
            want = compute_classifier(compute_features(net, drawn[-1][0].double()), drawn[-1][1], 3, foca, twin)
            assert all(torch.equal(want[k], foca.theta[k]) for k in ("W", "b"))
        assert torch.equal(loss, weak_loss(net.compute_features(x), t, foca.theta))
    net.zero_grad()
    foca(net, x, t).backward()
    assert net.trunk.layers[0].weight.grad.abs().sum() > 0 and not foca.theta["W"].requires_grad
    assert net.classifier.weight.grad is None, "FOCA's stage 1 never trains the classifier"
    handed = FocaLoss(num_classes=3, n_c=12)  # no sampler: the weak batch is handed in when due
    with pytest.raises(ValueError, match="weak="):
        handed(net, x, t)
    handed(net, x, t, weak=(x[:12], t[:12]))
    assert not handed.due and handed.calls == 1


def test_foca_loss_from_config_and_the_engine_runs_on_it(tmp_path, monkeypatch):
    """FocaLoss.from_config takes the engine's fields; stage 1 asks FocaLoss for every step's classifier."""
    from scaled.config import ScaledConfig
    from scaled.engine import Run
    from scaled.foca import train_foca
    from scaled.presets import get
    from tests.test_scaled_external import arrays

    cfg = ScaledConfig(n_c=7, refresh=5, weak_steps=3, weak_lr=0.5, weak_momentum=0.1, weak_wd=0.2, weak_init_std=0.3)
    f = FocaLoss.from_config(cfg, 10)
    assert (f.n_c, f.refresh, f.weak_steps, f.weak_lr, f.weak_momentum, f.weak_wd, f.weak_init_std) == \
        (7, 5, 3, 0.5, 0.1, 0.2, 0.3)
    calls = []
    real = FocaLoss.next_classifier
    monkeypatch.setattr(FocaLoss, "next_classifier", lambda self, *a, **kw: calls.append(self.fresh) or real(self, *a, **kw))
    run = Run(dataclasses.replace(get("smoke"), dataset=arrays(tmp_path / "a.npz", (8, 8)), train_subset=0,
                                  eval_subset=0, val_size=0, n_f=32, n_c=8, refresh=2, epochs=1, model="wrn-10-1"))
    train_foca(run)
    assert len(calls) == run.step == 6, "stage 1 must take each step's weak classifier from FocaLoss"


def test_foca_network_takes_any_backbone():
    import torchvision

    from tests import factories

    net = foca_network(torchvision.models.resnet18(weights=None), num_classes=5, image_size=32)
    assert isinstance(net.head.bn, nn.BatchNorm2d) and net(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert {id(p) for p in foca_parameters(net)}.isdisjoint({id(p) for p in net.classifier.parameters()})
    pooled = foca_network(factories.pooled(1), num_classes=5, head="C", in_channels=1, image_size=8)
    assert isinstance(pooled.head.bn, nn.BatchNorm1d) and pooled.compute_features(torch.randn(2, 1, 8, 8)).shape == (2, 16)
    with pytest.raises(ValueError, match="use --head=C or --head=D"):
        foca_network(factories.pooled(1), num_classes=5, head="A", in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="does not take 1x8x8"):
        foca_network(factories.rgb_only(), num_classes=5, in_channels=1, image_size=8)
    assert foca_network("torchvision:mobilenet_v3_small", 4, in_channels=2, image_size=32).feature_dim == 128


def test_train_classifier_fits_frozen_features_and_stats():
    torch.manual_seed(0)
    net = build_model("mlp-12-32", 3)  # random frozen features of separable blobs
    x, t = blobs(300)
    loader = [(x[i:i + 50], t[i:i + 50]) for i in range(0, 300, 50)]
    frozen = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("classifier")}
    train_classifier(net, loader, epochs=1, lr=0.0)
    before = error_rate(net, loader)  # the fresh init, untrained
    clf = train_classifier(net, loader, epochs=20, lr=0.1, generator=torch.Generator().manual_seed(0))
    assert clf is net.classifier and error_rate(net, loader) < min(0.1, before)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in frozen.items()), "stage 2 changed phi"
    f, t2 = compute_all_features(net, loader)
    assert f.shape == (300, 32) and torch.equal(t2, t)
    s = feature_stats(f, t2)
    assert set(s) == {"trace_ratio", "fisher_eigenvalue", "within_spread"} and s["trace_ratio"] > 1


# --- examples/, each in its tiny mode ---------------------------------------------------------------------
def example(name, tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "examples" / name), "--tiny", f"--out={tmp_path}"], cwd=REPO,
                       env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_example_own_loop(tmp_path):
    s = example("foca_own_loop.py", tmp_path)
    assert s["test_error"] < 0.5 and Path(s["figure"]).is_file(), s  # 4 classes: chance is 0.75


def test_example_cli_imagefolder(tmp_path):
    s = example("cli_imagefolder.py", tmp_path)
    cfg = json.loads((Path(s["run_dir"]) / "config.json").read_text())
    assert cfg["dataset"].startswith("imagefolder:") and cfg["model"] == "torchvision:resnet18" and "test_error" in s


def test_example_own_factory(tmp_path):
    s = example("own_factory.py", tmp_path)
    assert s["model"] == "own_factory:small_cnn" and 0 <= s["test_error"] <= 1, s


# --- issue 29: the weak sampler, FocaLoss's checks and exact resume, load_run -------------------------
def test_weak_batch_size_is_checked_and_weak_sampler_draws_n_c():
    from torch.utils.data import TensorDataset

    from scaled.api import weak_sampler

    net = build_model("mlp-12-16-8", 3)
    x, t = blobs(30)
    sampler = weak_sampler(TensorDataset(x, t), 12, torch.Generator().manual_seed(0))
    xc, tc = sampler(12)
    assert xc.shape == (12, 12) and tc.shape == (12,) and tc.dtype == torch.int64
    for weak, said in (((x[:10], t[:10]), "has 10 images and 10 labels; n_c=12"),
                       ((x[:12], t[:11]), "has 12 images and 11 labels")):
        with pytest.raises(ValueError, match=said):
            FocaLoss(num_classes=3, n_c=12)(net, x, t, weak=weak)
    with pytest.raises(ValueError, match="sampler"):
        FocaLoss(num_classes=3, n_c=12, sampler=lambda n: (x[:n - 1], t[:n - 1]))(net, x, t)


def test_own_loop_resumes_exactly_from_focaloss_state_dict(tmp_path):
    """k steps, save (net, optimiser, FocaLoss), load into fresh objects, m steps == k + m steps, bit for bit."""
    from torch.utils.data import TensorDataset

    from scaled.api import weak_sampler

    x, t = blobs(64)
    batches = [(x[i:i + 16], t[i:i + 16]) for i in range(0, 64, 16)]

    def fresh():
        torch.manual_seed(0)
        net = build_model("mlp-12-16-8", 3)
        foca = FocaLoss(num_classes=3, n_c=12, refresh=3, weak_steps=4, generator=torch.Generator().manual_seed(1),
                        sampler=weak_sampler(TensorDataset(x, t), 12, torch.Generator().manual_seed(2)))
        return net, foca, torch.optim.SGD(foca_parameters(net), lr=0.1, momentum=0.9, nesterov=True)

    def steps(net, foca, opt, a, b):
        for i in range(a, b):
            loss = foca(net, *batches[i % len(batches)])
            opt.zero_grad()
            loss.backward()
            opt.step()

    whole = fresh()
    steps(*whole, 0, 11)
    part = fresh()
    steps(*part, 0, 4)  # mid-period: theta is 1 call old, the next refresh at call 6
    torch.save({"net": part[0].state_dict(), "opt": part[2].state_dict(), "foca": part[1].state_dict()}, tmp_path / "s.pt")
    net, foca, opt = fresh()
    s = torch.load(tmp_path / "s.pt", weights_only=True)
    net.load_state_dict(s["net"])
    opt.load_state_dict(s["opt"])
    foca.load_state_dict(s["foca"])
    steps(net, foca, opt, 4, 11)
    assert all(torch.equal(a, b) for a, b in zip(whole[0].state_dict().values(), net.state_dict().values()))
    assert torch.equal(whole[1].theta["W"], foca.theta["W"]) and foca.calls == 11


def test_load_run_features_of_new_images_equal_the_engines(tmp_path, monkeypatch):
    """A run on an image folder of mixed sizes (resized to 8x8); load_run's transform on the image files
    gives the features the engine computes for the same images, and takes a new image of any size."""
    from PIL import Image

    from scaled.engine import Run
    from scaled.inference import read_config
    from scaled.train import main
    from tests.test_scaled_external import write_folder

    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    root = write_folder(tmp_path / "imgs", sizes=((12, 10), (10, 14)), per_class=10)
    assert main(["--preset", "own-cpu", f"--dataset=imagefolder:{root}", "--image_size=8", "--epochs=1",
                 "--stage2_epochs=1", "--n_f=8", "--stage2_batch=8", "--few_labels=1", "--few_label_draws=1",
                 f"--out_dir={tmp_path}", "--name=r", "--quiet"]) == 0
    net, transform = load_run(tmp_path / "r")
    files = sorted((root / "val").rglob("*.png"))  # the test split, in ImageFolder's order
    with torch.no_grad():
        mine = net.compute_features(torch.stack([transform(p) for p in files]))  # (30, 128)
    run = Run(read_config(tmp_path / "r"), resume_from=tmp_path / "r")
    engine, _ = run.features("test")
    assert mine.shape == engine.shape == (30, 128) and torch.equal(mine, engine)
    assert transform(Image.new("RGB", (31, 17))).shape == (3, 8, 8) and not net.training
    with pytest.raises(ValueError, match="no checkpoint.pt"):
        load_run(tmp_path)


def test_example_lightning(tmp_path):
    """Outside the default run unless lightning is importable (not a project dependency)."""
    pytest.importorskip("lightning", reason="lightning not installed (pip install lightning to run this example)")
    s = example("foca_lightning.py", tmp_path)
    assert s["calls"] == 12 and s["foca_loss"] == s["foca_loss"], s  # 2 epochs x 6 steps, a finite loss
