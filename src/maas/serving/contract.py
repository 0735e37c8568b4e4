"""Transport-neutral inference values and the DataPlane contract that every transport (REST, gRPC) calls.

Transports decode wire formats into these values (numpy arrays inside) and encode the results back; all
model logic (resolution of versions, batching, pre/post-processing, the classification extension) lives
behind `DataPlane`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from maas.types import TensorSpec


@dataclass
class InferTensor:
    """A named tensor; BYTES tensors are numpy object arrays of `bytes`."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)  # e.g. classification=k, binary_data=True


@dataclass
class InferenceRequest:
    model_name: str
    model_version: str | None
    inputs: list[InferTensor]
    outputs: list[RequestedOutput] = field(default_factory=list)  # empty: every output
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    protocol: str = "unknown"  # the transport that received it ("rest", "grpc"…), a metrics label
    request_id: str | None = None  # the transport's correlation id (X-Request-ID), for logs
    headers: Mapping[str, str] | None = None  # lower-case header names -> values (a split's sticky header)
    arm: str | None = None  # set by the data plane: the version a traffic split chose, else None
    served_version: str = ""  # set by the data plane once resolved, so a failed request is logged with it


@dataclass
class InferenceResponse:
    model_name: str
    model_version: str
    outputs: list[InferTensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # The other form an input may take, by input name: an image model takes its tensor (in `inputs`) or the
    # encoded image as BYTES [-1], decoded and resized by the server.
    encoded_inputs: tuple[TensorSpec, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    """How one loaded version is served, in the core's terms; `maas.protocol.model_config` renders it as
    Triton's model-config wire format. Shapes are full (batch dimension included)."""

    name: str
    version: int
    platform: str
    backend: str
    max_batch_size: int  # 0: no batch dimension, every request runs on its own
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    instances: int
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    encoded_inputs: tuple[TensorSpec, ...] = ()  # inputs that also take an encoded image (see ModelMetadata)


@dataclass(frozen=True)
class ModelIndexEntry:
    name: str
    version: str
    state: str  # READY, UNAVAILABLE, LOADING, UNLOADING
    reason: str = ""


class DataPlane(Protocol):
    """What every transport calls. All methods raise `maas.errors.MaasError` subclasses on failure."""

    def live(self) -> bool: ...
    def ready(self) -> bool: ...
    def server_metadata(self) -> ServerMetadata: ...
    async def model_ready(self, name: str, version: str | None = None) -> bool: ...
    async def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata: ...
    async def model_config(self, name: str, version: str | None = None) -> ModelConfig: ...
    async def infer(self, request: InferenceRequest) -> InferenceResponse: ...
    async def repository_index(self, ready_only: bool = False) -> list[ModelIndexEntry]: ...
    async def load(self, name: str) -> None: ...
    async def unload(self, name: str) -> None: ...
