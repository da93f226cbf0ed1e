"""How the engine runs the network when it evaluates, and when stage 2 computes frozen features:
evaluation leaves weights and BN statistics alone, repeats exactly, equals a direct eval-mode
forward and restores training mode; stage 2 uses eval-mode features (BN running statistics) or,
with stage2_bn_train, batch statistics, as asked. CPU, synthetic images (no data folder needed)."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import scaled.foca as scaled_foca  # noqa: E402
from minifoca.config import apply_overrides  # noqa: E402
from scaled.augment import normalize  # noqa: E402
from scaled.engine import Run  # noqa: E402
from scaled.presets import PRESETS  # noqa: E402

NETS = [("wrn-10-1", "wrn28-c10-foca"), ("pyramidnet-11-8", "pyr272-c10-foca")]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("eval") / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8), y_train=rng.integers(0, 10, 96),
             x_test=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, 40))
    return path


def tiny_run(npz, model="wrn-10-1", preset="wrn28-c10-foca", *more) -> Run:
    cfg = apply_overrides(PRESETS[preset][0], [f"--dataset={npz}", f"--model={model}", "--device=cpu",
                                               "--precision=fp64", "--channels_last=false", "--epochs=1", "--n_f=16",
                                               "--n_c=16", "--refresh=2", "--weak_steps=4", "--stage2_epochs=1",
                                               "--stage2_batch=16", "--eval_batch=16", "--val_size=24", *more])
    run = Run(cfg)
    scaled_foca.train_foca(run)  # a few steps, so BN running statistics are no longer their initial 0 and 1
    return run


def snapshot(net) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def direct_eval_features(run, split="test"):
    """The specification: the whole split, normalised, through the network in eval mode."""
    x = getattr(run.data, f"x_{split}")
    net = copy.deepcopy(run.net).eval()
    with torch.no_grad():
        return net.compute_features(run._prepare(normalize(x, run.data.mean, run.data.std)))  # (N, D)


@pytest.mark.parametrize("model, preset", NETS)
def test_evaluation_changes_nothing_repeats_and_restores_training_mode(npz, model, preset):
    run = tiny_run(npz, model, preset)
    before = snapshot(run.net)
    errors = [run.evaluate(run.net.classifier, s) for s in ("val", "test", "val", "test")]
    errors.append(run.evaluate(run.theta, "test"))  # a weak classifier ({"W", "b"}) too
    assert errors[:2] == errors[2:4], "a repeated evaluation gave another error"
    after = snapshot(run.net)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"evaluation changed {changed[:4]} (weights or BN running statistics)"
    assert run.net.training and all(m.training for m in run.net.modules()), "training mode not restored"


@pytest.mark.parametrize("model, preset", NETS)
def test_evaluation_features_equal_a_direct_eval_mode_forward(npz, model, preset):
    run = tiny_run(npz, model, preset)
    before = snapshot(run.net)
    want = direct_eval_features(run)
    f, y = run.features("test")
    torch.testing.assert_close(f, want, rtol=0, atol=0)
    assert torch.equal(y, run.data.y_test)
    twin = copy.deepcopy(run.net).train()  # a copy: a train-mode forward moves BN running statistics
    with torch.no_grad():  # the check would see the wrong mode: train-mode features differ
        train_mode = twin.compute_features(run._prepare(normalize(run.data.x_test, run.data.mean, run.data.std)))
    assert (train_mode - want).abs().max() > 1e-3
    moved = [k for k, v in snapshot(run.net).items() if not torch.equal(v, before[k])]
    assert not moved, f"the checks moved {moved[:3]} before evaluate was compared"
    logits = run.net.classifier(want)
    assert run.evaluate(run.net.classifier, "test") == (logits.argmax(1) != y).sum().item() / len(y)


@pytest.mark.parametrize("bn_train", [False, True])
def test_stage_2_features_use_the_bn_mode_asked_for(npz, monkeypatch, bn_train):
    run = tiny_run(npz, "wrn-10-1", "wrn28-c10-foca", f"--stage2_bn_train={bn_train}")
    seen, real = [], scaled_foca.compute_features

    def compute_features(net, x):
        twin = copy.deepcopy(net)  # the network as it is at this call, to recompute the features
        f = real(net, x)
        seen.append((net.training, x, f, twin))
        return f

    monkeypatch.setattr(scaled_foca, "compute_features", compute_features)
    before = snapshot(run.net)
    scaled_foca.train_classifier(run)
    assert seen and all(training == bn_train for training, *_ in seen)
    for _, x, f, twin in seen:
        with torch.no_grad():
            torch.testing.assert_close(f, twin.train(bn_train).compute_features(x), rtol=0, atol=0)
    stats = [k for k in before if "running" in k]
    moved = [k for k in stats if not torch.equal(before[k], run.net.state_dict()[k])]
    assert (len(moved) > 0) == bn_train, f"BN running statistics moved: {moved[:3]} (stage2_bn_train={bn_train})"
    assert run.net.training, "training mode not restored after stage 2"
    frozen = [k for k in before if not k.startswith("classifier.") and "running" not in k and "num_batches" not in k]
    assert all(torch.equal(before[k], run.net.state_dict()[k]) for k in frozen), "stage 2 moved phi's weights"


def test_the_paper_protocol_trains_on_every_image_and_reports_the_final_epoch(npz):
    """val_size=0 (the authors'): all 96 training images, no val split, the per-epoch log has the
    test error for the curves; the summary's test_error is the FINAL stage-2 epoch's, and the
    authors' minimum over the stage-2 epochs is kept apart under its own name."""
    from scaled.train import run_all

    run = tiny_run(npz, "wrn-10-1", "wrn28-c10-foca", "--val_size=0", "--stage2_epochs=3", "--eval_every=1")
    assert len(run.data.y_train) == 96 and run.data.x_val is None and "val: none" in run.data.protocol
    # Scripted errors, all different, so that a minimum and a final epoch cannot coincide: stage 1's
    # epoch (already run by tiny_run) is not asked again; the 3 stage-2 epochs, then the final report.
    scripted = iter([0.2, 0.1, 0.4, 0.4])
    run.evaluate = lambda classifier, split: next(scripted)
    s = run_all(run)
    stage2 = [r["test_error"] for r in run.records if r["stage"] == 2]
    assert stage2 == [0.2, 0.1, 0.4] and all("val_error" not in r for r in run.records)
    assert s["val_error"] is None and s["test_error"] == 0.4, "the summary must be the final epoch's error"
    assert s["test_error_min_over_stage2_epochs"] == 0.1
    ours = tiny_run(npz, "wrn-10-1", "wrn28-c10-foca", "--fidelity=ours", "--val_size=24")
    assert len(ours.data.y_train) == 96 - 24 and len(ours.data.y_val) == 24


def test_a_kept_last_batch_too_small_for_batchnorm_is_refused_before_training(npz):
    """65 images in batches of 16 would end each epoch on 1 image: BN cannot normalise it."""
    with pytest.raises(ValueError, match="last batch of 1 for n_f=16.*--last_batch=drop"):
        tiny_run(npz, "wrn-10-1", "wrn28-c10-foca", "--train_subset=65")
