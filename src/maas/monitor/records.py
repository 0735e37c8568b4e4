"""What the data plane hands the prediction log for one sampled request (built on the event loop, cheap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(slots=True)  # built per sampled request on the event loop: no frozen-dataclass __init__ cost
class PredictionRecord:
    model: str
    version: int
    arm: str  # the traffic arm that served it; the version's number until traffic splits name arms
    request_id: str
    time: float  # seconds since the epoch, when the response was ready
    latency_s: float
    inputs: dict[str, np.ndarray]  # what the model ran on (after pre-processing), batch first
    outputs: dict[str, np.ndarray]


class PredictionSink(Protocol):
    """Where sampled requests go; `offer` never blocks (a full queue drops and counts)."""

    def offer(self, record: PredictionRecord) -> None: ...
