"""The trajectory schema: one record per executed step, stored as JSONL and Parquet.

Every run of the episode runner appends one JSON line per step to ``steps.jsonl`` and, at the
end, rewrites ``steps.parquet`` from it. ``hera record --also-edge`` fills ``edge_action`` at
every state of a cloud trajectory, which is the replay data Hera's imitation stage learns from
(label: ``agree``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

#: Field -> meaning, in file order. ``suite`` .. ``policy`` come from the runner, the rest from
#: the environment node (`langgraph_hera.routing.env_node.TRAJECTORY_FIELDS`).
STEP_SCHEMA: dict[str, str] = {
    "suite": "environment suite (twc, cookingworld, coin, alfworld)",
    "seed": "episode seed (its fold follows from its range)",
    "task": "task description",
    "policy": "routing policy of the run",
    "step": "step index in the episode, from 0",
    "observation": "what the agent saw before acting",
    "valid_actions": "actions the environment accepted at that state",
    "prompt": "user part of the prompt sent to the model(s)",
    "edge_action": "the edge model's action (proposed or executed); null if not asked",
    "edge_valid": "whether the edge's reply mapped onto a valid action",
    "edge_logprob": "log-probability of the edge's action, when the server returned one",
    "edge_margin": "nats the edge's proposal was ahead of its runner-up (reply_margin), "
    "when the server returned alternatives",
    "cloud_action": "the cloud's action when the cloud ran the step; null otherwise",
    "agree": "edge_action == cloud_action (both present); the imitation label",
    "target": "where the step ran: edge or cloud",
    "score": "the policy's score for the step",
    "action": "the executed action",
    "action_valid": "whether the executed action was a valid one",
    "action_logprob": "log-probability of the executed action (edge only)",
    "next_observation": "the environment's answer",
    "reward": "reward of the step",
    "game_score": "the game's score after the step (EnvStep.score)",
    "done": "whether the episode ended at this step",
    "success": "whether the task was accomplished at this step",
    "input_tokens": "prompt tokens of the executed call",
    "output_tokens": "completion tokens of the executed call",
    "usd": "list-price cost of the executed call (0 on the edge)",
    "latency_ms": "wall time of the executed call",
    "decision_ms": "time the routing decision took",
    "episode_success": "whether the episode this step belongs to succeeded",
    "cloud": "what the cloud was when it was a stand-in: 'expert stand-in', or 'local LLM "
    "stand-in for a cloud model (...)'",
}
#: Present only in some runs: ``cloud_prompt``, the cloud's prompt when its layout differs from
#: the edge's (``--cloud-prompt-layout``), and ``expert_distance`` / ``expert_distance_before``
#: (supervised runs).


def iter_steps(path: str | Path) -> Iterator[dict[str, Any]]:
    """The step records of a ``steps.jsonl`` or ``steps.parquet`` file (or a run directory).

    Malformed JSON lines (a run killed mid-write) are skipped with a warning.

    Raises:
        FileNotFoundError: Nothing to read at ``path``.
        ValueError: The file is neither ``.jsonl`` nor ``.parquet``.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "steps.jsonl"
    if not p.exists():
        raise FileNotFoundError(f"no trajectory file at {p}")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(p).to_pylist()
        return
    if p.suffix != ".jsonl":
        raise ValueError(f"{p}: expected a .jsonl or .parquet file")
    with p.open() as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d: skipping a malformed line", p, i)


def write_parquet(jsonl: str | Path, parquet: str | Path | None = None) -> Path | None:
    """Rewrite ``jsonl`` as Parquet (default: same name, ``.parquet``).

    Returns:
        The Parquet path, or ``None`` when pyarrow is not installed (logged) or there are no
        records.
    """
    src = Path(jsonl)
    dst = Path(parquet) if parquet else src.with_suffix(".parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        logger.warning("pyarrow is not installed: %s not written (pip install pyarrow)", dst)
        return None
    rows = list(iter_steps(src))
    if not rows:
        return None
    columns = list(STEP_SCHEMA) + sorted({k for r in rows for k in r} - set(STEP_SCHEMA))
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    tmp = dst.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(dst)
    return dst
