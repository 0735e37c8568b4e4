"""Outputs get stable, meaningful names at import: the source model's own (a Keras layer name, say) where it
has them, else `output_0`, `output_1`… in place of an exporter's generated ones (Keras' `"45"`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# What a generated name looks like: digits only, empty, or an exporter's own counter names.
_GENERATED = re.compile(r"(?:\d*|keras_tensor(?:_\d+)?|onnx::.*|/.*)")
_USABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")


def chosen_names(current: Sequence[str], source: Sequence[str] | None) -> list[str]:
    """The name each output will carry: the source's when it gives one usable, unique name per output; else
    the current name unless it looks generated, else `output_<i>`."""
    if (
        source is not None and len(source) == len(current) and len(set(source)) == len(source)
        and all(_USABLE.fullmatch(s) for s in source)
    ):
        return list(source)
    names = [c if _USABLE.fullmatch(c) and not _GENERATED.fullmatch(c) else f"output_{i}"
             for i, c in enumerate(current)]
    return names if len(set(names)) == len(names) else [f"output_{i}" for i in range(len(current))]


def rename_outputs(model: Any, source: Sequence[str] | None = None) -> Any:
    """Rename the graph's outputs in place (the producing nodes, consumers and value_info too)."""
    graph = model.graph
    if any(a.type in (5, 10) for node in graph.node for a in node.attribute):  # GRAPH, GRAPHS
        return model  # subgraphs may read outer names; leave such models as exported
    current = [o.name for o in graph.output]
    wanted = chosen_names(current, source)
    fixed = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    # An output that is a graph input or a weight passed through keeps its name (renaming it would rename those).
    mapping = {old: new for old, new in zip(current, wanted, strict=True) if old != new and old not in fixed}
    if not mapping:
        return model
    taken = {n for node in graph.node for n in (*node.input, *node.output)}
    taken |= fixed
    clash = set(mapping.values()) & (taken - set(mapping))
    if clash:  # a new name is already some inner tensor's: fall back to the positional names
        mapping = {old: f"output_{i}" for i, old in enumerate(current) if old != f"output_{i}" and old not in fixed}
        if set(mapping.values()) & (taken - set(mapping)):
            return model
    for node in graph.node:
        node.output[:] = [mapping.get(n, n) for n in node.output]
        node.input[:] = [mapping.get(n, n) for n in node.input]
    for info in (*graph.output, *graph.value_info):
        info.name = mapping.get(info.name, info.name)
    return model
