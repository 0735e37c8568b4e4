"""ORM rows of traffic splits and rollouts, in the registry's database (migration 0006_traffic).

Only `traffic.store` touches these; the rest sees `TrafficSplit`, `Rollout` and `RolloutEvent`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maas.registry.orm import Base, utcnow


class SplitRow(Base):
    """The split of one model; no row means today's behaviour (`@production`, else the newest)."""

    __tablename__ = "traffic_splits"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    arms: Mapped[list[dict[str, int]]] = mapped_column(JSON, nullable=False)
    shadow: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sticky_header: Mapped[str | None] = mapped_column(String(128), nullable=True)
    rollout_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # set while a rollout owns it
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class RolloutRow(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True)
    stable: Mapped[int] = mapped_column(Integer, nullable=False)
    candidate: Mapped[int] = mapped_column(Integer, nullable=False)
    steps: Mapped[list[int]] = mapped_column(JSON, nullable=False)
    interval_s: Mapped[float] = mapped_column(Float, nullable=False)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    step: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # index into steps
    reason: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # bumped by every decision
    step_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")


class RolloutEventRow(Base):
    """One decision or command: a measurement with its verdict, or a person's pause/resume/abort/promote."""

    __tablename__ = "rollout_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # measurement, started, paused, …
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # the rollout's state after the event
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(128), default="")
