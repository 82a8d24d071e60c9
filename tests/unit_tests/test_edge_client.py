"""`ChatEdge` against a real local HTTP server speaking the OpenAI chat API (a canned reply)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langgraph_hera import edge_chat_model

REPLY = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "tiny",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "go north"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled connections outlive a request
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Handler.requests.append(json.loads(body))
        data = json.dumps(REPLY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_one_edge_model_serves_several_event_loops(server_url: str) -> None:
    """Each `asyncio.run` (an EpisodeRunner.run, an RL round) gets a working client."""
    edge = edge_chat_model(server_url, "tiny", max_tokens=8)
    for _ in range(3):
        reply = asyncio.run(edge.ainvoke("where?"))
        assert reply.content == "go north"
        assert reply.usage_metadata["input_tokens"] == 7
    assert edge.invoke("sync too").content == "go north"


def test_payload_uses_max_tokens_and_no_null_content(server_url: str) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    _Handler.requests.clear()
    edge = edge_chat_model(server_url, "tiny", max_tokens=5)
    edge.invoke([HumanMessage("a"), AIMessage(""), HumanMessage("b")])
    sent = _Handler.requests[-1]
    assert sent["max_tokens"] == 5 and "max_completion_tokens" not in sent
    assert all(m["content"] is not None for m in sent["messages"])
