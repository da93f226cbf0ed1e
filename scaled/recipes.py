"""The recipe of every paper preset, value by value with its source: the specification that
scaled/presets.py is tested against (tests/test_recipes.py), written separately on purpose so that
a typo in a preset (a learning rate, a cutout size) fails a test instead of a 600-epoch GPU run.

    python -m scaled.recipes        # docs/fidelity.md's two tables: the recipes, and where scaled differs from the authors' code

Sources: "paper" the 2021 paper (its tables and text; docs/algorithm.md), "code" the authors' code
(DensoITLab/FOCA-v1: set_args defaults and get_dataset's constants; tests/test_crosscheck_authors.py
checks these against it), "cutout" DeVries & Taylor 2017 (the E2E recipe the FOCA authors re-ran),
"shakedrop" our reading of Yamada et al. 2019's CIFAR recipe, "ours" a choice of ours where the
paper publishes nothing (the preset's comment says why).
"""
from __future__ import annotations

from .augment import PRESETS as AUGMENT
from .config import FIDELITY
from .presets import PRESETS

PAPER, CODE, CUTOUT, SHAKEDROP, OURS = "paper", "code", "cutout", "shakedrop", "ours"

# Recipe fields (ScaledConfig's, plus the augmentation preset's pad / cutout / erase) and their groups.
NETWORK = {"wrn": {"model": ("wrn-28-10", PAPER), "head": ("D", PAPER), "shakedrop": (False, PAPER)},
           "pyr": {"model": ("pyramidnet-272-200", PAPER), "head": ("D", PAPER), "shakedrop": (True, PAPER)}}
DATA = {"c10": {"dataset": ("cifar10", PAPER), "n_c": (100, CODE), "pad": (4, CODE), "cutout": (16, CODE),
                "erase": (False, CODE), "val_size": (0, CODE)},
        "c100": {"dataset": ("cifar100", PAPER), "n_c": (1000, CODE), "pad": (4, CODE), "cutout": (8, CODE),
                 "erase": (False, CODE), "val_size": (0, CODE)},
        "tin": {"dataset": ("tinyimagenet", PAPER), "n_c": (2000, OURS), "pad": (8, OURS), "cutout": (16, OURS),
                "erase": (False, OURS), "val_size": (0, CODE)}}
ERASING = {"cutout": (0, PAPER), "erase": (True, PAPER)}  # the PyramidNet rows: random erasing instead of cutout
FOCA = {"method": ("foca", PAPER), "epochs": (600, CODE), "n_f": (128, CODE), "lr": (0.03, CODE),
        "momentum": (0.9, CODE), "wd": (5e-4, CODE), "schedule": ("step", CODE),
        "milestones": ((0.5, 0.667, 0.833), CODE), "lr_gamma": (0.1, CODE), "refresh": (32, CODE),
        "weak_steps": (64, CODE), "weak_lr": (0.03, CODE), "weak_momentum": (0.9, CODE), "weak_wd": (1e-2, CODE),
        "weak_init_std": (0.1, CODE), "stage2_epochs": (5, CODE), "stage2_lr": (0.003, CODE),
        "stage2_batch": (128, CODE), "finetune_epochs": (0, PAPER)}
E2E = {"method": ("e2e", CUTOUT), "epochs": (200, CUTOUT), "n_f": (128, CUTOUT), "lr": (0.1, CUTOUT),
       "momentum": (0.9, CUTOUT), "wd": (5e-4, CUTOUT), "schedule": ("step", CUTOUT),
       "milestones": ((0.3, 0.6, 0.8), CUTOUT), "lr_gamma": (0.2, CUTOUT)}
E2E_MATCHED = {**E2E, "epochs": (600, OURS)}  # the cutout recipe's shape stretched to FOCA's 600 epochs
E2E_SHAKEDROP = {"method": ("e2e", SHAKEDROP), "epochs": (300, SHAKEDROP), "n_f": (128, SHAKEDROP),
                 "lr": (0.5, SHAKEDROP), "momentum": (0.9, SHAKEDROP), "wd": (1e-4, SHAKEDROP),
                 "schedule": ("step", SHAKEDROP), "milestones": ((0.5, 0.75), SHAKEDROP), "lr_gamma": (0.1, SHAKEDROP)}
