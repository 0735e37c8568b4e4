"""Invalid configs fail before any data is read, with a message that names the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maas.errors import InvalidArgument
from maas.training import config

BASE: dict[str, Any] = {"name": "m", "data": {"source": "sklearn:iris"}, "model": {"family": "random_forest"}}


def with_(**parts: Any) -> dict[str, Any]:
    return {**BASE, **parts}


def test_minimal_config_gets_defaults() -> None:
    cfg = config.parse(BASE)
    assert cfg.seed == 0 and cfg.data.split.test == 0.2 and cfg.data.split.stratify
    assert cfg.preprocessing.tabular == "standardize" and cfg.search is None


def test_the_seed_keras_cnn_is_expressible() -> None:
    cfg = config.parse(with_(
        preprocessing={"image": {"shape": [8, 8, 1], "upsample": 4, "center_crop": [28, 28], "scale": 0.0625}},
        model={"family": "torch_cnn", "optimizer": {"name": "adam", "lr": 0.001}, "loss": "cross_entropy",
               "epochs": 5, "batch_size": 32, "early_stopping": {"patience": 2},
               "layers": [{"type": "conv2d", "filters": 32, "kernel": [3, 3], "activation": "relu"},
                          {"type": "maxpool2d", "pool": [2, 2]}, {"type": "flatten"},
                          {"type": "dense", "units": 10, "activation": "softmax"}]},
    ))
    assert [layer.type for layer in cfg.model.layers or []] == ["conv2d", "maxpool2d", "flatten", "dense"]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (with_(model={"family": "foo"}), "model.family: unknown family 'foo'"),
        (with_(model={"family": "random_forest", "params": {"n_trees": 3}}),
         "model.params.n_trees: random_forest has no parameter 'n_trees'"),
        (with_(model={"family": "torch_cnn", "layers": [{"type": "conv2d", "filters": 4}]}),
         "model.layers.0: conv2d needs filters and kernel"),
        (with_(model={"family": "torch_mlp", "layers": [{"type": "dense", "units": 4, "activation": "swish"}]}),
         "model.layers.0.activation"),
        (with_(model={"family": "random_forest", "module": "os.system"}), "model.module: unknown field"),
        (with_(data={"source": "sklearn:iris", "split": {"validation": 0.5, "test": 0.5}}), "data.split"),
        (with_(search={"trials": 3, "space": {"max_depth": {"type": "int", "low": 5, "high": 2}}}),
         "search.space.max_depth: low (5.0) must be below high (2.0)"),
        (with_(search={"trials": 3, "space": {"C": {"type": "loguniform", "low": 0.1, "high": 1}}}),
         "search.space.C: random_forest has no parameter 'C'"),
        (with_(search={"trials": 3, "space": {"max_depth": {"type": "categorical"}}}),
         "search.space.max_depth: categorical needs a non-empty list of choices"),
        (with_(search={"trials": 0, "space": {"max_depth": {"type": "int", "low": 1, "high": 3}}}), "search.trials"),
        (with_(search={"metric": "speed", "space": {"max_depth": {"type": "int", "low": 1, "high": 3}}}),
         "search.metric: unknown metric 'speed'"),
        (with_(search={"space": {}}), "search.space"),
        (with_(model={"family": "torch_mlp"}, search={"space": {"layers": {"type": "int", "low": 1, "high": 3}}}),
         "search.space.layers: torch_mlp can search"),
        (with_(preprocessing={"tabular": "whiten"}), "preprocessing.tabular"),
        (with_(seed=-1), "seed"),
        ({"name": "m", "model": {"family": "svm"}}, "data: Field required"),
    ],
)
def test_invalid_config_names_the_field(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        config.parse(cfg)
    assert err.value.message.startswith(message), err.value.message


def test_yaml_file_and_relative_source(tmp_path: Path) -> None:
    (tmp_path / "train.yaml").write_text("name: m\ndata: {source: data.csv, target: y}\nmodel: {family: svm}\n")
    cfg = config.load(tmp_path / "train.yaml")
    assert cfg.data.source == str(tmp_path / "data.csv")
    (tmp_path / "bad.yaml").write_text("name: [\n")
    with pytest.raises(InvalidArgument, match="not valid YAML"):
        config.load(tmp_path / "bad.yaml")
