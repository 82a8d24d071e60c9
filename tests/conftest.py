"""Shared test helpers: a scripted fake chat model and a tiny deterministic text environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
