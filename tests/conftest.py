"""Shared test helpers: a scripted fake chat model, a tiny deterministic text environment, and
recordings of real games with a scripted edge."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_hera.envs.base import EnvStep
from langgraph_hera.policies import RoutingPolicy


class ScriptedChat(BaseChatModel):
    """Replies from a script (strings or AIMessages); can raise; counts its calls."""

    script: list[Any] = []
    name_: str = "scripted"
    fail: bool = False
    calls: int = 0
    tokens_in: int = 11
    tokens_out: int = 3

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.fail:
            raise ConnectionError(f"{self.name_} is down")
        item = self.script[(self.calls - 1) % len(self.script)] if self.script else "ok"
        if callable(item):
            item = item(messages)
        msg = item if isinstance(item, AIMessage) else AIMessage(str(item))
        msg = msg.model_copy(
            update={
                "usage_metadata": {
                    "input_tokens": self.tokens_in,
                    "output_tokens": self.tokens_out,
                    "total_tokens": self.tokens_in + self.tokens_out,
                },
                "response_metadata": {**msg.response_metadata, "model_name": self.name_},
            }
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChat:
        return self


class CostlyChat(ScriptedChat):
    """A scripted model whose prompt size (hence price) changes from call to call."""

    sizes: list[int] = [100]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.tokens_in = self.sizes[self.calls % len(self.sizes)]
        return super()._generate(messages, stop, run_manager, **kwargs)


class TargetsPolicy(RoutingPolicy):
    """Routes by a given sequence of targets (cycled by step)."""

    name = "scripted-targets"

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets

    def score(self, route_input: Any) -> float:
        return 1.0 if self.targets[route_input.step % len(self.targets)] == "cloud" else 0.0


class CounterEnv:
    """A tiny deterministic text game: reach `goal` by typing 'inc'; 'dec' goes back."""

    suite = "counter"

    def __init__(self, goal: int = 3, fail_on: str | None = None) -> None:
        self.goal = goal
        self.fail_on = fail_on
        self.value = 0
        self.closed = False

    def _obs(self, text: str, reward: float = 0.0) -> EnvStep:
        done = self.value >= self.goal
        return EnvStep(
            task=f"reach {self.goal}",
            observation=text,
            valid_actions=["dec", "inc", "look"],
            reward=reward,
            score=float(self.value),
            done=done,
            success=done,
        )

    def reset(self, seed: int) -> EnvStep:
        self.value = 0
        return self._obs("value is 0")

    def step(self, action: str) -> EnvStep:
        if self.fail_on and action == self.fail_on:
            raise RuntimeError("env crashed")
        if action == "inc":
            self.value += 1
        elif action == "dec":
            self.value -= 1
        return self._obs(f"value is {self.value}", reward=1.0 if action == "inc" else 0.0)

    def expert_action(self) -> str:
        self.last_plan = ["inc"] * max(self.goal - self.value, 1)
        return "inc"

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def scripted() -> Callable[..., ScriptedChat]:
    def make(*script: Any, name: str = "scripted", fail: bool = False) -> ScriptedChat:
        return ScriptedChat(script=list(script), name_=name, fail=fail)

    return make


def write_wasteful_edge_recording(path: Path, seeds: Sequence[int], suite: str = "twc") -> None:
    """An ``--also-edge``-shaped recording of real games: the expert (stand-in cloud) acts; the
    "edge" proposes the expert's action at even steps and wastes a step (``look around``) at
    odd ones. Needs TextWorldExpress."""
    from langgraph_hera.envs import make_env

    rows: list[dict[str, Any]] = []
    env = make_env(suite)
    try:
        for seed in seeds:
            step = env.reset(seed)
            for t in range(30):
                expert = env.expert_action()
                edge = "look around" if t % 2 else expert
                rows.append({
                    "suite": suite, "seed": seed, "policy": "always-cloud", "step": t,
                    "task": step.task, "observation": step.observation,
                    "valid_actions": step.valid_actions, "target": "cloud", "action": expert,
                    "action_valid": True, "cloud_action": expert, "edge_action": edge,
                    "edge_valid": True, "edge_logprob": -0.5, "agree": edge == expert,
                    "episode_success": True,
                })  # fmt: skip
                step = env.step(expert)
                rows[-1]["next_observation"] = step.observation
                if step.done:
                    break
    finally:
        env.close()
    path.mkdir(parents=True, exist_ok=True)
    (path / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
