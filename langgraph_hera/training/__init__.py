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
- `traces`: step records of any routed tool-calling agent (`steps_from_state`,
  `steps_from_messages`, `record_thread`, `TraceStore`, `TRACE_SCHEMA`) and the edge's replay
  (`replay_traces`, `replay_traces_ray`).
- `labels`: agreement of tool calls and answers, outcome-aware labels (`label_traces`).
- `tool_router`: `train_on_traces`, `calibrate_on_traces` (``hera train --traces``).

The loop for your own agent: record -> `replay_traces` -> `label_traces` -> `train_on_traces`
-> ``HeraRouter(path)`` in the router node, the middleware or `RoutedChatModel`.
"""

from langgraph_hera.training.classifier import (
    TrainConfig,
    auc_score,
    fit_router,
    fit_router_features,
)
from langgraph_hera.training.labels import (
    LabeledStep,
    canonical_args,
    label_step,
    label_traces,
    replies_agree,
    same_tool_calls,
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
from langgraph_hera.training.tool_router import (
    TraceTrainingRun,
    calibrate_on_traces,
    route_input_from_step,
    train_on_traces,
)
from langgraph_hera.training.trace_replay import (
    ReplaySummary,
    areplay_traces,
    replay_traces,
    replay_traces_ray,
)
from langgraph_hera.training.traces import (
    REPLAY_SCHEMA,
    TRACE_SCHEMA,
    TraceStore,
    record_thread,
    steps_from_messages,
    steps_from_state,
)
from langgraph_hera.training.trajectory import STEP_SCHEMA, iter_steps, write_parquet

__all__ = [
    "REPLAY_SCHEMA",
    "STEP_SCHEMA",
    "TRACE_SCHEMA",
    "LabeledStep",
    "ReplaySummary",
    "TraceStore",
    "TraceTrainingRun",
    "areplay_traces",
    "calibrate_on_traces",
    "canonical_args",
    "label_step",
    "label_traces",
    "record_thread",
    "replay_traces",
    "replay_traces_ray",
    "replies_agree",
    "route_input_from_step",
    "same_tool_calls",
    "steps_from_messages",
    "steps_from_state",
    "train_on_traces",
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
