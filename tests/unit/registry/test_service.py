"""Registry behaviour, run against SQLite and the real PostgreSQL service alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from maas.errors import FailedPrecondition, IntegrityError, InvalidArgument, NotFound
from maas.registry import Lineage, Registry, State
from maas.types import Signature, TensorSpec

SIG = Signature((TensorSpec("x", "FP32", (-1, 4)),), (TensorSpec("y", "FP32", (-1, 3)),))


def test_versions_are_numbered_per_model(registry: Registry) -> None:
    a1 = registry.publish("iris", {"model.onnx": b"one"}, description="first", signature=SIG)
    a2 = registry.publish("iris", {"model.onnx": b"two"})
    b1 = registry.publish("digits", {"model.onnx": b"three"})
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    assert a1.state is State.READY and a1.description == "first"
    assert registry.get("iris:1").signature == SIG
    assert [v.version for v in registry.list_versions("iris")] == [1, 2]
    assert [m.name for m in registry.list_models()] == ["digits", "iris"]
    assert registry.get_model("iris").latest_version == 2


def test_record_keeps_everything_given(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": b"p"})
    v = registry.publish(
        "m", {"model.onnx": b"q", "source.h5": b"src"}, tags={"team": "vision"}, source_format="keras",
        config={"max_batch_size": 8, "labels": ["a", "b"]}, metrics={"accuracy": 0.9},
        lineage=Lineage(1, "quantize", {"mode": "dynamic"}), parity={"max_abs_err": 1e-7},
    )
    d = registry.get("m:2").to_dict()
    assert d["tags"] == {"team": "vision"}
    assert d["source_format"] == "keras"
    assert d["config"]["labels"] == ["a", "b"]
    assert d["metrics"] == {"accuracy": 0.9}
    assert d["lineage"] == {"parent": 1, "transform": "quantize", "params": {"mode": "dynamic"}}
    assert d["parity"] == {"max_abs_err": 1e-7}
    assert {a["role"] for a in d["artifacts"]} == {"model.onnx", "source.h5"}
    assert d["created_by"] and d["created_at"]
    assert registry.read_artifact(v, "source.h5") == b"src"


def test_lineage_parent_must_exist(registry: Registry) -> None:
    with pytest.raises(NotFound):
        registry.publish("m", {"model.onnx": b"x"}, lineage=Lineage(7, "prune", {}))
    with pytest.raises(NotFound):
        registry.get("m")  # the model row may exist, but it has no version


def test_reference_resolution(registry: Registry) -> None:
    for payload in (b"1", b"2", b"3"):
        registry.publish("m", {"model.onnx": payload})
    assert registry.get("m").version == 3  # no production alias: newest ready
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "staging", 2)
    assert registry.get("m").version == 1
    assert registry.get("m@staging").version == 2
    assert registry.get("m:3").version == 3
    assert registry.get_model("m").aliases == {"production": 1, "staging": 2}
    registry.set_alias("m", "production", 3)  # moving an alias
    assert registry.get("m").version == 3
    registry.remove_alias("m", "production")
    assert registry.get("m@staging").aliases == ("staging",)
    with pytest.raises(NotFound):
        registry.get("m@production")


def test_archived_versions_stay_readable_but_not_default(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": b"1"})
    registry.publish("m", {"model.onnx": b"2"})
    registry.set_alias("m", "staging", 2)
    with pytest.raises(FailedPrecondition, match="staging"):
        registry.archive("m:2")
    registry.remove_alias("m", "staging")
    assert registry.archive("m:2").state is State.ARCHIVED
    assert registry.get("m").version == 1
    assert registry.get("m:2").state is State.ARCHIVED
    with pytest.raises(FailedPrecondition):
        registry.set_alias("m", "production", 2)


def test_tags_and_metrics_merge(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": b"1"}, tags={"a": "1"})
    registry.tag("m:1", {"b": "2"})
    assert registry.get("m:1").tags == {"a": "1", "b": "2"}
    registry.tag("m:1", remove=["a"])
    assert registry.get("m:1").tags == {"b": "2"}
    registry.add_metrics("m:1", {"digits": {"accuracy": 0.97}})
    assert registry.get("m:1").metrics == {"digits": {"accuracy": 0.97}}
    registry.update_model("m", description="the model", tags={"owner": "me"})
    assert registry.get_model("m").description == "the model"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 300, "UPPER", "a..b", ".hidden", "a b", "-x"])
def test_invalid_names_are_refused_everywhere(registry: Registry, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        registry.publish(bad, {"model.onnx": b"x"})
    with pytest.raises(InvalidArgument):
        registry.get(bad)
    with pytest.raises(InvalidArgument):
        registry.delete_model(bad)
    assert registry.list_models() == []


@pytest.mark.parametrize("bad", ["m:0", "m:-1", "m:x", "m:", "m@", "m@UP", "m@1", "m:1:2", "m@a@b"])
def test_malformed_references(registry: Registry, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        registry.get(bad)


def test_unknown_things_are_not_found(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": b"1"})
    for ref in ("nope", "m:9", "m@nope"):
        with pytest.raises(NotFound):
            registry.get(ref)
    with pytest.raises(NotFound):
        registry.set_alias("m", "production", 9)
    with pytest.raises(NotFound):
        registry.remove_alias("m", "nope")
    with pytest.raises(NotFound):
        registry.delete_model("nope")


def test_bad_artifact_roles_and_tags(registry: Registry) -> None:
    for role in ("../evil", "a/b", "", ".x", "UP"):
        with pytest.raises(InvalidArgument):
            registry.publish("m", {role: b"x"})
    with pytest.raises(InvalidArgument):
        registry.publish("m", {"model.onnx": b"x"}, tags={"bad key!": "v"})
    with pytest.raises(InvalidArgument):
        registry.publish("m", {})


def test_identical_blobs_are_stored_once(registry: Registry) -> None:
    registry.publish("a", {"model.onnx": b"same"})
    registry.publish("b", {"model.onnx": b"same"})
    assert len(list(registry.artifacts.iter_blobs())) == 1


def test_corruption_is_detected_on_read(registry: Registry) -> None:
    v = registry.publish("m", {"model.onnx": b"good bytes"})
    sha = v.artifact("model.onnx").sha256
    stored = registry.settings.home / "artifacts" / "sha256" / sha[:2] / sha[2:]
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        registry.artifact_path(v)
    with pytest.raises(IntegrityError):
        registry.read_artifact(v)


def test_delete_model_then_gc_frees_blobs(registry: Registry) -> None:
    registry.publish("m", {"model.onnx": b"only here"})
    registry.publish("keep", {"model.onnx": b"kept"})
    registry.delete_model("m")
    with pytest.raises(NotFound):
        registry.get_model("m")
    assert registry.gc(grace=timedelta(hours=1)).removed_blobs == 0  # too young: may be a publish in flight
    report = registry.gc(grace=timedelta(0))
    assert report.removed_blobs == 1
    registry.verify(registry.get("keep"))


def test_revision_changes_on_every_write(registry: Registry) -> None:
    r0 = registry.revision()
    registry.publish("m", {"model.onnx": b"1"})
    r1 = registry.revision()
    registry.set_alias("m", "production", 1)
    assert r0 < r1 < registry.revision()
