"""Every paper preset equals its row of the recipe table (scaled/recipes.py, each value with its
source), docs/fidelity.md quotes the tables that module renders, and the paper presets are in authors'
mode (scaled/config.py FIDELITY), with --fidelity switching all of it."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("torch")

from minifoca.config import apply_overrides  # noqa: E402
from scaled import recipes  # noqa: E402
from scaled.config import FIDELITY, ScaledConfig, fidelity  # noqa: E402
from scaled.presets import PRESETS  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "docs" / "fidelity.md"


def test_every_paper_preset_equals_its_recipe_row():
    bad = recipes.differences()
    assert not bad, "\n".join(bad)


def test_the_recipe_table_covers_every_paper_preset():
    from scaled.report import GROUPS  # the presets the reproduction targets train

    paper = {p for g, (_, presets) in GROUPS.items() if g != "smoke" for p in presets}
    assert paper == set(recipes.RECIPES), f"no recipe row: {paper - set(recipes.RECIPES)}; " \
                                          f"no preset: {set(recipes.RECIPES) - paper}"


def test_a_changed_preset_value_is_named(monkeypatch):
    cfg, about = PRESETS["wrn28-c100-e2e"]
    monkeypatch.setitem(PRESETS, "wrn28-c100-e2e", (dataclasses.replace(cfg, lr=0.01), about))
    assert recipes.differences() == ["preset wrn28-c100-e2e: lr is 0.01, the recipe table (scaled/recipes.py, "
                                     "source: cutout) says 0.1"]


def test_the_fidelity_page_quotes_the_generated_tables():
    text = PAGE.read_text()
    for name, table in (("recipe", recipes.recipe_table()), ("fidelity", recipes.fidelity_table())):
        assert table in text, f"docs/fidelity.md's {name} table is not `python -m scaled.recipes`'s; paste its output"


def test_paper_presets_follow_the_authors_and_fidelity_switches_them_all():
    for name in recipes.RECIPES:
        assert fidelity(PRESETS[name][0]) == "authors", name
    ours = apply_overrides(PRESETS["wrn28-c10-foca"][0], ["--fidelity=ours"])
    assert fidelity(ours) == "ours" and all(getattr(ours, k) == v[1] for k, v in FIDELITY.items())
    mixed = apply_overrides(ours, ["--fidelity=authors", "--crop_offsets=0..2P"])  # a later key wins
    assert mixed.crop_offsets == "0..2P" and fidelity(mixed) == "mixed: ours for crop_offsets"
    with pytest.raises(ValueError, match="choose one of authors, ours"):
        apply_overrides(ScaledConfig(), ["--fidelity=paper"])
