"""Explanations of any served version, model-agnostic over onnxruntime (SHAP, occlusion) and through Captum
where the version keeps its PyTorch source; in the space the user sees (after image decoding)."""

from maas.explain.explainer import Explanation, explain
from maas.explain.params import METHODS, ExplainParams, Limits
from maas.explain.subject import Subject

__all__ = ["METHODS", "ExplainParams", "Explanation", "Limits", "Subject", "explain"]
