"""What one side produced, made acceptable to the other: message normalisation and reply checks.

A routed conversation moves between two providers with different rules. vLLM names tool calls
``chatcmpl-tool-`` + 32 hex characters (46), OpenAI-style clouds cap ids at 40; a reasoning
parser puts text in ``reasoning_content``; a reply cut off by the token limit carries tool-call
arguments that are not JSON; a call left unanswered (an earlier run that halted) makes the next
request of the thread a 400 on both sides. Two functions keep the thread valid for either side:

- `to_wire` rewrites the messages sent to a model (deterministically, so a tool call and its
  result keep their pairing on every call): long or odd tool-call ids, provider-only content
  blocks and keys, unanswered calls and orphan results;
- `unusable_reply` says why a reply must not enter the thread (empty, truncated, invalid tool
  calls): the edge's step then fails over to the cloud.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage

#: The strictest tool-call id rule among the providers we route to (OpenAI: at most 40).
MAX_TOOL_CALL_ID = 40
_ID_OK = re.compile(r"^[A-Za-z0-9_-]+$")
#: Content blocks every chat-completions provider accepts in an assistant message.
_TEXT_BLOCKS = ("text",)
#: Provider-only keys of ``additional_kwargs`` that another provider may reject.
_PROVIDER_KEYS = ("reasoning_content", "reasoning", "refusal", "audio")
#: What a tool result says when its call was never executed (the run stopped before).
UNANSWERED_CALL = "error: this tool call was not executed (the run stopped before it ran)"


def wire_tool_call_id(call_id: str) -> str:
    """A tool-call id every provider accepts: ``call_id`` itself when it is short and plain,
    else ``"call_"`` + 32 hex characters of its SHA-256 (deterministic, 37 characters)."""
    if call_id and len(call_id) <= MAX_TOOL_CALL_ID and _ID_OK.match(call_id):
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[:32]


def _text_content(content: Any) -> str | list[Any]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    blocks = [
        b
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") in _TEXT_BLOCKS)
    ]
    if not blocks:
        return ""
    if len(blocks) == 1 and isinstance(blocks[0], dict):
        return str(blocks[0].get("text", ""))
    return blocks


def _wire_ai(message: AIMessage) -> AIMessage:
    kwargs = {k: v for k, v in message.additional_kwargs.items() if k not in _PROVIDER_KEYS}
    kwargs.pop("tool_calls", None)  # rebuilt from `tool_calls` by the provider's converter
    kwargs.pop("function_call", None)
    calls = [{**c, "id": wire_tool_call_id(str(c.get("id") or ""))} for c in message.tool_calls]
    return message.model_copy(
        update={
            "content": _text_content(message.content),
            "additional_kwargs": kwargs,
            "tool_calls": calls,
            "invalid_tool_calls": [],
        }
    )


def to_wire(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages as any chat-completions provider accepts them.

    - tool-call ids longer than 40 characters or with other characters than letters, digits,
      ``_`` and ``-`` are replaced by `wire_tool_call_id` (in the call and in its result);
    - assistant content keeps its text blocks only (reasoning / thinking blocks and
      provider-only keys such as ``reasoning_content`` are dropped); ``None`` becomes ``""``;
    - invalid tool calls (arguments that are not JSON) are dropped;
    - a tool call without a result gets one saying it was not executed (`UNANSWERED_CALL`),
      right after its assistant message; a tool result whose call is not in the preceding
      assistant message is dropped.

    Deterministic: the same messages always give the same output. The input is not modified.
    """
    out: list[BaseMessage] = []
    pending: list[str] = []  # wire ids of the last assistant message's unanswered calls

    def close_pending() -> None:
        for call_id in pending:
            out.append(ToolMessage(UNANSWERED_CALL, tool_call_id=call_id, status="error"))
        pending.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            wire_id = wire_tool_call_id(str(message.tool_call_id))
            if wire_id in pending:
                pending.remove(wire_id)
                out.append(message.model_copy(update={"tool_call_id": wire_id}))
            # else: an orphan result (its call is gone or was answered already): dropped
            continue
        close_pending()
        if isinstance(message, AIMessage):
            wired = _wire_ai(message)
            # Every call of this message waits for its result, even an id an earlier message
            # used too (servers that number calls per reply, e.g. "functions.get_weather:0").
            pending.extend(str(c["id"]) for c in wired.tool_calls)
            out.append(wired)
        else:
            out.append(message)
    close_pending()
    return out


