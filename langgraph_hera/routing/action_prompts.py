"""Prompts of text-action agents: what a model sees for one step, in each prompt layout, and how
its free-form reply is mapped onto a valid action.

Layouts (`PromptLayout`): ``"window"`` (the task, the last few steps, the observation and the
valid actions in one message: the layout the shipped SmolLM2 adapter was trained on),
``"messages"`` (the executor's whole context since the last reset, as a chat),
``"since-reset"`` (the same in one message) and ``"episode"`` (the whole episode with the
game's score after each step, progress made and undone, and a loop warning: for general LLMs;
for an environment whose score only says whether the task is won, ``score_kind`` ``"success"``
in the state, the steps without scores and the warnings from repeated observations instead).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    SystemMessage,
)

from langgraph_hera.policies.features import normalize_text

ACTION_SYSTEM_PROMPT = (
    "You are an agent in a text environment. Read the task, the recent history and the current "
    "observation, then reply with exactly one action, copied from the list of valid actions. "
    "Reply with the action only."
)


def run_trajectory(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The trajectory records of the current run (episode): ``trajectory`` accumulates over the
    thread, each record naming its run in ``turn``."""
    turn = state.get("turn")
    return [r for r in state.get("trajectory") or [] if r.get("turn") == turn]


def action_prompt(state: dict[str, Any], *, history_window: int = 4) -> list[BaseMessage]:
    """The messages a model sees for one text-action step."""
    lines = [f"Task: {state.get('task', '')}"]
    past = run_trajectory(state)[-history_window:]
    if past:
        lines.append("Recent steps:")
        lines += [f"> {p['action']}\n{clip_text(p['next_observation'])}" for p in past]
    lines += _state_lines(state)
    return [SystemMessage(ACTION_SYSTEM_PROMPT), HumanMessage("\n".join(lines))]


#: How an action node lays out its prompt (see `create_action_node`): ``"window"`` (the last
#: ``history_window`` steps, `action_prompt`; the layout the shipped SmolLM2 adapter was
#: trained on), ``"messages"`` (the whole context since the last reset as a chat,
#: `messages_prompt`), ``"since-reset"`` (that context in one message, `since_reset_prompt`),
#: ``"episode"`` (the whole episode with the game's score after every step and the actions
#: already done, `episode_prompt`: for general LLMs).
PromptLayout = Literal["window", "messages", "since-reset", "episode"]
PROMPT_LAYOUTS: tuple[PromptLayout, ...] = ("window", "messages", "since-reset", "episode")

EPISODE_SYSTEM_PROMPT = (
    "You are playing a text adventure game. Each turn you see the task, every step taken so "
    "far with the game's score after it, and the current observation. The score goes up when "
    "an action makes progress on the task; an action that left the score unchanged did not "
    "help, and an action already done does not need doing again. Choose the next action that "
    "makes progress. Reply with exactly one action copied from the list of valid actions, and "
    "nothing else."
)
#: The system prompt of the ``"episode"`` layout when the score only says whether the task is
#: won (``score_kind`` ``"success"``).
EPISODE_SUCCESS_SYSTEM_PROMPT = (
    "You are playing a text adventure game. Each turn you see the task, every step taken so "
    "far and the current observation. The score stays 0 until the whole task is done, so it "
    "does not show progress; an action that only brought back an observation you had already "
    "seen did not help, and an action already done does not need doing again. Choose the next "
    "action that brings the task closer to done. Reply with exactly one action copied from the "
    "list of valid actions, and nothing else."
)
_SUCCESS_SCORE_NOTE = "(it becomes 1 only when the whole task is done"


def system_prompt_for(prompt: str) -> str:
    """The system prompt sent with a recorded user ``prompt`` of these layouts: the
    ``"episode"`` layout's (its progress or its success-score variant, told apart by their
    score line) or `ACTION_SYSTEM_PROMPT` (the window, messages and since-reset layouts). Used
    to price a recorded state's cloud call (`langgraph_hera.training.usd.state_cloud_usd`)."""
    text = str(prompt)
    if not (text.startswith("Task:") and "\nScore so far: " in text):
        return ACTION_SYSTEM_PROMPT
    if _SUCCESS_SCORE_NOTE in text:
        return EPISODE_SUCCESS_SYSTEM_PROMPT
    return EPISODE_SYSTEM_PROMPT


#: Steps `episode_prompt` shows in full (older ones go into a compact list of actions).
EPISODE_FULL_STEPS = 10


def _fmt_score(x: float) -> str:
    return f"{x:g}"


