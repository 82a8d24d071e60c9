"""Edge / cloud chat-model helpers, the local edge server and the routed chat model."""

from typing import Any

from langgraph_hera.models.cache import (
    CACHE_HIT_KEY,
    ProposalCache,
    ProposalCacheError,
    is_cache_hit,
)
from langgraph_hera.models.edge import ChatEdge, edge_chat_model
from langgraph_hera.models.routed import RoutedChatModel

__all__ = [
    "CACHE_HIT_KEY",
    "ChatEdge",
    "EdgeServer",
    "EdgeServerError",
    "ProposalCache",
    "ProposalCacheError",
    "RoutedChatModel",
    "edge_chat_model",
    "is_cache_hit",
]


def __getattr__(name: str) -> Any:
    # The server module is only imported when used (it is not heavy, but keeps import lean).
    if name in ("EdgeServer", "EdgeServerError"):
        from langgraph_hera.models import _server

        return getattr(_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
