"""Prebuilt supervised agents: a tool-calling agent and a text-action agent, PEVR or EVA."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.policies.base import RoutingPolicy
from langgraph_hera.routing.decoding import EdgeDecoding, check_decoding
from langgraph_hera.routing.deprecation import renamed_kwargs
from langgraph_hera.routing.env_node import create_env_node, route_after_env
from langgraph_hera.routing.graph import check_state_schema, schema_fields
from langgraph_hera.routing.nodes import ChatRunnable, create_action_node, create_model_node
from langgraph_hera.state import HeraContext, HeraState, SupervisionState, Target
from langgraph_hera.supervision.node import SupervisionMode, create_supervisor_node

#: How the executor of a supervised text agent sees its context since the last reset (the
#: two growing layouts of `langgraph_hera.routing.nodes.PromptLayout`).
ExecutorPromptLayout = Literal["messages", "since-reset"]
EXECUTOR_PROMPT_LAYOUTS: tuple[ExecutorPromptLayout, ...] = ("messages", "since-reset")


def _add_supervisor(
    builder: StateGraph,
    supervisor: ChatRunnable | None,
    *,
    reverse_roles: bool,
    pricing: Pricing | None,
    edge_params: float,
    **settings: Any,
) -> Target:
    """Add the ``supervisor`` node; returns the executor's target. Normally the executor is the
    edge and the supervisor the cloud; ``reverse_roles`` swaps them (the paper's Table 4)."""
    executor_target: Target = "cloud" if reverse_roles else "edge"
    builder.add_node(
        "supervisor",
        create_supervisor_node(
            supervisor,
            side="edge" if reverse_roles else "cloud",
            executor_target=executor_target,
            pricing=pricing,
            edge_params=edge_params,
            **settings,
        ),
    )
    return executor_target


def create_supervised_agent(
    *,
    executor: BaseChatModel,
    supervisor: ChatRunnable,
    tools: Sequence[BaseTool | Callable[..., Any]] = (),
    mode: SupervisionMode = "pevr",
    verify_every: int | None = 4,
    max_turns: int = 40,
    summarize: bool = True,
    trigger: RoutingPolicy | str | None = None,
    system_prompt: str | None = None,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    reverse_roles: bool = False,
    state_schema: type = SupervisionState,
    checkpointer: Checkpointer = None,
    name: str = "supervised_agent",
) -> CompiledStateGraph:
    """A prebuilt tool-calling agent: an edge executor under a cloud supervisor (PEVR / EVA).

    Returns a **compiled** graph ``supervisor -> executor -> tools -> supervisor -> ...``; the
    run ends when the executor answers without tool calls or after ``max_turns`` executor turns.
    The supervisor plans (PEVR), verifies every ``verify_every`` turns and, off track, replans
    (PEVR) or advises (EVA) and resets the executor's context (see `create_supervisor_node`).

    Args:
        executor: The executor's chat model (pass it unbound; tools are bound here).
        supervisor: The supervisor's chat model.
        tools: Tools the executor may call.
        mode: ``"pevr"`` or ``"eva"``.
        verify_every: Verification interval T_v in executor turns.
        max_turns: Most executor turns per run.
        summarize: EVA: a summary of prior work in the handoff.
        trigger: A routing policy that decides when to verify (beyond the paper).
        system_prompt: Prepended to the executor's messages.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N.
        reverse_roles: The paper's reverse-role check: the executor is the cloud model and the
            supervisor the edge model (ledger sides swapped accordingly).
        state_schema: The graph's state: `SupervisionState` (default) or a schema with its
            fields.
        checkpointer: Passed to ``compile``.
        name: Graph name.

    Raises:
        ValueError: Invalid ``mode``, ``verify_every`` or ``max_turns``; ``state_schema``
            lacks a `SupervisionState` field (the message names it).

    Example:
        >>> agent = create_supervised_agent(
        ...     executor=edge_chat_model(url, "Qwen/Qwen3-4B"),
        ...     supervisor=ChatOpenAI(model="gpt-4o"),
        ...     tools=[search], mode="eva", verify_every=3)
        >>> agent.invoke({"messages": [("user", "Who ...?")]})["supervision_log"]
    """
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns!r}")
    builder: StateGraph = StateGraph(state_schema, context_schema=HeraContext)  # type: ignore[arg-type]
    check_state_schema(
        builder,
        schema_fields(SupervisionState),
        who="create_supervised_agent",
        suggest=SupervisionState,
    )
    tool_list = list(tools)
    model: ChatRunnable = executor.bind_tools(tool_list) if tool_list else executor
    executor_target = _add_supervisor(
        builder,
        supervisor,
        reverse_roles=reverse_roles,
        pricing=pricing,
        edge_params=edge_params,
        mode=mode,
        verify_every=verify_every,
        summarize=summarize,
        trigger=trigger,
    )
    builder.add_node(
        "executor",
        create_model_node(
            model,
            target=executor_target,
            system_prompt=system_prompt,
            pricing=pricing,
            edge_params=edge_params,
            tools_node="tools" if tool_list else None,
            router_node=None,
            context="since-handoff",  # the executor sees the thread from its latest handoff
        ),
        destinations=("tools", END) if tool_list else (END,),
    )
    builder.add_edge(START, "supervisor")
    builder.add_edge("supervisor", "executor")
    if tool_list:
        from langgraph.prebuilt import ToolNode

        builder.add_node("tools", ToolNode(tool_list))

        def after_tools(state: dict[str, Any]) -> Literal["supervisor", "__end__"]:
            return "__end__" if int(state.get("step", 0)) >= max_turns else "supervisor"

        builder.add_conditional_edges("tools", after_tools, {"supervisor": "supervisor", END: END})
    return builder.compile(checkpointer=checkpointer, name=name)


