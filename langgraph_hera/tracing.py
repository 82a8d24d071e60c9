"""What routing and supervision decisions write into LangSmith traces.

Every decision becomes a small child run named ``route_decision`` (or ``supervisor_decision``)
whose metadata carries the keys below and whose tags say the target (``hera:edge`` /
``hera:cloud``); the model call that follows carries the same metadata. In LangSmith, filter with
``metadata_key = "hera_target"`` or the tag.

Metadata keys (documented, stable): ``hera_step``, ``hera_target``, ``hera_score``,
``hera_threshold``, ``hera_policy``, ``hera_reason``, ``hera_latency_ms``.

**Cost.** Each model run is a child run of the side that answered, with that model's own
``ls_provider`` / ``ls_model_name`` and token usage, so LangSmith prices cloud runs from its own
price table; the edge (`edge_chat_model`) reports ``ls_provider="openai-compatible"`` and its
served model name, so a workspace can add a price for it (and it is otherwise unpriced). A
`RoutedChatModel` run wraps the inner run and reports ``ls_provider="hera"`` /
``ls_model_name="hera-routed"``, which matches no price: the call is priced once, on the inner
run. After each routed model call a ``hera_cost`` child run (tag ``hera:cost``) carries the
call's cost and the thread's totals per side, as of that call, in metadata (`COST_METADATA_KEYS`)
and outputs (``entries``: the call's ledger entries, failed edge attempts included; ``thread``:
the totals). The run inherits LangGraph's ``thread_id`` metadata, so in LangSmith the latest
``hera_cost`` run of a thread (filter ``and(eq(name, "hera_cost"), eq(metadata_key,
"thread_id"), eq(metadata_value, "<thread>"))``) shows what the thread cost on each side, and
``eq(metadata_key, "hera_thread_usd_cloud")`` finds every such run. Numbers are metadata values
(LangSmith filters them by equality; sort or sum them after `Client.list_runs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config, var_child_runnable_config

METADATA_KEYS = (
    "hera_step",
    "hera_target",
    "hera_score",
    "hera_threshold",
    "hera_policy",
    "hera_reason",
    "hera_latency_ms",
)

#: Metadata keys of a ``hera_cost`` run: the call (its side, model, USD, edge energy, tokens)
#: and the thread's totals per side as of that call (``turn``: the run it belongs to).
COST_METADATA_KEYS = (
    "hera_target",
    "hera_model",
    "hera_usd",
    "hera_energy_j",
    "hera_input_tokens",
    "hera_output_tokens",
    "hera_turn",
    "hera_thread_usd_cloud",
    "hera_thread_energy_j_edge",
    "hera_thread_tokens_cloud",
    "hera_thread_tokens_edge",
    "hera_thread_cloud_calls",
    "hera_thread_edge_calls",
)


def decision_metadata(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The run metadata for a decision (``hera_<field>`` for each field)."""
    return {f"hera_{key}": value for key, value in decision.items()}


def decision_config(
    decision: Mapping[str, Any], config: RunnableConfig | None = None, *, kind: str = "route"
) -> RunnableConfig:
    """``config`` extended with the decision's metadata and a ``hera:<target>`` tag.

    The callbacks are ``config``'s (else the ambient ones), never both: merging them would
    register a run twice with the same tracer (LangSmith's "No indexed run ID" errors when a
    routed model nests under a graph node). Metadata and tags are the ambient ones, ``config``'s
    and the decision's.
    """
    target = decision.get("target", decision.get("action", kind))
    ambient = var_child_runnable_config.get() or {}
    base = ensure_config(config)
    metadata = {
        **(ambient.get("metadata") or {}),
        **(base.get("metadata") or {}),
        **decision_metadata(decision),
    }
    tags = [*(base.get("tags") or []), *(ambient.get("tags") or []), f"hera:{target}"]
    tags = list(dict.fromkeys(tags))
    return {**base, "metadata": metadata, "tags": tags}


def _tokens(entries: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(e.get("input_tokens", 0)) + int(e.get("output_tokens", 0)) for e in entries)


def thread_cost(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals per side of a thread's ledger entries (the ``hera_thread_*`` values): cloud USD
    (the supervisor included), edge energy in joules, tokens and calls per side."""
    cloud = [e for e in entries if e.get("target") != "edge"]
    edge = [e for e in entries if e.get("target") == "edge"]
    return {
        "usd_cloud": sum((float(e.get("usd", 0.0)) for e in cloud), 0.0),
        "energy_j_edge": sum((float(e.get("energy_j", 0.0)) for e in entries), 0.0),
        "tokens_cloud": _tokens(cloud),
        "tokens_edge": _tokens(edge),
        "cloud_calls": len(cloud),
        "edge_calls": len(edge),
    }


def cost_metadata(
    entries: Sequence[Mapping[str, Any]], thread_entries: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``hera_cost`` run metadata for one model call (``entries``: its ledger entries, the
    last one the reply's) in a thread whose ledger, this call included, is ``thread_entries``."""
    last = entries[-1] if entries else {}
    meta: dict[str, Any] = {
        "hera_target": last.get("target"),
        "hera_model": last.get("model"),
        "hera_usd": sum(float(e.get("usd", 0.0)) for e in entries),
        "hera_energy_j": sum(float(e.get("energy_j", 0.0)) for e in entries),
        "hera_input_tokens": sum(int(e.get("input_tokens", 0)) for e in entries),
        "hera_output_tokens": sum(int(e.get("output_tokens", 0)) for e in entries),
    }
    if last.get("turn") is not None:
        meta["hera_turn"] = last["turn"]
    meta.update({f"hera_thread_{k}": v for k, v in thread_cost(thread_entries).items()})
    return meta


def _echo(decision: dict[str, Any]) -> dict[str, Any]:
    return decision


_ROUTE_RUN = RunnableLambda(_echo, name="route_decision")
_SUPERVISOR_RUN = RunnableLambda(_echo, name="supervisor_decision")
_COST_RUN = RunnableLambda(_echo, name="hera_cost")


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


def trace_cost(
    entries: Sequence[Mapping[str, Any]],
    thread_entries: Sequence[Mapping[str, Any]],
    config: RunnableConfig | None = None,
) -> None:
    """Record one model call's cost as a ``hera_cost`` child run of the current run (metadata
    `cost_metadata`, tag ``hera:cost``; outputs ``entries`` and ``thread``); no-op without
    tracing."""
    meta = cost_metadata(entries, thread_entries)
    base = ensure_config(config)
    ambient = var_child_runnable_config.get() or {}
    run_config: RunnableConfig = {
        **base,
        "metadata": {**(ambient.get("metadata") or {}), **(base.get("metadata") or {}), **meta},
        "tags": list(dict.fromkeys([*(base.get("tags") or []), "hera:cost"])),
    }
    payload = {"entries": [dict(e) for e in entries], "thread": thread_cost(thread_entries)}
    _COST_RUN.invoke(payload, run_config)
