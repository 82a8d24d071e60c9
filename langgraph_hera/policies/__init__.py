"""Routing policies behind one interface, with a registry by name.

Baselines: `AlwaysEdge`, `AlwaysCloud`, `RandomPolicy`, `TaskLevelRouter` (one decision per task,
HybridLLM-style) and `ThresholdRouter` (per-step score + calibrated threshold, RouteLLM-style).
The learned step-level router: `HeraRouter` (Hera; stage 1, imitation from replayed cloud
trajectories). The HERA/AIMS subtask scheduler: `HeraScheduler` (estimators over an offline
profile, `profile_tasks`).
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
from langgraph_hera.policies.hera import (
    FeatureSpec,
    HashedEmbedder,
    HeraFeaturizer,
    HeraRouter,
    TrainConfig,
    imitation_dataset,
    route_inputs_from_records,
)
from langgraph_hera.policies.hera_scheduler import (
    HeraScheduler,
    SchedulerProfile,
    profile_chat_tasks,
    profile_tasks,
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
    "TrainConfig",
    "imitation_dataset",
    "route_inputs_from_records",
    "RandomPolicy",
    "RouteInput",
    "RoutingPolicy",
    "TaskLevelRouter",
    "ThresholdRouter",
    "available_policies",
    "calibrate_threshold",
    "get_policy",
    "profile_chat_tasks",
    "profile_tasks",
    "register_policy",
]
