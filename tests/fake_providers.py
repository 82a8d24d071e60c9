"""Real local HTTP servers speaking the OpenAI chat-completions API with each provider's quirks.

For tests that must see what a conversation does to real servers without running a model:
every server is a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0: a free one), answers
``POST /v1/chat/completions`` with and without ``stream: true`` (SSE), records every request,
and replies from a script. The quirks of each kind are the ones measured through ``ChatOpenAI``
(see shared/NOTES.md, "Serving the edge model") or documented by the provider:

``"vllm"``
    Tool call ids ``chatcmpl-tool-`` + 32 hex chars (46 chars); ``Reply(reasoning=...)`` comes
    back as ``reasoning_content`` with ``content: null`` (a reasoning parser); a reply scripted
    with ``finish_reason="length"`` keeps its truncated tool-call arguments; usage in streams
    only with ``stream_options.include_usage``; ``logprobs`` when asked.
``"llamacpp"``
    HTTP 500 for an assistant message with ``content: null``; honours ``max_tokens`` but ignores
    ``max_completion_tokens`` (what ``ChatOpenAI(max_tokens=...)`` sends); never usage in streams.
``"openai"``
    OpenAI's request validation: 400 for a tool-call id over 40 chars, for an assistant message
    with ``tool_calls`` not followed by tool messages answering every id (a dangling call), for a
    tool message answering an unknown id, and for ``content: null`` without ``tool_calls``;
    usage in streams only with ``stream_options: {"include_usage": true}``.

Every kind can be scripted to fail (``Reply.error(503, retry_after=2)``) or hang
(``Reply.text("late", hang_s=5)``). Example::

    with FakeProvider("vllm", script=[Reply.tool_call("get_weather", '{"city": "Paris"}'),
                                      Reply.text("Sunny.")]) as srv:
        llm = ChatOpenAI(model=srv.model, base_url=srv.url, api_key="x")
        llm.bind_tools([get_weather]).invoke("weather in Paris?")
        assert srv.requests[0].body["tools"][0]["function"]["name"] == "get_weather"
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from tests.fake_openai import LocalServer

Kind = Literal["vllm", "llamacpp", "openai"]
KINDS: tuple[Kind, ...] = ("vllm", "llamacpp", "openai")

#: OpenAI's limit on tool-call ids (its 400 says "maximum length 40").
OPENAI_MAX_TOOL_CALL_ID = 40


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        content: The assistant text (``None``: ``content: null``).
        tool_calls: (name, raw JSON arguments) pairs; arguments are sent as given, so a
            truncated string stays truncated.
        reasoning: Reasoning text, sent as ``reasoning_content`` (vLLM with a reasoning parser).
        finish_reason: Default ``"tool_calls"`` when there are tool calls, else ``"stop"``.
        status: HTTP status; not 200 sends ``error_body`` instead of a completion.
        headers: Extra response headers (``Retry-After``...).
        hang_s: Seconds to sleep before answering (timeouts).
        error_body: The JSON body of an error reply.
        prompt_tokens / completion_tokens: Usage to report (default: chars/4 of the request's
            message texts / of the reply).
    """

    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    reasoning: str | None = None
    finish_reason: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0
    error_body: dict[str, Any] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> Reply:
        return cls(content=content, **kwargs)

    @classmethod
    def tool_call(cls, name: str, arguments: str = "{}", **kwargs: Any) -> Reply:
        return cls(tool_calls=[(name, arguments)], **kwargs)

    @classmethod
    def truncated_tool_call(cls, name: str, arguments: str = '{"city": "Par') -> Reply:
        """A tool call cut by the token limit: ``finish_reason: "length"``, arguments as given."""
        return cls(tool_calls=[(name, arguments)], finish_reason="length")

    @classmethod
    def error(cls, status: int, *, retry_after: float | None = None, message: str = "") -> Reply:
        """An HTTP error (503 / 429 ...), with ``Retry-After`` seconds when given."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = _error_body(message or f"scripted {status}", "server_error", code=str(status))
        return cls(status=status, headers=headers, error_body=body)


@dataclass
class Recorded:
    """One request as received: path, JSON body, headers (lower-case names)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


#: A script: one `Reply` (or ``fn(body) -> Reply``) per request index, or ``fn(n, body)``.
Script = (
    Sequence[Reply | Callable[[dict[str, Any]], Reply]] | Callable[[int, dict[str, Any]], Reply]
)


