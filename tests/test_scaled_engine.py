"""scaled's training engine on the CPU: all stages end to end on real CIFAR-10, exact resume
after SIGKILL, and one clear line for every kind of bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
HAVE_CIFAR = (Path(os.environ["FOCA_DATA"]) / "cifar10" / "unpack.py").is_file()
needs_cifar = pytest.mark.skipif(not HAVE_CIFAR, reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
# Smaller than the smoke preset so the suite stays fast: 256 real images, 200 val/test images.
TINY = ["--train_subset=256", "--eval_subset=200", "--n_f=32", "--stage2_batch=32", "--n_c=20"]


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "scaled.train", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def summary_of(r):
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_cifar
@pytest.mark.parametrize("preset", ["smoke", "smoke-e2e"])
def test_all_stages_end_to_end(tmp_path, preset):
    s = summary_of(cli("--preset", preset, f"--out_dir={tmp_path}", "--name=r"))  # 1,000 real images
    for key in ("val_error", "test_error", "trace_ratio", "images_per_s", "seconds", "protocol"):
        assert key in s, f"summary lacks {key}"
    run = tmp_path / "r"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    stages = {r["stage"] for r in records}
    assert stages == ({1, 2, 3} if preset == "smoke" else {1})
    if preset == "smoke":
        assert "finetune_test_error" in s
        assert records[0]["val_error_by"] == "weak classifier"  # stage 1 evaluates as the authors did
    for name in ("config.json", "git.txt", "checkpoint.pt", "features_test.npz", "summary.json"):
        assert (run / name).is_file(), f"run folder lacks {name}"


@needs_cifar
def test_resume_after_sigkill_is_exact(tmp_path):
    """Kill a run with SIGKILL after its first epoch's checkpoint, resume it, and compare the final
    metrics and weights with an uninterrupted run: equal bit for bit on CPU."""
    common = ["--preset", "smoke", *TINY, "--epochs=3", "--finetune_epochs=0", f"--out_dir={tmp_path}"]
    full = summary_of(cli(*common, "--name=full"))
    proc = subprocess.Popen([sys.executable, "-m", "scaled.train", *common, "--name=killed"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.is_file() and metrics.read_text().strip()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert done and done[-1]["stage"] == 1 and done[-1]["epoch"] < 3, "the run was not killed mid-way"
    resumed = summary_of(cli("--resume", str(tmp_path / "killed")))
    for key in ("val_error", "test_error", "trace_ratio"):
        assert resumed[key] == full[key], f"{key}: resumed {resumed[key]} != uninterrupted {full[key]}"
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["net"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)["net"]
    for k in a:
        assert torch.equal(a[k], b[k]), f"weight {k} differs after resume"
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in lines] == [(1, 1), (1, 2), (1, 3), (2, 1)]


@needs_cifar
def test_non_finite_loss_names_the_step(tmp_path):
    r = cli("--preset", "smoke", *TINY, "--lr=1e12", "--check_every=1", f"--out_dir={tmp_path}")
    assert r.returncode == 2 and "at step" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("args,message", [
    (["--preset", "nope"], "unknown preset"),
    (["--preset", "smoke", "--no_such=1"], "unknown option --no_such"),
    (["--preset", "smoke", "--epochs=many"], "not a valid int"),
    (["--preset", "smoke", "--head=E"], "choose one of A, B, C, D"),
    (["--preset", "smoke", "--data-dir=/nonexistent"], "does not exist"),
    (["--preset", "smoke", "--augment=fancy"], "--augment"),
    (["--preset", "smoke", "--model=resnet-50"], "unknown network"),
    (["--preset", "wrn28-c10-foca"], "no CUDA GPU"),
    (["--resume", "/nonexistent/run"], "no checkpoint.pt"),
    (["--preset", "smoke", "--refresh=0"], "must be > 0"),
    (["--preset", "smoke", "--micro_batches=0"], "must be > 0"),
    (["--preset", "smoke", "--finetune_epochs=-1"], "must be >= 0"),
    (["--preset", "smoke", "--train_subset=10"], "fewer than one batch"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    if message == "no CUDA GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    tic = time.time()
    r = cli(*args, f"--out_dir={tmp_path}") if "--resume" not in args else cli(*args)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert time.time() - tic < 60, "a bad option must fail fast"


@needs_cifar
def test_existing_or_unwritable_run_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    r = cli("--preset", "smoke", *TINY, f"--out_dir={tmp_path}", "--name=taken")
    assert r.returncode == 2 and "exists" in r.stderr
    (tmp_path / "file").write_text("")
    r = cli("--preset", "smoke", *TINY, f"--out_dir={tmp_path / 'file'}")
    assert r.returncode == 2 and "cannot write the run folder" in r.stderr


@needs_cifar
@pytest.mark.parametrize("kill_after", [3, 5], ids=["mid-stage-2", "mid-stage-3"])
def test_resume_inside_stages_2_and_3_is_exact(tmp_path, kill_after):
    """A crash right after the checkpoint of record `kill_after` (FOCA_TEST_KILL_AFTER makes the
    engine SIGKILL itself there), then --resume: the same end as an uninterrupted run."""
    common = ["--preset", "smoke", *TINY, "--epochs=2", "--stage2_epochs=2", "--finetune_epochs=2",
              f"--out_dir={tmp_path}"]
    full = summary_of(cli(*common, "--name=full"))
    env = {**os.environ, "FOCA_TEST_KILL_AFTER": str(kill_after)}
    r = subprocess.run([sys.executable, "-m", "scaled.train", *common, "--name=killed"], cwd=REPO,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    resumed = summary_of(cli("--resume", str(tmp_path / "killed")))
    for key in ("val_error", "test_error", "finetune_val_error", "finetune_test_error"):
        assert resumed[key] == full[key], f"{key}: resumed {resumed[key]} != uninterrupted {full[key]}"
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["net"]
    b = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ after a resume inside a later stage"


@needs_cifar
def test_weak_batch_is_sampled_with_replacement_and_augmented():
    """SampleMinibatch(d, n_c): indices uniform WITH replacement from the "data" generator, images
    augmented like training data with the "aug" generator's draws (docs/FOCA.md)."""
    from scaled.augment import apply_params, draw_params
    from scaled.engine import Run
    from scaled.presets import get
    import dataclasses

    run = Run(dataclasses.replace(get("smoke"), train_subset=64, eval_subset=50))
    data_gen, aug_gen = (torch.Generator().set_state(run.gens[k].get_state()) for k in ("data", "aug"))
    x, t = run.sample_weak_batch(200)
    idx = torch.randint(64, (200,), generator=data_gen)
    p = draw_params(200, (32, 32), aug_gen, run.aug, 3)
    want = apply_params(run.data.x_train[idx], p, run.aug, run.data.mean, run.data.std)
    assert torch.equal(t, run.data.y_train[idx]) and torch.equal(x, want)
    assert not torch.equal(x, apply_params(run.data.x_train[idx], draw_params(200, (32, 32), aug_gen, run.aug, 3),
                                           run.aug, run.data.mean, run.data.std)), "no augmentation at all"
