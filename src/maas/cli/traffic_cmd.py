"""`maas traffic set|show|clear` and `maas rollout start|status|pause|resume|abort|promote`: translation to
`maas.traffic.TrafficService` on the registry (every server on it follows within a poll interval)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.table import Table

from maas.cli import context
from maas.cli.context import console, handle_errors, print_json
from maas.errors import InvalidArgument

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """`30s`, `1.5s`, `500ms`, `2m`, `1h` or plain seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise InvalidArgument(f"invalid interval {text[:40]!r}: expected e.g. 30s, 500ms, 2m")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]
    return float(m.group(1)) * scale


def parse_steps(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InvalidArgument(f"invalid steps {text[:40]!r}: expected percentages like 10,50,100") from None


def _service() -> Any:
    from maas.traffic import TrafficService

    return TrafficService(context.state.registry())


def _print_split(doc: dict[str, Any]) -> None:
    table = Table("version", "weight")
    for arm in doc["arms"]:
        table.add_row(str(arm["version"]), f"{arm['weight']}%")
    console.print(table)
    if doc.get("default"):
        console.print("no split: bare requests go to @production, else the newest version")
    if doc.get("shadow"):
        console.print(f"shadow: version {doc['shadow']['version']} ({doc['shadow']['fraction']:.0%} of requests)")
    if doc.get("sticky_header"):
        console.print(f"sticky header: {doc['sticky_header']}")


def _print_rollout(doc: dict[str, Any]) -> None:
    w = doc["weights"]
    console.print(f"[bold]{doc['model']}[/bold] rollout {doc['stable']} → {doc['candidate']}: {doc['state']}, "
                  f"step {doc['step'] + 1}/{len(doc['steps'])} ({doc['current_step']}%), "
                  f"weights stable {w['stable']}% / candidate {w['candidate']}%", highlight=False)
    console.print(f"reason: {doc['reason']}", highlight=False, markup=False)
    table = Table("at", "step", "event", "verdict", "state", "reason")
    for e in doc["decisions"][-20:]:
        step = doc["steps"][e["step"]] if e["step"] < len(doc["steps"]) else e["step"]
        table.add_row((e["at"] or "")[11:19], f"{step}%", e["kind"], e["verdict"] or "", e["state"], e["reason"])
    console.print(table)


def register(app: typer.Typer) -> None:
    traffic_app = typer.Typer(help="Traffic splits over a model's versions, shadow traffic.", no_args_is_help=True)
    rollout_app = typer.Typer(help="Progressive rollouts judged against the live version.", no_args_is_help=True)
    app.add_typer(traffic_app, name="traffic")
    app.add_typer(rollout_app, name="rollout")

    @traffic_app.command("set")
    @handle_errors
    def traffic_set(
        name: str,
        arms: Annotated[list[str], typer.Argument(help="VERSION=WEIGHT pairs summing to 100, e.g. 1=90 2=10")],
        shadow: Annotated[str | None, typer.Option(help="VERSION@FRACTION also sent a copy, e.g. 3@0.25")] = None,
        sticky_header: Annotated[str | None, typer.Option(help="Same header value, same arm (e.g. X-User-Id)")] = None,
        json_: JsonFlag = False,
    ) -> None:
        """Split NAME's traffic over versions."""
        from maas.traffic.split import TrafficSplit, parse_arm_text, parse_shadow_text

        split = TrafficSplit.from_dict({
            "arms": [vars(parse_arm_text(a)) for a in arms],
            "shadow": vars(parse_shadow_text(shadow)) if shadow else None,
            "sticky_header": sticky_header,
        })
        service = _service()
        service.set_split(name, split)
        doc = service.describe(name)
        return print_json(doc) if json_ else _print_split(doc)

    @traffic_app.command("show")
    @handle_errors
    def traffic_show(name: str, json_: JsonFlag = False) -> None:
        """Show NAME's split (or the one version bare requests go to)."""
        doc = _service().describe(name)
        return print_json(doc) if json_ else _print_split(doc)

    @traffic_app.command("clear")
    @handle_errors
    def traffic_clear(name: str) -> None:
        """Remove NAME's split: bare requests go to @production, else the newest version."""
        _service().clear_split(name)
        console.print(f"cleared the traffic split of {name}")

    @rollout_app.command("start")
    @handle_errors
    def rollout_start(
        name: str,
        to: Annotated[int, typer.Option("--to", help="The candidate version.")],
        steps: Annotated[str, typer.Option(help="Candidate percentages, e.g. 10,50,100.")] = "10,50,100",
        interval: Annotated[str, typer.Option(help="Time per measurement, e.g. 30s, 500ms.")] = "30s",
        max_error_rate: Annotated[float | None, typer.Option(help="Extra failure rate allowed (0.05).")] = None,
        max_p99_ratio: Annotated[float | None, typer.Option(help="Candidate p99 / stable p99 (1.5).")] = None,
        min_agreement: Annotated[float | None, typer.Option(help="Agreement on mirrored inputs (0.95).")] = None,
        max_psi: Annotated[float | None, typer.Option(help="PSI of predicted classes (0.25).")] = None,
        min_requests: Annotated[int | None, typer.Option(help="Requests per arm per interval (20).")] = None,
        mirror_fraction: Annotated[float | None, typer.Option(help="Stable requests mirrored (0.2).")] = None,
        json_: JsonFlag = False,
    ) -> None:
        """Start moving NAME's traffic to version --to, judged at every step; a server drives it."""
        thresholds = {"max_error_rate": max_error_rate, "max_p99_ratio": max_p99_ratio,
                      "min_agreement": min_agreement, "max_psi": max_psi, "min_requests": min_requests,
                      "mirror_fraction": mirror_fraction}
        r = _service().start_rollout(name, to, steps=parse_steps(steps), interval_s=parse_duration(interval),
                                     thresholds={k: v for k, v in thresholds.items() if v is not None})
        return print_json(r.to_dict()) if json_ else _print_rollout(r.to_dict())

    @rollout_app.command("status")
    @handle_errors
    def rollout_status(name: str, json_: JsonFlag = False) -> None:
        """Show NAME's rollout: state, step, weights, reason and every decision."""
        doc = _service().get_rollout(name).to_dict()
        return print_json(doc) if json_ else _print_rollout(doc)

    def _verb(verb: str, help_text: str) -> None:
        @rollout_app.command(verb, help=help_text)
        @handle_errors
        def command(name: str, json_: JsonFlag = False) -> None:
            doc = getattr(_service(), verb)(name).to_dict()
            return print_json(doc) if json_ else _print_rollout(doc)

    _verb("pause", "Hold the rollout at its current step.")
    _verb("resume", "Continue a paused rollout.")
    _verb("abort", "Stop the rollout: all traffic back to the stable version.")
    _verb("promote", "End the rollout now: production moves to the candidate.")