def tool_then_answer(n: int, body: dict[str, Any]) -> Reply:
    """The default script: call the first offered tool when the last message is the user's
    (arguments filled from its required parameters), else answer with text."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    tools = body.get("tools") or []
    if tools and last.get("role") == "user":
        fn = tools[0].get("function") or {}
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        filler = {"string": "Paris", "integer": 1, "number": 1.0, "boolean": True}
        args = {
            p: filler.get((props.get(p) or {}).get("type"), None)
            for p in params.get("required") or []
        }
        return Reply.tool_call(fn.get("name", "tool"), json.dumps(args))
    if last.get("role") == "tool":
        return Reply.text(f"Done: {str(last.get('content'))[:40]}")
    return Reply.text("Hello from the fake.")


def _error_body(message: str, type_: str, *, param: str | None = None, code: str | None = None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _llamacpp_rejects(messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    for i, m in enumerate(messages):
        if m.get("role") == "assistant" and m.get("content") is None:
            # llama-cpp-python's chat formatter fails on None content.
            msg = f'messages[{i}]: can only concatenate str (not "NoneType") to str'
            return 500, _error_body(msg, "internal_server_error")
    return None


def _openai_rejects_fields(messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    """OpenAI's per-field checks: tool-call id length, null content without tool calls."""
    for i, m in enumerate(messages):
        calls = m.get("tool_calls") or []
        ids = [
            (f"messages[{i}].tool_calls[{j}].id", c.get("id") or "") for j, c in enumerate(calls)
        ]
        if m.get("role") == "tool":
            ids.append((f"messages[{i}].tool_call_id", m.get("tool_call_id") or ""))
        for param, value in ids:
            if len(value) > OPENAI_MAX_TOOL_CALL_ID:
                return 400, _error_body(
                    f"Invalid '{param}': string too long. Expected a string with maximum "
                    f"length {OPENAI_MAX_TOOL_CALL_ID}, but got a string with length "
                    f"{len(value)} instead.",
                    "invalid_request_error",
                    param=param,
                    code="string_above_max_length",
                )
        if m.get("role") == "assistant" and m.get("content") is None and not calls:
            return 400, _error_body(
                f"Invalid value for 'messages[{i}].content': expected a string, got null.",
                "invalid_request_error",
                param=f"messages[{i}].content",
                code="invalid_value",
            )
    return None


def _openai_rejects_pairing(messages: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    """OpenAI's pairing rule: each assistant tool call is answered by the tool messages that
    follow it, and a tool message answers a call of the assistant message just before."""
    open_ids: set[str] = set()
    for i, m in enumerate(messages):
        if m.get("role") == "tool":
            tid = m.get("tool_call_id")
            if tid not in open_ids:
                return 400, _error_body(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (messages[{i}].tool_call_id "
                    f"{tid!r}).",
                    "invalid_request_error",
                    param=f"messages.[{i}].role",
                )
            open_ids.discard(tid)
        elif open_ids:
            break  # a non-tool message while calls are unanswered
        elif m.get("role") == "assistant":
            open_ids = {c.get("id") for c in m.get("tool_calls") or []}
    if open_ids:
        return 400, _error_body(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(sorted(open_ids))}",
            "invalid_request_error",
            param="messages",
        )
    return None


def _pieces(text: str) -> list[str]:
    """Fake tokens: words with their trailing space (streamed one per chunk, one logprob each)."""
    return re.findall(r"\S+\s*|\s+", text)


def _chars4(text: str) -> int:
    return math.ceil(len(text) / 4)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeProvider:
        return self.server.fake  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.fake._connections.add(self.connection)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200, {"object": "list", "data": [{"id": self.fake.model, "object": "model"}]}
            )
        else:
            self._json(404, _error_body(f"no route {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._json(400, _error_body("body is not JSON", "invalid_request_error"))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.fake._lock:
            n = len(self.fake.requests)
            self.fake.requests.append(Recorded(self.path, body, headers))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, _error_body(f"no route {self.path}", "not_found"))
            return
        rejected = self.fake._validate(body)
        if rejected is not None:
            self._json(*rejected)
            return
        reply = self.fake._reply(n, body)
        if reply.hang_s:
            time.sleep(reply.hang_s)
        if reply.status != 200:
            self._json(reply.status, reply.error_body or {}, reply.headers)
        elif body.get("stream"):
            self._sse(self.fake._chunks(reply, body), reply.headers)
        else:
            self._json(200, self.fake._completion(reply, body), reply.headers)

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout)
            pass

    def _sse(self, chunks: list[dict[str, Any]], extra: dict[str, str]) -> None:
        self.close_connection = True  # no length: the body ends when the socket closes
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


