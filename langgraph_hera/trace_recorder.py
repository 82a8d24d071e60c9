"""A local LangSmith-compatible trace recorder, for reading routing decisions offline.

Point the LangSmith client at it (``LANGSMITH_ENDPOINT``) and it receives the same traffic
LangSmith would: ``GET /info``, ``POST /runs/multipart`` (and the older ``/runs/batch``,
``/runs``, ``PATCH /runs/<id>``). Runs are assembled in memory and can be read back with
`TraceRecorder.runs`. It binds loopback only.

Example:
    >>> with TraceRecorder() as rec, rec.tracing_env():
    ...     graph.invoke(...)
    ...     rec.flush()
    >>> [r["extra"]["metadata"]["hera_target"] for r in rec.runs("route_decision")]

The environment route reaches only the first recorder of a process (LangChain caches the
LangSmith client it builds from the environment). For several recorders, pass a tracer bound
to this one: ``graph.invoke(..., config={"callbacks": [rec.tracer()]})``, then ``rec.flush()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(body).read()
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    return body


class TraceRecorder:
    """An in-memory LangSmith endpoint on 127.0.0.1 (free port by default)."""

    def __init__(self, port: int = 0) -> None:
        self._runs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        #: Every request body received (decompressed), for scanning what was sent.
        self.bodies: list[bytes] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = _decompress(raw, self.headers.get("Content-Encoding"))
                recorder.bodies.append(body)
                return body

            def do_GET(self) -> None:  # noqa: N802
                recorder.requests.append(("GET", self.path))
                if self.path.startswith("/info"):
                    self._reply(200, {"version": "hera-recorder"})
                else:
                    self._reply(404, {"detail": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                recorder.requests.append(("POST", self.path))
                body = self._body()
                ctype = self.headers.get("Content-Type", "")
                if self.path.startswith("/runs/multipart"):
                    recorder._multipart(ctype, body)
                elif self.path.startswith("/runs/batch"):
                    data = json.loads(body or b"{}")
                    for run in data.get("post", []) + data.get("patch", []):
                        recorder._merge(str(run.get("id")), run)
                elif self.path.rstrip("/") == "/runs":
                    run = json.loads(body or b"{}")
                    recorder._merge(str(run.get("id")), run)
                self._reply(202, {})

            def do_PATCH(self) -> None:  # noqa: N802
                recorder.requests.append(("PATCH", self.path))
                run = json.loads(self._body() or b"{}")
                recorder._merge(self.path.rstrip("/").rsplit("/", 1)[-1], run)
                self._reply(202, {})

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None
        self._tracers: list[Any] = []

    @property
    def endpoint(self) -> str:
        """The URL to put in ``LANGSMITH_ENDPOINT``."""
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> TraceRecorder:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (recorded runs stay readable)."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread = None

    def __enter__(self) -> TraceRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def tracing_env(self, project: str = "hera-local") -> Iterator[None]:
        """Environment variables that send LangSmith traces here, restored afterwards."""
        values = {
            "LANGSMITH_TRACING": "true",
            "LANGSMITH_ENDPOINT": self.endpoint,
            "LANGSMITH_API_KEY": "local-recorder",
            "LANGSMITH_PROJECT": project,
        }
        old = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def tracer(self, project: str = "hera-local") -> Any:
        """A `LangChainTracer` whose real LangSmith client sends to this recorder (pass it in
        ``config={"callbacks": [...]}``; `flush` waits for it)."""
        from langchain_core.tracers import LangChainTracer
        from langsmith import Client

        client = Client(api_url=self.endpoint, api_key="local-recorder")
        tracer = LangChainTracer(client=client, project_name=project)
        self._tracers.append(tracer)
        return tracer

    def flush(self) -> None:
        """Wait until the LangSmith clients (the environment's and `tracer`'s) sent everything."""
        from langchain_core.tracers.langchain import wait_for_all_tracers

        for tracer in self._tracers:
            tracer.wait_for_futures()
            tracer.client.flush()
        wait_for_all_tracers()

    # ------------------------------------------------------------------ storage

    def _merge(self, run_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            run = self._runs.setdefault(run_id, {"id": run_id})
            for key, value in fields.items():
                if isinstance(value, dict) and isinstance(run.get(key), dict):
                    run[key] = {**run[key], **value}
                else:
                    run[key] = value

    def _multipart(self, content_type: str, body: bytes) -> None:
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition") or "")
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes | str):
                continue
            pieces = str(name).split(".")
            if len(pieces) < 2 or pieces[0] not in ("post", "patch"):
                continue  # attachments, feedback
            run_id = pieces[1]
            try:
                value = json.loads(payload)
            except ValueError:
                continue
            if len(pieces) == 2:
                self._merge(run_id, value)
            else:
                self._merge(run_id, {pieces[2]: value})

    def runs(self, name: str | None = None) -> list[dict[str, Any]]:
        """Recorded runs (optionally only those named ``name``), in arrival order."""
        with self._lock:
            runs = [dict(r) for r in self._runs.values()]
        return [r for r in runs if name is None or r.get("name") == name]
