"""The edge client sends the running thread's id as a session header (sticky edge replicas),
checked on a real local HTTP server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import json
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
            return {"messages": [chunks[-1]]}
        return {"messages": [model.invoke(state["messages"])]}

    async def acall(state: MessagesState) -> dict:
        if stream:
            last = None
            async for chunk in model.astream(state["messages"]):
                last = chunk
            return {"messages": [last]}
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
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(self.headers.get("x-session-id"))
            assert body["stream"] is True
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "delta": {"content": "go"}, "finish_reason": "stop"}],
            }
            data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        model = edge_chat_model(url, "edge-fake")
        _graph(model, stream=True).invoke(
            {"messages": [HumanMessage("s")]}, {"configurable": {"thread_id": "sync-s"}}
        )
        asyncio.run(
            _graph(model, stream=True, use_async=True).ainvoke(
                {"messages": [HumanMessage("a")]}, {"configurable": {"thread_id": "async-s"}}
            )
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == ["sync-s", "async-s"]
