"""`maas export REF --format tflite`: the version's stored Keras source converted by TFLiteConverter, and the
interpreter's outputs compared with the stored ONNX model's before the file appears under its final name.

ONNX cannot be turned back into a TensorFlow graph here, so only versions imported from `.keras`/`.h5`
can be exported. The conversion runs in a child process: TFLiteConverter needs Keras on the TensorFlow
backend, and this process keeps Keras on torch for the importer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from maas.errors import FailedPrecondition, InvalidArgument
from maas.formats import onnx_file, parity, tf_runtime
from maas.formats.atomic import write_atomically
from maas.registry import MODEL_ROLE, Registry, scratch

KERAS_ROLES = ("source.keras", "source.h5", "source.hdf5")
TIMEOUT_S = 600


def _convert_in_child(source: Path, out: Path) -> None:
    # The child must import this same maas, wherever it is installed (or just on sys.path).
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    env = {**scratch.child_env(), "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": path}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "maas.formats.tflite_convert", str(source), str(out)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidArgument(f"TFLite conversion took longer than {TIMEOUT_S} s") from None
    if proc.returncode != 0 or not out.is_file():
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        raise InvalidArgument(f"TFLiteConverter failed: {(lines[-1] if lines else 'no output')[:300]}")


def export(registry: Registry, ref: str, out_path: Path) -> Path:
    tf_runtime.tf("TFLite export")
    version = registry.get(ref)
    roles = {a.role for a in version.artifacts}
    role = next((r for r in KERAS_ROLES if r in roles), None)
    if role is None:
        raise FailedPrecondition(
            f"{version.ref} keeps no .keras or .h5 source file to convert (source format "
            f"{version.source_format!r}; versions made by optimize or from a live model keep none); TFLite "
            "export needs a version imported from a .keras or .h5 file"
        )
    if version.signature is None:
        raise FailedPrecondition(f"{version.ref} has no signature to draw sample inputs from")
    out = out_path / f"{version.model}-{version.version}.tflite" if out_path.is_dir() else out_path
    with registry.work_dir("maas-export-") as tmp:
        source = tmp / ("model" + role.removeprefix("source"))
        source.write_bytes(registry.read_artifact(version, role))
        candidate = tmp / "model.tflite"
        _convert_in_child(source, candidate)
        data = candidate.read_bytes()

        onnx_path = tmp / MODEL_ROLE
        onnx_path.write_bytes(registry.read_artifact(version, MODEL_ROLE))
        sess = onnx_file.session(onnx_path)
        samples = parity.generate(version.signature)
        expected = sess.run(None, samples)
        got = tf_runtime.run_tflite(data, list(samples.values()))
        names = [o.name for o in sess.get_outputs()]
        report = parity.compare(expected, got, names, samples=len(next(iter(samples.values()))))
        if not report["passed"]:
            raise InvalidArgument("TFLite export: " + parity.describe_failure(report).split("; pass")[0])

        write_atomically(out, data)
    return out
