"""The warm-up request a version must answer before it takes traffic: its stored sample input (artifact
`sample_input.npz`, one array per model input) if it has one, else one row built from its signature."""

from __future__ import annotations

import asyncio
import io
import logging
from concurrent.futures import Executor

import numpy as np

from maas.errors import MaasError, Unavailable
from maas.registry import Registry
from maas.serving.loaded import LoadedVersion
from maas.types import numpy_dtype

log = logging.getLogger(__name__)

SAMPLE_ROLE = "sample_input.npz"


def stored_sample(registry: Registry, loaded: LoadedVersion) -> dict[str, np.ndarray] | None:
    """Blocking: the version's stored sample input, or None when it has none."""
    version = loaded.parts.version
    if not any(a.role == SAMPLE_ROLE for a in version.artifacts):
        return None
    with np.load(io.BytesIO(registry.read_artifact(version, SAMPLE_ROLE)), allow_pickle=False) as npz:
        return {s.name: npz[s.name] for s in loaded.parts.model_inputs if s.name in npz}


def synthetic_sample(loaded: LoadedVersion) -> dict[str, np.ndarray]:
    """One row of zeros (empty strings for BYTES) per model input, dynamic dimensions set to 1."""
    out: dict[str, np.ndarray] = {}
    for spec in loaded.parts.model_inputs:
        shape = tuple(1 if d < 0 else d for d in spec.shape)
        if spec.datatype == "BYTES":
            out[spec.name] = np.full(shape, b"", dtype=object)
        else:
            out[spec.name] = np.zeros(shape, dtype=numpy_dtype(spec.datatype))
    return out


async def warm_up(loaded: LoadedVersion, sample: dict[str, np.ndarray] | None, executor: Executor,
                  timeout_s: float) -> None:
    """Run the sample once on every instance of the version (in the inference pool, outside the batcher so
    the serving metrics count only clients); a stored sample that fails makes the load fail, a synthetic
    one (which may not be a valid input for the model) only logs."""
    inputs = sample if sample is not None else synthetic_sample(loaded)
    loop = asyncio.get_running_loop()
    solo = loaded.parts.solo
    for runtime in (*loaded.parts.runtimes, *((solo,) if solo is not None else ())):
        try:
            await asyncio.wait_for(loop.run_in_executor(executor, runtime.run, inputs), timeout_s)
        except Exception as exc:
            message = exc.message if isinstance(exc, MaasError) else f"{type(exc).__name__}: {exc}"
            if sample is not None:
                raise Unavailable(f"{loaded.parts.version.ref} failed its warm-up request: {message}") from None
            log.warning("%s: warm-up on a synthetic input failed (%s); serving anyway",
                        loaded.parts.version.ref, message[:200])
            return
