"""Evaluation of registry versions: metrics on a data set, size and latency, reports, cross-validation.

Frameworks (scikit-learn, matplotlib) are imported inside the functions that need them, so importing this
package costs nothing to the serving core.
"""

from maas.evaluate.cv import cross_validate
from maas.evaluate.datasets import Dataset, load_dataset
from maas.evaluate.html_report import write_report
from maas.evaluate.report import EvalReport, compare, evaluate
from maas.evaluate.runner import predict

__all__ = ["Dataset", "EvalReport", "compare", "cross_validate", "evaluate", "load_dataset", "predict", "write_report"]