class FakeProvider(LocalServer):
    """A fake OpenAI-compatible server of one kind (see the module docstring).

    Args:
        kind: ``"vllm"``, ``"llamacpp"`` or ``"openai"``.
        script: Replies per request index (a list; past its end `tool_then_answer` answers), or
            a function ``(n, body) -> Reply``. ``n`` counts every request received, rejected ones
            included.
        model: The model name the server reports.
        port: 0 for a free port.

    Attributes:
        requests: Every request received, in order (`Recorded`).
        url: The base URL to give ``ChatOpenAI(base_url=...)`` (ends in ``/v1``).
    """

    def __init__(
        self,
        kind: Kind = "openai",
        *,
        script: Script | None = None,
        model: str = "fake-model",
        port: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind: Kind = kind
        self.model = model
        self.script = script
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.fake = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- scripting ----------------------------------------------------------------------------

    def _reply(self, n: int, body: dict[str, Any]) -> Reply:
        script = self.script
        if callable(script):
            return script(n, body)
        if script is not None and n < len(script):
            item = script[n]
            return item if isinstance(item, Reply) else item(body)
        return tool_then_answer(n, body)

    # -- validation: the quirks of each kind ---------------------------------------------------

    def _validate(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """(status, error body) when this kind rejects the request, else None."""
        messages = body.get("messages") or []
        if self.kind == "llamacpp":
            return _llamacpp_rejects(messages)
        if self.kind == "openai":
            return _openai_rejects_fields(messages) or _openai_rejects_pairing(messages)
        return None

    # -- building replies ------------------------------------------------------------------------

    def _tool_call_id(self) -> str:
        if self.kind == "vllm":
            return f"chatcmpl-tool-{uuid.uuid4().hex}"  # 14 + 32 = 46 chars
        alphabet = string.ascii_letters + string.digits
        return "call_" + "".join(secrets.choice(alphabet) for _ in range(24))  # 29 chars

    def _limit(self, body: dict[str, Any]) -> int | None:
        """The output cap this kind honours (fake tokens: words)."""
        keys = (
            ("max_tokens",) if self.kind == "llamacpp" else ("max_completion_tokens", "max_tokens")
        )
        for key in keys:
            if body.get(key) is not None:
                return int(body[key])
        return None

    def _resolve(
        self, reply: Reply, body: dict[str, Any]
    ) -> tuple[str | None, list[dict[str, Any]], str]:
        """(content, tool calls with ids, finish_reason) after the token cap."""
        content = reply.content
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        limit = self._limit(body)
        if content is not None and limit is not None and len(_pieces(content)) > limit:
            content, finish = "".join(_pieces(content)[:limit]), "length"
        calls = [
            {
                "id": self._tool_call_id(),
                "type": "function",
                "function": {"name": name, "arguments": args},
            }
            for name, args in reply.tool_calls
        ]
        if self.kind != "vllm" and reply.reasoning is None and content is None and not calls:
            content = ""
        return content, calls, finish

    def _usage(
        self, reply: Reply, body: dict[str, Any], content: str | None, calls: list
    ) -> dict[str, int]:
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = sum(
                _chars4(_text_of(m.get("content"))) + 3 for m in body.get("messages") or []
            )
        completion = reply.completion_tokens
        if completion is None:
            out = (content or "") + (reply.reasoning or "")
            out += "".join(c["function"]["name"] + c["function"]["arguments"] for c in calls)
            completion = _chars4(out)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _logprobs(self, text: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if not body.get("logprobs"):
            return None
        k = int(body.get("top_logprobs") or 0)
        entries = []
        for piece in _pieces(text):
            entry = {"token": piece, "logprob": -0.25, "bytes": list(piece.encode())}
            entry["top_logprobs"] = [
                {"token": piece, "logprob": -0.25, "bytes": list(piece.encode())}
            ][:k]
            entries.append(entry)
        return {"content": entries}

    def _head(self, obj: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": obj,
            "created": int(time.time()),
            "model": self.model,
        }

    def _completion(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        content, calls, finish = self._resolve(reply, body)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        logprobs = self._logprobs(content or "", body)
        if logprobs is not None:
            choice["logprobs"] = logprobs
        return {
            **self._head("chat.completion"),
            "choices": [choice],
            "usage": self._usage(reply, body, content, calls),
        }

    def _chunks(self, reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
        content, calls, finish = self._resolve(reply, body)
        head = self._head("chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any):
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, **extra}
            return {**head, "choices": [choice]}

        out = [chunk({"role": "assistant", "content": "" if content is not None else None})]
        for piece in _pieces(reply.reasoning or ""):
            out.append(chunk({"reasoning_content": piece}))
        for piece in _pieces(content or ""):
            logprobs = self._logprobs(piece, body)
            out.append(chunk({"content": piece}, **({"logprobs": logprobs} if logprobs else {})))
        for i, call in enumerate(calls):
            fn = call["function"]
            first = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": fn["name"], "arguments": ""},
            }
            out.append(chunk({"tool_calls": [first]}))
            args = fn["arguments"]
            for start in range(0, len(args), 8):
                part = {"index": i, "function": {"arguments": args[start : start + 8]}}
                out.append(chunk({"tool_calls": [part]}))
        out.append(chunk({}, finish))
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants_usage and self.kind != "llamacpp":
            out.append({**head, "choices": [], "usage": self._usage(reply, body, content, calls)})
        return out
