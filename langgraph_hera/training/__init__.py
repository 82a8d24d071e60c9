"""Training: recorded steps, labels, imitation, cost-aware RL, scheduler profiling, LoRA.

Everything here runs offline, before deployment; the decision-time halves (`HeraRouter`,
`HeraScheduler`, the featurizer) live in `langgraph_hera.policies`, which never imports this
package.

- `trajectory`: the step-record schema (``steps.jsonl``), `iter_steps`.
- `records`: recorded steps -> decision-time `RouteInput` s, `imitation_dataset`.
- `classifier`: `fit_router` (the router's numpy classifier), `TrainConfig`, `auc_score`.
- `rl`: `ExploringPolicy`, `state_key`, `relabel` (Hera stage 2 over grouped states).
- `replay`: `deviation_values`, `replay_labels` (the edge's proposals replayed in the game).
- `router`: the ``hera train`` loop (`label_records`, `fit_imitation`, `run_rl_rounds`).
- `profiling`: `profile_tasks`, `profile_chat_tasks` (the HERA/AIMS scheduler's profile).
- `lora`: `train_adapter` (``hera adapt``: LoRA SFT of the edge on recorded cloud actions).
"""

from langgraph_hera.training.classifier import (
    TrainConfig,
    auc_score,
    fit_router,
    fit_router_features,
)
from langgraph_hera.training.profiling import profile_chat_tasks, profile_tasks
from langgraph_hera.training.records import (
    imitation_dataset,
    route_inputs_from_records,
    split_episodes,
)
from langgraph_hera.training.replay import (
    Deviation,
    ReplayLabels,
    deviation_values,
    replay_labels,
)
from langgraph_hera.training.rl import (
    ExploringPolicy,
    GroupStats,
    RelabelResult,
    relabel,
    state_key,
)
from langgraph_hera.training.router import (
    RLConfig,
    RouterTrainingRun,
    fit_imitation,
    label_records,
    run_rl_rounds,
)
from langgraph_hera.training.trajectory import STEP_SCHEMA, iter_steps, write_parquet

__all__ = [
    "STEP_SCHEMA",
    "Deviation",
    "ExploringPolicy",
    "GroupStats",
    "RLConfig",
    "RelabelResult",
    "ReplayLabels",
    "RouterTrainingRun",
    "TrainConfig",
    "auc_score",
    "deviation_values",
    "fit_imitation",
    "fit_router",
    "fit_router_features",
    "imitation_dataset",
    "iter_steps",
    "label_records",
    "profile_chat_tasks",
    "profile_tasks",
    "relabel",
    "replay_labels",
    "route_inputs_from_records",
    "run_rl_rounds",
    "split_episodes",
    "state_key",
    "write_parquet",
]
