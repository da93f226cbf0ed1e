"""Array backend: NumPy by default, CuPy when asked for. The only module that knows CuPy exists.

Everything else in minifoca receives `xp` (the array module) and never imports cupy. Random numbers
are always drawn on the host with a NumPy Generator and then moved with `to_device`, so NumPy and
CuPy runs with the same seed compute the same thing (CuPy's own streams differ from NumPy's).
"""
from __future__ import annotations

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def get_backend(name: str = "numpy"):
    """The array module for `name` ("numpy" or "cupy"); a clear error when CuPy cannot run."""
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy  # noqa: PLC0415 - optional dependency, imported only when asked for

            cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # ImportError, or CUDA driver / no device errors
            raise RuntimeError(f"--backend cupy needs CuPy and a CUDA GPU ({type(e).__name__}: {e}); "
                               "use --backend numpy, or install the cupy wheel for your CUDA") from e
        return cupy
    raise ValueError(f"unknown backend {name!r}: choose numpy or cupy")


def cupy_available() -> bool:
    try:
        get_backend("cupy")
        return True
    except RuntimeError:
        return False


def to_device(xp, a, dtype=None):
    """Host array -> backend array (a no-op for NumPy)."""
    return xp.asarray(a, dtype=dtype)


def to_host(a) -> np.ndarray:
    """Backend array -> NumPy array (works for NumPy and CuPy arrays and Python scalars)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def array_module(a):
    """The module (numpy or cupy) that owns array `a`, without importing cupy."""
    return np if isinstance(a, np.ndarray) else __import__(type(a).__module__.split(".")[0])
