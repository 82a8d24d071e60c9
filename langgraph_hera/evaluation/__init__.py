"""Evaluation: the episode runner, the trajectory schema, routing metrics and `hera bench`."""

from langgraph_hera.evaluation.metrics import (
    OracleEpisode,
    Point,
    apgr,
    cpt,
    oracle_episodes,
    oracle_frontier,
    oracle_summary,
    pgr,
)
from langgraph_hera.evaluation.runner import EpisodeResult, EpisodeRunner, summarize
from langgraph_hera.evaluation.trajectory import STEP_SCHEMA, iter_steps, write_parquet

__all__ = [
    "STEP_SCHEMA",
    "EpisodeResult",
    "EpisodeRunner",
    "OracleEpisode",
    "Point",
    "apgr",
    "cpt",
    "iter_steps",
    "oracle_episodes",
    "oracle_frontier",
    "oracle_summary",
    "pgr",
    "summarize",
    "write_parquet",
]
