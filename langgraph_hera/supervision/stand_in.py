"""`ExpertSupervisor`: the offline stand-in for a cloud supervisor (PEVR / EVA).

There is no cloud model on these machines. The stand-in answers the supervisor's requests the
way a strong cloud model would, with the environment's planner for the parts that need
knowledge of the world and simple rules for the rest:

- plan / replan: the expert's plan from the current state (at most ``plan_steps`` actions);
- verify against a plan (PEVR): off track when the executor repeats itself (the same
  observations come back), the game rejects most of its actions, or fewer than half of its
  actions since the last check are steps of the plan;
- verify against the request (EVA): off track when the executor repeats itself or the game
  rejects most of its actions;
- advise (EVA): a one-line summary of the executor's steps and the expert's next actions.

The verdicts are judged from the transcript only, never from the environment's hidden state,
so their false positives / negatives against the ground truth (the expert's distance to the goal)
are real measurements. Token usage is counted as GPT-4o would count the same prompt and reply.
Every reply says ``stand_in`` in its response metadata, and every report that uses it must say
that its supervisor is an expert stand-in, not a cloud model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

from langgraph_hera.envs.expert import stand_in_reply
from langgraph_hera.routing.nodes import normalize_action
from langgraph_hera.supervision.prompts import request_kind

#: Phrases with which the suites' games reject an action.
REJECTIONS = (
    "not sure what you mean",
    "i don't understand",
    "unknown action",
    "nothing happens",
    "you can't",
    "can't see",
)


def _section(text: str, start: str, end: str | None = None) -> str:
    i = text.find(start)
    if i < 0:
        return ""
    body = text[i + len(start) :]
    if end is not None and end in body:
        body = body[: body.index(end)]
    return body


def plan_steps(text: str) -> list[str]:
    """The steps of a numbered plan (``1. take apple``), normalised."""
    return [normalize_action(m) for m in re.findall(r"^\s*\d+[.)]\s*(.+?)\s*$", text, re.MULTILINE)]


def executed(transcript: str) -> tuple[list[str], list[str]]:
    """(actions, observations) of a text-action transcript (``> action`` then observation)."""
    actions: list[str] = []
    observations: list[str] = []
    for block in re.split(r"^> ", transcript, flags=re.MULTILINE)[1:]:
        head, _, rest = block.partition("\n")
        actions.append(normalize_action(head))
        observations.append(normalize_action(rest))
    return actions, observations


def expert_plan(env: Any, limit: int = 10) -> list[str]:
    """The expert's plan from ``env``'s current state (its next ``limit`` actions)."""
    first = env.expert_action()
    plan = list(getattr(env, "last_plan", None) or [first])
    return plan[:limit]


class ExpertSupervisor(BaseChatModel):
    """A chat model that answers supervisor requests with the environment's planner and rules.

    Args:
        planner: Returns the expert's plan (next actions) from the current state, e.g.
            ``lambda: expert_plan(env)``.
        plan_steps: Most plan steps written.
        advice_steps: Most next actions given as advice.
        model_name: Reported and priced name (the stand-in is priced as GPT-4o by default).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    planner: Callable[[], Sequence[str]]
    plan_steps: int = Field(default=10, ge=1)
    advice_steps: int = Field(default=3, ge=1)
    model_name: str = "gpt-4o"

    @property
    def _llm_type(self) -> str:
        return "hera-expert-supervisor-stand-in"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "stand_in": True}

    def _plan(self, limit: int) -> list[str]:
        return [str(a) for a in list(self.planner())[:limit]]

    @staticmethod
    def _stalled(actions: list[str], observations: list[str]) -> str | None:
        """Why the steps show no progress (rejected or repeated), or ``None``."""
        rejected = sum(any(r in o for r in REJECTIONS) for o in observations)
        if 2 * rejected > len(actions):
            return f"{rejected} of {len(actions)} recent actions were rejected"
        if len(actions) >= 2 and len(set(observations)) < 0.6 * len(actions):
            return "the executor is repeating itself (the same observations come back)"
        return None

    def _verify_plan(self, prompt: str) -> tuple[bool, str]:
        plan = set(plan_steps(_section(prompt, "Plan:\n", "Executor's steps")))
        actions, observations = executed(_section(prompt, "since the last check:\n"))
        if not actions:
            return True, "no steps to judge yet"
        stalled = self._stalled(actions, observations)
        if stalled:
            return False, stalled
        in_plan = sum(a in plan for a in actions)
        if 2 * in_plan >= len(actions):
            return True, f"{in_plan} of {len(actions)} recent actions follow the plan"
        return False, f"only {in_plan} of {len(actions)} recent actions follow the plan"

    def _verify_query(self, prompt: str) -> tuple[bool, str]:
        actions, observations = executed(_section(prompt, "since the last check:\n"))
        if not actions:
            return True, "no steps to judge yet"
        stalled = self._stalled(actions, observations)
        if stalled:
            return False, stalled
        return True, "the executor's actions are accepted and not repetitive"

    def _answer(self, kind: str, prompt: str) -> str:
        if kind in ("plan", "replan"):
            steps = self._plan(self.plan_steps)
            return "\n".join(f"{i}. {a}" for i, a in enumerate(steps, 1))
        if kind == "verify-plan":
            ok, reason = self._verify_plan(prompt)
            return json.dumps({"on_track": ok, "reason": reason})
        if kind == "verify-query":
            ok, reason = self._verify_query(prompt)
            return json.dumps({"on_track": ok, "reason": reason})
        if kind == "advise":
            actions, _ = executed(_section(prompt, "Executor's steps so far:\n"))
            lines = []
            if "summarise" in prompt:
                last = ", ".join(actions[-3:]) or "nothing yet"
                lines.append(f"Summary: {len(actions)} steps so far; the last were: {last}.")
            nxt = self._plan(self.advice_steps)
            lines.append("Advice: do next: " + "; then ".join(nxt) + ".")
            return "\n".join(lines)
        raise ValueError(
            f"ExpertSupervisor: unknown request kind {kind!r}; it answers the prompts of "
            "langgraph_hera.supervision.prompts (plan, verify-plan, verify-query, replan, advise)"
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kind = request_kind(messages)
        last = messages[-1]
        prompt = last.content if isinstance(last.content, str) else str(last.content)
        text = self._answer(kind, prompt)
        reply = stand_in_reply(messages, text, self.model_name, request=kind)
        return ChatResult(generations=[ChatGeneration(message=reply)])
