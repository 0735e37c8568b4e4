"""Optimization: quantize, prune, distill and slim registered models into new versions with lineage.

Each transform (`quantize`, `prune`, `distill`, `slim`) is a pure function ONNX in -> ONNX out + report;
`optimize` runs one on a registered version, measures parent vs child and publishes the child.
"""

from maas.optimize.service import OptimizeResult, optimize

__all__ = ["OptimizeResult", "optimize"]