def episode_prompt(
    state: dict[str, Any], *, full_steps: int = EPISODE_FULL_STEPS
) -> list[BaseMessage]:
    """The messages of the ``"episode"`` layout: the task, the game's current score, every
    step of the episode (the last ``full_steps`` with their observations, earlier ones as a
    compact list of actions with their score changes), the actions that raised the score
    (already done), the current observation and the valid actions.

    The score after each step is the record's ``game_score`` (cumulative rewards for records
    without one). Bounded: at most ``full_steps`` observations are shown.

    A state whose ``score_kind`` is ``"success"`` (the score is 1 only once the task is won)
    gets the same steps without score lines, and what signals no progress there instead
    (`_repeat_lines`: observations seen before, loops, nothing new for a while) in place of
    what the score says (`_progress_lines`).
    """
    success = state.get("score_kind", "progress") == "success"
    past = run_trajectory(state)
    scored: list[tuple[dict[str, Any], float, float]] = []  # (record, score after, change)
    running = 0.0
    for rec in past:
        before = running
        after = rec.get("game_score")
        running = float(after) if after is not None else before + float(rec.get("reward") or 0)
        scored.append((rec, running, running - before))
    current = state.get("score")
    score_now = _fmt_score(float(current) if current is not None else running)
    # Both score lines start alike (`system_prompt_for` finds the layout by it).
    if success:
        note = f"{_SUCCESS_SCORE_NOTE}; it does not show partial progress)"
    else:
        note = "(it rises with each part of the task done)"
    lines = [f"Task: {state.get('task', '')}", f"Score so far: {score_now} {note}"]
    if scored:
        cut = max(0, len(scored) - max(0, full_steps))
        if cut:
            lines.append(
                f"Earlier steps (1-{cut}), "
                + ("actions:" if success else "action and score change:")
            )
            lines.append(
                "; ".join(
                    f"{i + 1}. {r['action']}" + ("" if success else f" ({_change(d)})")
                    for i, (r, _, d) in enumerate(scored[:cut])
                )
            )
        lines.append(f"Steps so far ({len(scored)}):" if not cut else "Latest steps:")
        for i, (rec, after, change) in enumerate(scored[cut:], start=cut + 1):
            step = f"Step {i}: > {rec['action']}\n{clip_text(rec.get('next_observation', ''), 300)}"
            if not success:
                step += f"\nScore: {_fmt_score(after)} ({_change(change)})"
            lines.append(step)
        lines += _repeat_lines(past) if success else _progress_lines(scored)
    lines += _state_lines(state)
    system = EPISODE_SUCCESS_SYSTEM_PROMPT if success else EPISODE_SYSTEM_PROMPT
    return [SystemMessage(system), HumanMessage("\n".join(lines))]


def _repeat_lines(past: Sequence[Mapping[str, Any]]) -> list[str]:
    """What signals no progress when the score cannot: the actions whose observation had been
    seen before in the episode (they changed nothing), and a warning when the agent goes round
    in a loop or has seen nothing new for a while."""
    seen: set[str] = set()
    repeated, last_new = [], 0
    for i, rec in enumerate(past, start=1):
        seen.add(normalize_text(rec.get("observation", "")))
        after = normalize_text(rec.get("next_observation", ""))
        if after in seen:
            repeated.append(rec["action"])
        else:
            last_new = i
        seen.add(after)
    lines = []
    if repeated:
        lines.append(
            "Changed nothing (the observation was one already seen): "
            + "; ".join(dict.fromkeys(repeated))
        )
    lines += _loop_lines([r["action"] for r in past])
    lines += _stalled_lines(
        len(past) - last_new,
        "Nothing new has been seen",
        f"the last new observation at step {last_new}",
    )
    return lines


def _loop_lines(actions: Sequence[str]) -> list[str]:
    """A warning when the last 1, 2 or 3 actions were the same three times running."""
    for k in (1, 2, 3):
        if (
            len(actions) >= 2 * k + k
            and actions[-k:] == actions[-2 * k : -k] == actions[-3 * k : -2 * k]
        ):
            loop = ", ".join(actions[-k:])
            return [
                f"Warning: you are going round in a loop ({loop}, again and again) and it makes "
                "no progress. Do something different: an action you have not tried yet."
            ]
    return []


def _state_lines(state: Mapping[str, Any]) -> list[str]:
    """The prompt's closing lines, the same in every layout: observation, valid actions, cue."""
    lines = [f"Observation: {clip_text(state.get('observation', ''))}"]
    valid = state.get("valid_actions") or []
    if valid:
        lines.append("Valid actions: " + " | ".join(valid))
    return [*lines, "Action:"]


def _progress_lines(scored: Sequence[tuple[dict[str, Any], float, float]]) -> list[str]:
    """What the score says about the episode so far: the progress made (actions that raised the
    score to a new best), the actions that lowered it (undoing progress), those that changed
    nothing, and a warning when the agent goes round in a loop or has stalled."""
    best, best_step, new_best = 0.0, 0, []
    for i, (rec, after, delta) in enumerate(scored, start=1):
        if delta > 0 and after > best:
            best, best_step = after, i
            new_best.append(rec["action"])
    lines = []
    if new_best:
        lines.append(
            "Progress made (each raised the score to a new best; keep it, do not undo it): "
            + "; ".join(dict.fromkeys(new_best))
        )
    lowered = list(dict.fromkeys(r["action"] for r, _, d in scored if d < 0))
    if lowered:
        lines.append("Lowered the score (undid progress; avoid): " + "; ".join(lowered))
    nothing = list(dict.fromkeys(r["action"] for r, _, d in scored if d == 0))
    if nothing:
        lines.append("Changed nothing: " + "; ".join(nothing))
    lines += _loop_lines([r["action"] for r, _, _ in scored])
    lines += _stalled_lines(
        len(scored) - best_step,
        "The score has not reached a new best",
        f"best {_fmt_score(best)} at step {best_step}",
    )
    return lines


