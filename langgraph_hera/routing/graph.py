"""Wiring helpers: `add_router` for a user's graph, and the prebuilt routed agents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.env_node import create_env_node, route_after_env
from langgraph_hera.routing.nodes import ChatRunnable, create_action_node, create_model_node
from langgraph_hera.routing.router import create_router_node, route_by_decision
from langgraph_hera.state import HeraContext, HeraState


def add_router(
    builder: StateGraph,
    *,
    policy: RoutingPolicy | str,
    edge: ChatRunnable,
    cloud: ChatRunnable,
    after: str | None = "tools",
    entry: bool = True,
    system_prompt: str | None = None,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    edge_health: Callable[[], bool] | None = None,
) -> StateGraph:
    """Add ``router``, ``edge`` and ``cloud`` nodes to ``builder`` and wire them.

    The loop is ``router -> edge | cloud -> after -> router``: a model reply with tool calls
    goes to ``after`` (your tools node, added by you), which leads back to the router; a reply
    without tool calls ends the run. The builder's state must include `HeraState`'s fields.

    Args:
        builder: Your ``StateGraph(HeraState)`` (or a subclass of HeraState).
        policy: The routing policy (instance or registered name).
        edge: Edge chat model, tools bound (e.g. ``edge_chat_model(...).bind_tools(tools)``).
        cloud: Cloud chat model, tools bound.
        after: Name of the node that runs the tool calls (``None``: single-turn, no loop).
        entry: Also add ``START -> router``.
        system_prompt: Prepended to the messages of both models.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N (edge energy estimate).
        edge_health: Liveness probe of the edge (e.g. ``server.is_alive``).

    Returns:
        The same builder, for chaining.

    Raises:
        ValueError: A node named router / edge / cloud already exists.

    Example:
        >>> builder = StateGraph(HeraState)
        >>> builder.add_node("tools", ToolNode(tools))
        >>> add_router(builder, policy=AlwaysEdge(), edge=edge.bind_tools(tools),
        ...            cloud=cloud.bind_tools(tools))
        >>> graph = builder.compile(name="my_agent")
    """
    taken = {"router", "edge", "cloud"} & set(builder.nodes)
    if taken:
        raise ValueError(f"builder already has node(s) {sorted(taken)}; add_router adds them")
    builder.add_node("router", create_router_node(policy, edge_health=edge_health))
    # A failed edge call hands its step back to the router; the cloud never goes there.
    edge_destinations = (after, "router", END) if after else ("router", END)
    cloud_destinations = (after, END) if after else (END,)
    common: dict[str, Any] = {
        "system_prompt": system_prompt,
        "pricing": pricing,
        "edge_params": edge_params,
        "tools_node": after,
    }
    builder.add_node(
        "edge", create_model_node(edge, target="edge", **common), destinations=edge_destinations
    )
    builder.add_node(
        "cloud",
        create_model_node(cloud, target="cloud", **common),
        destinations=cloud_destinations,
    )
    if entry:
        builder.add_edge(START, "router")
    builder.add_conditional_edges(
        "router", route_by_decision, {"edge": "edge", "cloud": "cloud", END: END}
    )
    if after:
        builder.add_edge(after, "router")
    return builder


def create_hera_agent(
    *,
    edge: Any,
    cloud: Any,
    tools: Sequence[BaseTool | Callable[..., Any]] = (),
    policy: RoutingPolicy | str = "always-edge",
    system_prompt: str | None = None,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    edge_health: Callable[[], bool] | None = None,
    checkpointer: Any = None,
    name: str = "hera_agent",
) -> CompiledStateGraph:
    """A prebuilt tool-calling agent whose every model step passes through the router.

    Returns a **compiled** graph: ``router -> edge | cloud -> tools -> router``. Tools are bound
    to both models here (pass unbound chat models).

    Args:
        edge: Edge chat model (e.g. `edge_chat_model`).
        cloud: Cloud chat model (any LangChain chat model).
        tools: Tools both models may call.
        policy: The routing policy (instance or registered name).
        system_prompt: Prepended to the messages of both models.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N (edge energy estimate).
        edge_health: Liveness probe of the edge.
        checkpointer: Passed to ``compile``.
        name: Graph name (shown in traces).
    """
    from langgraph.prebuilt import ToolNode

    builder: StateGraph = StateGraph(HeraState, context_schema=HeraContext)  # type: ignore[arg-type]
    tool_list = list(tools)
    if tool_list:
        builder.add_node("tools", ToolNode(tool_list))
        edge, cloud = edge.bind_tools(tool_list), cloud.bind_tools(tool_list)
    add_router(
        builder,
        policy=policy,
        edge=edge,
        cloud=cloud,
        after="tools" if tool_list else None,
        system_prompt=system_prompt,
        pricing=pricing,
        edge_params=edge_params,
        edge_health=edge_health,
    )
    return builder.compile(checkpointer=checkpointer, name=name)


def create_text_agent(
    *,
    edge: ChatRunnable,
    cloud: ChatRunnable,
    policy: RoutingPolicy | str = "always-edge",
    constrain_edge: bool | str = True,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    edge_health: Callable[[], bool] | None = None,
    history_window: int = 4,
    propose_edge: bool = False,
    checkpointer: Any = None,
    name: str = "hera_text_agent",
) -> CompiledStateGraph:
    """A prebuilt agent for text-action environments (task + observation + valid actions in,
    one action out), routed per step. Returns a **compiled** graph:
    ``env -> router -> edge | cloud -> env -> ...`` until the episode ends or ``max_steps``.

    Run it with the environment in the context::

        graph.invoke({"seed": 20000}, context=HeraContext(env=make_env("twc"), max_steps=40))

    or, where the context cannot hold an object (``langgraph dev``), with ``{"suite": "twc",
    "seed": 20000}`` as input: the env node then creates the environment itself.

    Args:
        edge: Edge chat model (an OpenAI-compatible vLLM model is constrained to the valid
            actions when ``constrain_edge``).
        cloud: Cloud chat model (or the expert stand-in).
        policy: The routing policy. A policy with ``uses_edge_proposal`` (e.g. `ThresholdRouter`
            with the ``edge-uncertainty`` scorer) gets edge-first routing: a ``propose`` node
            asks the edge first, the policy sees the proposal and its logprob, and an edge
            decision executes that proposal without a second call.
        constrain_edge: How the edge's answer is held to the valid actions: ``"choice"``
            (``True``; vLLM structured outputs or a llama.cpp grammar), ``"rank"`` (the most
            likely valid action) or ``"free"`` (``False``); see
            `langgraph_hera.routing.decoding`. The chosen action's log-probability is recorded.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N.
        edge_health: Liveness probe of the edge.
        history_window: Past (action, observation) pairs shown in the prompt.
        propose_edge: Ask the edge for its proposal at every step whatever the policy (the
            proposal lands in the trajectory as ``edge_action``): ``hera record --also-edge``
            uses it to record the edge's action at every state of a cloud trajectory.
        checkpointer: Passed to ``compile``.
        name: Graph name.
    """
    builder: StateGraph = StateGraph(HeraState, context_schema=HeraContext)  # type: ignore[arg-type]
    common: dict[str, Any] = {
        "pricing": pricing,
        "edge_params": edge_params,
        "history_window": history_window,
    }
    pol = get_policy(policy) if isinstance(policy, str) else policy
    if hasattr(pol, "bind_edge"):
        pol.bind_edge(edge)  # policies that consult the edge themselves (HeraScheduler's SD)
    edge_first = propose_edge or bool(getattr(pol, "uses_edge_proposal", False))
    builder.add_node("env", create_env_node(history_window=history_window))
    if edge_first:
        builder.add_node(
            "propose",
            create_action_node(
                edge, target="edge", constrain=constrain_edge, propose_only=True, **common
            ),
            destinations=("router",),
        )
    builder.add_node(
        "router", create_router_node(pol, edge_health=edge_health, run_start="external")
    )
    builder.add_node(
        "edge",
        create_action_node(edge, target="edge", constrain=constrain_edge, **common),
        destinations=("env", "router", END),
    )
    builder.add_node(
        "cloud",
        create_action_node(cloud, target="cloud", constrain=False, **common),
        destinations=("env", END),
    )
    builder.add_edge(START, "env")
    after_env = "propose" if edge_first else "router"
    builder.add_conditional_edges("env", route_after_env, {"router": after_env, END: END})
    builder.add_conditional_edges(
        "router", route_by_decision, {"edge": "edge", "cloud": "cloud", END: END}
    )
    return builder.compile(checkpointer=checkpointer, name=name)
