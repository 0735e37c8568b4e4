"""Triton's model-config wire format (`GET …/config`, gRPC `ModelConfig`) rendered from the core's neutral
`ModelConfig`: the field names, `TYPE_*` data types, dims without the batch dimension, instance groups and
dynamic batching are the protocol's business, not the data plane's."""

from __future__ import annotations

from typing import Any

from maas.serving.contract import ModelConfig

# Model-config parameter naming the inputs that also take an encoded image (PNG or JPEG) as BYTES [-1].
ENCODED_IMAGE_PARAMETER = "encoded_image_inputs"


def triton_config(config: ModelConfig) -> dict[str, Any]:
    """Triton's model-config JSON shape; with max_batch_size > 0 the dims omit the batch dimension."""

    def dims(shape: tuple[int, ...]) -> list[int]:
        return list(shape[1:] if config.max_batch_size > 0 and shape else shape)

    doc: dict[str, Any] = {
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "version_policy": {"specific": {"versions": [config.version]}},
        "max_batch_size": config.max_batch_size,
        "input": [
            {"name": s.name, "data_type": data_type(s.datatype), "format": "FORMAT_NONE", "dims": dims(s.shape)}
            for s in config.inputs
        ],
        "output": [
            {"name": s.name, "data_type": data_type(s.datatype), "dims": dims(s.shape)} for s in config.outputs
        ],
        "instance_group": [{"name": config.name, "count": config.instances, "kind": "KIND_CPU"}],
    }
    if config.encoded_inputs:
        # Triton's config has no field for a second input form; a parameter tells a client it may send
        # the encoded image instead of the tensor.
        doc["parameters"] = {
            ENCODED_IMAGE_PARAMETER: {"string_value": ",".join(s.name for s in config.encoded_inputs)}
        }
    if config.max_batch_size > 0:
        doc["dynamic_batching"] = {
            "preferred_batch_size": list(config.preferred_batch_sizes),
            "max_queue_delay_microseconds": config.max_queue_delay_us,
        }
    return doc


def data_type(datatype: str) -> str:
    """A v2 datatype ("FP32", "BYTES") as model config's `DataType` enum name ("TYPE_FP32", "TYPE_STRING")."""
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
