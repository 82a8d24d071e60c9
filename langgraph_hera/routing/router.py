"""The router node and the conditional-edge function that reads its decision."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig, RunnableLambda

from langgraph_hera.accounting.ledger import CostLedger
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.features import route_input_from_state
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import Decision, Target, context_value
from langgraph_hera.tracing import atrace_decision, trace_decision

logger = get_logger(__name__)


def current_context() -> Any:
    """The run's `HeraContext` (or dict) when called inside a graph node, else ``None``."""
    try:
        from langgraph.runtime import get_runtime

        return get_runtime().context
    except Exception:  # outside a graph run: no runtime
        return None


def budget_block(ledger_entries: list[Any], context: Any) -> str | None:
    """Why the cloud may not be called now (a hard cap would be crossed), or ``None``.

    The USD cap blocks a call once the spend has reached the cap, and also when the spend plus
    the estimated cost of one more call would cross it. The estimate is the context's
    ``cloud_call_usd_estimate`` when set, else the most expensive cloud call so far. So the
    spend never exceeds the cap as long as no call costs more than the estimate (with the
    default estimate, only a call dearer than every earlier one can overshoot, by the
    difference).
    """
    ledger = CostLedger(ledger_entries)
    cap_usd = context_value(context, "cloud_budget_usd")
    if cap_usd is not None:
        spent = ledger.cloud_usd
        estimate = context_value(context, "cloud_call_usd_estimate")
        if estimate is None:
            cloud = [e["usd"] for e in ledger.entries if e["target"] in ("cloud", "supervisor")]
            estimate = max(cloud, default=0.0)
        if spent >= cap_usd or spent + estimate > cap_usd:
            return (
                f"cloud budget reached: spent {spent:.6f} of {cap_usd} USD "
                f"(next call estimated at {estimate:.6f})"
            )
    cap_calls = context_value(context, "max_cloud_calls")
    if cap_calls is not None and ledger.cloud_calls >= cap_calls:
        return f"cloud call cap reached: {ledger.cloud_calls} of {cap_calls} calls"
    return None


def _override(decision: Decision, target: Target, reason: str) -> Decision:
    new = Decision(**decision)  # type: ignore[typeddict-item]
    new["target"] = target
    new["reason"] = f"{reason} (policy said {decision['target']}: {decision['reason']})"
    return new


def decide_step(
    policy: RoutingPolicy,
    state: dict[str, Any],
    context: Any = None,
    edge_health: Callable[[], bool] | None = None,
) -> tuple[Decision, list[str], str | None]:
    """Run the policy on ``state`` and apply the hard overrides.

    Overrides, in order: a policy error sends the step to the cloud; an edge that failed at
    this step or reports unhealthy sends it to the cloud; a reached cloud cap sends it to the
    edge (or halts the run when the edge is down too). The cloud is never chosen past a cap.

    Returns:
        The decision, errors to record, and a halt reason (``None`` to continue).
    """
    start = time.perf_counter()
    ri = route_input_from_state(state)
    errors: list[str] = []
    try:
        decision = policy.decide(ri)
    except Exception as exc:  # a broken policy must not crash the agent
        msg = f"step {ri.step}: policy {policy.name!r} failed: {error_text(exc)}"
        errors.append(msg)
        logger.warning(msg)
        decision = Decision(
            step=ri.step,
            target="cloud",
            score=float("nan"),
            threshold=None,
            policy=policy.name,
            reason=f"policy error ({type(exc).__name__}); cloud as the safe choice",
            latency_ms=0.0,
        )
    edge_down: str | None = None
    if state.get("edge_failed_step") == ri.step:
        edge_down = f"edge failed at this step: {state.get('edge_error', 'unknown error')}"
    elif edge_health is not None and not edge_health():
        edge_down = "edge reported unhealthy"
    if decision["target"] == "edge" and edge_down:
        decision = _override(decision, "cloud", edge_down)
    halt = None
    if decision["target"] == "cloud":
        blocked = budget_block(list(state.get("ledger") or []), context)
        if blocked and edge_down:
            halt = f"{blocked}; and {edge_down}"
        elif blocked:
            decision = _override(decision, "edge", blocked)
    decision["latency_ms"] = (time.perf_counter() - start) * 1e3
    return decision, errors, halt


def create_router_node(
    policy: RoutingPolicy | str,
    *,
    name: str = "router",
    edge_health: Callable[[], bool] | None = None,
) -> RunnableLambda:
    """A node that decides whether the next step runs on the edge or the cloud.

    It writes ``decision`` (the current one) and appends it to ``route_log``; the decision is
    also recorded as a ``route_decision`` child run with ``hera_*`` metadata (see
    `langgraph_hera.tracing`). Budgets come from the run context (`HeraContext`).

    Args:
        policy: A `RoutingPolicy` or a registered policy name.
        name: Node / run name.
        edge_health: Optional liveness probe of the edge server; when it returns False the step
            goes to the cloud with the reason recorded.

    Returns:
        A runnable (sync and async) to pass to ``builder.add_node("router", ...)``.
    """
    pol = get_policy(policy) if isinstance(policy, str) else policy
    if not isinstance(pol, RoutingPolicy):
        raise ValueError(f"policy must be a RoutingPolicy or a policy name, got {policy!r}")

    def _update(decision: Decision, errors: list[str], halt: str | None) -> dict[str, Any]:
        update: dict[str, Any] = {"decision": decision, "route_log": [decision]}
        if errors:
            update["errors"] = errors
        if halt:
            update["halt"] = halt
            update["errors"] = [*errors, f"step {decision['step']}: halted: {halt}"]
        return update

    def route(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        decision, errors, halt = decide_step(pol, state, current_context(), edge_health)
        trace_decision(decision, config)
        return _update(decision, errors, halt)

    async def aroute(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        decision, errors, halt = decide_step(pol, state, current_context(), edge_health)
        await atrace_decision(decision, config)
        return _update(decision, errors, halt)

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
