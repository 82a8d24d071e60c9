"""The ``langchain-router`` policy: LangChain's `ModelRouterMiddleware` as a `hera bench` baseline.

A bench run with it on real games is in test_evaluation.py (it reuses that module's game).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents.middleware import ModelRouterMiddleware
from langchain_core.messages import HumanMessage

from langgraph_hera.evaluation.bench import bench_points
from langgraph_hera.policies import RouteInput, RoutingPolicy, TaskLevelRouter, get_policy
from langgraph_hera.policies.langchain_router import LangChainRouter

TASK = "You are hungry! Let's cook a delicious meal. Check the cookbook in the kitchen."


class Recording(RoutingPolicy):
    """Scores by task length, and records the inputs it is asked about."""

    name = "recording"

    def __init__(self) -> None:
        self.threshold = 0.5
        self.seen: list[RouteInput] = []

    def score(self, route_input: RouteInput) -> float:
        self.seen.append(route_input)
        return 1.0 if len(route_input.task) > 20 else 0.0


def test_it_decides_through_the_middlewares_own_before_agent(monkeypatch) -> None:
    calls: list[Any] = []
    original = ModelRouterMiddleware.before_agent

    def spy(self, state, runtime):
        calls.append(state)
        return original(self, state, runtime)

    monkeypatch.setattr(ModelRouterMiddleware, "before_agent", spy)
    policy = get_policy("langchain-router", threshold=0.0)
    assert isinstance(policy, LangChainRouter)
    decision = policy.decide(RouteInput(task=TASK, step=3, observation="You see a fridge."))
    assert [s["messages"] for s in calls] == [[HumanMessage(TASK)]]
    assert decision["target"] == "cloud" and decision["policy"] == "langchain-router"
    assert decision["step"] == 3 and decision["threshold"] == 0.0
    assert decision["score"] == pytest.approx(TaskLevelRouter().task_score(TASK))
    assert decision["reason"].startswith("ModelRouterMiddleware chose 'cloud' for the task")


def test_one_choice_per_task_from_the_task_alone() -> None:
    classifier = Recording()
    policy = LangChainRouter(classifier=classifier)
    state_before = dict(vars(policy))
    steps = [
        RouteInput(task=TASK, step=i, observation=f"obs {i}", last_action="look", history=["edge"])
        for i in range(6)
    ]
    decisions = [policy.decide(ri) for ri in steps]
    assert {d["target"] for d in decisions} == {"cloud"}
    assert policy.decide(RouteInput(task="go north", step=5))["target"] == "edge"
    # The classifier saw the task and nothing else, so every step got the first step's answer.
    assert {(ri.task, ri.step, ri.observation, ri.last_action) for ri in classifier.seen} == {
        (TASK, 0, "", ""),
        ("go north", 0, "", ""),
    }
    # Nothing is remembered per task or per step.
    assert vars(policy) == state_before


def test_thresholds_move_the_choice_and_bad_arguments_are_clear(tmp_path) -> None:
    ri = RouteInput(task=TASK)
    assert LangChainRouter(threshold=0.0).decide(ri)["target"] == "cloud"
    assert LangChainRouter(threshold=0.99).decide(ri)["target"] == "edge"
    path = tmp_path / "task.json"
    TaskLevelRouter(0.0).save(path)
    assert LangChainRouter(path=str(path)).decide(ri)["target"] == "cloud"
    assert LangChainRouter(path=str(path), threshold=0.99).decide(ri)["target"] == "edge"
    with pytest.raises(ValueError, match=r"not both \(got classifier='random', threshold=0.3"):
        LangChainRouter(0.3, classifier="random")
    with pytest.raises(ValueError, match=r"unknown policy 'nope'"):
        LangChainRouter(classifier="nope")


def test_bench_sweeps_and_names_it() -> None:
    labels = [p.label for p in bench_points(["langchain-router", "threshold"], sweep=True)]
    assert "langchain-router-t0.3" in labels and "threshold-t0.9" in labels
