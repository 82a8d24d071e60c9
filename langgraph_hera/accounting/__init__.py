"""Token, USD, edge-energy and KV-cache accounting."""

from langgraph_hera.accounting.ledger import CostLedger, entry_from_message
from langgraph_hera.accounting.pricing import (
    GPT_4O,
    ModelPrice,
    Pricing,
    edge_energy_joules,
    kv_cache_bytes,
)

__all__ = [
    "GPT_4O",
    "CostLedger",
    "ModelPrice",
    "Pricing",
    "edge_energy_joules",
    "entry_from_message",
    "kv_cache_bytes",
]
