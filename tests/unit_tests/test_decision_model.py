"""`HeraDecisionModel`: a routing policy as the classifier of LangChain's `ModelRouterMiddleware`.

The agents are real `create_agent` graphs; the edge and cloud are scripted fake chat models, so
which one answered shows where the middleware routed the run.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
from langchain_core._api import LangChainBetaWarning
from langchain_core.decisions import Box, Choice, Noul
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import collect_runs

from langgraph_hera.policies import RoutingPolicy, TaskLevelRouter
from langgraph_hera.policies._decision_model import cloud_probability
from langgraph_hera.routing.decision_model import HeraDecisionModel, RoutedChoiceAnswer

EASY = "Say hi."
HARD = (
    "Plan a three-week research project comparing every open-weights model released this year "
    "on long-horizon agent benchmarks, with a budget, milestones, the risks of each evaluation "
    "harness, a fallback for every step that might fail, and a short written summary of the "
    "results for the whole team."
)  # > 40 words: the unfitted TaskLevelRouter's length prior sends it to the cloud


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Boom(RoutingPolicy):
    """A policy that always fails."""

    name = "boom"

    def score(self, route_input: Any) -> float:
        raise RuntimeError("scorer crashed")


def _router(edge, cloud, classifier) -> ModelRouterMiddleware:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainBetaWarning)
        return ModelRouterMiddleware(
            choices={
                "edge": ModelChoice(model=edge, criteria="Short, simple requests."),
                "cloud": ModelChoice(model=cloud, criteria="Long, hard requests."),
            },
            instructions="Choose the least costly model suited to the task.",
            classifier=classifier,
        )


@pytest.fixture
def models(scripted):
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "t1"}])
    return scripted(call, "from edge", name="edge"), scripted(call, "from cloud", name="cloud")


@pytest.mark.parametrize(("request_text", "target"), [(EASY, "edge"), (HARD, "cloud")])
def test_the_middleware_routes_each_run_by_the_policy(models, request_text, target) -> None:
    edge, cloud = models
    classifier = HeraDecisionModel(TaskLevelRouter(0.5))
    agent = create_agent(cloud, tools=[add], middleware=[_router(edge, cloud, classifier)])
    out = agent.invoke({"messages": [HumanMessage(request_text)]})
    # Both model calls of the run (tool call, then the answer) went to the chosen model only.
    assert out["messages"][-1].content == f"from {target}"
    chosen, other = (edge, cloud) if target == "edge" else (cloud, edge)
    assert (chosen.calls, other.calls) == (2, 0)
    answer = out["model_route"]
    assert isinstance(answer, RoutedChoiceAnswer) and answer.choice == target
    decision = answer.decision
    assert decision["target"] == target and decision["policy"] == "task-level"
    assert decision["threshold"] == 0.5 and (decision["score"] >= 0.5) == (target == "cloud")
    assert answer.probabilities[target] > 0.5 and answer.confidence > 0.5


async def test_async_runs_route_the_same_way(models) -> None:
    edge, cloud = models
    agent = create_agent(
        cloud,
        tools=[add],
        middleware=[_router(edge, cloud, HeraDecisionModel(TaskLevelRouter(0.5)))],
    )
    easy = await agent.ainvoke({"messages": [HumanMessage(EASY)]})
    assert easy["messages"][-1].content == "from edge" and cloud.calls == 0
    hard = await agent.ainvoke({"messages": [HumanMessage(HARD)]})
    assert hard["messages"][-1].content == "from cloud" and hard["model_route"].choice == "cloud"


def test_the_latest_request_decides_each_run_of_a_thread(models) -> None:
    edge, cloud = models
    agent = create_agent(
        cloud, tools=[add], middleware=[_router(edge, cloud, HeraDecisionModel("task-level"))]
    )
    first = agent.invoke({"messages": [HumanMessage(HARD)]})
    assert first["model_route"].choice == "cloud"
    second = agent.invoke({"messages": [*first["messages"], HumanMessage(EASY)]})
    assert second["model_route"].choice == "edge"
    assert second["messages"][-1].content == "from edge"


def test_a_failing_policy_routes_to_the_cloud_or_raises(models) -> None:
    edge, cloud = models
    agent = create_agent(
        cloud, tools=[add], middleware=[_router(edge, cloud, HeraDecisionModel(Boom()))]
    )
    out = agent.invoke({"messages": [HumanMessage(EASY)]})
    assert out["messages"][-1].content == "from cloud" and edge.calls == 0
    decision = out["model_route"].decision
    assert decision["target"] == "cloud" and math.isnan(decision["score"])
    assert "policy error (RuntimeError); cloud as the safe choice" == decision["reason"]

    strict = HeraDecisionModel(Boom(), on_policy_error="raise")
    agent = create_agent(cloud, tools=[add], middleware=[_router(edge, cloud, strict)])
    with pytest.raises(RuntimeError, match="scorer crashed"):
        agent.invoke({"messages": [HumanMessage(EASY)]})


def test_bad_arguments_name_the_bad_value(models) -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'bogus'; available: .*task-level"):
        HeraDecisionModel("bogus")
    with pytest.raises(ValueError, match=r"RoutingPolicy or a registered name, got 42"):
        HeraDecisionModel(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"edge_choice must be a non-empty string, got ''"):
        HeraDecisionModel("always-edge", edge_choice="")
    with pytest.raises(ValueError, match=r"must differ, both are 'fast'"):
        HeraDecisionModel("always-edge", edge_choice="fast", cloud_choice="fast")
    with pytest.raises(ValueError, match=r"on_policy_error must be one of .*got 'edge'"):
        HeraDecisionModel("always-edge", on_policy_error="edge")  # type: ignore[arg-type]

    # The middleware's choice names must be the configured labels.
    edge, cloud = models
    classifier = HeraDecisionModel("always-edge", edge_choice="small", cloud_choice="large")
    agent = create_agent(cloud, tools=[add], middleware=[_router(edge, cloud, classifier)])
    with pytest.raises(ValueError, match=r"Choice labels \['edge', 'cloud'\] lack \['small', "):
        agent.invoke({"messages": [HumanMessage(EASY)]})

    model = HeraDecisionModel("always-cloud")
    with pytest.raises(ValueError, match=r"question 'where' is a Box question"):
        model.invoke({"state": EASY, "questions": {"where": Box(instructions="the cat")}})
    with pytest.raises(ValueError, match=r"got int: '7'"):
        model.invoke({"state": 7, "questions": {"q": Noul(instructions="cloud?")}})  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="at least one question, got none"):
        model.invoke({"state": EASY, "questions": {}})


def test_binary_and_score_questions_answer_p_cloud_and_the_score() -> None:
    model = HeraDecisionModel(TaskLevelRouter(0.5), edge_choice="small", cloud_choice="large")
    questions = {
        "route": Choice(
            instructions="Which model?", criteria={"small": "easy", "large": "hard", "x": None}
        ),
        "needs_cloud": Noul(instructions="Does this need the large model?"),
        "difficulty": {"type": "score", "instructions": "How hard?", "criteria": ["a", "b", "c"]},
    }
    for text, label in ((EASY, "small"), (HARD, "large")):
        response = model.invoke({"state": [HumanMessage(text)], "questions": questions})
        route = response.choices["route"]
        score = TaskLevelRouter(0.5).task_score(text)
        assert route.choice == label and route.probabilities["x"] == 0.0
        assert response.nouls["needs_cloud"].noul == pytest.approx(route.probabilities["large"])
        difficulty = response.scores["difficulty"]
        assert difficulty.score == pytest.approx(2 * score)  # the policy's score on 3 levels
        expected = sum(level * p for level, p in difficulty.probabilities.items())
        assert difficulty.score == pytest.approx(expected)
        assert difficulty.legend == {0: "a", 1: "b", 2: "c"}
        assert response.model == "hera:task-level"


@pytest.mark.parametrize(
    ("score", "threshold", "target", "p"),
    [
        (0.2, 0.4, "edge", 0.25),
        (0.4, 0.4, "cloud", 0.5),
        (0.7, 0.4, "cloud", 0.75),
        (0.0, None, "edge", 0.0),
        (float("nan"), None, "cloud", 1.0),
    ],
)
def test_cloud_probability_puts_the_threshold_at_one_half(score, threshold, target, p) -> None:
    decision = {"score": score, "threshold": threshold, "target": target}
    assert cloud_probability(decision) == pytest.approx(p)  # type: ignore[arg-type]


def test_each_decision_is_traced_with_the_hera_metadata(models) -> None:
    edge, cloud = models
    agent = create_agent(
        cloud, tools=[add], middleware=[_router(edge, cloud, HeraDecisionModel("always-edge"))]
    )
    with collect_runs() as cb:
        agent.invoke({"messages": [HumanMessage(EASY)]})

    def walk(runs):
        for run in runs:
            yield run
            yield from walk(run.child_runs)

    runs = list(walk(cb.traced_runs))
    classifier = next(r for r in runs if r.run_type == "llm" and r.name == "HeraDecisionModel")
    assert classifier.extra["metadata"]["ls_provider"] == "langgraph_hera"
    (traced,) = [r for r in classifier.child_runs if r.name == "route_decision"]
    assert traced.extra["metadata"]["hera_target"] == "edge"
    assert traced.extra["metadata"]["hera_policy"] == "always-edge"
    assert "hera:edge" in traced.tags
