"""scikit-learn estimators and pipelines (live, or from `.skops` files checked against skops' trusted
types) converted with skl2onnx; classifiers give a label tensor and a plain probability tensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.formats import parity
from maas.formats.publish import Converted


def is_estimator(obj: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(obj, BaseEstimator)


def load_skops(path: Path, trust: bool) -> Any:
    """Load a `.skops` file, refusing types outside skops' trusted set unless the caller trusts the file."""
    try:
        import skops.io as sio
    except ImportError:
        raise InvalidArgument(
            "importing .skops files needs the sklearn extra: pip install 'maas[sklearn]'"
        ) from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile/json/key errors on damaged files
        raise InvalidArgument(f"{path.name} is not a valid .skops file ({type(exc).__name__})") from None
    if untrusted and not trust:
        shown = ", ".join(untrusted[:5]) + (" …" if len(untrusted) > 5 else "")
        raise InvalidArgument(
            f"refusing {path.name}: it contains types skops does not trust ({shown}); "
            "re-run with --trust (trust=True) only if you trust its author"
        )
    try:
        return sio.load(path, trusted=untrusted or None)
    except Exception as exc:
        raise InvalidArgument(f"cannot load {path.name}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _final_step(est: Any) -> Any:
    steps = getattr(est, "steps", None)
    return _final_step(steps[-1][1]) if steps else est


def _n_features(est: Any) -> int:
    n = getattr(est, "n_features_in_", None)
    if n is None:
        raise InvalidArgument(
            f"{type(est).__name__} is not fitted (no n_features_in_); fit it before importing"
        )
    return int(n)


def convert(
    est: Any, work: Path, source_format: str = "sklearn", source_file: Path | None = None
) -> Converted:
    """Convert a fitted estimator with a dynamic batch, float32 features, and zipmap off."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError:
        raise InvalidArgument(
            "scikit-learn models need the sklearn extra: pip install 'maas[sklearn]'"
        ) from None
    from sklearn.base import is_classifier

    n = _n_features(est)
    final = _final_step(est)
    classifier = is_classifier(final)
    options = {id(final): {"zipmap": False}} if classifier else None
    try:
        model = convert_sklearn(
            est, initial_types=[("input", FloatTensorType([None, n]))], options=options, target_opset=None
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError for unsupported models
        raise InvalidArgument(
            f"skl2onnx cannot convert {type(est).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from None
    out = work / "sklearn.onnx"
    out.write_bytes(model.SerializeToString())

    has_proba = classifier and hasattr(est, "predict_proba")

    def reference(inputs: dict[str, np.ndarray]) -> list[Any]:
        x = next(iter(inputs.values())).astype(np.float32)  # the ONNX model sees float32 features
        if classifier:
            return [est.predict(x), est.predict_proba(x) if has_proba else None]
        if hasattr(est, "predict"):
            return [est.predict(x)]
        return [est.transform(x)]

    def samples(sig: Any) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        return {sig.inputs[0].name: rng.standard_normal((parity.SAMPLE_ROWS * 4, n)).astype(np.float32)}

    rules = [parity.OutputRule(exact=True), parity.OutputRule(skip=not has_proba)] if classifier else None
    classes = getattr(final, "classes_", None) if classifier else None
    return Converted(
        onnx_path=out,
        source_format=source_format,
        reference=reference,
        sample_factory=samples,
        rules=rules,
        labels=[str(c) for c in classes] if classes is not None else None,
        source_file=source_file,
    )
