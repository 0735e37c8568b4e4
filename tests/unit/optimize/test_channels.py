"""Channel analysis of torch.export graphs: a chain is pruned for real; anything else is refused, never guessed."""

from __future__ import annotations

from typing import Any

import pytest

from maas.errors import FailedPrecondition
from maas.optimize.channels import find_groups, remove_channels


def _graph(module: Any, channels: int = 4) -> Any:
    import torch

    module.eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (torch.randn(2, channels, 8, 8),), dynamic_shapes=({0: batch},))
    return torch.fx.GraphModule(program.module(), program.module().graph)


def test_a_chain_shrinks_and_keeps_the_strongest_filters() -> None:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3))
    with torch.no_grad():
        net[0].weight[1] *= 100  # filter 1 is by far the strongest
    gm = _graph(net)
    groups = find_groups(gm)
    assert remove_channels(gm, groups, 0.5) == {"conv2d": [6, 3], "conv2d_1": [4, 2]}
    assert tuple(gm.get_submodule("0").weight.shape) == (3, 4, 3, 3)
    assert tuple(gm.get_submodule("1").running_mean.shape) == (3,)
    assert tuple(gm.get_submodule("3").weight.shape) == (2, 3, 3, 3)
    assert tuple(gm.get_submodule("5").weight.shape) == (3, 2 * 4 * 4)
    kept = gm.get_submodule("0").weight
    assert any(torch.equal(kept[i], net[0].weight[1]) for i in range(3))
    assert gm(torch.randn(5, 4, 8, 8)).shape == (5, 3)


def _residual() -> Any:
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: Any) -> Any:
            return (x + self.conv(x)).mean((2, 3))

    return Residual()


def _grouped() -> Any:
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(144, 2))


def _conv_at_the_output() -> Any:
    import torch.nn as nn

    return nn.Conv2d(4, 4, 3)


def _no_conv() -> Any:
    import torch.nn as nn

    return nn.Sequential(nn.Flatten(), nn.Linear(256, 2))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_residual, r"reaches add .*aten\.add\.Tensor"),
        (_grouped, "grouped or depthwise"),
        (_conv_at_the_output, "the model's output"),
        (_no_conv, "no Conv2d"),
    ],
)
def test_what_is_not_a_simple_chain_is_refused(build: Any, message: str) -> None:
    with pytest.raises(FailedPrecondition, match=message):
        find_groups(_graph(build()))
