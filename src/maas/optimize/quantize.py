"""Quantization: dynamic int8, static int8 (QDQ, per-channel, calibrated) and fp16, ONNX in, ONNX out.

int8 makes files ~4x smaller; whether it makes inference faster depends on the model and the CPU (on small
models the quantize/dequantize overhead usually wins), so the caller measures speed rather than assuming it.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument

log = logging.getLogger(__name__)

MODES = ("dynamic", "static", "fp16")
CALIBRATION_LIMIT = 512  # samples: MinMax ranges settle long before this
CALIBRATION_BATCH = 32
_FLOATS = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _preprocess(src: Path, work: Path) -> tuple[Path, str]:
    """Shape inference + graph cleanup that onnxruntime recommends before quantizing; skipped if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "pre.onnx"
    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=False)
        return out, "quant_pre_process"
    except Exception as exc:  # a model it cannot handle still quantizes without it
        log.info("quant_pre_process skipped for %s: %s", src, exc)
        return src, f"skipped ({type(exc).__name__})"


def _has_float(model: Any) -> bool:
    tensors = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    if any(t.type.tensor_type.elem_type in _FLOATS for t in tensors):
        return True
    return any(init.data_type in _FLOATS for init in model.graph.initializer)


def _reader(input_name: str, x: np.ndarray) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):  # type: ignore[misc]
        """Feeds the calibration set to onnxruntime's calibrator in fixed-size batches."""

        def __init__(self) -> None:
            self._batches = iter([x[i : i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    return Batches()


def quantize(
    src: str | Path, dst: str | Path, mode: str, *, calibration: np.ndarray | None = None
) -> dict[str, Any]:
    """Write a quantized copy of `src` to `dst`; returns what was done (mode, op types, preprocessing)."""
    import onnx

    if mode not in MODES:
        raise InvalidArgument(f"unknown quantization {mode!r}; use one of {', '.join(MODES)}")
    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src))
    if not _has_float(model):
        raise InvalidArgument(
            f"{mode} quantization needs a floating-point model; this one has no float inputs, outputs or weights"
        )
    if mode == "fp16":
        return _fp16(model, dst)
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="maas-quant-") as tmp:
        pre, pre_note = _preprocess(src, Path(tmp))
        report: dict[str, Any] = {"mode": mode, "preprocess": pre_note}
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8)
            report.update(weight_type="int8")
        else:
            if calibration is None:
                raise InvalidArgument("static quantization needs calibration data (--calibration DATA)")
            x = calibration[:CALIBRATION_LIMIT]
            quantize_static(
                str(pre), str(dst), _reader(model.graph.input[0].name, x), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # 7-bit weights: x86 CPUs without VNNI (AVX2 only, as this project's 2-core AMD EPYC runner) saturate
                # uint8 x int8 products, and a version may be served on any CPU (the digits CNN lost 1.1 points
                # there against 0.2 with VNNI; onnxruntime's quantization guide recommends reduce_range for this).
                reduce_range=True,
            )
            report.update(format="QDQ", per_channel=True, reduce_range=True, activation_type="uint8",
                          weight_type="int8",
                          calibration_samples=int(len(x)))
    quantized = onnx.load(str(dst), load_external_data=False)
    report["op_types"] = sorted({n.op_type for n in quantized.graph.node})
    return report


def _fp16(model: Any, dst: Path) -> dict[str, Any]:
    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))
    notes = sorted({str(w.message).split(".")[0][:120] for w in caught})
    return {"mode": "fp16", "keep_io_types": True, "converter_warnings": notes}
