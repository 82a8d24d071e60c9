"""Markers that model wrappers put on replies and the ledger reads.

They live here, at the bottom layer, so that accounting never imports the ``models`` package
(which imports accounting): `models.cache.ProposalCache` marks the replies it serves and
`entry_from_message` reads the mark.
"""

from __future__ import annotations

from langchain_core.messages import BaseMessage

__all__ = ["CACHE_HIT_KEY", "is_cache_hit", "mark_cache_hit"]

CACHE_HIT_KEY = "hera_cache_hit"
"""The ``response_metadata`` (and ``generation_info``) key set to True on cached answers."""


def is_cache_hit(message: BaseMessage) -> bool:
    """Whether ``message`` was served from a `ProposalCache`.

    Args:
        message: A message returned by a chat model.

    Returns:
        True when its ``response_metadata`` carries the ``hera_cache_hit`` marker.
    """
    return bool((getattr(message, "response_metadata", None) or {}).get(CACHE_HIT_KEY))


def mark_cache_hit(message: BaseMessage) -> BaseMessage:
    """Mark ``message`` (in place) as served from a cache; returns it.

    The metadata dict is replaced, not mutated, so a dict shared with another message keeps
    no marker.
    """
    message.response_metadata = {**(message.response_metadata or {}), CACHE_HIT_KEY: True}
    return message
