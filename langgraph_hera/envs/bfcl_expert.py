"""`BfclExpertChatModel`: the expert stand-in for the cloud on BFCL, built from BFCL's ground truth.

It is not a language model. At each call it reads the thread (which turn this is, every call the
agent made so far) and continues the current turn from **whatever state the agent reached**:

1. the reference is the state BFCL's ground truth reaches after this turn;
2. for each suffix ``gt[k:]`` of the turn's ground-truth calls (shortest first), it replays the
   agent's calls plus that suffix on fresh API instances and asks BFCL's own state and
   execution-response checks whether the turn would then pass;
3. the first suffix that passes is what remains (at least one call in a turn where the agent
   made none: BFCL fails a turn without calls): it answers with its first call (one call per
   step), or with a short final text when nothing remains;
4. when no suffix passes (the agent's earlier steps broke the state), it falls back to the
   ground-truth calls of the turn the agent has not made yet (by exact call text), in order.

Every reply is labelled ``"expert stand-in (BFCL ground truth)"`` (``response_metadata``
``stand_in``) and carries the token usage a cloud call with the same prompt and tool schemas
would have reported (GPT-4o's tokenizer), priced as ``model_name``.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from langgraph_hera.envs.bfcl import BfclTask, decoded_turns, execute, parse_call
from langgraph_hera.envs.expert import count_tokens, stand_in_reply

EXPERT_LABEL = "expert stand-in (BFCL ground truth)"
FINAL_TEXT = "Done: the request of this turn is complete."


def _turn_passes(task: BfclTask, turn: int, agent_calls: list[str], suffix: Sequence[str]) -> bool:
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import (
        response_checker,
        state_checker,
    )

    truth = [c for t in task.ground_truth[: turn + 1] for c in t]
    truth_results, truth_instances = execute(task, truth)
    results, instances = execute(task, [*agent_calls, *suffix])
    if set(instances) != set(truth_instances):
        return False
    if not state_checker(instances, truth_instances)["valid"]:
        return False
    turn_truth = truth_results[len(truth) - len(task.ground_truth[turn]) :]
    return bool(response_checker(results, turn_truth, turn)["valid"])


def remaining_calls(task: BfclTask, messages: Sequence[BaseMessage]) -> list[str]:
    """The ground-truth calls still needed to finish the current turn from the agent's state.

    Args:
        task: The task.
        messages: The thread so far (the current turn is the one of the last user message).

    Returns:
        The calls, in order; empty when the turn is done (or there is no turn).
    """
    decoded = decoded_turns(messages)
    turn = sum(isinstance(m, HumanMessage) for m in messages) - 1
    if turn < 0 or turn >= len(task.ground_truth):
        return []
    gt = list(task.ground_truth[turn])
    agent_calls = [c for t in decoded for step in t for c in step]
    made = [c for step in (decoded[turn] if turn < len(decoded) else []) for c in step]
    # BFCL fails a turn with ground-truth calls and no model call even when earlier turns
    # already reached its state: such a turn needs at least one call.
    longest = len(gt) if made or not gt else len(gt) - 1
    for k in range(longest, -1, -1):  # shortest suffix first
        if _turn_passes(task, turn, agent_calls, gt[k:]):
            return gt[k:]
    left = []
    for call in gt:
        norm = _normal(call)
        hit = next((i for i, c in enumerate(made) if _normal(c) == norm), None)
        if hit is None:
            left.append(call)
        else:
            made.pop(hit)
    return left


def _normal(call: str) -> str:
    try:
        name, args, kwargs = parse_call(call)
    except (ValueError, SyntaxError):
        return call
    return json.dumps([name, args, sorted(kwargs.items())], default=str)


def _keyword_args(task: BfclTask, call: str) -> tuple[str, dict[str, Any]]:
    """A ground-truth call's name and arguments by name (positional ones named from the API)."""
    name, args, kwargs = parse_call(call)
    if args:
        import importlib

        from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

        for cls_name in task.entry["involved_classes"]:
            cls = getattr(importlib.import_module(CLASS_FILE_PATH_MAPPING[cls_name]), cls_name)
            if hasattr(cls, name):
                params = [
                    p for p in inspect.signature(getattr(cls, name)).parameters if p != "self"
                ]
                kwargs = {**dict(zip(params, args, strict=False)), **kwargs}
                break
    return name, kwargs


class BfclExpertChatModel(BaseChatModel):
    """The expert stand-in on a BFCL task: continues the current turn's ground-truth calls.

    Args:
        task: The BFCL task being played (one model per task; it keeps no per-thread state).
        model_name: Name reported in ``response_metadata`` and priced by the ledger.

    Example:
        >>> cloud = BfclExpertChatModel(task=get_task("multi_turn_base_0"))  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task: BfclTask
    model_name: str = "gpt-4o"

    @property
    def _llm_type(self) -> str:
        return "hera-bfcl-expert-stand-in"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "task": self.task.id, "stand_in": EXPERT_LABEL}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tool schemas (counted into the prompt's tokens; the answer comes from BFCL)."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        left = remaining_calls(self.task, messages)
        if left:
            name, args = _keyword_args(self.task, left[0])
            text = json.dumps({"name": name, "arguments": args})
        else:
            text = FINAL_TEXT
        reply = stand_in_reply(messages, text, self.model_name, task=self.task.id)
        reply.response_metadata["stand_in"] = EXPERT_LABEL
        base = reply.usage_metadata
        n_in, n_out = (base["input_tokens"], base["output_tokens"]) if base else (0, 0)
        tools = kwargs.get("tools")
        if tools:  # a cloud prompt carries the tool schemas too (thousands of tokens here)
            n_in += count_tokens(json.dumps(tools))[0]
        usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        if left:
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:24]}"}],
                usage_metadata=usage,  # type: ignore[arg-type]
                response_metadata=reply.response_metadata,
            )
        else:
            message = AIMessage(
                content=text,
                usage_metadata=usage,
                response_metadata=reply.response_metadata,  # type: ignore[arg-type]
            )
        return ChatResult(generations=[ChatGeneration(message=message)])
