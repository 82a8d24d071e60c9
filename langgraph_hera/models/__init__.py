"""Edge / cloud chat-model helpers, the local edge server and the routed chat model."""

from langgraph_hera.models._server import EdgeServer, EdgeServerError, edge_endpoint
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
    "edge_endpoint",
    "is_cache_hit",
]
