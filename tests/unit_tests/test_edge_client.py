"""`ChatEdge` against a real local HTTP server speaking the OpenAI chat API (a canned reply)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from langgraph_hera import edge_chat_model
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:  # keep-alive: pooled connections outlive a request
        yield fake


def test_one_edge_model_serves_several_event_loops(server: FakeOpenAI) -> None:
    """Each `asyncio.run` (an EpisodeRunner.run, an RL round) gets a working client."""
    edge = edge_chat_model(server.url, "tiny", max_tokens=8)
    for _ in range(3):
        reply = asyncio.run(edge.ainvoke("where?"))
        assert reply.content == "go north"
        assert reply.usage_metadata["input_tokens"] == 7
    assert edge.invoke("sync too").content == "go north"


def test_payload_uses_max_tokens_and_no_null_content(server: FakeOpenAI) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    edge = edge_chat_model(server.url, "tiny", max_tokens=5)
    edge.invoke([HumanMessage("a"), AIMessage(""), HumanMessage("b")])
    _, sent, _ = server.requests[-1]
    assert sent["max_tokens"] == 5 and "max_completion_tokens" not in sent
    assert all(m["content"] is not None for m in sent["messages"])
