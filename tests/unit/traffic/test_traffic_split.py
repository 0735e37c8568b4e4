"""Parsing and checking splits, and choosing arms (weighted random, sticky rendezvous hashing)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from maas.errors import InvalidArgument
from maas.traffic.routing import ArmChooser, sticky_arm
from maas.traffic.split import Arm, TrafficSplit, parse_arm_text, parse_shadow_text


def test_the_issue_body_round_trips() -> None:
    doc = {"arms": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
           "shadow": {"version": 3, "fraction": 0.25}, "sticky_header": "X-User-Id"}
    split = TrafficSplit.from_dict(doc)
    assert split.to_dict() == {**doc, "sticky_header": "x-user-id"}
    assert split.versions == {1, 2, 3}


@pytest.mark.parametrize(("doc", "message"), [
    ({"arms": [{"version": 1, "weight": 90}, {"version": 2, "weight": 20}]}, "sum to 100 (they sum to 110)"),
    ({"arms": [{"version": 1, "weight": 110}, {"version": 2, "weight": -10}]}, "negative"),
    ({"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 0}}, "(0, 1]"),
    ({"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 1.5}}, "(0, 1]"),
    ({"arms": []}, "non-empty"),
    ({"arms": [{"version": 1, "weight": 50}, {"version": 1, "weight": 50}]}, "only one arm"),
    ({"arms": [{"version": "1", "weight": 100}]}, "integer"),
    ({"arms": [{"version": 1, "weight": 100}], "sticky_header": "bad header"}, "header name"),
    ({"arms": [{"version": 1, "weight": 100}], "other": 1}, "unknown field"),
    ([1, 2], "JSON object"),
])
def test_bad_splits_are_refused_with_a_reason(doc: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        TrafficSplit.from_dict(doc)


def test_cli_texts() -> None:
    assert parse_arm_text("2=10") == Arm(2, 10)
    assert parse_shadow_text("3@0.25").fraction == 0.25
    with pytest.raises(InvalidArgument, match="VERSION=WEIGHT"):
        parse_arm_text("2:10")
    with pytest.raises(InvalidArgument, match="VERSION@FRACTION"):
        parse_shadow_text("3=0.25")


def test_weighted_random_follows_the_weights() -> None:
    chooser = ArmChooser(TrafficSplit.checked((Arm(1, 90), Arm(2, 10))), random.Random(7))
    counts = Counter(chooser.choose() for _ in range(20_000))
    assert 0.08 < counts[2] / 20_000 < 0.12
    assert ArmChooser(TrafficSplit.checked((Arm(1, 0), Arm(2, 100)))).choose() == 2


def test_sticky_keys_keep_their_arm_and_split_by_weight() -> None:
    arms = [(1, 70), (2, 30)]
    keys = [f"user-{i}" for i in range(5000)]
    first = {k: sticky_arm(arms, k) for k in keys}
    assert all(sticky_arm(arms, k) == first[k] for k in keys)
    share = sum(v == 2 for v in first.values()) / len(keys)
    assert 0.26 < share < 0.34


def test_moving_weight_moves_only_keys_towards_the_arm_that_gained() -> None:
    keys = [f"user-{i}" for i in range(5000)]
    before = {k: sticky_arm([(1, 90), (2, 10)], k) for k in keys}
    after = {k: sticky_arm([(1, 50), (2, 50)], k) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert all(before[k] == 1 and after[k] == 2 for k in moved)  # nobody left arm 2
    assert 0.35 < len(moved) / len(keys) < 0.45  # about the 40% of traffic that moved, not a reshuffle
