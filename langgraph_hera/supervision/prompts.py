"""The supervisor's prompts (PEVR and EVA) and the parser of its verdicts.

Every request starts with a ``Request: <kind>`` line (``plan``, ``verify-plan``,
``verify-query``, ``replan``, ``advise``) so that logs and the expert stand-in can tell them
apart; a real cloud model simply reads it as part of the instructions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

SUPERVISOR_SYSTEM_PROMPT = (
    "You supervise a small on-device executor agent that works on a user's task step by step. "
    "You see the task and a transcript of the executor's recent steps. Be brief and concrete: "
    "the executor is weak and follows short, explicit instructions best."
)

_PLAN = (
    "Request: plan\n"
    "Write a short numbered plan (at most 10 steps, one concrete action or sub-goal per line) "
    "that accomplishes the task.\n\nTask: {task}\n{situation}"
)
_VERIFY_PLAN = (
    "Request: verify-plan\n"
    "Is the executor following the plan and making progress? Answer with JSON only: "
    '{{"on_track": true or false, "reason": "<one sentence>"}}\n\n'
    "Task: {task}\nPlan:\n{plan}\n\nExecutor's steps since the last check:\n{transcript}"
)
_VERIFY_QUERY = (
    "Request: verify-query\n"
    "Is the executor making progress towards the task? Answer with JSON only: "
    '{{"on_track": true or false, "reason": "<one sentence>"}}\n\n'
    "Task: {task}\n\nExecutor's steps since the last check:\n{transcript}"
)
_REPLAN = (
    "Request: replan\n"
    "The executor went off track ({reason}). Write a revised short numbered plan for the "
    "REMAINING part of the task, starting from the current situation.\n\n"
    "Task: {task}\nPrevious plan:\n{plan}\n\nExecutor's recent steps:\n{transcript}\n"
    "{situation}"
)
_ADVISE = (
    "Request: advise\n"
    "The executor is not making progress ({reason}). {summary_instruction}Then give advice: "
    "what to do next, in at most three short lines.\n\n"
    "Task: {task}\n\nExecutor's steps so far:\n{transcript}\n{situation}"
)
_SUMMARY_INSTRUCTION = "First summarise, in two lines at most, what has been done so far. "


def _messages(text: str) -> list[BaseMessage]:
    return [SystemMessage(SUPERVISOR_SYSTEM_PROMPT), HumanMessage(text)]


def plan_prompt(task: str, situation: str = "") -> list[BaseMessage]:
    """PEVR's initial plan."""
    return _messages(_PLAN.format(task=task, situation=situation))


def verify_prompt(
    mode: str, task: str, transcript: str, plan: str | None = None
) -> list[BaseMessage]:
    """The verification request: against the plan (PEVR) or the query (EVA)."""
    if mode == "pevr":
        return _messages(
            _VERIFY_PLAN.format(task=task, plan=plan or "(none)", transcript=transcript)
        )
    return _messages(_VERIFY_QUERY.format(task=task, transcript=transcript))


def replan_prompt(
    task: str, plan: str | None, transcript: str, reason: str, situation: str = ""
) -> list[BaseMessage]:
    """PEVR's intervention: a revised plan for the remaining task."""
    return _messages(
        _REPLAN.format(
            task=task,
            plan=plan or "(none)",
            transcript=transcript,
            reason=reason,
            situation=situation,
        )
    )


def advise_prompt(
    task: str, transcript: str, reason: str, *, summarize: bool = True, situation: str = ""
) -> list[BaseMessage]:
    """EVA's intervention: a summary of prior work (unless ``summarize=False``) plus advice."""
    return _messages(
        _ADVISE.format(
            task=task,
            transcript=transcript,
            reason=reason,
            summary_instruction=_SUMMARY_INSTRUCTION if summarize else "",
            situation=situation,
        )
    )


def request_kind(messages: list[BaseMessage]) -> str:
    """The ``Request:`` kind of a supervisor prompt (``""`` when there is none)."""
    for m in reversed(messages):
        text = m.content if isinstance(m.content, str) else str(m.content)
        match = re.search(r"^Request: ([\w-]+)", text, re.MULTILINE)
        if match:
            return match.group(1)
    return ""


_BOOL = {"true": True, "yes": True, "false": False, "no": False}


def parse_verdict(text: Any) -> tuple[bool, str, bool]:
    """Parse a verifier reply into ``(on_track, reason, parsed)``.

    Accepts a JSON object anywhere in the reply (``{"on_track": ..., "reason": ...}``), or a
    line such as ``on_track: no - reason``. Anything else is unparsable: on track (the executor
    continues), ``parsed=False`` and the raw reply as the reason, so that it is recorded.
    """
    raw = text if isinstance(text, str) else str(text or "")
    for found in re.finditer(r"\{.*?\}", raw, re.DOTALL):
        try:
            data = json.loads(found.group(0))
        except ValueError:
            continue
        if isinstance(data, dict) and "on_track" in data:
            value = data["on_track"]
            if isinstance(value, str):
                value = _BOOL.get(value.strip().lower())
            if isinstance(value, bool):
                return value, str(data.get("reason", "")).strip(), True
    match = re.search(r"on[_ ]track\W{0,3}\s*(true|false|yes|no)\b\W*(.*)", raw, re.IGNORECASE)
    if match:
        return _BOOL[match.group(1).lower()], match.group(2).strip()[:300], True
    return True, f"unparsable verifier output: {raw[:200]!r}", False
