"""The minifoca command line as a user runs it: a JSON last line, a run folder, clear errors."""
import json
import subprocess
import sys

import pytest

from minifoca.config import Config, apply_overrides
from minifoca.runlog import read_jsonl

FAST = ["--steps=40", "--stage2_epochs=2", "--eval_every=1", "--few_label_draws=1"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "minifoca.train", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("method", ["foca", "e2e"])
def test_digits_run_prints_json_and_leaves_a_run_folder(tmp_path, method):
    r = cli("--dataset", "digits", "--method", method, f"--out_dir={tmp_path}", "--name=run", *FAST)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("method", "dataset", "val_error", "test_error", "seconds"):
        assert key in summary, f"summary lacks {key}"
    assert summary["method"] == method and 0 <= summary["test_error"] <= 1
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["method"] == method
    assert (run / "git.txt").read_text().strip()
    records = read_jsonl(run / "metrics.jsonl")
    assert records and all("train_loss" in r for r in records)
    assert json.loads((run / "summary.json").read_text()) == summary


def test_existing_run_folder_is_not_overwritten(tmp_path):
    assert cli(f"--out_dir={tmp_path}", "--name=x", *FAST).returncode == 0
    r = cli(f"--out_dir={tmp_path}", "--name=x", *FAST)
    assert r.returncode == 2 and "exists" in r.stderr
    assert cli(f"--out_dir={tmp_path}", "--name=x", "--overwrite", *FAST).returncode == 0


@pytest.mark.parametrize("args,message", [
    (["--no_such_key=1"], "unknown option --no_such_key"),
    (["--lr=fast"], "not a valid float"),
    (["--method=sgd"], "choose one of foca, e2e"),
    (["--preset=imagenet"], "unknown preset"),
    (["--dataset=cifar10", "--data_dir=/nonexistent"], "does not exist"),
    (["--backend=cupy"], "cupy"),
    (["--refresh=0"], "--refresh=0: must be > 0"),
    (["--n_f=0"], "--n_f=0: must be > 0"),
    (["--wd=-1"], "must be >= 0"),
    (["--widths="], "needs at least one width"),
])
def test_bad_options_give_one_clear_line(tmp_path, args, message):
    r = cli(f"--out_dir={tmp_path}", *args)
    if message == "cupy" and r.returncode == 0:
        pytest.skip("CuPy runs here")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = cli(f"--out_dir={blocker}", *FAST)
    assert r.returncode == 2 and "cannot write the run folder" in r.stderr


def test_overrides_are_typed():
    cfg = apply_overrides(Config(), ["--widths=8,4", "--bn=false", "--refresh=32", "--milestones=0.5"])
    assert cfg.widths == (8, 4) and cfg.bn is False and cfg.refresh == 32 and cfg.milestones == (0.5,)
