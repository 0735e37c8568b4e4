"""`maas serve --ray` alone means `--ray auto` (the issue's `--ray [ADDRESS|auto]`)."""

from maas.cli.main import bare_ray_means_auto


def test_bare_ray_is_completed_with_auto() -> None:
    assert bare_ray_means_auto(["serve", "--ray"]) == ["serve", "--ray", "auto"]
    assert bare_ray_means_auto(["serve", "--ray", "--http-port", "1"]) == ["serve", "--ray", "auto", "--http-port", "1"]


def test_an_address_and_other_commands_are_left_alone() -> None:
    assert bare_ray_means_auto(["serve", "--ray", "10.0.0.1:6379"]) == ["serve", "--ray", "10.0.0.1:6379"]
    assert bare_ray_means_auto(["serve"]) == ["serve"]
    assert bare_ray_means_auto(["tag", "m:1", "--", "--ray"]) == ["tag", "m:1", "--", "--ray"]
