"""The GPU scripts of the plan's one call (scripts/gpu/README.md) in their CPU tiny mode, so that the device
call they are written for does not fail on a typo, loses nothing when killed, and brings back everything:
the box returns at most 8 files, at most 2 folders deep. No timing is asserted here; the call end to end
and killed in each phase: tests/test_gpu_plan.py."""
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PY": sys.executable, "OMP_NUM_THREADS": "1"}


def run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def assert_collectable(out: Path, max_files=8, max_depth=2):
    """What the box sends back: at most 8 files, none more than 2 folders below $OUT."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= max_files, f"{len(files)} files in $OUT, the box returns {max_files}: {files}"
    deep = [p for p in files if len(p.relative_to(out).parts) - 1 > max_depth]
    assert not deep, f"more than {max_depth} folders deep: {deep}"
    big = [p for p in files if p.stat().st_size > 16 * 2 ** 20]
    assert not big, f"over 16 MiB: {big}"


def wait_for(path: Path, ready, proc, timeout=300):
    """Polls the JSON file until ready(its content) or the process ends."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if ready(json.loads(path.read_text())):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


def test_gpu_bench_json_is_complete_after_sigkill(tmp_path):
    """SIGKILL midway: the file still parses, and holds every finished item in full."""
    proc = subprocess.Popen([sys.executable, "-m", "scripts.gpu.bench", "--tiny", "--steps=2", f"--out={tmp_path}",
                             "--budget-s=1200"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    reached = wait_for(tmp_path / "gpu_bench.json", lambda d: len(d["items"]) >= 3, proc, timeout=900)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached, "gpu_bench never finished 3 items"
    d = json.loads((tmp_path / "gpu_bench.json").read_text())
    from scripts.gpu.bench import FIRST, plan

    names = [item for pos, item, *_ in plan(True, False) if pos in FIRST]
    assert len(d["items"]) < len(names), "killed too late to test anything"
    running = [d["running"]] if d["running"] and d["running"] not in d["items"] else []  # (or its stage-1 part)
    done = list(d["items"]) + running + d["pending"]
    assert done == names, "every item is finished, running or pending"
    for item, res in d["items"].items():
        assert "seconds" in res and ("images_per_s" in res or "eager_ms" in res), (item, res)
    assert d["projection"] and d["card"]["torch"] == torch.__version__


@pytest.mark.parametrize("script", ["scripts.gpu.bench", "scripts.gpu.engine", "scripts.gpu.check", "scripts.studies.budget"])
def test_gpu_scripts_refuse_without_a_gpu(tmp_path, script):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    tic = time.time()
    r = run(script, f"--out={tmp_path}")
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr, r.stderr[-500:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert time.time() - tic < 60
    assert not list(tmp_path.iterdir()), "a refusal must not leave files"


def test_make_cifar10_budget_without_a_gpu_is_one_line():
    """Issue 14: `make cifar10-budget` on a CPU machine stops within seconds, saying why."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    tic = time.time()
    r = subprocess.run(["make", "-s", "cifar10-budget", f"PY={sys.executable}", "ARGS=--out=/nonexistent/x"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and time.time() - tic < 60
    ours = [line for line in r.stderr.splitlines() if not line.startswith("make")]
    assert ours == ["error: no CUDA GPU here: the budget run needs one (--tiny runs this code on the CPU in 1.5 minutes; "
                    "make cifar10-cpu is the CPU study)"], r.stderr


def test_gpu_check_only_names_its_steps(tmp_path):
    """A rerun names the steps it repeats; a wrong name is one line listing the right ones."""
    r = run("scripts.gpu.check", "--tiny", "--only=bench,nope", f"--out={tmp_path}")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: --only nope: the steps are bench, bench_data, pytest, engine, budget, "
                               "cupy_tests, toy_cupy"), r.stderr
