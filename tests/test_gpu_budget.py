"""Run 2 of the GPU plan and `make cifar10-budget` (one code: scripts/studies/budget.py) on the CPU in tiny
mode, fed staged CIFAR-10 parts in the shared copy's format; the staging decoder on the real parts.
Own file so that pytest-xdist runs it beside tests/test_gpu_scripts.py."""
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_gpu_scripts import ENV, REPO, assert_collectable, wait_for

SHARED = Path(os.environ["FOCA_DATA"]) / "cifar10"


def write_part(path: Path, images: np.ndarray, labels: np.ndarray, key: str) -> None:
    """The shared copy's format: 1000-image sprites (10 x 100 tiles of 32x32) as lossless WebP."""
    from PIL import Image

    blobs = []
    for i in range(0, len(images), 1000):
        sprite = images[i:i + 1000].reshape(10, 100, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(320, 3200, 3)
        buf = io.BytesIO()
        Image.fromarray(sprite).save(buf, "WEBP", lossless=True)
        blobs.append(buf.getvalue())
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(path, webp=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets, **{key: labels})


def staged_halves(tmp_path: Path):
    """Two folders like gpu_stage1/ and gpu_stage2/: one training part each, the test part in both."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3000, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 3000)
    for name, part in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        write_part(tmp_path / name / f"cifar10_train_webp_p{part:02d}.npz", x[part * 1000:(part + 1) * 1000],
                   y[part * 1000:(part + 1) * 1000], "y_train")
        write_part(tmp_path / name / "cifar10_test_first1000_webp_p00.npz", x[2000:], y[2000:], "y_test")
    return x, y


def test_staged_parts_decode_to_the_images(tmp_path):
    from scripts.gpu.stage_cifar10 import assemble

    x, y = staged_halves(tmp_path)
    info = assemble(tmp_path / "c.npz", [tmp_path / "b", tmp_path / "a", tmp_path / "missing"])
    z = np.load(tmp_path / "c.npz")
    assert np.array_equal(z["x_train"], x[:2000]) and np.array_equal(z["y_train"], y[:2000])
    assert np.array_equal(z["x_test"], x[2000:]) and info["train_parts"] == ["p00", "p01"]
    assert not info["complete"] and info["train_images"] == 2000


@pytest.mark.skipif(not (SHARED / "unpack.py").is_file(), reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
def test_staged_shared_copy_matches_unpack_checksums(tmp_path):
    from scripts.gpu.stage_cifar10 import assemble

    info = assemble(tmp_path / "c.npz", [SHARED])
    assert info["complete"] and info["sha256"] == "ok" and info["train_images"] == 50000


def test_gpu_budget_tiny_brings_back_everything(tmp_path):
    """scripts/gpu/budget.sh as run 2 calls it, tiny: both methods, both seeds, <= 8 files, runs archived
    without weights, the figure, and the table last."""
    staged_halves(tmp_path)
    out = tmp_path / "out"
    # Generous minutes with at most 2 epochs: the sizing still runs, and a loaded 2-core machine (a fresh
    # clone's make test, 2 xdist workers beside other runs) no longer sizes 0 epochs and fails.
    r = subprocess.run(["bash", "scripts/gpu/budget.sh", "--tiny", "--max-epochs=2"], cwd=REPO, capture_output=True,
                       text=True, timeout=900, env={**ENV, "OUT": str(out), "MINUTES": "8",
                                         "PARTS": f"{tmp_path / 'a'},{tmp_path / 'b'}"})
    assert r.returncode == 0, r.stdout[-3000:]
    assert_collectable(out)
    d = json.loads((out / "budget.json").read_text())
    assert d["data"]["train_parts"] == ["p00", "p01"] and d["data"]["train"] == 1500  # 2,000 less 500 for val
    assert [len(d["runs"][m]) for m in ("foca", "e2e")] == [2, 2] and not d["skipped"] and not d["stopped"]
    assert d["epochs"] >= 1 and all(run["epochs"] == d["epochs"] for rs in d["runs"].values() for run in rs)
    assert all(run["metrics"] and "error" not in run for rs in d["runs"].values() for run in rs)
    assert d["summary"]["foca"]["finetune_test_error"][2] == (1 if d["finetune_epochs"] else 0)
    for m in ("foca", "e2e"):
        assert {"images_per_s", "eval_s", "checkpoint_s", "fixed_s"} <= set(d["probe"][m])
    with tarfile.open(out / "budget_runs.tar.gz") as tar:
        names = tar.getnames()
    assert "budget-foca-s0/metrics.jsonl" in names and "budget-e2e-s1/summary.json" in names
    assert not [n for n in names if n.endswith("checkpoint.pt")], "weights must stay on the box"
    assert (out / "budget_features.png").stat().st_size > 10_000
    tail = (out / "budget.log").read_text().strip().splitlines()
    assert "| method | val error | test error | n | seconds per run |" in tail[-8:]


def test_budget_json_is_complete_after_sigkill(tmp_path):
    """Also issue 30: the GPU plan's logs archive (--pack-archive) holds every finished run after a kill."""
    logs = tmp_path / "logs"
    proc = subprocess.Popen([sys.executable, "-m", "scripts.studies.budget", "--tiny", "--minutes=8", "--max-epochs=2",
                             f"--out={tmp_path}", f"--runs-dir={logs / 'budget_runs'}",
                             f"--pack-archive={tmp_path / 'logs.tar.gz'}", f"--pack-root={logs}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    reached = wait_for(tmp_path / "budget.json", lambda d: len(d["runs"]["foca"]) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached, "the budget never finished a run"
    with tarfile.open(tmp_path / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert "budget_runs/budget-foca-s0/metrics.jsonl" in names and "budget_runs/budget-foca-s0/summary.json" in names
    assert not [n for n in names if n.endswith(".pt")]
    d = json.loads((tmp_path / "budget.json").read_text())
    assert d["epochs"] >= 1 and d["probe"]["foca"]["images_per_s"] > 0 and d["predicted_s"] > 0
    assert len(d["runs"]["foca"]) + len(d["runs"]["e2e"]) < 4, "killed too late to test anything"
    run = d["runs"]["foca"][0]
    assert run["metrics"] and run["test_error"] is not None and run["wall_s"] > 0
    assert d["summary"]["foca"]["test_error"][2] == 1


def test_the_call_packs_the_budget_runs_into_its_logs_archive():
    from scripts.gpu.check import LOGS_ARCHIVE, command

    args = type("A", (), {"tiny": True, "parts": ""})()
    cmd = command("budget", args, Path("/o"), Path("/l"), 200)
    assert f"--pack-archive={Path('/o') / LOGS_ARCHIVE}" in cmd and "--pack-root=/l" in cmd
    assert "--runs-dir=/l/budget_runs" in cmd


def gpu_probe():
    """A probe of a GPU-like card: 20 s start-up per run, 10 s per epoch of 30,000 images."""
    run = {"images_per_s": 3000.0, "eval_s": 1.0, "checkpoint_s": 0.5, "fixed_s": 20.0}
    return {"foca": {**run, "stage2_images_per_s": 9000.0}, "e2e": dict(run)}


def test_budget_falls_back_to_one_seed(monkeypatch):
    """Issue 30: when 2 arms x 2 seeds do not fit one epoch, one seed of each arm runs (not zero runs),
    and budget.json, the status and the table say so."""
    from scaled.train import parse
    from scripts.gpu.common import NOT_MEASURED
    from scripts.studies import budget as b

    arms = b.ARMS["gpu"]
    cfgs = {m: parse(["--preset", arms[m][0]])[0] for m in ("foca", "e2e")}
    res = {"probe": gpu_probe(), "finetune_all_seeds": False}
    one = b.makespan([r["need"] for r in b.plan(res, arms, cfgs, 30000, 1, 1, 0)], 1)
    two = b.makespan([r["need"] for r in b.plan(res, arms, cfgs, 30000, 2, 1, 0)], 1)
    assert b.fit(res, arms, cfgs, 30000, 2, 0, 1, two * 1.01)[:2] == (1, 2)
    E, seeds, total = b.fit(res, arms, cfgs, 30000, 2, 0, 1, one * 1.2)
    assert (E, seeds) == (1, 1) and total <= one * 1.2
    assert b.fit(res, arms, cfgs, 30000, 2, 0, 1, one * 0.9) == (0, 1, one)
    # size() itself, its probe stood in for
    monkeypatch.setattr(b, "lanes", lambda specs, jobs, deadline, margin, done, skipped:
                        [done(s, {}, 1.0) for s in specs])
    args = type("A", (), {"minutes": 3, "tiny": False, "cpu": False, "seeds": 2, "margin": 0.0, "finetune_epochs": 0,
                          "max_epochs": 10000})()
    full = {"card": {"device": "cpu"}, "data": {"protocol": "-", "train_used": 30000, "val": 5000, "test": 1000},
            "probe": {}, "finetune_all_seeds": False, "seeds": 2, "runs": {"foca": [], "e2e": []}, "skipped": [],
            "stopped": None, "finetune_epochs": 0, "total_seconds": 1.0}
    monkeypatch.setattr(b, "probe_result", lambda s, wall, run_dir, images: gpu_probe()[run_dir.name[6:]])
    b.size(args, full, arms, cfgs, [], 30000, 1, time.perf_counter() + one * 1.2, Path("/nonexistent"))
    assert full["seeds_run"] == 1 and full["epochs"] >= 1 and "1 seed of 2" in full["seeds_note"]
    for m in ("foca", "e2e"):
        full["runs"][m].append({"val_error": 0.3, "test_error": 0.3, "seconds": 9.0})
    full["summary"] = b.summarise(full["runs"])
    full["status"] = b.status(full)
    assert full["status"] == NOT_MEASURED
    text = b.table(full, Path("."))
    assert f"{NOT_MEASURED}; {full['epochs']} epochs per run, 1 of 2 seeds" in text and "1 seed of 2" in text


def test_budget_out_of_time_is_not_a_failure(tmp_path, monkeypatch):
    """Issue 30: a run stopped at the deadline or skipped for time is "not measured: time" and exit 3,
    never an error (exit 1); so is a budget too short for the probe."""
    from scripts.gpu.common import NOT_MEASURED, TIME_EXIT, synthetic_npz
    from scripts.studies import budget as b

    monkeypatch.setattr(b, "start", lambda args, log: subprocess.Popen(["sleep", "60"]))
    got, skipped = [], []
    specs = [{"name": "a", "need": 0, "args": [], "log": tmp_path / "a.log"},
             {"name": "b", "need": 1000, "args": [], "log": tmp_path / "b.log"}]
    b.lanes(specs, 1, time.perf_counter() + 3, 0, lambda spec, s, wall: got.append(s), skipped)
    assert len(got) == 1 and got[0]["not_measured"].startswith("time: stopped at the deadline") and "error" not in got[0]
    assert len(skipped) == 1 and skipped[0].startswith("b: needs")
    res = {"runs": {"foca": got, "e2e": []}, "stopped": None, "skipped": skipped, "seeds": 2, "seeds_run": 2}
    assert b.status(res) == NOT_MEASURED and b.status({**res, "runs": {"foca": [{"error": "x"}]}}) == "FAILED"
    data = synthetic_npz(tmp_path, 32, 10, 1000, 200)
    r = subprocess.run([sys.executable, "-m", "scripts.studies.budget", "--tiny", "--minutes=0.05", f"--dataset={data}",
                        f"--out={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == TIME_EXIT, r.stderr[-3000:]
    d = json.loads((tmp_path / "out" / "budget.json").read_text())
    assert d["status"] == NOT_MEASURED and d["stopped"].startswith(NOT_MEASURED) and "failure" not in d


def test_budget_repacks_the_logs_archive_after_every_run(tmp_path, monkeypatch):
    """Issue 30, apart from the machine's load: the runs stood in for (a trivial process each, the sizing
    skipped), the --pack-archive holds every finished run before the next one starts."""
    from scripts.gpu.common import synthetic_npz
    from scripts.studies import budget as b

    logs, archive, seen = tmp_path / "logs", tmp_path / "logs.tar.gz", []

    def size(args, res, *rest):
        res.update(probe=gpu_probe(), epochs=1, finetune_epochs=0, predicted_s=1.0, seeds_run=args.seeds)
        return 1, 0

    def start(args, log):
        opt = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        with tarfile.open(archive) if archive.is_file() else io.BytesIO() as tar:
            seen.append(sorted(n for n in tar.getnames() if n.endswith("metrics.jsonl")) if archive.is_file() else [])
        (Path(opt["out_dir"]) / opt["name"]).mkdir(parents=True)
        (Path(opt["out_dir"]) / opt["name"] / "metrics.jsonl").write_text('{"stage": 1, "epoch": 1}\n')
        log.with_suffix(".out").write_text(json.dumps({"val_error": 0.5, "test_error": 0.5, "seconds": 1.0}) + "\n")
        return subprocess.Popen(["true"])

    monkeypatch.setattr(b, "size", size)
    monkeypatch.setattr(b, "start", start)
    before = signal.getsignal(signal.SIGTERM)
    try:
        rc = b.main(["--tiny", "--minutes=10", f"--dataset={synthetic_npz(tmp_path, 32, 10, 1000, 200)}",
                     f"--out={tmp_path / 'out'}", f"--runs-dir={logs / 'budget_runs'}", f"--pack-archive={archive}",
                     f"--pack-root={logs}"])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert rc == 0
    runs = [f"budget_runs/budget-{m}-s{s}/metrics.jsonl" for s in (0, 1) for m in ("foca", "e2e")]
    assert seen == [sorted(runs[:i]) for i in range(4)], "a run started before the archive held the ones before it"
