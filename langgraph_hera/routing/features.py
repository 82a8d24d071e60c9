"""Build a policy's `RouteInput` from graph state or from a list of chat messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from langgraph_hera.policies.features import args_match_schema, normalize_text
from langgraph_hera.state import RouteInput


def message_text(message: BaseMessage) -> str:
    """Plain text of a message (text blocks joined; tool calls as ``name(args)``)."""
    text: str = str(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = "; ".join(f"{c['name']}({c['args']})" for c in message.tool_calls)
        text = f"{text} {calls}".strip()
    return text


def _repeats(items: Sequence[str]) -> int:
    """How many times the last item occurred before (0 when new)."""
    if not items:
        return 0
    last = normalize_text(items[-1])
    return sum(normalize_text(i) == last for i in items[:-1])


#: Marks a human message written by the project, not by the user (a supervisor's handoff after
#: a context reset): it does not start a new run.
HANDOFF_KEY = "hera_handoff"


def is_user_message(message: BaseMessage) -> bool:
    """True for a human message the user wrote (not a supervisor's handoff)."""
    return isinstance(message, HumanMessage) and not message.additional_kwargs.get(HANDOFF_KEY)


def executor_context(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """What a supervised executor sees: the thread's messages from the latest supervisor
    handoff of the current run on (a context reset keeps the thread and moves this view), or the
    whole thread when the run has had no handoff yet."""
    start, _ = current_run(messages)
    for i in range(len(messages) - 1, start - 1, -1):
        m = messages[i]
        if isinstance(m, HumanMessage) and m.additional_kwargs.get(HANDOFF_KEY):
            return list(messages[i:])
    return list(messages)


def current_run(messages: Sequence[BaseMessage]) -> tuple[int, str | None]:
    """Where the current run (turn) starts in a thread: the index of the latest user message
    (0 when there is none) and its id (the run's id; ``None`` without a user message or id).

    A run is one user request and every step taken for it; the next user message starts the next
    run. Features, step counts and per-run caps are scoped to it.
    """
    for i in range(len(messages) - 1, -1, -1):
        if is_user_message(messages[i]):
            return i, messages[i].id
    return 0, None


def tool_schemas(tools: Sequence[Any] | None) -> dict[str, dict[str, Any]]:
    """Name -> JSON schema of the parameters of each tool (OpenAI-format dicts, LangChain tools,
    functions or pydantic models; what ``bind_tools`` takes)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    out: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        try:
            fn = convert_to_openai_tool(tool).get("function") or {}
        except (TypeError, ValueError, KeyError):  # a provider's built-in tool: no schema
            continue
        if fn.get("name"):
            out[str(fn["name"])] = dict(fn.get("parameters") or {})
    return out


def is_tool_error(message: BaseMessage) -> bool:
    """A tool result that reports a failure: ``status="error"``, or text starting with "error"."""
    if not isinstance(message, ToolMessage):
        return False
    return message.status == "error" or str(message.text).strip().lower().startswith("error")


def tool_context(
    messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The `RouteInput.extra` keys of a tool-calling step (read by ``FeatureSpec(tools=True)``).

    Keys: ``tools_offered`` (the offered tools' names, sorted; ``None`` when ``tools`` is not
    known), ``last_tool_result`` (the last message is a tool result), ``last_tool_error`` (and
    it reports an error, `is_tool_error`), ``tool_errors_in_run`` (error results in this run).
    """
    start, _ = current_run(messages)
    run = list(messages[start:])
    last = run[-1] if run else None
    return {
        "tools_offered": sorted(tool_schemas(tools)) if tools is not None else None,
        "last_tool_result": isinstance(last, ToolMessage),
        "last_tool_error": last is not None and is_tool_error(last),
        "tool_errors_in_run": sum(is_tool_error(m) for m in run),
    }


def edge_tool_context(
    route_input: RouteInput, reply: BaseMessage, tools: Sequence[Any] | None = None
) -> RouteInput:
    """Put the edge's proposed reply into ``route_input`` (edge-first routing of tool agents).

    Sets ``edge_action`` (the reply's text, tool calls as ``name(args)``), ``edge_logprob``
    and ``edge_margin`` (when the server returned token logprobs) and the extra keys
    ``edge_tool`` (the first proposed tool, ``""`` for a text answer), ``edge_args_valid``
    (every proposed call parses and fits its tool's schema) and ``edge_action_valid`` (the
    same, or a text answer).
    """
    from langgraph_hera.routing.decoding import reply_logprob, reply_margin

    schemas = tool_schemas(tools)
    calls = list(reply.tool_calls) if isinstance(reply, AIMessage) else []
    bad = list(getattr(reply, "invalid_tool_calls", None) or [])
    valid = not bad and all(
        (not schemas or c["name"] in schemas)
        and args_match_schema(c["args"], schemas.get(c["name"]))
        for c in calls
    )
    route_input.edge_action = message_text(reply)
    route_input.edge_logprob = reply_logprob(reply)
    route_input.edge_margin = reply_margin(reply)
    first = calls[0]["name"] if calls else (bad[0].get("name") or "" if bad else "")
    route_input.extra.update(
        edge_tool=str(first or ""),
        edge_args_valid=bool(calls) and valid,
        edge_action_valid=valid,
    )
    return route_input


def route_input_from_messages(
    messages: Sequence[BaseMessage],
    *,
    history: Sequence[str] = (),
    tools: Sequence[Any] | None = None,
) -> RouteInput:
    """Features of a chat, scoped to the current run (turn).

    The task is the latest user request (not the thread's first message); ``step`` counts the
    AI messages since it; the observation is the last message; repetition signals look at this
    run only.

    Args:
        messages: The thread's messages, oldest first.
        history: Targets of this run's previous steps (oldest first).
        tools: The tools offered to the model at this step, when known (`tool_context`).
    """
    start, _ = current_run(messages)
    run = list(messages[start:])
    task = message_text(run[0]) if run and isinstance(run[0], HumanMessage) else ""
    ai_texts = [message_text(m) for m in run if isinstance(m, AIMessage)]
    other_texts = [message_text(m) for m in run if not isinstance(m, AIMessage)]
    return RouteInput(
        task=task,
        step=len(ai_texts),
        observation=message_text(messages[-1]) if messages else "",
        last_action=ai_texts[-1] if ai_texts else "",
        history=list(history),
        extra={
            "action_repeats": _repeats(ai_texts),
            "observation_repeats": _repeats(other_texts),
            "n_messages": len(run),
            "n_thread_messages": len(messages),
            **tool_context(messages, tools),
        },
    )


def route_input_from_state(state: Mapping[str, Any]) -> RouteInput:
    """Features of a `HeraState`: text-action fields when present, else the messages."""
    messages: list[BaseMessage] = list(state.get("messages") or [])
    turn = state.get("turn")
    history = [
        d["target"] for d in state.get("route_log") or [] if turn is None or d.get("turn") == turn
    ]
    ri = route_input_from_messages(messages, history=history)
    ri.step = int(state.get("step", ri.step))
    if state.get("task"):
        ri.task = str(state["task"])
    if "observation" in state:
        ri.observation = str(state.get("observation") or "")
        ri.extra["observation_repeats"] = int(state.get("observation_repeats", 0))
    if "last_action" in state:
        ri.last_action = str(state.get("last_action") or "")
        ri.extra["action_repeats"] = int(state.get("action_repeats", 0))
    ri.valid_actions = list(state.get("valid_actions") or [])
    proposal = state.get("edge_proposal")
    if proposal and proposal.get("step") == ri.step:
        ri.edge_action = proposal.get("action")
        ri.edge_logprob = proposal.get("logprob")
        ri.edge_margin = proposal.get("margin")
        ri.extra["edge_action_valid"] = bool(proposal.get("valid"))
        edge = normalize_text(ri.edge_action)
        ri.extra["edge_action_done_before"] = sum(
            normalize_text(r.get("action")) == edge for r in state.get("trajectory") or []
        )
    if "action_valid" in state:
        ri.extra["last_action_valid"] = bool(state["action_valid"])
    return ri
