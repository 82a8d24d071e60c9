"""Build a policy's `RouteInput` from graph state or from a list of chat messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langgraph_hera.policies.base import RouteInput


def message_text(message: BaseMessage) -> str:
    """Plain text of a message (text blocks joined; tool calls as ``name(args)``)."""
    text: str = str(message.text)
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = "; ".join(f"{c['name']}({c['args']})" for c in message.tool_calls)
        text = f"{text} {calls}".strip()
    return text


def _norm(text: Any) -> str:
    return " ".join(str(text or "").lower().split())


def _repeats(items: Sequence[str]) -> int:
    """How many times the last item occurred before (0 when new)."""
    if not items:
        return 0
    last = _norm(items[-1])
    return sum(_norm(i) == last for i in items[:-1])


def route_input_from_messages(
    messages: Sequence[BaseMessage], *, history: Sequence[str] = ()
) -> RouteInput:
    """Features of a chat: task = first human message, observation = last message."""
    task = next((message_text(m) for m in messages if isinstance(m, HumanMessage)), "")
    ai_texts = [message_text(m) for m in messages if isinstance(m, AIMessage)]
    other_texts = [message_text(m) for m in messages if not isinstance(m, AIMessage)]
    return RouteInput(
        task=task,
        step=len(ai_texts),
        observation=message_text(messages[-1]) if messages else "",
        last_action=ai_texts[-1] if ai_texts else "",
        history=list(history),
        extra={
            "action_repeats": _repeats(ai_texts),
            "observation_repeats": _repeats(other_texts),
            "n_messages": len(messages),
        },
    )


def route_input_from_state(state: Mapping[str, Any]) -> RouteInput:
    """Features of a `HeraState`: text-action fields when present, else the messages."""
    messages: list[BaseMessage] = list(state.get("messages") or [])
    history = [d["target"] for d in state.get("route_log") or []]
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
        ri.extra["edge_action_valid"] = bool(proposal.get("valid"))
        edge = _norm(ri.edge_action)
        ri.extra["edge_action_done_before"] = sum(
            _norm(r.get("action")) == edge for r in state.get("trajectory") or []
        )
    if "action_valid" in state:
        ri.extra["last_action_valid"] = bool(state["action_valid"])
    return ri
