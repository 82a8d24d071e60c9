"""Edge / cloud chat-model helpers and the local edge server.

`RoutedChatModel` moved up to `langgraph_hera.routing` (it decides); the old import path still
works, lazily.
"""

from langgraph_hera._compat import moved
from langgraph_hera.models._server import EdgeServer, EdgeServerError, edge_endpoint
from langgraph_hera.models.cache import (
    CACHE_HIT_KEY,
    ProposalCache,
    ProposalCacheError,
    is_cache_hit,
)
from langgraph_hera.models.edge import ChatEdge, edge_chat_model

__all__ = [
    "CACHE_HIT_KEY",
    "ChatEdge",
    "EdgeServer",
    "EdgeServerError",
    "ProposalCache",
    "ProposalCacheError",
    "edge_chat_model",
    "edge_endpoint",
    "is_cache_hit",
]

__getattr__ = moved(__name__, {"RoutedChatModel": "langgraph_hera.routing.routed"})
