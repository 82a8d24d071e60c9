"""The router node and the conditional-edge function that reads its decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig, RunnableLambda

from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.decide import Caps, StepOutcome, current_context
from langgraph_hera.routing.decide import budget_block as _budget_block
from langgraph_hera.routing.decide import decide_step as _decide_step
from langgraph_hera.routing.features import current_run, route_input_from_state
from langgraph_hera.secrets import get_logger
from langgraph_hera.state import RUN_FIELDS, Decision
from langgraph_hera.tracing import atrace_decision, trace_decision

logger = get_logger(__name__)


#: What starts a new run of a thread (see `create_router_node`).
RunStart = Literal["user-message", "external"]
RUN_STARTS: tuple[RunStart, ...] = ("user-message", "external")


def begin_run(state: Mapping[str, Any]) -> dict[str, Any]:
    """The update that starts a new run when a new user message has entered the thread.

    The run's id is the id of the latest human message; when it differs from ``state["turn"]``
    the per-run fields (`langgraph_hera.state.RUN_FIELDS`: step, decision, halt, a failed edge
    step) start again, so nothing of an earlier turn (a halt, a step count) leaks into this one.
    Returns ``{}`` inside a run.
    """
    _, turn = current_run(list(state.get("messages") or []))
    if turn is not None and turn != state.get("turn"):
        return {"turn": turn, **RUN_FIELDS}
    return {}


def budget_block(ledger_entries: list[Any], context: Any, *, turn: str | None = None) -> str | None:
    """Why the cloud may not be called now (a cap would be crossed), or ``None``.

    A thin wrapper of `langgraph_hera.routing.decide.budget_block` returning the reason only
    (kept for callers of the older API).
    """
    blocked = _budget_block(ledger_entries, Caps.from_context(context), turn=turn)
    return blocked.reason if blocked else None


def decide_state_step(
    policy: RoutingPolicy,
    state: Mapping[str, Any],
    context: Any = None,
    edge_health: Callable[[], bool] | None = None,
) -> StepOutcome:
    """Decide the next step of a graph from its state (the router node's part of the one
    decision path, `langgraph_hera.routing.decide.decide_step`)."""
    ri = route_input_from_state(state)
    edge_down: str | None = None
    if state.get("edge_failed_step") == ri.step:
        edge_down = f"edge failed at this step: {state.get('edge_error') or 'unknown error'}"
    elif edge_health is not None and not edge_health():
        edge_down = "edge reported unhealthy"
    return _decide_step(
        policy,
        ri,
        entries=list(state.get("ledger") or []),
        caps=Caps.from_context(context),
        turn=state.get("turn"),
        edge_down=edge_down,
    )


def decide_step(
    policy: RoutingPolicy,
    state: dict[str, Any],
    context: Any = None,
    edge_health: Callable[[], bool] | None = None,
) -> tuple[Decision, list[str], str | None]:
    """`decide_state_step` as ``(decision, errors, halt)`` (the older API)."""
    out = decide_state_step(policy, state, context, edge_health)
    return out.decision, out.errors, out.halt


def create_router_node(
    policy: RoutingPolicy | str,
    *,
    name: str = "router",
    edge_health: Callable[[], bool] | None = None,
    run_start: RunStart = "user-message",
) -> RunnableLambda:
    """A node that decides whether the next step runs on the edge or the cloud.

    It writes ``decision`` (the current one) and appends it to ``route_log``; the decision is
    also recorded as a ``route_decision`` child run with ``hera_*`` metadata (see
    `langgraph_hera.tracing`). Budgets come from the run context (`HeraContext`). The one
    decision path is `langgraph_hera.routing.decide.decide_step`.

    Args:
        policy: A `RoutingPolicy` or a registered policy name.
        name: Node / run name.
        edge_health: Optional liveness probe of the edge server; when it returns False the step
            goes to the cloud with the reason recorded.
        run_start: What starts a new run (turn) of the thread: ``"user-message"`` (chat
            agents: the router resets the per-run fields when a new human message arrives, see
            `begin_run`) or ``"external"`` (another node starts runs: the env node of
            text-action agents, whose observations are human messages too).

    Returns:
        A runnable (sync and async) to pass to ``builder.add_node("router", ...)``.

    Raises:
        ValueError: An unknown policy or ``run_start`` value.
    """
    pol = get_policy(policy) if isinstance(policy, str) else policy
    if not isinstance(pol, RoutingPolicy):
        raise ValueError(f"policy must be a RoutingPolicy or a policy name, got {policy!r}")
    if run_start not in RUN_STARTS:
        raise ValueError(f"run_start must be one of {list(RUN_STARTS)}, got {run_start!r}")

    def _decide(state: dict[str, Any]) -> tuple[Decision, dict[str, Any]]:
        start = begin_run(state) if run_start == "user-message" else {}
        out = decide_state_step(pol, {**state, **start}, current_context(), edge_health)
        update: dict[str, Any] = {**start, "decision": out.decision, "route_log": [out.decision]}
        if out.errors:
            update["errors"] = out.errors
        if out.halt:
            update["halt"] = out.halt
            update["errors"] = [*out.errors, f"step {out.decision['step']}: halted: {out.halt}"]
        return out.decision, update

    def route(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        decision, update = _decide(state)
        trace_decision(decision, config)
        return update

    async def aroute(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        decision, update = _decide(state)
        await atrace_decision(decision, config)
        return update

    return RunnableLambda(route, afunc=aroute, name=name)


def route_by_decision(state: dict[str, Any]) -> Literal["edge", "cloud", "__end__"]:
    """Conditional edge after the router: ``"edge"``, ``"cloud"``, or END on a halt."""
    if state.get("halt"):
        return "__end__"
    decision = state.get("decision")
    if not decision:
        raise ValueError("route_by_decision needs state['decision']: put the router node first")
    target = decision["target"]
    if target == "edge":
        return "edge"
    if target == "cloud":
        return "cloud"
    raise ValueError(f"decision target must be 'edge' or 'cloud', got {target!r}")
