"""Shared test set-up: where the real data is, and float64 everywhere unless a test says otherwise."""
import os
from pathlib import Path

# CI and the test suite find the shared data beside the checkout (../shared/data); a user can
# point FOCA_DATA elsewhere. Tests that need it skip with the reason when it is absent.
REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("FOCA_DATA", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("FOCA_CACHE", str(REPO / ".cache"))