def unusable_reply(message: BaseMessage | None) -> str | None:
    """Why a model reply must not enter the thread, or ``None`` when it is usable.

    Unusable: no reply; an empty reply (no text and no tool calls, e.g. the text only in a
    reasoning parser's ``reasoning_content``); tool calls whose arguments are not valid JSON
    (``invalid_tool_calls``); a reply cut off by the token limit (``finish_reason`` /
    ``stop_reason`` ``"length"`` / ``"max_tokens"``).
    """
    if message is None:
        return "no reply"
    if not isinstance(message, AIMessage):
        return f"reply is a {type(message).__name__}, not an AIMessage"
    meta = message.response_metadata or {}
    finish = meta.get("finish_reason") or meta.get("stop_reason")
    if finish in ("length", "max_tokens"):
        what = "tool call" if message.tool_calls or message.invalid_tool_calls else "reply"
        return f"{what} cut off by the token limit (finish_reason={finish!r})"
    if message.invalid_tool_calls:
        bad = message.invalid_tool_calls[0]
        return (
            f"invalid tool call {bad.get('name')!r}: arguments are not valid JSON "
            f"({str(bad.get('args'))[:80]!r})"
        )
    raw = _raw_args_problem(message)
    if raw is not None:
        return (
            f"invalid tool call {raw[0]!r}: arguments are not valid JSON "
            f"({raw[1][:80]!r}, parsed leniently from a stream)"
        )
    text = message.text if isinstance(message.text, str) else str(message.text)
    if not text.strip() and not message.tool_calls:
        hidden = " (text only in reasoning_content)" if _has_reasoning(message) else ""
        return f"empty reply{hidden}"
    return None


def _raw_args_problem(message: AIMessage) -> tuple[str, str] | None:
    """(name, raw arguments) of the first tool call whose raw arguments are not a JSON object.

    A streamed reply's tool calls are parsed leniently when chunks are merged
    (``parse_partial_json``: ``'{"city": '`` becomes ``{}``), so ``invalid_tool_calls`` stays
    empty; the raw strings survive in ``tool_call_chunks`` and in OpenAI-compatible replies'
    ``additional_kwargs["tool_calls"]``.
    """
    raw: list[tuple[Any, Any]] = [
        (c.get("name"), c.get("args")) for c in getattr(message, "tool_call_chunks", None) or []
    ]
    for call in message.additional_kwargs.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            raw.append((fn.get("name"), fn.get("arguments")))
    for name, args in raw:
        if not isinstance(args, str) or not args.strip():
            continue
        try:
            parsed = json.loads(args)
        except ValueError:
            return str(name), args
        if not isinstance(parsed, dict):
            return str(name), args
    return None


def merge_chunks(chunks: Sequence[BaseMessage]) -> AIMessageChunk | None:
    """The whole streamed reply as one chunk, closed as the last chunk would close it.

    Keeps ``tool_call_chunks`` (the raw argument strings), which `unusable_reply` checks: the
    lenient parse of merged chunks would otherwise turn cut-off arguments into ``{}``.
    """
    pieces = [
        c.model_copy(update={"chunk_position": None})
        if isinstance(c, AIMessageChunk)
        else AIMessageChunk(content=c.content)
        for c in chunks
    ]
    if not pieces:
        return None
    total = pieces[0]
    for piece in pieces[1:]:
        total = total + piece
    return total + AIMessageChunk(content="", chunk_position="last")


def streamed(config: Mapping[str, Any] | None) -> bool:
    """True when the run is streamed token by token (``stream_mode="messages"`` or an
    ``astream_events`` consumer): some callback handler asks for the tokens."""
    from langchain_core.tracers._streaming import _StreamingCallbackHandler

    callbacks = (config or {}).get("callbacks")
    handlers = getattr(callbacks, "handlers", callbacks) or []
    return any(isinstance(h, _StreamingCallbackHandler) for h in handlers)


def _has_reasoning(message: AIMessage) -> bool:
    if message.additional_kwargs.get("reasoning_content"):
        return True
    content = message.content
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in ("reasoning", "thinking") for b in content
    )
