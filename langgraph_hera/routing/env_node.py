"""The environment node of text-action agents: reset, step, and the per-step trajectory record."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Literal

from langchain_core.messages import HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from langgraph_hera.envs.base import EnvStep, TextEnv, score_kind_of
from langgraph_hera.policies.features import normalize_text
from langgraph_hera.routing.decide import current_context
from langgraph_hera.routing.nodes import PromptLayout, layout_prompt, run_trajectory
from langgraph_hera.secrets import get_logger, redact
from langgraph_hera.state import RUN_FIELDS, SUPERVISION_RUN_FIELDS, context_value

logger = get_logger(__name__)

#: Keys of one trajectory record (the `hera run` JSONL line adds episode fields).
TRAJECTORY_FIELDS = (
    "step",
    "observation",
    "valid_actions",
    "prompt",
    "edge_action",
    "edge_valid",
    "edge_logprob",
    "edge_margin",
    "cloud_action",
    "agree",
    "target",
    "policy",
    "score",
    "action",
    "action_valid",
    "action_logprob",
    "next_observation",
    "reward",
    "game_score",
    "done",
    "success",
    "input_tokens",
    "output_tokens",
    "usd",
    "latency_ms",
    "decision_ms",
)

# Environments created by the node itself (graphs served by `langgraph dev`, where the run
# context cannot carry a Python object), keyed by thread id.
_OWN_ENVS: dict[str, TextEnv] = {}
_LOCK = threading.Lock()


def _env_for(state: dict[str, Any], config: RunnableConfig) -> tuple[TextEnv, bool]:
    env = context_value(current_context(), "env")
    if env is not None:
        return env, False
    suite = state.get("suite")
    if not suite:
        raise ValueError(
            "the env node needs an environment: pass context={'env': env} (in-process) or "
            "'suite' and 'seed' in the input state"
        )
    key = str((config.get("configurable") or {}).get("thread_id") or id(state))
    with _LOCK:
        if key not in _OWN_ENVS:
            from langgraph_hera.envs import make_env

            _OWN_ENVS[key] = make_env(str(suite))
        return _OWN_ENVS[key], True


def current_env() -> TextEnv:
    """The environment of the run in progress (call from inside a node or a model it runs).

    Lets a model that needs the environment (the expert stand-in) find it when the graph is
    served and the run context cannot carry Python objects.

    Raises:
        LookupError: Not inside a run, or the run has no environment yet.
    """
    env = context_value(current_context(), "env")
    if env is not None:
        return env
    from langgraph.config import get_config

    try:
        key = str((get_config().get("configurable") or {}).get("thread_id"))
    except RuntimeError as exc:
        raise LookupError("current_env() must be called inside a graph run") from exc
    with _LOCK:
        if key in _OWN_ENVS:
            return _OWN_ENVS[key]
    raise LookupError(f"no environment for thread {key!r}: has the env node run yet?")


def _release(config: RunnableConfig) -> None:
    key = str((config.get("configurable") or {}).get("thread_id"))
    with _LOCK:
        env = _OWN_ENVS.pop(key, None)
    if env is not None:
        env.close()


def prompt_text(
    state: dict[str, Any], history_window: int = 4, prompt_layout: PromptLayout = "window"
) -> str:
    """The user part of the prompt the models saw for the current step in ``prompt_layout``
    (the system prompt is the layout's constant: `ACTION_SYSTEM_PROMPT`, or for ``"episode"``
    `EPISODE_SYSTEM_PROMPT`, `EPISODE_SUCCESS_SYSTEM_PROMPT` for a ``"success"`` score)."""
    return str(layout_prompt(state, prompt_layout, history_window=history_window)[-1].content)


def _fields(obs: EnvStep) -> dict[str, Any]:
    return {
        "task": obs.task,
        "observation": obs.observation,
        "valid_actions": list(obs.valid_actions),
        "score": obs.score,
        "done": obs.done,
        "success": obs.success,
    }


def expert_distance(env: TextEnv, obs: EnvStep | None = None) -> int | None:
    """Ground truth of progress: the length of the expert's plan from the current state
    (0 once the task is won; ``None`` when the environment has no planner or it found none)."""
    if obs is not None and obs.success:
        return 0
    if obs is not None and obs.done:
        return None
    try:
        first = env.expert_action()
    except Exception:  # noqa: BLE001 - progress tracking must never break an episode
        logger.debug("expert_distance failed", exc_info=True)
        return None
    plan = getattr(env, "last_plan", None)
    return len(plan) if plan and first else None


def env_step(
    state: dict[str, Any],
    config: RunnableConfig,
    *,
    history_window: int = 4,
    track_progress: bool = False,
    prompt_layout: PromptLayout = "window",
    cloud_prompt_layout: PromptLayout | None = None,
) -> dict[str, Any]:
    """Reset the environment (no observation yet) or execute ``state['action']``.

    ``history_window`` and ``prompt_layout`` must match the action nodes' so the recorded
    ``prompt`` is the one sent; a ``cloud_prompt_layout`` other than ``prompt_layout`` (the cloud
    sees another layout) adds the cloud's prompt as ``cloud_prompt``. Every record carries the
    game's score after the step (``game_score``).
    ``track_progress`` records the expert's distance to the goal before and after each step
    (``expert_distance_before`` / ``expert_distance``), the ground truth the supervisor's
    verdicts are scored against.
    """
    env, own = _env_for(state, config)
    # A new run (episode) starts on the thread's first visit, and on the first visit after an
    # episode ended or halted: one invoke is one episode, and nothing of the last one leaks.
    if "observation" not in state or state.get("done") or state.get("halt"):
        seed = state.get("seed", context_value(current_context(), "seed", 0))
        obs = env.reset(int(seed))
        update: dict[str, Any] = {
            **RUN_FIELDS,
            **SUPERVISION_RUN_FIELDS,
            **_fields(obs),
            "turn": f"episode-{uuid.uuid4().hex[:16]}",
            # What the score means, for the prompt layouts that show it (`episode_prompt`).
            "score_kind": score_kind_of(env),
            "edge_proposal": None,
            "last_action": "",
            "action_repeats": 0,
            "observation_repeats": 0,
            "expert_distance": None,
            # The messages hold the current episode (the executor's context).
            "messages": [
                RemoveMessage(id=REMOVE_ALL_MESSAGES),
                HumanMessage(f"Task: {obs.task}\n{obs.observation}"),
            ],
        }
        if track_progress:
            update["expert_distance"] = expert_distance(env, obs)
        return update
    action = str(state.get("action", ""))
    try:
        obs = env.step(action)
    except Exception as exc:  # an environment crash ends the episode, recorded
        msg = redact(f"step {state.get('step')}: environment failed on {action!r}: {exc!r}")
        logger.warning(msg)
        if own:
            _release(config)
        return {"errors": [msg], "halt": msg, "done": True, "success": False}
    records = run_trajectory(state)
    past = [r["action"] for r in records]
    # Every observation shown so far: each record's own, then the current one.
    seen = [r["observation"] for r in records]
    seen.append(state.get("observation", ""))
    decision = state.get("decision") or {}
    ledger = (state.get("ledger") or [{}])[-1]
    step = int(state.get("step", 1)) - 1
    proposal = state.get("edge_proposal") or {}
    if proposal.get("step") != step:
        proposal = {}
    target = decision.get("target")
    edge_action = action if target == "edge" else proposal.get("action")
    cloud_action = action if target == "cloud" else None
    record = {
        "turn": state.get("turn"),
        "step": step,
        "observation": state.get("observation", ""),
        "valid_actions": list(state.get("valid_actions") or []),
        "prompt": prompt_text(state, history_window, prompt_layout),
        "edge_action": edge_action,
        "edge_valid": proposal.get("valid", state.get("action_valid"))
        if edge_action is not None
        else None,
        "edge_logprob": proposal.get("logprob", state.get("action_logprob"))
        if edge_action is not None
        else None,
        "edge_margin": proposal.get("margin", state.get("action_margin"))
        if edge_action is not None
        else None,
        "cloud_action": cloud_action,
        "agree": None
        if edge_action is None or cloud_action is None
        else normalize_text(edge_action) == normalize_text(cloud_action),
        "target": target,
        "policy": decision.get("policy"),
        "score": decision.get("score"),
        "action": action,
        "action_valid": bool(state.get("action_valid", False)),
        "action_logprob": state.get("action_logprob"),
        "next_observation": obs.observation,
        "reward": obs.reward,
        "game_score": obs.score,
        "done": obs.done,
        "success": obs.success,
        "input_tokens": ledger.get("input_tokens", 0),
        "output_tokens": ledger.get("output_tokens", 0),
        "usd": ledger.get("usd", 0.0),
        "latency_ms": ledger.get("latency_ms", 0.0),
        "decision_ms": decision.get("latency_ms", 0.0),
    }
    if cloud_prompt_layout is not None and cloud_prompt_layout != prompt_layout:
        record["cloud_prompt"] = prompt_text(state, history_window, cloud_prompt_layout)
    progress: dict[str, Any] = {}
    if track_progress:
        progress["expert_distance"] = expert_distance(env, obs)
        record["expert_distance_before"] = state.get("expert_distance")
        record["expert_distance"] = progress["expert_distance"]
    if obs.done and own:
        _release(config)
    return {
        **progress,
        **_fields(obs),
        "last_action": action,
        "action_repeats": sum(normalize_text(a) == normalize_text(action) for a in past),
        "observation_repeats": sum(
            normalize_text(o) == normalize_text(obs.observation) for o in seen
        ),
        "messages": [HumanMessage(obs.observation)],
        "trajectory": [record],
    }


def create_env_node(
    *,
    name: str = "env",
    history_window: int = 4,
    track_progress: bool = False,
    prompt_layout: PromptLayout = "window",
    cloud_prompt_layout: PromptLayout | None = None,
) -> RunnableLambda:
    """The environment node: resets on the first visit, then executes each chosen action.

    Args:
        name: Node name.
        history_window: The action nodes' history window (for the recorded prompt).
        track_progress: Record the expert's distance to the goal at every step (costs one
            expert call per step; see `env_step`).
        prompt_layout: The action nodes' prompt layout (for the recorded prompt).
        cloud_prompt_layout: The cloud node's layout when it differs (recorded as
            ``cloud_prompt``).
    """

    def node(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return env_step(
            state,
            config,
            history_window=history_window,
            track_progress=track_progress,
            prompt_layout=prompt_layout,
            cloud_prompt_layout=cloud_prompt_layout,
        )

    return RunnableLambda(node, name=name)


def route_after_env(state: dict[str, Any]) -> Literal["router", "__end__"]:
    """END when the episode is done, halted, or out of steps; otherwise back to the router."""
    max_steps = int(context_value(current_context(), "max_steps", 50))
    if state.get("done") or state.get("halt") or int(state.get("step", 0)) >= max_steps:
        return "__end__"
    return "router"
