"""Everyday run controls (scaled.train): a line per epoch when stderr is a file, a clean stop on
SIGINT / SIGTERM that resumes exactly, stage 3 from a finished FOCA run (--init_from), and two
torchrun "nodes" on this machine. Synthetic CIFAR-shaped data: runs on a fresh clone."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_scaled_engine import syn_args

REPO = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^stage (\d) epoch (\d+)/(\d+): loss [\d.]+, [\d,]+ img/s, (val|test) error [\d.]+% "
                  r"\((weak|own) classifier\), elapsed \d+:\d\d:\d\d, stage \d left ~\d+:\d\d:\d\d$")
STEPS = 12  # per epoch: syn_args hold 512 - 128 (val) = 384 training images, n_f = 32


def train(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scaled.train", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=1800, env={**os.environ, **(env or {})})


def summary_of(r):
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def weights(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pt", weights_only=True)["net"]


def same_end(a: Path, b: Path, sa: dict, sb: dict, keys) -> None:
    for key in keys:
        assert sa[key] == sb[key], f"{key}: {sa[key]} ({a.name}) != {sb[key]} ({b.name})"
    wa, wb = weights(a), weights(b)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"weight {k} differs between {a.name} and {b.name}"


# --- 1. progress ---------------------------------------------------------------------------------
def test_a_line_per_epoch_when_stderr_is_a_file_and_none_with_quiet(tmp_path):
    args = [*syn_args(tmp_path), "--epochs=2", "--finetune_epochs=1"]
    r = train(*args, "--name=log")
    summary_of(r)
    lines = [m.groups() for m in map(LINE.match, r.stderr.splitlines()) if m]
    want = [(str(x["stage"]), str(x["epoch"])) for x in records(tmp_path / "log")]
    assert [g[:2] for g in lines] == want == [("1", "1"), ("1", "2"), ("2", "1"), ("3", "1")], r.stderr
    assert [g[2] for g in lines] == ["2", "2", "1", "1"]  # epoch i of n
    q = train(*args, "--name=quiet", "--quiet")
    summary_of(q)
    assert not [line for line in q.stderr.splitlines() if line.startswith("stage ")], q.stderr


def test_a_bar_on_a_terminal_no_line():
    from scaled.progress import Progress

    class Tty(list):
        def isatty(self):
            return True

        def write(self, s):
            self.append(s)

        def flush(self):
            pass

    p = Progress("auto", Tty())
    assert p.bars and not p.lines
    rec = {"stage": 1, "epoch": 1, "train_loss": 1.0, "images_per_s": 10.0}
    p.epoch(rec, 2, 1.0)
    assert not p.stream
    with pytest.raises(ValueError, match="choose one of auto, quiet"):
        Progress("loud")


# --- 2. a clean stop -----------------------------------------------------------------------------
@pytest.mark.parametrize("sig, status", [("INT", 130), ("TERM", 143)])
def test_signal_mid_epoch_stops_with_a_checkpoint_and_resumes_exactly(tmp_path, sig, status):
    """The signal arrives at step STEPS + 3, inside epoch 2: the run ends with exit 128 + signum and one
    line naming epoch 1's checkpoint and the --resume command; the resumed run redoes epoch 2 and
    ends bit for bit where an uninterrupted run ends."""
    args = [*syn_args(tmp_path), "--epochs=3", "--finetune_epochs=0"]
    full = summary_of(train(*args, "--name=full"))
    r = train(*args, "--name=stopped", env={"FOCA_TEST_SIGNAL_AT_STEP": f"{STEPS + 3}:{sig}"})
    assert r.returncode == status, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last == (f"stopped by SIG{sig}: saved at stage 1 epoch 1 (an unfinished epoch is redone exactly); "
                    f"resume with python -m scaled.train --resume {tmp_path / 'stopped'}"), last
    assert [(x["stage"], x["epoch"]) for x in records(tmp_path / "stopped")] == [(1, 1)]
    resumed = summary_of(train("--resume", str(tmp_path / "stopped")))
    same_end(tmp_path / "full", tmp_path / "stopped", full, resumed, ("val_error", "test_error", "trace_ratio"))


def test_signal_at_an_epoch_end_saves_that_epoch_between_checkpoints(tmp_path):
    """checkpoint_every=2, signal when epoch 1 ends (step STEPS, checked in end_epoch): epoch 1 is
    saved anyway, so nothing is redone, and the resume is exact."""
    args = [*syn_args(tmp_path), "--epochs=3", "--finetune_epochs=0", "--checkpoint_every=2"]
    full = summary_of(train(*args, "--name=full"))
    r = train(*args, "--name=stopped", env={"FOCA_TEST_SIGNAL_AT_STEP": str(STEPS)})
    assert r.returncode == 130 and "saved at stage 1 epoch 1" in r.stderr, r.stderr[-3000:]
    resumed = summary_of(train("--resume", str(tmp_path / "stopped")))
    same_end(tmp_path / "full", tmp_path / "stopped", full, resumed, ("val_error", "test_error", "trace_ratio"))


def test_signal_before_the_first_checkpoint_resumes_from_the_start(tmp_path):
    r = train(*syn_args(tmp_path), "--name=early", env={"FOCA_TEST_SIGNAL_AT_STEP": "3"})
    assert r.returncode == 130 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "stopped by SIGINT before the first checkpoint (nothing saved): resume with python -m scaled.train "
        f"--resume {tmp_path / 'early'} (it starts over)"), r.stderr[-2000:]
    summary_of(train("--resume", str(tmp_path / "early")))
    assert [(x["stage"], x["epoch"]) for x in records(tmp_path / "early")] == [(1, 1), (1, 2), (2, 1), (3, 1)]


def test_a_real_sigint_from_outside(tmp_path):
    """What `timeout -s INT` or Ctrl-C does: a signal from another process, whenever it comes."""
    import time

    proc = subprocess.Popen([sys.executable, "-m", "scaled.train", *syn_args(tmp_path), "--epochs=20",
                             "--name=ext"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (tmp_path / "ext" / "checkpoint.pt").is_file():
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert f"--resume {tmp_path / 'ext'}" in err.strip().splitlines()[-1], err[-2000:]


# --- 3. stage 3 from a finished run --------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A FOCA run without stage 3 (the source) and the same recipe run straight through stage 3."""
    tmp = tmp_path_factory.mktemp("init")
    base = [*syn_args(tmp), "--epochs=2", "--stage2_epochs=2"]
    source = summary_of(train(*base, "--finetune_epochs=0", "--name=source"))
    full = summary_of(train(*base, "--finetune_epochs=2", "--name=full"))
    return tmp, base, source, full


