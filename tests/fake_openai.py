"""A real local HTTP server speaking the OpenAI chat-completions API, with scripted faults.

Used where a test needs real HTTP behaviour (status codes, Retry-After, hangs, a server that
dies and comes back) without a model: the replies are canned.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


def completion(content: str = "go north", prompt_tokens: int = 7) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 2, "total_tokens": 9},
    }


class LocalServer:
    """What every fake server shares: its URL and a stop that behaves like a killed server.

    Subclasses set ``_server`` (a started ``ThreadingHTTPServer``), ``_connections`` (the open
    sockets, added by the handler's ``setup``) and ``port``.
    """

    _server: ThreadingHTTPServer
    _connections: set[Any]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """Stop like a killed server: no new connections, open keep-alive ones cut."""
        import socket

        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: A reply: (status, JSON body, extra headers), or a number of seconds to hang first.
Reply = tuple[int, dict[str, Any], dict[str, str]]
# Headers are given to the script with lower-case names.


class FakeOpenAI(LocalServer):
    """``script(n, request_json, headers) -> Reply`` decides the n-th reply (0-based).

    Attributes:
        requests: (path, JSON body, headers) of every POST request received.
        models: The entries ``GET /v1/models`` lists.
        hang_s: Seconds to sleep before answering the requests for which ``hang(n)`` is true.
    """

    def __init__(
        self,
        script: Callable[[int, dict[str, Any], dict[str, str]], Reply] | None = None,
        port: int = 0,
        hang: Callable[[int], float] | None = None,
    ) -> None:
        self.script = script or (lambda n, body, headers: (200, completion(), {}))
        self.hang = hang or (lambda n: 0.0)
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        #: What ``GET /v1/models`` lists (vLLM's entries carry ``id`` and ``root``).
        self.models: list[dict[str, Any]] = []
        self._connections: set[Any] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                fake._connections.add(self.connection)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                n = len(fake.requests)
                fake.requests.append((self.path, body, headers))
                delay = fake.hang(n)
                if delay:
                    time.sleep(delay)
                status, payload, extra = fake.script(n, body, headers)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout)
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if not self.path.endswith("/models"):
                    self.send_error(404)
                    return
                data = json.dumps({"object": "list", "data": fake.models}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
