"""The reproduction targets (scaled/reproduce.py, mk/reproduce.mk) and `make report` (scaled/report.py):
real CPU smoke runs through the same pipeline a GPU run takes, then the report from them; synthetic
run folders for the numbers (mean +- std, time projection); one clear line, within seconds, for
every way a target cannot run here."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minifoca.config import to_dict
from scaled.presets import PRESETS
from scaled.report import main as report_main, render
from scaled.reproduce import main as reproduce_main

REPO = Path(__file__).resolve().parent.parent
HAVE_CIFAR = (Path(os.environ["FOCA_DATA"]) / "cifar10" / "unpack.py").is_file()
needs_cifar = pytest.mark.skipif(not HAVE_CIFAR, reason="shared CIFAR-10 copy not found ($FOCA_DATA/cifar10)")
TINY = ["--train_subset=256", "--eval_subset=200", "--n_f=32", "--n_c=20", "--stage2_batch=32"]  # config order
ROW = "smoke [train_subset=256, eval_subset=200, n_f=32, n_c=20, stage2_batch=32]"
H100 = "NVIDIA H100 80GB HBM3"


def reproduce(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "scaled.reproduce", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`python -m scaled.reproduce smoke` with tiny overrides: FOCA (all 3 stages) and E2E, seed 0."""
    tmp = tmp_path_factory.mktemp("smoke")
    r = reproduce("smoke", "--seeds", "1", "--runs-dir", str(tmp / "runs"), "--report", str(tmp / "report"), *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp, r


@pytest.mark.slow  # the smoke fixture trains both presets: 89 s beside a study (2026-12-04)
@needs_cifar
def test_reproduce_trains_announces_and_reports(smoke):
    tmp, r = smoke
    assert "reproduce smoke:" in r.stderr and "2 runs (2 presets x 1 seed)" in r.stderr  # announces itself
    for name in ("smoke-s0", "smoke-e2e-s0"):
        assert (tmp / "runs" / "smoke" / name / "summary.json").is_file()
    assert f"| {ROW} | FOCA |" in r.stdout and "| cpu |" in r.stdout  # the group's table on stdout
    assert (tmp / "report" / "README.md").is_file()


@pytest.mark.slow  # the smoke fixture trains both presets: 89 s beside a study (2026-12-04)
@needs_cifar
def test_report_from_smoke_runs_tables_figures_missing(smoke, tmp_path):
    tmp, _ = smoke
    res = render([tmp / "runs"], tmp_path, seeds=2)
    text = (tmp_path / "README.md").read_text()
    assert "| row | method | epochs | paper, test error % | ours, test error % | n | ours, val error % |" in text
    # no paper preset ran: no paper rows, no paper groups listed as missing (issue 22)
    assert "| wrn28-c10-foca |" not in text and "| table1-A |" not in text
    assert not [m for m in res["missing"] if "nothing run yet" in m]
    assert f"| {ROW} + stage 3 | FOCA + E2E fine-tuning | 2 + 1 + 1 |" in text
    assert "val 5,000 / test1k (first 200 of each)" in text  # protocol, in data/README.md's names
    assert (f"- {ROW}: 1 of 2 seeds (missing s1); run `python -m scaled.reproduce smoke --seeds 2 {' '.join(TINY)}`"
            in res["missing"])
    assert f"| {ROW} | FOCA | 2 + 1 | - |" in text and "| smoke-s0 |" in text  # the row names its runs
    res = render([tmp / "runs"], tmp_path / "asked", seeds=2, groups=["cifar10", "smoke"])  # asked for: listed
    assert "| wrn28-c10-foca | FOCA | 600 + 5 | 2.63 +- 0.06 | - | 0 |" in (tmp_path / "asked" / "README.md").read_text()
    assert "- cifar10: nothing run yet (3 presets x 2 seeds); run `make cifar10 SEEDS=2`" in res["missing"]
    for png in ("curves-smoke.png", "features-smoke-cifar10.png", "finetune.png"):
        assert (tmp_path / png).stat().st_size > 5000, png
        assert f"]({png})" in text
    assert json.loads((tmp_path / "results.json").read_text())["groups"]["smoke"][ROW]["seeds"] == [0]


def _fake_run(folder: Path, preset: str, seed: int, test_error=None, seconds=0.0, rates=(), **cfg):
    """A run folder as scaled.train leaves it; no summary.json when test_error is None (unfinished)."""
    folder.mkdir(parents=True)
    config = {**to_dict(PRESETS[preset][0]), "preset": preset, "seed": seed, **cfg}
    (folder / "config.json").write_text(json.dumps(config))
    recs = [{"stage": 1, "epoch": i + 1, "images_per_s": v, "train_loss": 1.0, "val_error": 0.1}
            for i, v in enumerate(rates)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    if test_error is not None:
        (folder / "summary.json").write_text(json.dumps({
            "method": config["method"], "test_error": test_error, "val_error": test_error + 0.001,
            "seconds": seconds, "device": H100, "world": 1, "fisher_eigenvalue": 100.0,
            "protocol": "val: train[:45000] / train[45000:] (5,000 images); test: 10,000 official test images"}))


def test_report_mean_std_missing_and_time_projection(tmp_path):
    runs = tmp_path / "runs"
    for seed, err in enumerate((0.026, 0.027, 0.028)):
        _fake_run(runs / f"foca-s{seed}", "wrn28-c10-foca", seed, err, seconds=36000.0, rates=[900, 1000])
    _fake_run(runs / "e2e-s0", "wrn28-c10-e2e", 0, 0.031, seconds=12000.0, rates=[1000, 2000, 2000])
    _fake_run(runs / "t1a-s0", "table1-A", 0, rates=[1000] * 37)  # killed in epoch 38
    _fake_run(runs / "short-s0", "wrn28-c10-foca", 0, 0.05, epochs=100)  # not the paper's recipe
    bench = tmp_path / "gpu_bench.json"  # scripts/gpu/bench.py's projection on another card
    bench.write_text(json.dumps({"card": {"device": "NVIDIA H200"}, "projection": [
        {"preset": "wrn28-c100-foca", "hours": 10.0}, {"preset": "wrn28-c100-e2e", "hours": 3.0},
        {"preset": "wrn28-c100-e2e-matched", "hours": 9.0}]}))
    res = render([runs], tmp_path / "out", seeds=3, bench_files=[bench])
    text = (tmp_path / "out" / "README.md").read_text()
    assert (f"| wrn28-c10-foca | FOCA | 600 + 5 | 2.63 +- 0.06 | 2.70 +- 0.10 | 3 | 2.80 +- 0.10 | 100.00 +- 0.00 | {H100} "
            "| val 5,000 / official test |") in text
    assert "| wrn28-c10-foca [epochs=100] | FOCA | 100 + 5 | - | 5.00 | 1 |" in text  # its own row, no paper number
    assert '- wrn28-c10-foca [epochs=100]: 1 of 3 seeds (missing s1, s2); run `make cifar10 ARGS="--epochs=100"`' \
        in res["missing"]
    assert "- wrn28-c10-e2e: 1 of 3 seeds (missing s1, s2); run `make cifar10`" in res["missing"]
    assert "- cifar100: nothing run yet (3 presets x 3 seeds); run `make cifar100`" in res["missing"]  # a paper preset ran
    assert "## Table 2, CIFAR-100" not in text  # but no table of empty rows
    assert "- wrn28-c10-e2e-matched: 0 of 3 seeds (missing s0, s1, s2); run `make cifar10`" in res["missing"]
    assert any(m.startswith("- table1-A s0: not finished (stage 1 epoch 37 done)") for m in res["missing"])
    # make cifar10 on the H100: FOCA and E2E measured (mean seconds x 3 seeds), E2E-matched projected
    # from E2E's images/s without its first epoch: 600 epochs x 50,000 images (the paper presets train on
    # all of them and keep the last partial batch) / 2,000 per s.
    hours = (3 * 36000 + 3 * 12000 + 3 * 600 * 50000 / 2000) / 3600
    assert f"| make cifar10 | {hours:.1f} h (measured + projected) | not measured |" in text
    assert "| make cifar100 | not measured | 66.0 h (projected by gpu_bench) |" in text
    assert "- table1 on NVIDIA H100 80GB HBM3: no foca images/s measured" not in text  # wrn-28-10 FOCA was measured
    assert "| make pyramidnet | not measured |" in text


def test_reproduce_refuses_without_gpu_within_seconds():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    tic = time.perf_counter()
    r = reproduce("cifar10")
    assert r.returncode == 2 and time.perf_counter() - tic < 20
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: no CUDA GPU on this machine"), r.stderr


def test_reproduce_without_data_says_how_to_get_it(tmp_path):
    r = reproduce("cifar10", "--device=cpu", f"--data-dir={tmp_path / 'nothing'}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "does not exist" in r.stderr and "cifar-10-python.tar.gz" in r.stderr and "--download=true" in r.stderr
    r = reproduce("cifar100", "--device=cpu", env={"FOCA_DATA": str(tmp_path)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no cifar100 in" in r.stderr and "cifar-100-python.tar.gz" in r.stderr


@pytest.mark.parametrize("args, says", [
    (["cifar10", "--epochs=abc"], "--epochs='abc' is not a valid int"),
    (["cifar10", "--epoch=3"], "unknown option --epoch"),
    (["cifar10", "--seed=3"], "use --seeds N"),
    (["cifar11"], "name one group: cifar10, cifar100"),
    (["cifar10", "--only=table1-A"], "the cifar10 presets are"),
])
def test_reproduce_bad_options_one_line(capsys, args, says):
    assert reproduce_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


@needs_cifar
def test_reproduce_skips_finished_resumes_interrupted_refuses_other_recipes(smoke, capsys):
    tmp, _ = smoke
    runs = tmp / "runs"
    s1 = runs / "smoke" / "smoke-s1"  # an interrupted seed 1: its config and a checkpoint, no summary
    s1.mkdir(exist_ok=True)
    cfg = json.loads((runs / "smoke" / "smoke-s0" / "config.json").read_text())
    (s1 / "config.json").write_text(json.dumps({**cfg, "seed": 1}))
    (s1 / "checkpoint.pt").write_bytes(b"")
    common = ["smoke", "--seeds=2", f"--runs-dir={runs}", *TINY]
    assert reproduce_main([*common, "--dry-run"]) == 0
    plan = dict(line.split()[::-1] for line in capsys.readouterr().out.splitlines())
    assert plan == {str(runs / "smoke" / "smoke-s0"): "done", str(s1): "resume",
                    str(runs / "smoke" / "smoke-e2e-s0"): "done", str(runs / "smoke" / "smoke-e2e-s1"): "new"}
    shutil.rmtree(s1)
    assert reproduce_main(["smoke", "--seeds=1", f"--runs-dir={runs}", "--dry-run"]) == 2  # no TINY: another recipe
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a run with another recipe (train_subset=256 there, 1000 asked" in err


def test_report_cli_and_make_fragment(tmp_path, capsys):
    assert report_main([str(tmp_path / "none")]) == 2
    assert "no folder or group" in capsys.readouterr().err
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    out = subprocess.run([make, "-n", "-f", "mk/reproduce.mk", "cifar10", "report", "PY=python3", "SEEDS=2",
                          "ARGS=--data-dir /d"], cwd=REPO, capture_output=True, text=True).stdout
    assert "python3 -m scaled.reproduce cifar10 --seeds 2 --data-dir /d" in out
    assert "python3 -m scaled.report runs/scaled --out report --seeds 2" in out


def test_report_modules_import_one_way_and_stay_small():
    """report -> report_figures, report_time -> report_runs: no module imports one that imports it
    (STYLE: ~300-line files)."""
    import ast

    allowed = {"report": {"report_figures", "report_runs", "report_time"}, "report_time": {"report_runs"},
               "report_figures": {"report_runs"}, "report_runs": set()}
    for name, ok in allowed.items():
        src = (REPO / "scaled" / f"{name}.py").read_text()
        used = {n.module.split(".")[-1] for n in ast.walk(ast.parse(src))
                if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[-1].startswith("report")}
        assert used <= ok, f"scaled/{name}.py imports {sorted(used - ok)}"
        assert len(src.splitlines()) <= 320, f"scaled/{name}.py has {len(src.splitlines())} lines"
