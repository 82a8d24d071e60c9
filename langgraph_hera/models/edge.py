"""Chat models for the edge: an OpenAI-compatible client tuned for vLLM and llama.cpp servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlparse

from langchain_core.language_models import LanguageModelInput
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import ensure_config
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

#: The request header that carries the running thread's id to the edge (`ChatEdge.session_header`):
#: the vLLM production-stack router's ``--routing-logic session --session-key x-session-id`` and
#: vLLM's Rust router (``consistent_hash``, ``X-Session-ID`` first) keep a session on one replica.
SESSION_HEADER = "x-session-id"


def current_thread_id() -> str | None:
    """The ``configurable.thread_id`` of the graph run this code is called from, or ``None``
    (outside a run, or a run without a checkpointer thread)."""
    thread = (ensure_config().get("configurable") or {}).get("thread_id")
    return None if thread is None or thread == "" else str(thread)


class ChatEdge(ChatOpenAI):
    """`ChatOpenAI` for vLLM / llama.cpp OpenAI-compatible servers, with their quirks handled.

    - sends ``max_tokens`` (llama.cpp ignores ``max_completion_tokens``; vLLM takes both);
    - sends ``""`` instead of ``null`` assistant content (llama.cpp answers 500 otherwise);
    - always uses the Chat Completions API, and asks for usage in streams;
    - gives each event loop its own async HTTP client: `ChatOpenAI` shares one cached
      ``httpx.AsyncClient`` per URL, whose pooled connections die with the loop that opened
      them ("Event loop is closed" on the next ``asyncio.run``);
    - sends the running graph's thread id as a session header (``session_header``), so a
      sticky load balancer keeps each thread on one replica and its prefix cache.
    """

    server_backend: str | None = None
    """The server behind ``base_url``: ``"vllm"``, ``"llamacpp"`` or None (unknown: treated as
    vLLM). Decides how answers are constrained (`langgraph_hera.routing.decoding`)."""

    session_header: str | None = SESSION_HEADER
    """Request header set to the thread id (``configurable.thread_id``) of the graph run that
    makes the call, read at call time in sync, async and streaming calls; not sent outside a
    thread. ``None``: never sent. Session-affine routers (the vLLM production-stack router with
    ``--routing-logic session --session-key x-session-id``, or any load balancer hashing on a
    header) then keep every turn of a thread on the replica that holds its prefix cache.
    Non-ASCII thread ids are percent-encoded. Likelihood ranking (``decoding="rank"``) posts
    its own requests without it."""

    _client_loop: Any = PrivateAttr(default=None)

    def _with_session(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` plus the session header in ``extra_headers`` (the OpenAI client sends
        them as HTTP headers), when there is a thread."""
        thread = current_thread_id() if self.session_header else None
        if thread is None:
            return kwargs
        if not (thread.isascii() and thread.isprintable()):
            thread = quote(thread, safe="")
        headers = {**(kwargs.get("extra_headers") or {}), self.session_header: thread}
        return {**kwargs, "extra_headers": headers}

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        return super()._generate(*args, **self._with_session(kwargs))

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(*args, **self._with_session(kwargs))

    def _bind_async_client_to_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._client_loop is loop or self.root_async_client is None:
            return
        if self._client_loop is not None or self.http_async_client is None:
            import httpx

            timeout = self.request_timeout if self.request_timeout is not None else 120.0
            client = httpx.AsyncClient(timeout=timeout)  # type: ignore[arg-type]
            self.root_async_client = self.root_async_client.copy(http_client=client)
            self.async_client = self.root_async_client.chat.completions
        self._client_loop = loop

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        self._bind_async_client_to_loop()
        return await super()._agenerate(*args, **self._with_session(kwargs))

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        self._bind_async_client_to_loop()
        async for chunk in super()._astream(*args, **self._with_session(kwargs)):
            yield chunk

    @property
    def _llm_type(self) -> str:
        return "hera-edge"

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        for message in payload.get("messages", []):
            if message.get("content") is None:
                message["content"] = ""
        return payload

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "openai-compatible"
        return params


def edge_chat_model(
    base_url: str,
    model: str,
    *,
    api_key: str = "EMPTY",
    max_tokens: int = 256,
    temperature: float = 0.0,
    timeout: float = 120.0,
    max_retries: int = 1,
    backend: str | None = None,
    session_header: str | None = SESSION_HEADER,
    **kwargs: Any,
) -> ChatEdge:
    """A chat model for an edge model behind a vLLM (or llama.cpp) OpenAI-compatible server.

    Args:
        base_url: The server's ``/v1`` URL, e.g. ``"http://127.0.0.1:8000/v1"``
            (`EdgeServer.base_url`).
        model: The served model name.
        api_key: vLLM accepts any key unless started with ``--api-key``.
        max_tokens: Generation cap per call.
        temperature: Sampling temperature (0 = greedy, reproducible routing data).
        timeout: Seconds per request (CPU servers answer first requests slowly).
        max_retries: Client retries; low by default so a dead edge fails over to the cloud fast.
        backend: The server kind, ``"vllm"`` or ``"llamacpp"`` (`EdgeServer.backend`); None:
            vLLM. A llama.cpp server gets a GBNF grammar where vLLM gets structured outputs.
        session_header: Header carrying the running graph's thread id, for session-affine
            load balancers in front of several edge replicas (`ChatEdge.session_header`);
            ``None`` to send none.
        **kwargs: Passed to `ChatOpenAI`.

    Raises:
        ValueError: ``base_url`` is not an http(s) URL, or ``model`` is empty.

    Example:
        >>> edge = edge_chat_model("http://127.0.0.1:8000/v1", "Qwen/Qwen3-4B")
    """
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL like 'http://127.0.0.1:8000/v1', got {base_url!r}"
        )
    if not model:
        raise ValueError("model must be the served model name, got an empty string")
    if backend not in (None, "vllm", "llamacpp"):
        raise ValueError(f"backend must be 'vllm', 'llamacpp' or None, got {backend!r}")
    return ChatEdge(
        base_url=base_url,
        model=model,
        api_key=api_key,  # type: ignore[arg-type]
        max_tokens=max_tokens,  # type: ignore[call-arg]
        temperature=temperature,
        timeout=timeout,
        max_retries=max_retries,
        stream_usage=True,
        use_responses_api=False,
        server_backend=backend,
        session_header=session_header,
        **kwargs,
    )