def test_stage3_from_a_finished_run_equals_an_uninterrupted_run(finished):
    tmp, base, source, full = finished
    r = train(*base, "--finetune_epochs=2", "--init_from", str(tmp / "source"), "--name=ft")
    ft = summary_of(r)
    assert f"stage 3 only (2 epochs) from {tmp / 'source'}" in r.stderr
    lines = [m.groups()[:2] for m in map(LINE.match, r.stderr.splitlines()) if m]
    assert lines == [("3", "1"), ("3", "2")], r.stderr  # stages 1-2 are not run again
    same_end(tmp / "full", tmp / "ft", full, ft, ("val_error", "test_error", "finetune_val_error",
                                                   "finetune_test_error", "trace_ratio"))
    drop = ("train_seconds", "images_per_s", "eval_seconds", "checkpoint_seconds")
    strip = lambda recs: [{k: v for k, v in x.items() if k not in drop} for x in recs]  # noqa: E731
    assert strip(records(tmp / "ft")) == strip(records(tmp / "full"))
    assert json.loads((tmp / "ft" / "config.json").read_text())["init_from"] == str((tmp / "source").resolve())
    assert ft["val_error"] == source["val_error"]


@pytest.mark.parametrize("case, says", [
    ("unfinished", "not a finished run"),
    ("e2e", "an E2E run"),
    ("own stage 3", "did its own stage 3"),
    ("other network", "its model is 'wrn-10-1', this run's 'wrn-10-2'"),
    ("other data", "its dataset is"),
    ("no stage 3 here", "no stage 3 to run"),
    ("with resume", "drop the other options"),
])
def test_init_from_refuses_in_one_line(finished, tmp_path, case, says):
    tmp, base, _, _ = finished
    src = tmp / ("full" if case == "own stage 3" else "source")
    args = [*base, "--finetune_epochs=2", "--init_from", str(src), f"--out_dir={tmp_path}"]
    if case == "unfinished":
        (tmp_path / "half").mkdir()
        (tmp_path / "half" / "config.json").write_text((src / "config.json").read_text())
        args[-2] = str(tmp_path / "half")
    elif case == "e2e":
        cfg = json.loads((src / "config.json").read_text())
        (tmp_path / "e2e").mkdir()
        (tmp_path / "e2e" / "config.json").write_text(json.dumps({**cfg, "method": "e2e"}))
        for name in ("summary.json", "checkpoint.pt"):
            (tmp_path / "e2e" / name).write_text("")
        args[-2] = str(tmp_path / "e2e")
    elif case == "other network":
        args.append("--model=wrn-10-2")
    elif case == "other data":
        args.append(f"--dataset={tmp_path / 'other.npz'}")
    elif case == "no stage 3 here":
        args.append("--finetune_epochs=0")
    elif case == "with resume":
        args = ["--resume", str(src), "--init_from", str(src)]
    r = train(*args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr[-2000:]


def test_init_from_is_in_the_help():
    r = train("--help")
    assert r.returncode == 0 and "--init_from RUN_DIR" in r.stdout and "--quiet" in r.stdout


def test_make_finetune_starts_stage3_from_the_foca_run(tmp_path):
    """`make finetune` (scaled/reproduce.py): the FOCA row's run goes to its own group's folder
    (without stage 3's options), then the finetune run starts from it with --init_from."""
    from tests.test_scaled_engine import synthetic_npz

    runs = tmp_path / "runs"
    tiny = [f"--dataset={synthetic_npz(tmp_path / 'syn.npz')}", "--val_size=128", "--model=wrn-10-1", "--device=cpu",
            "--precision=fp32", "--channels_last=false", "--n_f=32", "--stage2_batch=32", "--n_c=20", "--refresh=4",
            "--weak_steps=16", "--epochs=1", "--stage2_epochs=1", "--finetune_epochs=1", "--eval_every=1"]
    cmd = [sys.executable, "-m", "scaled.reproduce", "finetune", "--only=finetune-c10", "--seeds=1",
           f"--runs-dir={runs}", f"--report={tmp_path / 'report'}", *tiny]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    src, ft = runs / "cifar10" / "wrn28-c10-foca-s0", runs / "finetune" / "finetune-c10-s0"
    assert json.loads((src / "config.json").read_text())["finetune_epochs"] == 0
    assert json.loads((ft / "config.json").read_text())["init_from"] == str(src.resolve())
    assert f"--init_from={src.resolve()}" in r.stderr
    strip = lambda recs: [{k: v for k, v in x.items() if k != "checkpoint_seconds"} for x in recs]  # noqa: E731
    assert [x["stage"] for x in records(ft)] == [1, 2, 3] and strip(records(ft)[:2]) == strip(records(src))
    again = subprocess.run([*cmd, "--dry-run"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.stdout.split() == ["done", str(src), "done", str(ft), "(stage", "3", "from", f"{src})"], again.stdout


# --- 4. compare any runs ---------------------------------------------------------------------------
def test_report_compares_runs_on_an_arrays_file(finished, tmp_path, capsys):
    """Runs whose dataset is a path (it once became part of a figure's file name), named by folder in
    the tables and the PCA panels, other runs first, and the fields in which they differ printed."""
    from scaled.report import main as report_main

    tmp, _, _, _ = finished
    other = tmp_path / "mine"  # a run of no preset: "Other runs", before the smoke group
    other.mkdir()
    cfg = json.loads((tmp / "source" / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "preset": "", "seed": 7}))
    assert report_main([str(tmp / "source"), str(tmp / "full"), str(other), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "finetune_epochs: mine 0, source 0, full 2" in out and "seed: mine 7, source 0, full 0" in out, out
    text = (tmp_path / "rep" / "README.md").read_text()
    dataset = cfg["dataset"]
    png = "features-smoke-" + re.sub(r"[^A-Za-z0-9._-]+", "-", dataset).strip("-") + ".png"
    assert (tmp_path / "rep" / png).stat().st_size > 5000 and f"]({png})" in text
    assert f"one panel per finished run ({dataset}: source `{tmp / 'source'}`, full `{tmp / 'full'}`)" in text
    assert text.index("## Other runs") < text.index("## CPU smoke runs") and "## Table" not in text
    assert "| field | mine | source | full |" in text and "| finetune_epochs | 0 | 0 | 2 |" in text


# --- 5. several machines --------------------------------------------------------------------------
def test_two_torchrun_nodes_equal_one_process(tmp_path):
    """Two torchrun agents on this machine as nodes 0 and 1 (--nnodes=2, one process each, gloo,
    the rendezvous on localhost) train what one process trains with the batch in 2 micro-batches:
    the same stage-1 losses (docs/multinode.md; BN is per rank on CPUs, so stage 2 may differ)."""
    from tests.test_scaled_dist import free_port

    args = [*syn_args(tmp_path), "--epochs=2", "--stage2_epochs=1", "--finetune_epochs=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "scaled.train", *args, "--micro_batches=2", "--name=one"],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={k}",
                               "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                               "-m", "scaled.train", *args, "--name=two"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for k in (0, 1)]
    outs = [p.communicate(timeout=600) for p in nodes]
    for k, (p, (_, err)) in enumerate(zip(nodes, outs)):
        assert p.returncode == 0, f"node {k}: {err[-3000:]}"
    assert json.loads(outs[0][0].strip().splitlines()[-1])["world"] == 2  # node 0 holds rank 0: the summary
    assert not outs[1][0].strip(), "only rank 0 prints the summary"
    a, b = records(tmp_path / "one"), records(tmp_path / "two")
    assert [(x["stage"], x["epoch"]) for x in a] == [(x["stage"], x["epoch"]) for x in b]
    for x, y in zip(a, b):
        if x["stage"] == 1:
            rel = abs(x["train_loss"] - y["train_loss"]) / abs(x["train_loss"])
            assert rel < 1e-5, f"epoch {x['epoch']}: loss {x['train_loss']} (1 process) vs {y['train_loss']} (2 nodes)"
