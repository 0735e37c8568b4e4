"""Which Conv2d output channels can be removed from a `torch.export` graph, and removing them for real.

A channel of a convolution is removable when everything its output flows into is understood: unary ops that
keep channels apart (activations, pooling, dropout), BatchNorm (sliced alike), and the next Conv2d or a
flatten + Linear (input channels sliced). Anything else (a residual add, a concat, a grouped convolution, the
model output) would need the same channels removed elsewhere too, so the whole model is refused instead of
risking a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from maas.errors import FailedPrecondition

# aten overload names (str(node.target)) of ops that keep each channel apart and take one tensor input
_PASS_THROUGH = frozenset({
    "aten.relu.default", "aten.relu_.default", "aten.gelu.default", "aten.silu.default", "aten.silu_.default",
    "aten.sigmoid.default", "aten.tanh.default", "aten.hardtanh.default", "aten.hardtanh_.default",
    "aten.leaky_relu.default", "aten.elu.default", "aten.hardswish.default", "aten.relu6.default",
    "aten.max_pool2d.default", "aten.avg_pool2d.default", "aten.adaptive_avg_pool2d.default",
    "aten.dropout.default", "aten.clone.default", "aten.contiguous.default",
})
_CONV = frozenset({"aten.conv2d.default", "aten.conv2d.padding", "aten.convolution.default"})
_BATCH_NORM = frozenset({"aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default"})
_FLATTEN = frozenset({"aten.flatten.using_ints", "aten.view.default", "aten.reshape.default"})
_LINEAR = "aten.linear.default"


@dataclass
class ChannelGroup:
    """One convolution's output channels and every tensor that must be sliced with them (get_attr targets)."""

    conv: str  # the producing Conv2d, by its node name (for messages)
    weight: str
    out_channels: int
    along_dim0: list[str] = field(default_factory=list)  # bias, BatchNorm weight/bias/mean/var
    conv_inputs: list[str] = field(default_factory=list)  # weights of the next Conv2d(s), dim 1
    linear_inputs: list[str] = field(default_factory=list)  # weights of Linear(s) after a flatten, dim 1 in blocks


def _op(node: Any) -> str:
    return str(node.target) if node.op == "call_function" else f"{node.op} {node.target}"


def _attr(node: Any) -> str | None:
    """The get_attr target behind an argument, or None when the argument is absent."""
    if node is None:
        return None
    if getattr(node, "op", None) != "get_attr":
        raise FailedPrecondition(f"structured pruning needs parameters as module attributes; {node} is computed")
    if len(node.users) != 1:
        raise FailedPrecondition(f"structured pruning cannot prune {node.target!r}: the parameter is shared")
    return str(node.target)


def _groups_of(conv: Any) -> int:
    if str(conv.target) == "aten.convolution.default":
        if conv.args[6]:
            raise FailedPrecondition(f"structured pruning does not handle transposed convolutions ({conv.name})")
        return int(conv.args[8])
    return int(conv.args[6]) if len(conv.args) > 6 else int(conv.kwargs.get("groups", 1))


def _only_first_is_a_node(node: Any) -> bool:
    import torch

    rest = [*node.args[1:], *node.kwargs.values()]
    found: list[Any] = []
    torch.fx.node.map_arg(rest, found.append)
    return not found


def _refuse(group: ChannelGroup, user: Any, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"structured pruning handles a simple chain of Conv2d layers; the output of {group.conv} reaches "
        f"{user.name} ({_op(user)}): {why}. Nothing was pruned."
    )


def _follow(group: ChannelGroup, start: Any) -> None:
    """Walk everything downstream of `start` that carries the group's channels, recording what to slice."""
    pending = [start]
    while pending:
        node = pending.pop()
        for user in node.users:
            op = _op(user)
            first = bool(user.args) and user.args[0] is node
            if user.op == "output":
                raise _refuse(group, user, "its channels are the model's output")
            if op in _PASS_THROUGH and first and _only_first_is_a_node(user):
                pending.append(user)
            elif op in _BATCH_NORM and first:
                group.along_dim0 += [a for a in (_attr(arg) for arg in user.args[1:5]) if a is not None]
                if op == "aten.batch_norm.default":
                    pending.append(user)
                else:  # returns (out, mean, invstd): only out may be used
                    for item in user.users:
                        if _op(item) != "<built-in function getitem>" or item.args[1] != 0:
                            raise _refuse(group, item, "only the normalized output of BatchNorm is understood")
                        pending.append(item)
            elif op in _CONV and first:
                group.conv_inputs.append(str(_attr(user.args[1])))
            elif op in _FLATTEN and first and _flattens_channels(user):
                for consumer in user.users:
                    if _op(consumer) != _LINEAR or consumer.args[0] is not user:
                        raise _refuse(group, consumer, "after a flatten only a Linear layer is understood")
                    group.linear_inputs.append(str(_attr(consumer.args[1])))
            else:
                raise _refuse(group, user, "that operation would need the same channels removed elsewhere")


