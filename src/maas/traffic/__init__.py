"""Traffic: splits over a model's versions, shadow traffic and progressive rollouts (core: no transport)."""

from maas.traffic.rollout import Rollout, RolloutState, Thresholds
from maas.traffic.service import TrafficService
from maas.traffic.split import Arm, Shadow, TrafficSplit

__all__ = ["Arm", "Rollout", "RolloutState", "Shadow", "Thresholds", "TrafficService", "TrafficSplit"]