def create_supervised_text_agent(
    *,
    executor: ChatRunnable,
    supervisor: ChatRunnable | None,
    mode: SupervisionMode = "pevr",
    verify_every: int | None = 4,
    summarize: bool = True,
    trigger: RoutingPolicy | str | None = None,
    edge_decoding: EdgeDecoding = "choice",
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    reverse_roles: bool = False,
    track_progress: bool = False,
    executor_prompt_layout: ExecutorPromptLayout = "messages",
    state_schema: type = HeraState,
    checkpointer: Checkpointer = None,
    name: str = "supervised_text_agent",
    **deprecated: Any,
) -> CompiledStateGraph:
    """A supervised agent for text-action environments: ``env -> supervisor -> executor -> env``.

    The executor is a ReAct-style agent whose context is every step since its last reset
    (`messages_prompt`); the supervisor works as in `create_supervised_agent`. The turn budget
    is the run context's ``max_steps`` (`HeraContext`).

    Args:
        executor: The executor's chat model (held to the valid actions as ``edge_decoding``
            says when it is an OpenAI-compatible model).
        supervisor: The supervisor's chat model (offline: `ExpertSupervisor`, a stand-in);
            ``None``: the monolithic executor alone (the baseline of the context comparison).
        mode: ``"pevr"`` or ``"eva"``.
        verify_every: Verification interval T_v in executor steps.
        summarize: EVA: a summary of prior work in the handoff.
        trigger: A routing policy that decides when to verify (beyond the paper).
        edge_decoding: How the executor's answer is held to the valid actions
            (`langgraph_hera.routing.decoding.EdgeDecoding`: ``"choice"``, ``"rank"`` or
            ``"free"``).
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N.
        reverse_roles: Cloud executor, edge supervisor (the paper's Table 4 check).
        track_progress: Record the expert's distance to the goal at every step (the ground
            truth for verifier false positives / negatives).
        executor_prompt_layout: How the executor sees its context since the last reset
            (`ExecutorPromptLayout`): ``"messages"`` (a multi-turn chat, the paper's ReAct
            loop) or ``"since-reset"`` (one message in the layout of `action_prompt`, which the
            shipped adapter knows).
        state_schema: The graph's state: `HeraState` (default: the text-action and the
            supervision fields) or a schema with its fields.
        checkpointer: Passed to ``compile``.
        name: Graph name.
        **deprecated: Old names, with a `DeprecationWarning`: ``constrain_executor``
            (``True`` / ``False`` = ``"choice"`` / ``"free"``) for ``edge_decoding``,
            ``executor_history`` for ``executor_prompt_layout``.

    Raises:
        ValueError: Invalid ``mode``, ``verify_every``, ``edge_decoding`` or
            ``executor_prompt_layout``; ``state_schema`` lacks a `HeraState` field (the
            message names it).
    """
    old = renamed_kwargs(
        "create_supervised_text_agent",
        deprecated,
        {"constrain_executor": "edge_decoding", "executor_history": "executor_prompt_layout"},
    )
    edge_decoding = check_decoding(old.get("edge_decoding", edge_decoding))
    executor_prompt_layout = old.get("executor_prompt_layout", executor_prompt_layout)
    if executor_prompt_layout not in EXECUTOR_PROMPT_LAYOUTS:
        raise ValueError(
            f"executor_prompt_layout must be one of {list(EXECUTOR_PROMPT_LAYOUTS)}, "
            f"got {executor_prompt_layout!r}"
        )
    builder: StateGraph = StateGraph(state_schema, context_schema=HeraContext)  # type: ignore[arg-type]
    check_state_schema(
        builder,
        schema_fields(HeraState),
        who="create_supervised_text_agent",
        suggest=HeraState,
    )
    builder.add_node("env", create_env_node(track_progress=track_progress))
    executor_target = _add_supervisor(
        builder,
        supervisor,
        reverse_roles=reverse_roles,
        pricing=pricing,
        edge_params=edge_params,
        mode=mode,
        verify_every=verify_every,
        summarize=summarize,
        trigger=trigger,
        run_start="external",  # the env node starts each episode
    )
    builder.add_node(
        "executor",
        create_action_node(
            executor,
            target=executor_target,
            edge_decoding=edge_decoding,
            pricing=pricing,
            edge_params=edge_params,
            router_node=None,
            prompt_layout=executor_prompt_layout,
        ),
        destinations=("env", END),
    )
    builder.add_edge(START, "env")
    builder.add_conditional_edges("env", route_after_env, {"router": "supervisor", END: END})
    builder.add_edge("supervisor", "executor")
    return builder.compile(checkpointer=checkpointer, name=name)
