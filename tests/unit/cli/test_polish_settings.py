"""One settings model: the serving settings come from env MAAS_* and `maas serve` flags, `maas config` shows
them, and they reach the data plane's options; a bad value is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maas.cli import context
from maas.cli.main import app
from maas.config import DEFAULT_MAX_BATCH_SIZE, Settings
from maas.serving.options import ServingOptions

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_state(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "state", context.CliState())
    import maas.cli.main as main

    monkeypatch.setattr(main, "state", context.state)


def test_serving_settings_come_from_env_and_show_in_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_INFERENCE_THREADS", "3")
    monkeypatch.setenv("MAAS_REQUEST_TIMEOUT_S", "2.5")
    monkeypatch.setenv("MAAS_MAX_QUEUE_SIZE", "7")
    monkeypatch.setenv("MAAS_POLL_INTERVAL_S", "0.25")
    monkeypatch.setenv("MAAS_USE_CUDA", "false")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert (shown["inference_threads"], shown["request_timeout_s"], shown["max_queue_size"]) == (3, 2.5, 7)
    assert (shown["poll_interval_s"], shown["use_cuda"], shown["default_max_batch_size"]) == (
        0.25, False, DEFAULT_MAX_BATCH_SIZE)
    options = ServingOptions.from_settings(Settings(), ("digits",))
    assert (options.inference_threads, options.request_timeout_s, options.max_queue_size) == (3, 2.5, 7)
    assert (options.poll_interval_s, options.use_cuda, options.models) == (0.25, False, ("digits",))


def test_one_default_max_batch_size() -> None:
    assert ServingOptions().default_max_batch_size == Settings().default_max_batch_size == DEFAULT_MAX_BATCH_SIZE


def test_a_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAS_INFERENCE_THREADS", "0")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: invalid setting inference_threads (env MAAS_INFERENCE_THREADS)")


def test_serve_flags_are_settings() -> None:
    result = runner.invoke(app, ["serve", "--inference-threads", "0"])
    assert result.exit_code == 2 and "inference_threads" in result.stderr
    help_text = " ".join(runner.invoke(app, ["serve", "--help"]).stdout.split())
    for flag in ("--inference-threads", "--request-timeout", "--max-queue-size", "--poll-interval", "--cuda"):
        assert flag in help_text
