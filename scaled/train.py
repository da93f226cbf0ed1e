"""Train FOCA or E2E with the PyTorch layer (scaled): one preset per paper row, on a GPU or the CPU.

    python -m scaled.train --preset smoke                        # CPU, all stages, ~20 s on 2 cores
    python -m scaled.train --preset wrn28-c10-foca --seed 1      # Table 2 row, needs a GPU
    python -m scaled.train --preset wrn28-c10-foca --dry-run     # what would run: config, data, network
    python -m scaled.train --preset own-cpu --dataset=imagefolder:PATH   # your images (class sub-folders); own: GPU
    python -m scaled.train --resume runs/scaled/<run>            # continue a killed or stopped run exactly
    python -m scaled.train --preset finetune-c10 --init_from runs/scaled/<foca run>   # stage 3 only
    torchrun --nproc_per_node=4 -m scaled.train --preset wrn28-c10-foca   # DDP, same global batch

A run starts from `--preset NAME`; every `--key=value` (or `--key value`; `--data-dir` = `--data_dir`)
sets one field of scaled.config.ScaledConfig (types checked, unknown keys rejected, options checked
before the data is looked for). The last stdout line is the run's JSON summary; the run folder holds
config.json, git.txt, metrics.jsonl (one record per epoch), checkpoint.pt, features_test.npz and
summary.json. Progress: a bar per epoch on a terminal, a line per epoch when stderr is a file
(scaled/progress.py). Ctrl-C or SIGTERM stops after the current step, keeps the last epoch's
checkpoint and prints the --resume command (scaled/interrupt.py; exit 130 / 143).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from minifoca import cli
from minifoca.cli import normalise_args, print_help, wants_help
from minifoca.config import Config, apply_overrides, to_dict
from minifoca.data import DataError
from minifoca.foca import NonFiniteLoss
from minifoca.runlog import RunDir, RunDirError, default_name

from . import dist, foca, init_from, interrupt
from .augment import NAMES as AUGMENT
from .config import ScaledConfig, fidelity, sized_to_data
from .data import NAMES, default_val_size, load_dataset
from .engine import CHECKPOINT, Run
from .inference import read_config, save_transform
from .models import build_model, is_external
from .models.external import check_ref
from .progress import Progress
from .presets import PRESETS, get


OWN = [("--preset NAME", "start from this preset (required unless --resume; listed below)"),
       ("--resume RUN_DIR", "continue a killed run exactly, with its saved config (no other options)"),
       ("--init_from RUN_DIR", "a new run from a finished FOCA run's network and stage-2 classifier: "
                               "stage 3 only (with a finetune-* preset; same recipe and seed)"),
       ("--quiet", "no progress on stderr (neither the bar nor the line per epoch)"),
       ("--name NAME", "the run folder's name under out_dir (default: <preset>-s<seed>-<time>)"),
       ("--overwrite", "replace a run folder of that name instead of stopping"),
       ("--dry-run", "print what would run (every field, the fidelity to the authors' code, the data, "
                     "the network) and stop"),
       ("--list-presets", "print the presets with their purpose and stop"),
       ("-h, --help", "this help")]
KNOWN = ("preset", "resume", "init_from", "quiet", "name", "overwrite", "dry_run", "list_presets", "help")
FLAGS = ("overwrite", "dry_run", "quiet")


def help_text() -> str:
    return cli.help_text(__doc__, OWN, ScaledConfig(),
                         "config fields (scaled.config.ScaledConfig; defaults = the wrn28-c10-foca preset, and "
                         "each preset sets some: `--preset NAME --dry-run` prints every value):",
                         [(name, about) for name, (_, about) in PRESETS.items()], fallback=Config)


def parse(argv):
    """-> (cfg, opts); opts: preset, name, overwrite, resume and init_from (run folders or ""),
    dry_run, quiet."""
    opts = {"preset": "", "name": "", "overwrite": False, "resume": "", "init_from": "", "dry_run": False,
            "quiet": False}
    rest = []
    for a in normalise_args(argv, flags=FLAGS):
        key, eq, val = a[2:].partition("=") if a.startswith("--") else ("", "", "")
        key = key.replace("-", "_")
        if key in ("preset", "name", "resume", "init_from"):
            if not val:
                raise ValueError(f"--{key} needs a value: --{key}=VALUE or --{key} VALUE")
            opts[key] = val
        elif key in FLAGS and not eq:
            opts[key] = True
        else:
            rest.append(a)
    if opts["resume"]:
        path = Path(opts["resume"])
        if not (path / CHECKPOINT).is_file() and not (path / "config.json").is_file():
            raise ValueError(f"--resume {path}: no {CHECKPOINT} there (was the run started with scaled.train?)")
        if rest or opts["init_from"]:
            raise ValueError("--resume continues a run with its own config; drop the other options")
        return read_config(path), opts
    if not opts["preset"]:
        apply_overrides(ScaledConfig(), rest, known=KNOWN)  # a misspelt option is named first (--prest)
        raise ValueError("--preset NAME is required (`--list-presets` lists them; `smoke` runs on a CPU)")
    cfg = apply_overrides(get(opts["preset"]), rest, known=KNOWN)
    check_options(cfg)
    if opts["init_from"]:
        init_from.check(cfg, opts["init_from"])  # ValueError: not a finished FOCA run of this recipe
    return cfg, opts


def check_options(cfg) -> None:
    """What can be checked without the data, checked before the data is looked for, so that a wrong
    option is named as such and not hidden behind a missing data folder. ValueError: one line."""
    if not cfg.dataset:
        raise ValueError("--dataset is empty: pass --dataset=imagefolder:PATH (class sub-folders of images) or "
                         "--dataset=PATH.npz (arrays)")
    if cfg.dataset not in NAMES and not cfg.dataset.endswith(".npz") and not cfg.dataset.startswith("imagefolder:"):
        if Path(cfg.dataset).expanduser().is_dir():  # a folder of class sub-folders, given bare
            raise ValueError(f"--dataset={cfg.dataset}: a folder; for class sub-folders of images pass "
                             f"--dataset=imagefolder:{cfg.dataset}")
        raise ValueError(f"--dataset={cfg.dataset!r}: choose one of {', '.join(NAMES)}")
    if cfg.augment not in AUGMENT:
        raise ValueError(f"--augment={cfg.augment!r}: choose one of {', '.join(AUGMENT)}")
    if 0 < cfg.train_subset < max(cfg.n_f, cfg.stage2_batch):
        raise ValueError(f"--train_subset={cfg.train_subset}: {cfg.train_subset} training images are fewer than "
                         f"one batch (n_f={cfg.n_f}, stage2_batch={cfg.stage2_batch}); raise train_subset or "
                         "lower the batch")
    if is_external(cfg.model):
        check_ref(cfg.model)  # the name and the import; the shapes are probed once the data is loaded
    else:
        meta_net(cfg)  # ValueError: unknown network


def meta_net(cfg, size: int | None = None, k: int | None = None, channels: int = 3):
    """cfg's network on the meta device: shapes only, no memory, no init time (networks from
    elsewhere on the CPU: some need real tensors while they are built)."""
    size = size or (64 if cfg.dataset == "tinyimagenet" else 32)
    k = k or {"cifar100": 100, "tinyimagenet": 200}.get(cfg.dataset, 10)
    with torch.device("cpu" if is_external(cfg.model) else "meta"):
        return build_model(cfg.model, k, cfg.head, size, cfg.shakedrop, wrn_block=cfg.wrn_block,
                           shakedrop_gate=cfg.shakedrop_gate, in_channels=channels)


def dry_run(cfg, opts) -> str:
    """What a run of cfg would be, without training: every field, the fidelity, the data, the network."""
    try:
        d = load_dataset(cfg.dataset, cfg.data_dir, val=cfg.val_size != 0, device="cpu",
                         val_size=cfg.val_size if cfg.val_size > 0 else None, image_size=cfg.image_size)
        data, size, k, c = d.describe(), d.image_size, d.num_classes, d.x_train.shape[1]
        n_all = len(d.y_train) + (0 if d.y_val is None else len(d.y_val))
        cfg = sized_to_data(cfg, default_val_size(cfg.dataset, n_all), len(d.y_train), k)  # the own presets' -1s
    except DataError as e:
        data, size, k, c = f"not loaded ({e})", None, None, 3
    net = meta_net(cfg, size, k, c)
    n_param = sum(p.numel() for p in net.parameters())
    about = PRESETS[opts["preset"]][1] if opts["preset"] in PRESETS else "(no preset)"
    lines = [f"scaled.train --dry-run: preset {opts['preset'] or '-'}: {about}; nothing trains",
             f"  network   {cfg.model}, head {cfg.head}, {n_param / 1e6:.2f} M parameters, "
             + (f"WRN block {cfg.wrn_block}" + (" (stride on the 2nd conv, projection of the raw input)"
                                                 if cfg.wrn_block == "authors" else "") if cfg.model.startswith("wrn") else
                f"ShakeDrop {'on, gate per ' + cfg.shakedrop_gate if cfg.shakedrop else 'off'}"),
             f"  fidelity  {fidelity(cfg)} (scaled/config.py FIDELITY; --fidelity=authors|ours sets them all)",
             f"  data      {data}",
             f"  training  {'all training images' if cfg.val_size == 0 else 'val: sized from the data' if cfg.val_size < 0 else f'{cfg.val_size:,} held out for val'}; "
             f"last partial batch {cfg.last_batch}; final-epoch errors, nothing chosen on test",
             "  config    " + " ".join(f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                                      for k, v in to_dict(cfg).items())]
    return "\n".join(lines)


def announce(cfg, opts, run) -> None:
    dev = torch.cuda.get_device_name(run.device) if run.device.startswith("cuda") else "CPU"
    print(f"scaled: {cfg.method.upper()} {cfg.model} (head {cfg.head}) on {run.data.describe()}\n"
          f"  preset {opts['preset'] or '(resumed)'}: "
          + (f"stage 3 only ({cfg.finetune_epochs} epochs) from {opts['init_from']}'s stages 1-2" if opts["init_from"] else
             f"{cfg.epochs} epochs" + (f" + stage 2 ({cfg.stage2_epochs}) + stage 3 ({cfg.finetune_epochs})"
                                       if cfg.method == "foca" else ""))
          + f", {cfg.precision} on {dev} x {run.world}; fidelity to the authors' code: {fidelity(cfg)}; "
          "progress per epoch in metrics.jsonl; Ctrl-C stops with a checkpoint. "
          "The last line is the JSON summary.", file=sys.stderr)


def run_all(run) -> dict:
    """All stages of cfg.method, resuming where the run stands; returns the summary."""
    cfg = run.cfg
    if cfg.method == "foca":
        foca.train_foca(run)  # stage 1
        foca.train_classifier(run)  # stage 2
        if "test_error" not in run.results:
            run.results.update(run.report())
            # The number the authors' code prints (the minimum test error over the stage-2 epochs: a
            # selection on the test set), kept apart under a name that says so; never a table's number.
            logged = [r["test_error"] for r in run.records if r["stage"] == 2 and "test_error" in r]
            if len(logged) == cfg.stage2_epochs:
                run.results["test_error_min_over_stage2_epochs"] = min(logged)
        if cfg.finetune_epochs:
            foca.fine_tune(run)  # stage 3, reported beside stage 2, never instead of it
            run.results.update(run.report("finetune_"))
    else:
        foca.train_e2e(run)
        if "test_error" not in run.results:
            run.results.update(run.report())
    stage1 = [r["images_per_s"] for r in run.records if r["stage"] == 1]
    stage1 = stage1[1:] or stage1  # the first epoch pays for cudnn autotuning and compilation
    run.seconds += run.lap()
    return {"method": cfg.method, "dataset": cfg.dataset, "model": cfg.model, "head": cfg.head,
            "seed": cfg.seed, "epochs": cfg.epochs, **run.results,
            "images_per_s": round(sum(stage1) / len(stage1), 1),
            "seconds": round(run.seconds, 1), "protocol": run.data.protocol, "precision": cfg.precision,
            "device": torch.cuda.get_device_name(run.device) if run.device.startswith("cuda") else "cpu",
            "world": run.world}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print_help(help_text())
        return 0
    if "--list-presets" in argv or "--list_presets" in argv:
        for name, (_, about) in PRESETS.items():
            print(f"{name:24s} {about}")
        return 0
    try:
        cfg, opts = parse(argv)
        if opts["dry_run"]:
            print(dry_run(cfg, opts))
            return 0
        resume = Path(opts["resume"]) if opts["resume"] else None
        source = Path(opts["init_from"]) if opts["init_from"] else None
        # a run stopped before its first checkpoint resumes from the start: its config, seeded anew
        start = resume if resume and (resume / CHECKPOINT).is_file() else source
        folder = resume or Path(cfg.out_dir) / (opts["name"] or default_name(opts["preset"] or cfg.method, f"s{cfg.seed}"))
        RunDir.check(folder, resume=resume is not None, overwrite=opts["overwrite"])  # before the data loads
        run = Run(cfg, resume_from=start)  # (a Ctrl-C while the data loads or the ranks meet ends it at once)
        cfg = run.cfg  # the own presets' -1 fields sized from the data (scaled/config.py sized_to_data)
        with interrupt.handled():  # from here SIGINT/SIGTERM ask for a stop (scaled/interrupt.py)
            if source:
                init_from.started(run, cfg)
            if opts["quiet"]:
                run.progress = Progress("quiet")
            if run.rank == 0:
                announce(cfg, opts, run)
                extra = {"init_from": str(source.resolve())} if source else {}
                run.rundir = RunDir(folder, {**to_dict(cfg), "preset": opts["preset"], "fidelity": fidelity(cfg), **extra},
                                    resume=resume is not None, overwrite=opts["overwrite"])
                save_transform(run)  # the normalisation and size, for load_run (scaled/inference.py)
                if resume or source:
                    run.rundir.rewrite_log(run.records)  # what the checkpoint knows; drops a half epoch
                if source:  # the new folder resumes on its own from the start of its stage 3
                    shutil.copyfile(source / CHECKPOINT, run.rundir.path / CHECKPOINT)
            if start:
                run.saved_pos = run.pos
            summary = run_all(run)
        if run.rank == 0:
            summary["run_dir"] = str(run.rundir.path)
            print(run.rundir.finish(summary))
    except (ValueError, DataError, RunDirError, RuntimeError, NonFiniteLoss) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except interrupt.Interrupted as e:
        if run.rank == 0:
            print(stopped(run, e.signum), file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:  # while the data loaded or the ranks met: nothing started
        print("interrupted before training began: nothing saved; run the same command again", file=sys.stderr)
        return 130
    finally:
        dist.shutdown()
    return 0


def stopped(run, signum: int) -> str:
    """The one line after a stop on a signal: where the checkpoint stands and how to go on."""
    import signal

    name, folder = signal.Signals(signum).name, run.rundir.path
    cmd = "python -m scaled.train" if run.world == 1 else "torchrun <its options> -m scaled.train"
    if run.saved_pos is None:
        return (f"stopped by {name} before the first checkpoint (nothing saved): resume with {cmd} --resume "
                f"{folder} (it starts over)")
    stage, epoch = run.saved_pos
    return (f"stopped by {name}: saved at stage {stage} epoch {epoch} (an unfinished epoch is redone exactly); "
            f"resume with {cmd} --resume {folder}")


if __name__ == "__main__":
    sys.exit(main())
