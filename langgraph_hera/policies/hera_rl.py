"""Old home of Hera stage 2 (cost-aware RL, replay labels); now in `langgraph_hera.training`.

`ExploringPolicy`, `state_key`, `relabel` and friends live in `langgraph_hera.training.rl`;
`deviation_values` / `replay_labels` in `langgraph_hera.training.replay`. The old names resolve
lazily from here (policies are the decision-time layer and do not import training).
"""

from langgraph_hera._compat import moved

_RL = "langgraph_hera.training.rl"
_REPLAY = "langgraph_hera.training.replay"

__getattr__ = moved(
    __name__,
    {
        "ExploringPolicy": _RL,
        "GroupStats": _RL,
        "RelabelResult": _RL,
        "relabel": _RL,
        "state_key": _RL,
        "Deviation": _REPLAY,
        "ReplayLabels": _REPLAY,
        "deviation_values": _REPLAY,
        "replay_labels": _REPLAY,
        "route_inputs_from_records": "langgraph_hera.training.records",
        "split_episodes": "langgraph_hera.training.records",
    },
)