FINETUNE = {"finetune_epochs": (30, OURS), "finetune_lr": (1e-3, OURS), "finetune_schedule": ("cosine", OURS)}


def _row(net, data, method, **more) -> dict:
    return {**NETWORK[net], **DATA[data], **(ERASING if net == "pyr" else {}), **method, **more}


RECIPES: dict[str, dict] = {
    "wrn28-c10-foca": _row("wrn", "c10", FOCA), "wrn28-c10-e2e": _row("wrn", "c10", E2E),
    "wrn28-c10-e2e-matched": _row("wrn", "c10", E2E_MATCHED),
    "wrn28-c100-foca": _row("wrn", "c100", FOCA), "wrn28-c100-e2e": _row("wrn", "c100", E2E),
    "wrn28-c100-e2e-matched": _row("wrn", "c100", E2E_MATCHED),
    "wrn28-tin-foca": _row("wrn", "tin", FOCA), "wrn28-tin-e2e": _row("wrn", "tin", E2E),
    "wrn28-tin-e2e-matched": _row("wrn", "tin", E2E_MATCHED),
    **{f"table1-{h}": _row("wrn", "c10", FOCA, head=(h, PAPER)) for h in "ABCD"},
    "pyr272-c10-foca": _row("pyr", "c10", FOCA), "pyr272-c10-e2e": _row("pyr", "c10", E2E_SHAKEDROP),
    "pyr272-c100-foca": _row("pyr", "c100", FOCA), "pyr272-c100-e2e": _row("pyr", "c100", E2E_SHAKEDROP),
    "finetune-c100": _row("wrn", "c100", FOCA, **FINETUNE), "finetune-c10": _row("wrn", "c10", FOCA, **FINETUNE),
}


def preset_value(preset: str, field: str):
    """A recipe field's value in a preset: a ScaledConfig field, or its augmentation preset's."""
    cfg = PRESETS[preset][0]
    return getattr(AUGMENT[cfg.augment], field) if field in ("pad", "cutout", "erase") else getattr(cfg, field)


def differences() -> list[str]:
    """One line per preset field that differs from its recipe row (empty: all agree)."""
    out = []
    for preset, row in RECIPES.items():
        if preset not in PRESETS:
            out.append(f"preset {preset}: in the recipe table but not in scaled/presets.py")
            continue
        for field, (want, source) in row.items():
            found = preset_value(preset, field)
            if found != want:
                out.append(f"preset {preset}: {field} is {found!r}, the recipe table (scaled/recipes.py, "
                           f"source: {source}) says {want!r}")
    return out


def _fmt(v) -> str:
    return ", ".join(map(str, v)) if isinstance(v, tuple) else str(v)


def recipe_table() -> str:
    """Markdown: one column per recipe group (FOCA, E2E, ...), value (source) per field."""
    cols = {"FOCA (all FOCA rows)": FOCA, "E2E (cutout)": E2E, "E2E matched": E2E_MATCHED,
            "E2E PyramidNet": E2E_SHAKEDROP, "stage 3 (finetune-*)": FINETUNE}
    fields = list(dict.fromkeys(k for c in cols.values() for k in c))
    lines = ["| field | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for f in fields:
        lines.append(f"| {f} | " + " | ".join(f"{_fmt(c[f][0])} ({c[f][1]})" if f in c else "" for c in cols.values())
                     + " |")
    lines += ["", "| data | n_c | pad | cutout | random erasing | val_size |", "|---|---|---|---|---|---|"]
    for name, d in DATA.items():
        lines.append(f"| {d['dataset'][0]} | " + " | ".join(f"{_fmt(d[k][0])} ({d[k][1]})" for k in
                                                          ("n_c", "pad", "cutout", "erase", "val_size")) + " |")
    lines.append(f"| PyramidNet rows | | | {ERASING['cutout'][0]} ({PAPER}) | {ERASING['erase'][0]} ({PAPER}) | |")
    return "\n".join(lines)


def fidelity_table() -> str:
    """Markdown: where scaled differs from the authors' code (scaled/config.py FIDELITY)."""
    lines = ["| switch | the authors' code (paper presets) | ours (`--fidelity=ours`) | why ours exists |",
             "|---|---|---|---|"]
    for field, (theirs, ours, why) in FIDELITY.items():
        lines.append(f"| `--{field}` | {theirs} | {ours} | {why} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(recipe_table() + "\n\n" + fidelity_table())
