"""The command lines as a user runs them: minifoca.train's JSON last line and run folder; every entry
point's --help; both option spellings; one-line errors with the close options; options checked
before the data (a fresh clone has none)."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minifoca import cli as mcli
from minifoca.config import Config, apply_overrides
from minifoca.runlog import read_jsonl

REPO = Path(__file__).resolve().parent.parent
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


# --- every entry point explains itself ------------------------------------------------------------
# (module, a line its help must hold beyond the config fields): -h/--help exits 0 and prints what
# it does, example commands, every option with type and default, and the presets or groups.
ENTRY_POINTS = {
    "minifoca.train": ["python -m minifoca.train --dataset digits", "fashion ", "--preset NAME"],
    "scaled.train": ["python -m scaled.train --preset smoke", "--dry-run", "--fidelity authors|ours",
                     "wrn28-c10-foca ", "smoke "],
    "scaled.reproduce": ["python -m scaled.reproduce cifar10", "--seeds N", "pyramidnet ", "table1 "],
    "toy.run": ["python -m toy.run --fast", "--seeds SEEDS", "(int, default none)"],
    "scaled.report": ["python -m scaled.report runs/scaled", "--seeds SEEDS", "(int, default 3)"],
    "scripts.crosscheck": ["python -m scripts.crosscheck", "--json JSON"],
    "scripts.studies.digits_claims": ["python -m scripts.studies.digits_claims", "--seeds SEEDS", "--n_c int = 100"],
    "scripts.bench.mini": ["make bench-mini", "--threads THREADS"],
    "scripts.bench.data": ["--batch BATCH", "(int, default 512)"],
}
CONFIG_OF = {"minifoca.train": "minifoca", "scripts.studies.digits_claims": "minifoca", "scaled.train": "scaled",
             "scaled.reproduce": "scaled"}


def _config(layer):
    if layer == "minifoca":
        return Config
    from scaled.config import ScaledConfig
    return ScaledConfig


@pytest.mark.parametrize("module", list(ENTRY_POINTS))
def test_help_exits_0_and_lists_every_option(module):
    flag = "-h" if module.endswith("train") else "--help"
    r = subprocess.run([sys.executable, "-m", module, flag], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    for want in ENTRY_POINTS[module]:
        assert want in r.stdout, f"{module} {flag} lacks {want!r}"
    if module in CONFIG_OF:  # every field, its type and default, and its comment from the class source
        cls = _config(CONFIG_OF[module])
        docs = mcli.field_docs(cls)
        for name, typ in mcli.fields(cls).items():
            line = next((ln for ln in r.stdout.splitlines() if ln.lstrip().startswith(f"--{name} ")), None)
            assert line is not None, f"{module} --help lacks --{name}"
            assert " = " in line, f"--{name} without its default: {line!r}"
            at = r.stdout.index(line)
            if docs.get(name):
                assert docs[name].split()[0] in r.stdout[at:at + 500], f"--{name}: comment missing"


@pytest.mark.parametrize("layer", ["minifoca", "scaled"])
def test_every_config_field_has_a_comment(layer):
    """STYLE rule 7: a comment on every field, because --help prints it (scaled may borrow the comment
    of minifoca's field of the same name: the names mean the same)."""
    cls = _config(layer)
    docs, spare = mcli.field_docs(cls), mcli.field_docs(Config)
    bare = [k for k in mcli.fields(cls) if not (docs.get(k) or (layer == "scaled" and spare.get(k)))]
    assert not bare, f"fields of {cls.__name__} without a comment (--help would show nothing): {bare}"


def test_field_docs_reads_the_class_source():
    from dataclasses import dataclass

    @dataclass
    class Demo:
        # --- a section rule, not a field's meaning ---
        a: int = 1  # the trailing comment
        # the comment lines above a field
        # without a trailing one
        b: tuple[int, ...] = (2, 3)
        c: str = ""
        d: bool = False  # mine,
        # not e's
        e: float = 0.5  # e's own

    docs = mcli.field_docs(Demo)
    assert docs == {"a": "the trailing comment", "b": "the comment lines above a field without a trailing one",
                    "c": "", "d": "mine,", "e": "e's own"}
    lines = mcli.options_help(Demo())
    assert lines[0].split() == ["--a", "int", "=", "1", "the", "trailing", "comment"]
    assert lines[1].startswith("  --b int,... = 2,3 ") and '--c str = ""' in lines[2] and "--d bool = false" in lines[3]


# --- --dataset names its own settings -------------------------------------------------------------
def test_dataset_picks_its_own_preset():
    from minifoca.config import PRESETS
    from minifoca.train import parse, settings_note

    cfg, opts = parse(["--dataset", "fashion"])
    assert opts["preset"] == "fashion" and cfg == PRESETS["fashion"]
    cfg, opts = parse(["--dataset=cifar10", "--steps", "7"])
    assert cfg == dataclasses.replace(PRESETS["cifar10"], steps=7) and not settings_note(cfg, opts["preset"])
    cfg, opts = parse(["--preset", "digits", "--dataset", "fashion", "--val_size=100"])
    assert (cfg.dataset, cfg.steps, cfg.val_size, cfg.widths) == ("fashion", 2000, 100, (256, 256, 32))
    note = settings_note(cfg, opts["preset"])  # printed by main: which settings run, and how to get the others
    assert "the digits preset's settings run on fashion" in note and "widths=256,256,32" in note
    assert "val_size" not in note and "--preset fashion" in note  # val_size was chosen by hand
    assert parse([])[0] == PRESETS["digits"]


# --- both spellings, flags, suggestions ---------------------------------------------------------------
def test_key_value_and_key_space_value_are_the_same_everywhere():
    from minifoca.train import parse as mini
    from scaled.train import parse as scaled
    from scaled.reproduce import parse as repro

    a = mini(["--method=e2e", "--widths=8,4", "--lr=0.1", "--name=x", "--overwrite", "--bn=false"])
    b = mini(["--method", "e2e", "--widths", "8,4", "--lr", "0.1", "--name", "x", "--overwrite", "--bn", "false"])
    assert a == b and a[0].bn is False and a[1]["overwrite"] and a[1]["name"] == "x"
    assert mini(["--bn", "--steps", "5"])[0].bn is True  # a bare bool field is a flag, not eating --steps
    a = scaled(["--preset=smoke", "--epochs=1", "--data-dir=/d", "--dry-run", "--fidelity=ours"])
    b = scaled(["--preset", "smoke", "--epochs", "1", "--data-dir", "/d", "--dry-run", "--fidelity", "ours"])
    assert a == b and a[0].data_dir == "/d" and a[0].val_size == 5000 and a[1]["dry_run"]
    a = repro(["smoke", "--seeds=2", "--runs-dir=/r", "--dry-run", "--epochs=1"])
    b = repro(["--seeds", "2", "--runs-dir", "/r", "--dry-run", "smoke", "--epochs", "1"])
    assert a == b and a[1]["seeds"] == 2 and a[1]["dry_run"] and a[2] == ["--epochs=1"]


@pytest.mark.parametrize("module,args,message", [
    ("minifoca.train", ["--lrr=1"], "unknown option --lrr (did you mean --lr?)"),
    ("minifoca.train", ["--prest", "digits"], "(did you mean --preset?)"),
    ("minifoca.train", ["--steps"], "--steps needs a value"),
    ("minifoca.train", ["digits"], "unexpected argument 'digits'"),
    ("scaled.train", ["--preset", "smoke", "--epoch", "2"], "unknown option --epoch (did you mean --epochs"),
    ("scaled.train", ["--prest", "smoke"], "(did you mean --preset?)"),
    ("scaled.train", ["--preset", "smoke", "--fidelty=ours"], "(did you mean --fidelity?)"),
    ("scaled.reproduce", ["smoke", "--seed", "2"], "--seed is not an option here: use --seeds N"),
    ("scaled.reproduce", ["smoke", "--sede=2"], "(did you mean --seeds, "),  # not --seed: not an option here
    ("toy.run", ["--fats"], "unknown option --fats (did you mean --fast?)"),
    ("scaled.report", ["--sed", "2"], "(did you mean --seeds?)"),
    ("toy.run", ["--seeds", "0"], "--seeds and --jobs must be at least 1"),
])
def test_errors_are_one_line_with_what_to_do(tmp_path, module, args, message):
    r = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path if module == "scaled.report" else None,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr[-2000:]


# --- options are checked before the data (a fresh clone has no data folder) --------------------------
@pytest.mark.parametrize("main,args,message", [
    ("scaled", ["--preset", "smoke", "--model=resnet-50"], "unknown network"),
    ("scaled", ["--preset", "smoke", "--train_subset=10"], "fewer than one batch"),
    ("scaled", ["--preset", "smoke", "--dataset=imagenet"], "--dataset='imagenet': choose one of"),
    ("scaled", ["--preset", "smoke", "--augment=fancy"], "--augment='fancy': choose one of"),
    ("scaled", ["--preset", "smoke", "--head=E"], "choose one of A, B, C, D"),
    ("scaled", ["--preset", "smoke", "--no_such=1"], "unknown option --no_such"),
    ("scaled", ["--preset", "smoke"], "no CIFAR-10 in"),  # all options fine: now the data is named
    ("minifoca", ["--dataset=cifar10", "--lr=fast"], "not a valid float"),
    ("minifoca", ["--dataset=cifar10"], "does not exist"),
    ("reproduce", ["smoke", "--model=resnet-50"], "unknown network"),
    ("reproduce", ["smoke", "--train_subset=10"], "fewer than one batch"),
    ("reproduce", ["smoke"], "no CIFAR-10 in"),
])
def test_options_are_checked_before_the_data(tmp_path, monkeypatch, capsys, main, args, message):
    """What a fresh clone sees: FOCA_DATA names a folder that is empty (or missing)."""
    import importlib

    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("FOCA_DATA", str(empty if main != "minifoca" else tmp_path / "missing"))
    mod = importlib.import_module({"scaled": "scaled.train", "minifoca": "minifoca.train",
                                   "reproduce": "scaled.reproduce"}[main])
    extra = [f"--runs-dir={tmp_path / 'runs'}"] if main == "reproduce" else [f"--out_dir={tmp_path / 'runs'}"]
    assert mod.main([*args, *extra]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("error: ")]
    assert len(err) == 1 and message in err[0], err


# --- own data (issue 29): a preset sized from the data; errors name the option ------------------------
def twenty_classes(root: Path, per_class: int = 6) -> Path:
    """A 20-class ImageFolder of random 8x8 images (one folder: the last 10% of each class is the test split)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(20):
        (root / f"class{k:02d}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / f"class{k:02d}" / f"{i}.png")
    return root


def test_own_preset_sizes_itself_from_the_data(tmp_path, monkeypatch, capsys):
    from scaled.train import help_text, main

    monkeypatch.setenv("FOCA_CACHE", str(tmp_path / "cache"))
    data = twenty_classes(tmp_path / "data")
    assert "imagefolder:PATH" in help_text() and "own-cpu" in help_text()
    assert main(["--preset", "own-cpu", f"--dataset=imagefolder:{data}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # 100 training images: 10 held out for val, n_c 10 per class, stage 2 at 1 step per epoch: 118 epochs
    # (lr x steps = the paper's 5.9 at an lr of at most 0.05)
    for want in ("--val_size=10", "--n_c=200", "--stage2_epochs=118", "--stage2_lr=0.0497", "--train_subset=0", "--eval_subset=0",
                 "--schedule=cosine", "--augment=auto"):
        assert want in out, (want, out)
    assert main(["--preset", "smoke", f"--dataset=imagefolder:{data}", "--augment=auto",
                 f"--out_dir={tmp_path / 'runs'}"]) == 2  # the smoke preset's 5,000 val images
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--val_size=5000: the data has 100 training images" in err[0], err
    assert main(["--preset", "own-cpu", f"--dataset={data}"]) == 2  # a bare folder
    assert f"pass --dataset=imagefolder:{data}" in capsys.readouterr().err
    assert main(["--preset", "own-cpu"]) == 2 and "--dataset is empty" in capsys.readouterr().err


def test_sized_stage2_lr_keeps_the_papers_lr_times_steps():
    from scaled.config import ScaledConfig, sized_to_data

    own = ScaledConfig(val_size=-1, n_c=-1, stage2_lr=-1.0)
    cifar = sized_to_data(own, 5000, 50000, 10)  # 5 epochs x 391 steps: the paper's own lr
    assert (cifar.val_size, cifar.n_c, cifar.stage2_lr) == (5000, 100, 0.003)
    assert sized_to_data(own, 500, 10000, 20).stage2_lr == float(f"{0.003 * 1955 / (5 * 79):.3g}")
    assert sized_to_data(ScaledConfig(), 1, 10, 20) == ScaledConfig()  # nothing at -1: nothing changes
    both = ScaledConfig(stage2_epochs=-1, stage2_lr=-1.0)
    assert sized_to_data(both, 5000, 50000, 10).stage2_epochs == 5  # CIFAR: the paper's 5 epochs at 0.003
    small = sized_to_data(both, 60, 540, 20)  # 5 batches of 128 per epoch: more epochs, not a larger lr
    assert small.stage2_epochs == 24 and small.stage2_lr == float(f"{0.003 * 1955 / 120:.3g}") <= 0.05


def test_an_existing_run_folder_stops_before_the_data_loads(tmp_path, monkeypatch, capsys):
    import scaled.engine
    from scaled.train import main

    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "config.json").write_text("{}")
    monkeypatch.setattr(scaled.engine, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded first"))
    assert main(["--preset", "smoke", f"--out_dir={tmp_path / 'runs'}", "--name=taken"]) == 2
    assert "run folder" in capsys.readouterr().err