def _flattens_channels(node: Any) -> bool:
    """flatten(x, 1[, -1]) or view/reshape(x, [N, -1]): channel-major, so channel c is one block of columns."""
    if str(node.target) == "aten.flatten.using_ints":
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return bool(start == 1 and end == -1)
    shape = node.args[1] if len(node.args) > 1 else None
    return isinstance(shape, list | tuple) and len(shape) == 2 and shape[1] == -1


def find_groups(gm: Any) -> list[ChannelGroup]:
    """Every Conv2d whose output channels can be pruned; FailedPrecondition for a graph that is not a chain."""
    convs = [n for n in gm.graph.nodes if _op(n) in _CONV]
    if not convs:
        raise FailedPrecondition("structured pruning removes Conv2d channels; this model has no Conv2d layer")
    for conv in convs:
        if _groups_of(conv) != 1:
            raise FailedPrecondition(
                f"structured pruning does not handle grouped or depthwise convolutions ({conv.name} has "
                f"groups={_groups_of(conv)}); nothing was pruned"
            )
    groups = []
    for conv in convs:
        weight = _attr(conv.args[1])
        assert weight is not None
        group = ChannelGroup(conv.name, weight, int(_tensor(gm, weight).shape[0]))
        bias = _attr(conv.args[2]) if len(conv.args) > 2 else _attr(conv.kwargs.get("bias"))
        if bias is not None:
            group.along_dim0.append(bias)
        _follow(group, conv)
        for target in group.linear_inputs:
            if _tensor(gm, target).shape[1] % group.out_channels:
                raise FailedPrecondition(
                    f"the Linear {target!r} after {conv.name} takes {_tensor(gm, target).shape[1]} features, "
                    f"not a multiple of its {group.out_channels} channels; nothing was pruned"
                )
        groups.append(group)
    return groups


def _tensor(gm: Any, target: str) -> Any:
    owner, _, name = target.rpartition(".")
    return getattr(gm.get_submodule(owner) if owner else gm, name)


def _set(gm: Any, target: str, value: Any) -> None:
    import torch

    owner_name, _, name = target.rpartition(".")
    owner = gm.get_submodule(owner_name) if owner_name else gm
    if name in owner._parameters:
        setattr(owner, name, torch.nn.Parameter(value.detach().clone()))
    else:
        setattr(owner, name, value.detach().clone())


def remove_channels(gm: Any, groups: list[ChannelGroup], sparsity: float) -> dict[str, list[int]]:
    """Keep the highest-L1-norm filters of each group (at least one); returns {conv: [before, after]}."""
    import torch

    keeps: dict[str, Any] = {}
    for g in groups:  # all choices from the original weights, before any tensor changes
        norms = _tensor(gm, g.weight).detach().abs().flatten(1).sum(1)
        n_keep = max(1, round(g.out_channels * (1.0 - sparsity)))
        keeps[g.conv] = torch.sort(torch.topk(norms, n_keep).indices).values
    for g in groups:
        keep = keeps[g.conv]
        for target in (g.weight, *g.along_dim0):
            _set(gm, target, _tensor(gm, target)[keep])
        for target in g.conv_inputs:
            _set(gm, target, _tensor(gm, target)[:, keep])
        for target in g.linear_inputs:
            weight = _tensor(gm, target)
            block = weight.shape[1] // g.out_channels
            cols = (keep[:, None] * block + torch.arange(block)[None, :]).reshape(-1)
            _set(gm, target, weight[:, cols])
    return {g.conv: [g.out_channels, int(len(keeps[g.conv]))] for g in groups}
