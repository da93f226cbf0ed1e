"""Shared test set-up: where the real data is, and float64 everywhere unless a test says otherwise."""
import os
from pathlib import Path

# CI and the test suite find the shared data beside the checkout (../shared/data); a user can
# point FOCA_DATA elsewhere. Tests that need it skip with the reason when it is absent.
REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("FOCA_DATA", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("FOCA_CACHE", str(REPO / ".cache"))
# One BLAS/OpenMP thread per process (torch reads these when the test modules import it): the suite runs small problems, often two processes at a
# time, on 2 cores; spinning worker threads then cost 10-30x (measured: a tiny WRN step on CPU).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def pytest_terminal_summary(terminalreporter):
    """Without the real data (a fresh clone with no ../shared beside it) the tests that need it skip;
    say why once, with what to do, and count them apart instead of listing each skip's reason."""
    data = Path(os.environ["FOCA_DATA"])
    if (data / "cifar10").is_dir():
        return
    stats = terminalreporter.stats
    gone = [r for r in stats.get("skipped", []) if "FOCA_DATA" in str(r.longrepr)]
    if gone:
        stats["skipped"] = [r for r in stats["skipped"] if r not in gone]
        stats["skipped: no real data"] = gone  # the count line shows this key; -ra no longer lists them
        terminalreporter.write_line(f"real data: {data} has no cifar10/, so {len(gone)} tests that need it were "
                                    "skipped; set FOCA_DATA to the shared data folder (../shared/data/README.md)")
