"""Wiring helpers: `add_router` for a user's graph, and the prebuilt routed agents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.decoding import EdgeDecoding, check_decoding
from langgraph_hera.routing.deprecation import renamed_kwargs
from langgraph_hera.routing.env_node import create_env_node, route_after_env
from langgraph_hera.routing.nodes import (
    PROMPT_LAYOUTS,
    ChatRunnable,
    PromptLayout,
    create_action_node,
    create_model_node,
)
from langgraph_hera.routing.router import create_router_node, route_by_decision
from langgraph_hera.state import HeraContext, RoutingState, TextEnvState

#: Fields whose updates accumulate (a reducer such as ``operator.add``), wherever they appear.
ACCUMULATING_FIELDS = frozenset(
    {"messages", "route_log", "ledger", "errors", "trajectory", "supervision_log"}
)


def schema_fields(schema: type) -> tuple[str, ...]:
    """The state fields (channels) of a state schema, as LangGraph reads them."""
    return tuple(StateGraph(schema).schemas[schema])  # type: ignore[call-overload]


def check_state_schema(
    builder: StateGraph,
    required: Iterable[str],
    *,
    who: str,
    suggest: type,
) -> None:
    """Check that ``builder``'s state schema has the ``required`` fields, the accumulating
    ones (`ACCUMULATING_FIELDS`) with a reducer.

    Args:
        builder: The graph builder whose ``state_schema`` is checked.
        required: The fields the nodes read and write.
        who: The function asking (in the message).
        suggest: The schema to suggest (use it or subclass it).

    Raises:
        ValueError: Naming the missing fields, or the accumulating ones without a reducer.
    """
    channels = builder.schemas[builder.state_schema]
    name = getattr(builder.state_schema, "__name__", repr(builder.state_schema))
    missing = [f for f in required if f not in channels]
    if missing:
        raise ValueError(
            f"{who}: the state schema {name} lacks the field(s) {missing}; use "
            f"StateGraph({suggest.__name__}) or subclass {suggest.__name__} "
            "(langgraph_hera.state)"
        )
    plain = [
        f
        for f in required
        if f in ACCUMULATING_FIELDS and not isinstance(channels[f], BinaryOperatorAggregate)
    ]
    if plain:
        raise ValueError(
            f"{who}: the field(s) {plain} of the state schema {name} must accumulate "
            "(Annotated[list[...], operator.add], as in "
            f"{suggest.__name__}); without a reducer each step overwrites the last"
        )


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
    goes to ``after`` (your tools node, added by you before this call), which leads back to the
    router; a reply without tool calls ends the run. The builder's state must have
    `RoutingState`'s fields (``messages``, ``route_log``, ``ledger``, ``errors``, ``decision``,
    ``step``, ``turn``, ``halt``, ``edge_failed_step``, ``edge_error``); it is checked here,
    before anything is wired.

    Args:
        builder: Your ``StateGraph(RoutingState)`` (or any schema that subclasses it, such as
            `HeraState`).
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
        ValueError: The builder's state schema lacks a `RoutingState` field (or an accumulating
            one has no reducer); a node named router / edge / cloud already exists; ``after``
            names no node of the builder.

    Example:
        >>> builder = StateGraph(RoutingState)
        >>> builder.add_node("tools", ToolNode(tools))
        >>> add_router(builder, policy=AlwaysEdge(), edge=edge.bind_tools(tools),
        ...            cloud=cloud.bind_tools(tools))
        >>> graph = builder.compile(name="my_agent")
    """
    check_state_schema(builder, schema_fields(RoutingState), who="add_router", suggest=RoutingState)
    taken = {"router", "edge", "cloud"} & set(builder.nodes)
    if taken:
        raise ValueError(f"builder already has node(s) {sorted(taken)}; add_router adds them")
    if after is not None and after not in builder.nodes:
        raise ValueError(
            f"after={after!r} names no node of the builder (it has {sorted(builder.nodes)}): "
            "add your tools node before add_router, or pass after=None (no tool loop)"
        )
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
    edge: BaseChatModel,
    cloud: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]] = (),
    policy: RoutingPolicy | str = "always-edge",
    system_prompt: str | None = None,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    edge_health: Callable[[], bool] | None = None,
    state_schema: type = RoutingState,
    checkpointer: Checkpointer = None,
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
        state_schema: The graph's state: `RoutingState` (default) or a schema with its fields
            (e.g. a subclass with your own fields).
        checkpointer: Passed to ``compile``.
        name: Graph name (shown in traces).

    Raises:
        ValueError: ``state_schema`` lacks a `RoutingState` field (the message names it).
    """
    from langgraph.prebuilt import ToolNode

    builder: StateGraph = StateGraph(state_schema, context_schema=HeraContext)  # type: ignore[arg-type]
    check_state_schema(
        builder, schema_fields(RoutingState), who="create_hera_agent", suggest=RoutingState
    )
    tool_list = list(tools)
    edge_model: ChatRunnable = edge
    cloud_model: ChatRunnable = cloud
    if tool_list:
        builder.add_node("tools", ToolNode(tool_list))
        edge_model, cloud_model = edge.bind_tools(tool_list), cloud.bind_tools(tool_list)
    add_router(
        builder,
        policy=policy,
        edge=edge_model,
        cloud=cloud_model,
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
    edge_decoding: EdgeDecoding = "choice",
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    edge_health: Callable[[], bool] | None = None,
    history_window: int = 4,
    propose_edge: bool = False,
    state_schema: type = TextEnvState,
    checkpointer: Checkpointer = None,
    name: str = "hera_text_agent",
    prompt_layout: PromptLayout = "window",
    cloud_prompt_layout: PromptLayout | None = None,
    **deprecated: Any,
) -> CompiledStateGraph:
    """A prebuilt agent for text-action environments (task + observation + valid actions in,
    one action out), routed per step. Returns a **compiled** graph:
    ``env -> router -> edge | cloud -> env -> ...`` until the episode ends or ``max_steps``.

    Run it with the environment in the context::

        graph.invoke({"seed": 20000}, context=HeraContext(env=make_env("twc"), max_steps=40))

    or, where the context cannot hold an object (``langgraph dev``), with ``{"suite": "twc",
    "seed": 20000}`` as input: the env node then creates the environment itself.

    Args:
        edge: Edge chat model (an OpenAI-compatible vLLM / llama.cpp model is held to the valid
            actions as ``edge_decoding`` says).
        cloud: Cloud chat model (or the expert stand-in).
        policy: The routing policy. A policy with ``uses_edge_proposal`` (e.g. `ThresholdRouter`
            with the ``edge-uncertainty`` scorer) gets edge-first routing: a ``propose`` node
            asks the edge first, the policy sees the proposal and its logprob, and an edge
            decision executes that proposal without a second call.
        edge_decoding: How the edge's answer is held to the valid actions (`EdgeDecoding`):
            ``"choice"`` (vLLM structured outputs or a llama.cpp grammar), ``"rank"`` (the most
            likely valid action) or ``"free"`` (parsed afterwards); see
            `langgraph_hera.routing.decoding`. The chosen action's log-probability is recorded.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N.
        edge_health: Liveness probe of the edge.
        history_window: Past (action, observation) pairs shown in the prompt.
        propose_edge: Ask the edge for its proposal at every step whatever the policy (the
            proposal lands in the trajectory as ``edge_action``): ``hera record --also-edge``
            uses it to record the edge's action at every state of a cloud trajectory.
        state_schema: The graph's state: `TextEnvState` (default) or a schema with its fields.
        checkpointer: Passed to ``compile``.
        name: Graph name.
        prompt_layout: How the edge's prompt is laid out (`PromptLayout`): ``"window"`` (the
            last ``history_window`` steps; what the shipped SmolLM2 adapter was trained on) or
            ``"episode"`` (the whole episode with the game's score after each step, for general
            LLMs); see `PromptLayout`.
        cloud_prompt_layout: The cloud's layout (default: ``prompt_layout``); e.g. ``"episode"``
            for a general cloud LLM next to the adapted edge's ``"window"``. The trajectory
            records the edge's prompt as ``prompt`` and, when the layouts differ, the cloud's
            as ``cloud_prompt``.
        **deprecated: ``constrain_edge`` (``True`` / ``False`` = ``"choice"`` / ``"free"``), the
            old name of ``edge_decoding``, with a `DeprecationWarning`.

    Raises:
        ValueError: Unknown ``edge_decoding``, or ``state_schema`` lacks a `TextEnvState` field
            (the message names it).
    """
    old = renamed_kwargs("create_text_agent", deprecated, {"constrain_edge": "edge_decoding"})
    edge_decoding = check_decoding(old.get("edge_decoding", edge_decoding))
    builder: StateGraph = StateGraph(state_schema, context_schema=HeraContext)  # type: ignore[arg-type]
    check_state_schema(
        builder, schema_fields(TextEnvState), who="create_text_agent", suggest=TextEnvState
    )
    common: dict[str, Any] = {
        "pricing": pricing,
        "edge_params": edge_params,
        "history_window": history_window,
    }
    pol = get_policy(policy) if isinstance(policy, str) else policy
    if hasattr(pol, "bind_edge"):
        pol.bind_edge(edge)  # policies that consult the edge themselves (HeraScheduler's SD)
    edge_first = propose_edge or bool(getattr(pol, "uses_edge_proposal", False))
    for layout in (prompt_layout, cloud_prompt_layout):
        if layout is not None and layout not in PROMPT_LAYOUTS:
            raise ValueError(f"prompt layout must be one of {list(PROMPT_LAYOUTS)}, got {layout!r}")
    cloud_layout = cloud_prompt_layout or prompt_layout
    builder.add_node(
        "env",
        create_env_node(
            history_window=history_window,
            prompt_layout=prompt_layout,
            cloud_prompt_layout=cloud_layout,
        ),
    )
    if edge_first:
        builder.add_node(
            "propose",
            create_action_node(
                edge,
                target="edge",
                edge_decoding=edge_decoding,
                propose_only=True,
                prompt_layout=prompt_layout,
                **common,
            ),
            destinations=("router",),
        )
    builder.add_node(
        "router", create_router_node(pol, edge_health=edge_health, run_start="external")
    )
    builder.add_node(
        "edge",
        create_action_node(
            edge, target="edge", edge_decoding=edge_decoding, prompt_layout=prompt_layout, **common
        ),
        destinations=("env", "router", END),
    )
    builder.add_node(
        "cloud",
        create_action_node(
            cloud, target="cloud", edge_decoding="free", prompt_layout=cloud_layout, **common
        ),
        destinations=("env", END),
    )
    builder.add_edge(START, "env")
    after_env = "propose" if edge_first else "router"
    builder.add_conditional_edges("env", route_after_env, {"router": after_env, END: END})
    builder.add_conditional_edges(
        "router", route_by_decision, {"edge": "edge", "cloud": "cloud", END: END}
    )
    return builder.compile(checkpointer=checkpointer, name=name)