def _stalled_lines(stalled: int, what: str, since: str) -> list[str]:
    """The warning for ``stalled`` (>= 6) steps without progress: ``what`` has not happened
    (e.g. "Nothing new has been seen"), ``since`` when it last did."""
    if stalled < 6:
        return []
    return [
        f"{what} for {stalled} steps ({since}): try actions you have not tried, "
        "e.g. explore elsewhere."
    ]


def _change(delta: float) -> str:
    if delta > 0:
        return f"+{_fmt_score(delta)}"
    if delta < 0:
        return f"{_fmt_score(delta)}"
    return "no change"


#: The old name of `PROMPT_LAYOUTS`.
HISTORIES = PROMPT_LAYOUTS


def since_reset_prompt(state: dict[str, Any]) -> list[BaseMessage]:
    """The executor's context in one message, in the format of `action_prompt`: the task, the
    supervisor's last handoff (plan or advice), and every step since the last reset.

    Grows with each step like `messages_prompt` until a reset, but keeps the single-message
    layout the shipped adapter was trained on.
    """
    start = int(state.get("context_start", 0))
    view = dict(state)
    view["trajectory"] = [r for r in run_trajectory(state) if int(r["step"]) >= start]
    handoff = state.get("handoff")
    if handoff:
        label = "Plan" if state.get("plan") else "Advice"
        view["task"] = f"{state.get('task', '')}\n{label}:\n{handoff}"
    return action_prompt(view, history_window=len(view["trajectory"]))


def messages_prompt(state: dict[str, Any]) -> list[BaseMessage]:
    """The messages a ReAct-style executor sees: its whole context since the last reset.

    The context grows by one action and one observation per step until a supervisor resets it
    (the monolithic agent of the PEVR/EVA paper); the valid actions are appended to the last
    message.
    """
    msgs = list(state.get("messages") or [])
    valid = state.get("valid_actions") or []
    tail = ("Valid actions: " + " | ".join(valid) + "\n" if valid else "") + "Action:"
    if msgs and isinstance(msgs[-1], HumanMessage):
        last = msgs.pop()
        text = last.content if isinstance(last.content, str) else str(last.content)
        msgs.append(HumanMessage(f"{clip_text(text, 1200)}\n{tail}"))
    else:
        msgs.append(HumanMessage(tail))
    return [SystemMessage(ACTION_SYSTEM_PROMPT), *msgs]


def layout_prompt(
    state: dict[str, Any], prompt_layout: PromptLayout = "window", *, history_window: int = 4
) -> list[BaseMessage]:
    """The messages of one text-action step in ``prompt_layout`` (see `PromptLayout`)."""
    if prompt_layout == "messages":
        return messages_prompt(state)
    if prompt_layout == "since-reset":
        return since_reset_prompt(state)
    if prompt_layout == "episode":
        return episode_prompt(state)
    return action_prompt(state, history_window=history_window)


def clip_text(text: str, limit: int = 600) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters with ``...``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_action(text: str) -> str:
    """An action as `parse_action` compares it: lower case, outer quotes and full stop
    stripped, whitespace collapsed."""
    return " ".join(text.lower().strip().strip("\"'`.").split())


def parse_action(text: str, valid_actions: Sequence[str]) -> tuple[str, bool]:
    """Map a model's free-form reply onto one valid action.

    Tries, in order: an exact match (case and spacing ignored) of the whole reply or its first
    line (an ``Action:`` prefix removed); the longest valid action contained in the reply; a
    close fuzzy match. Without a match the first line is returned with ``False``.

    Returns:
        ``(action, is_valid)``.
    """
    raw = (text or "").strip()
    first = raw.splitlines()[0] if raw else ""
    for prefix in ("action:", "> ", ">"):
        if first.lower().startswith(prefix):
            first = first[len(prefix) :]
    if not valid_actions:
        return first.strip(), bool(first.strip())
    by_norm = {normalize_action(a): a for a in valid_actions}
    for candidate in (raw, first):
        if normalize_action(candidate) in by_norm:
            return by_norm[normalize_action(candidate)], True
    low = normalize_action(raw)
    contained = [a for n, a in by_norm.items() if n and f" {n} " in f" {low} "]
    if contained:
        return max(contained, key=len), True
    close = difflib.get_close_matches(normalize_action(first), list(by_norm), n=1, cutoff=0.85)
    if close:
        return by_norm[close[0]], True
    return first.strip(), False
