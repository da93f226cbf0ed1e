"""The three layers compute the same numbers (scripts/crosscheck; `make crosscheck` prints the table).

Per iteration, float64, 1e-10 relative: minifoca vs scaled on the digits MLP with BN (FOCA with
R = 1 and R = 3, stages 2 and 3, E2E) and on the toy's network against its torch twin; the toy's
own training against minifoca's loop; scaled's conv nets by gradcheck and by a FOCA step that
minifoca recomputes from torch's features and gradients. The trajectory class is re-run for CuPy
(1e-12), skipped without a GPU. A failure names the check, the tensor, the iteration, the max
relative difference and the tolerance.
"""
import pytest

torch = pytest.importorskip("torch")

from minifoca.backend import cupy_available  # noqa: E402
from scripts.crosscheck import CASES, own_loop_rows, toy_rows, trajectory_rows  # noqa: E402
from scripts.crosscheck.conv import NETS, foca_step_rows, gradient_rows  # noqa: E402
from scripts.crosscheck.hostrun import scaled_trace  # noqa: E402
from scripts.crosscheck.mlp import digits_problem, minifoca_trace  # noqa: E402
from scripts.crosscheck.trace import TOL, CrossCheckError, compare  # noqa: E402

NO_CUPY = "NumPy vs CuPy needs CuPy and a CUDA GPU (minifoca.backend.cupy_available() is False)"



def assert_rows(rows):
    assert rows, "no rows: nothing was compared"
    bad = [r.message() for r in rows if not r.ok]
    assert not bad, "\n".join(bad)


def case_id(case):
    name, refresh, method = case
    return f"{name}-{method}" + (f"-R{refresh}" if method == "foca" and name == "digits" else "")


class TestMinifocaVsScaled:
    """minifoca (NumPy) against a second implementation, step by step; re-run below for CuPy."""
    other = "scaled"

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_trajectory(self, case):
        assert_rows(trajectory_rows(*case, other=self.other))


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason=NO_CUPY)
class TestNumpyVsCupy(TestMinifocaVsScaled):
    other = "cupy"


@pytest.mark.parametrize("refresh,method", [(3, "foca"), (1, "e2e")])
def test_minifoca_train_functions_land_where_the_replayed_loop_does(refresh, method):
    """minifoca.foca's own train_foca / train_classifier / fine_tune / train_e2e (BN, R = 3, all three
    stages) end exactly where the loop the other checks replay ends: their stage code is covered too."""
    assert_rows(own_loop_rows(refresh, method))


@pytest.mark.parametrize("method", ["foca", "e2e"])
def test_toy_training_lands_where_minifoca_does(method):
    assert_rows(toy_rows(method))


@pytest.mark.gpu
@pytest.mark.skipif(not cupy_available(), reason=NO_CUPY)
@pytest.mark.parametrize("method", ["foca", "e2e"])
def test_toy_numpy_vs_cupy(method):
    assert_rows(toy_rows(method, other="cupy"))


def test_conv_nets_pass_gradcheck_shakedrop_included():
    rows = gradient_rows()
    assert [r.check.split(":")[0] for r in rows] == [n + (" + ShakeDrop (fixed scales)" if s else "") for n, s in NETS]
    assert_rows(rows)


def test_conv_foca_step_equals_minifoca_on_torchs_features_and_gradients():
    assert_rows(foca_step_rows())


# --- the checker catches what it should ------------------------------------------------------------
def test_every_listed_quantity_is_compared_every_iteration():
    """The rows cover what the issue lists, for each of the 5 stage-1 iterations (R = 3: a weak
    batch and its features at iterations 0 and 3 only; the weak classifier after every step,
    so one that moves while phi steps is caught)."""
    tr = minifoca_trace(digits_problem(3), "foca")
    kinds = {(k[0], k[1]) for k in tr}
    for kind in ("indices", "features", "weak classifier", "loss", "gradients", "parameters", "BN running statistics"):
        assert ("FOCA stage 1", kind) in kinds, kind
    assert sorted({k[2] for k in tr if k[:2] == ("FOCA stage 1", "features")}) == [0, 3]
    assert sorted({k[2] for k in tr if k[:2] == ("FOCA stage 1", "weak classifier")}) == [0, 1, 2, 3, 4]
    assert sorted({k[2] for k in tr if k[:2] == ("FOCA stage 1", "gradients")}) == [0, 1, 2, 3, 4]
    assert {k[3] for k in tr if k[:3] == ("FOCA stage 1", "gradients", 4)} == {
        f"d{p}{i}" for p in ("W", "gamma", "beta") for i in range(3)}
    assert {k[0] for k in tr} == {"FOCA stage 1", "FOCA stage 2", "FOCA stage 3"}


def test_failure_names_tensor_iteration_difference_and_tolerance():
    prob = digits_problem(1)
    want = minifoca_trace(prob, "foca")
    got = dict(want)
    key = ("FOCA stage 1", "gradients", 3, "dgamma1")
    got[key] = got[key] * (1 + 1e-6)
    rows = compare(want, type(want)(got), "minifoca vs scaled", TOL, prob.name)
    bad = [r for r in rows if not r.ok]
    assert len(bad) == 1
    msg = bad[0].message()
    assert "gradients" in msg and "dgamma1 at iteration 3" in msg and "1e-10" in msg and "1.000e-06" in msg, msg


def test_scaled_refreshing_at_other_steps_is_caught():
    """scaled told R = 1 while minifoca uses R = 3: the run stops at the first extra refresh."""
    with pytest.raises(CrossCheckError, match="refreshed the weak classifier at iteration 1"):
        scaled_trace(digits_problem(3), "foca", refresh=1)


def test_a_changed_hyperparameter_is_caught():
    prob = digits_problem(1)
    rows = compare(minifoca_trace(prob, "foca"), scaled_trace(prob, "foca", weak_wd=0.0), "minifoca vs scaled",
                   TOL, prob.name)
    bad = {r.check.split(": ", 1)[1] for r in rows if not r.ok}
    assert "FOCA stage 1: weak classifier" in bad and "FOCA stage 1: indices" not in bad, bad
