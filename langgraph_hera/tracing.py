"""What routing and supervision decisions write into LangSmith traces.

Every decision becomes a small child run named ``route_decision`` (or ``supervisor_decision``)
whose metadata carries the keys below and whose tags say the target (``hera:edge`` /
``hera:cloud``); the model call that follows carries the same metadata. In LangSmith, filter with
``metadata_key = "hera_target"`` or the tag.

Metadata keys (documented, stable): ``hera_step``, ``hera_target``, ``hera_score``,
``hera_threshold``, ``hera_policy``, ``hera_reason``, ``hera_latency_ms``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs

METADATA_KEYS = (
    "hera_step",
    "hera_target",
    "hera_score",
    "hera_threshold",
    "hera_policy",
    "hera_reason",
    "hera_latency_ms",
)


def decision_metadata(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The run metadata for a decision (``hera_<field>`` for each field)."""
    return {f"hera_{key}": value for key, value in decision.items()}


def decision_config(
    decision: Mapping[str, Any], config: RunnableConfig | None = None, *, kind: str = "route"
) -> RunnableConfig:
    """``config`` extended with the decision's metadata and a ``hera:<target>`` tag."""
    target = decision.get("target", decision.get("action", kind))
    extra: RunnableConfig = {
        "metadata": decision_metadata(decision),
        "tags": [f"hera:{target}"],
    }
    return merge_configs(config or {}, extra)


def _echo(decision: dict[str, Any]) -> dict[str, Any]:
    return decision


_ROUTE_RUN = RunnableLambda(_echo, name="route_decision")
_SUPERVISOR_RUN = RunnableLambda(_echo, name="supervisor_decision")


def _runnable(kind: str) -> RunnableLambda:
    return _SUPERVISOR_RUN if kind == "supervisor" else _ROUTE_RUN


def trace_decision(
    decision: Mapping[str, Any], config: RunnableConfig | None = None, *, kind: str = "route"
) -> None:
    """Record ``decision`` as a child run of the current node (no-op without tracing)."""
    _runnable(kind).invoke(dict(decision), decision_config(decision, config, kind=kind))


async def atrace_decision(
    decision: Mapping[str, Any], config: RunnableConfig | None = None, *, kind: str = "route"
) -> None:
    """Async `trace_decision`."""
    await _runnable(kind).ainvoke(dict(decision), decision_config(decision, config, kind=kind))
