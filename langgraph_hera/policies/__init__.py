"""Routing policies behind one interface, with a registry by name.

Baselines: `AlwaysEdge`, `AlwaysCloud`, `RandomPolicy`, `TaskLevelRouter` (one decision per task,
HybridLLM-style) and `ThresholdRouter` (per-step score + calibrated threshold, RouteLLM-style).
The learned step-level router: `HeraRouter` (Hera; stage 1, imitation from replayed cloud
trajectories). The HERA/AIMS subtask scheduler: `HeraScheduler` (estimators over an offline
profile built by `langgraph_hera.training.profile_tasks`).

This package is the decision-time layer: it imports nothing from routing, training or
evaluation. Training helpers that used to be importable from here (`TrainConfig`,
`imitation_dataset`, `route_inputs_from_records`, `profile_tasks`, `profile_chat_tasks`) still
are, resolved lazily from `langgraph_hera.training`.
"""

from langgraph_hera._compat import moved
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
from langgraph_hera.policies.hera import (
    FeatureSpec,
    HashedEmbedder,
    HeraFeaturizer,
    HeraRouter,
    shipped_router,
)
from langgraph_hera.policies.hera_scheduler import HeraScheduler, SchedulerProfile

__getattr__ = moved(
    __name__,
    {
        "TrainConfig": "langgraph_hera.training.classifier",
        "imitation_dataset": "langgraph_hera.training.records",
        "route_inputs_from_records": "langgraph_hera.training.records",
        "profile_tasks": "langgraph_hera.training.profiling",
        "profile_chat_tasks": "langgraph_hera.training.profiling",
    },
)

__all__ = [
    "SCORERS",
    "AlwaysCloud",
    "AlwaysEdge",
    "FeatureSpec",
    "HashedEmbedder",
    "HeraFeaturizer",
    "HeraRouter",
    "HeraScheduler",
    "SchedulerProfile",
    "RandomPolicy",
    "RouteInput",
    "RoutingPolicy",
    "TaskLevelRouter",
    "ThresholdRouter",
    "available_policies",
    "calibrate_threshold",
    "get_policy",
    "register_policy",
    "shipped_router",
]
