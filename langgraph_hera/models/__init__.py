"""Edge / cloud chat-model helpers, the local edge server and the routed chat model."""

from typing import Any

from langgraph_hera.models.edge import ChatEdge, edge_chat_model
from langgraph_hera.models.routed import RoutedChatModel

__all__ = ["ChatEdge", "EdgeServer", "EdgeServerError", "RoutedChatModel", "edge_chat_model"]


def __getattr__(name: str) -> Any:
    # The server module is only imported when used (it is not heavy, but keeps import lean).
    if name in ("EdgeServer", "EdgeServerError"):
        from langgraph_hera.models import _server

        return getattr(_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
