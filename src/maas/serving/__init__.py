"""The serving core: runtimes, batching, pre/post steps, the model repository and the one data plane."""

from maas.serving.dataplane import ServingDataPlane
from maas.serving.options import ModelOverrides, ServingOptions

__all__ = ["ModelOverrides", "ServingDataPlane", "ServingOptions"]
