"""Routing policies behind one interface, with a registry by name.

Baselines: `AlwaysEdge`, `AlwaysCloud`, `RandomPolicy`, `TaskLevelRouter` (one decision per task,
HybridLLM-style) and `ThresholdRouter` (per-step score + calibrated threshold, RouteLLM-style).
"""

from langgraph_hera.policies.base import (
    RouteInput,
    RoutingPolicy,
    available_policies,
    calibrate_threshold,
    get_policy,
    register_policy,
)
from langgraph_hera.policies.baselines import (
    SCORERS,
    AlwaysCloud,
    AlwaysEdge,
    RandomPolicy,
    TaskLevelRouter,
    ThresholdRouter,
)

__all__ = [
    "SCORERS",
    "AlwaysCloud",
    "AlwaysEdge",
    "RandomPolicy",
    "RouteInput",
    "RoutingPolicy",
    "TaskLevelRouter",
    "ThresholdRouter",
    "available_policies",
    "calibrate_threshold",
    "get_policy",
    "register_policy",
]
