"""The edge client sends the running thread's id as a session header (sticky edge replicas),
checked on a real local HTTP server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import functools
import operator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from langgraph_hera import edge_chat_model
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def server() -> Any:
    with FakeOpenAI() as fake:
        yield fake


def _sessions(server: FakeOpenAI) -> list[str | None]:
    return [headers.get("x-session-id") for _, _, headers in server.requests]


def _graph(model: Any, *, stream: bool = False, use_async: bool = False) -> Any:
    """One node that calls the model the way a routed agent's model node does."""

    def call(state: MessagesState) -> dict:
        if stream:
            chunks = list(model.stream(state["messages"]))
            return {"messages": [functools.reduce(operator.add, chunks)]}
        return {"messages": [model.invoke(state["messages"])]}

    async def acall(state: MessagesState) -> dict:
        if stream:
            chunks = [chunk async for chunk in model.astream(state["messages"])]
            return {"messages": [functools.reduce(operator.add, chunks)]}
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("edge", acall if use_async else call)
    builder.add_edge(START, "edge")
    return builder.compile(checkpointer=InMemorySaver())


def test_each_thread_sends_its_own_session_id(server: FakeOpenAI) -> None:
    graph = _graph(edge_chat_model(server.url, "edge-fake"))
    for thread in ("alice", "bob", "alice"):
        config = {"configurable": {"thread_id": thread}}
        graph.invoke({"messages": [HumanMessage("hi")]}, config)
    assert _sessions(server) == ["alice", "bob", "alice"]


def test_async_calls_send_the_session_id(server: FakeOpenAI) -> None:
    graph = _graph(edge_chat_model(server.url, "edge-fake"), use_async=True)

    async def turns() -> None:
        await asyncio.gather(
            *(
                graph.ainvoke({"messages": [HumanMessage(t)]}, {"configurable": {"thread_id": t}})
                for t in ("t1", "t2", "t3", "t4")
            )
        )

    asyncio.run(turns())
    seen = {
        body["messages"][-1]["content"]: h.get("x-session-id") for _, body, h in server.requests
    }
    assert seen == {"t1": "t1", "t2": "t2", "t3": "t3", "t4": "t4"}  # concurrent, not mixed


def test_no_session_header_outside_a_thread(server: FakeOpenAI) -> None:
    model = edge_chat_model(server.url, "edge-fake")
    model.invoke("plain call")
    graph = _graph(model)
    graph.invoke({"messages": [HumanMessage("no thread")]}, {"configurable": {"thread_id": ""}})
    assert _sessions(server) == [None, None]


def test_session_header_can_be_renamed_or_disabled(server: FakeOpenAI) -> None:
    config = {"configurable": {"thread_id": "tenant/é 1"}}
    _graph(edge_chat_model(server.url, "m", session_header="X-User-ID")).invoke(
        {"messages": [HumanMessage("a")]}, config
    )
    _graph(edge_chat_model(server.url, "m", session_header=None)).invoke(
        {"messages": [HumanMessage("b")]}, config
    )
    (_, _, first), (_, _, second) = server.requests
    assert first["x-user-id"] == "tenant%2F%C3%A9%201"  # non-ASCII ids are percent-encoded
    assert "x-session-id" not in first
    assert "x-session-id" not in second and "x-user-id" not in second


def test_streaming_calls_send_the_session_id() -> None:
    from tests.fake_providers import FakeProvider, Reply

    with FakeProvider("vllm", script=lambda n, body: Reply.text("go north")) as srv:
        model = edge_chat_model(srv.url, srv.model)
        _graph(model, stream=True).invoke(
            {"messages": [HumanMessage("s")]}, {"configurable": {"thread_id": "sync-s"}}
        )
        out = asyncio.run(
            _graph(model, stream=True, use_async=True).ainvoke(
                {"messages": [HumanMessage("a")]}, {"configurable": {"thread_id": "async-s"}}
            )
        )
    assert out["messages"][-1].content == "go north"  # a real SSE stream, read to the end
    assert [r.body.get("stream") for r in srv.requests] == [True, True]
    assert [r.headers.get("x-session-id") for r in srv.requests] == ["sync-s", "async-s"]
