"""scaled against the authors' own code (DensoITLab/FOCA-v1, found through FOCA_V1_DIR, default
../shared/ref/FOCA-v1): step-by-step parity in authors' mode, each FIDELITY switch at our value
caught, the official defaults equal to the authors'-mode presets. Skipped with the reason when the
authors' code is not there (a clone of this project on its own)."""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from scripts.crosscheck import authors, authors_checks, authors_ref  # noqa: E402
from scripts.crosscheck.trace import Row  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def reference():
    try:
        return authors_ref.load()
    except authors_ref.ReferenceMissing as e:
        pytest.skip(str(e))


def _failures(rows: list[Row]) -> list[Row]:
    return [r for r in rows if not r.ok]


@pytest.mark.parametrize("nets", ["wrn", "pyramidnet"])
def test_every_step_agrees_with_the_authors_code(nets):
    rows = authors.parity_rows(nets=(nets,))
    kinds = {r.check.split(": ", 1)[1] for r in rows}
    assert {"stage 1: augmented batch", "stage 1: augmented weak batch", "stage 1: weak-batch features",
            "stage 1: weak classifier", "stage 1: loss", "stage 1: gradients", "stage 1: parameters",
            "stage 1: BN running statistics", "stage 1: learning rate", "stage 1: test error",
            "stage 2: features", "stage 2: parameters", "stage 2: test error"} <= kinds, kinds
    bad = _failures(rows)
    assert not bad, "\n".join(r.message() for r in bad)


# Each FIDELITY switch set to our value, on the network where it acts: some row must fail.
SWITCHES = [("wrn", "crop_offsets", "0..2P"), ("wrn", "wrn_block", "zagoruyko"), ("wrn", "last_batch", "drop"),
            ("wrn", "stage2_bn_train", False), ("pyramidnet", "shakedrop_gate", "sample"),
            ("pyramidnet", "erase_draw", "torchvision")]


@pytest.mark.parametrize("nets, field, ours", SWITCHES, ids=[s[1] for s in SWITCHES])
def test_our_value_of_each_switch_is_caught(nets, field, ours):
    bad = _failures(authors.parity_rows(nets=(nets,), **{field: ours}))
    assert bad, f"--{field}={ours} (ours, not the authors') passed every row of the authors' cross-check"


def test_normalisation_statistics_are_the_authors_and_clean_ones_are_caught():
    assert not _failures(authors_checks.stats_rows())
    assert _failures(authors_checks.stats_rows(overrides=("--norm_stats=clean",)))


def test_official_defaults_equal_the_authors_mode_presets(monkeypatch):
    diff = authors_checks.official_defaults_diff()
    assert not diff, "\n".join(f"{p}: {k} is {h!r}, the official default is {w!r}" for p, k, h, w in diff)
    assert not _failures(authors_checks.schedule_rows())
    # a changed preset value is named: preset, field, value found, value expected
    cfg, about = authors_checks.PRESETS["wrn28-c100-foca"]
    monkeypatch.setitem(authors_checks.PRESETS, "wrn28-c100-foca", (dataclasses.replace(cfg, n_c=999), about))
    assert ("wrn28-c100-foca", "n_c", 999, 1000) in authors_checks.official_defaults_diff()


def test_the_harness_leaves_torch_and_their_module_as_it_found_them(reference):
    cuda, np_mod = torch.Tensor.cuda, reference.train.np
    authors.parity_rows(nets=("wrn",))
    assert torch.Tensor.cuda is cuda and reference.train.np is np_mod


@pytest.mark.slow
def test_their_get_dataset_statistics_on_the_shared_cifar10():
    rows = authors_checks.stats_rows(full=True)
    if rows[-1].skipped:
        pytest.skip(rows[-1].skipped)
    assert not _failures(rows), "\n".join(r.message() for r in _failures(rows))
