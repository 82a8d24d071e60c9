"""The ``langchain-router`` policy: LangChain's `ModelRouterMiddleware` as a `hera bench` baseline.

The bench test plays real TextWorldExpress games; the edge is the expert stand-in with epsilon
noise, the cloud the noiseless expert (as in test_evaluation.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from langchain.agents.middleware import ModelRouterMiddleware
from langchain_core.messages import HumanMessage

from langgraph_hera.evaluation.bench import BenchConfig, bench_points, run_bench, write_report
from langgraph_hera.policies import RouteInput, RoutingPolicy, TaskLevelRouter, get_policy
from langgraph_hera.policies.langchain_router import TITLE, LangChainRouter

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


@pytest.fixture(scope="module")
def env():
    pytest.importorskip("textworld_express")
    from langgraph_hera.envs import make_env

    e = make_env("twc")
    yield e
    e.close()


class _KeepOpen:
    """Wraps the shared env so the runner's close() does not stop the module's JVM."""

    def __init__(self, env) -> None:
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def close(self) -> None:
        pass


def test_a_bench_reports_a_row_for_it(env, tmp_path) -> None:
    from langgraph_hera.envs import ExpertChatModel

    wrapped = _KeepOpen(env)
    config = BenchConfig(
        suite="twc",
        seeds=[10, 11],
        out_dir=tmp_path / "bench",
        env_factory=lambda: wrapped,
        edge=ExpertChatModel(
            oracle=env.expert_action,
            valid_actions=lambda: list(env.valid_actions),
            epsilon=0.6,
            seed=3,
            model_name="noisy-edge",
        ),
        cloud_factory=lambda e: ExpertChatModel(
            oracle=e.expert_action, valid_actions=lambda: list(e.valid_actions)
        ),
        max_steps=12,
        concurrency=1,
        cloud_is_stand_in=True,
    )
    # threshold 0.2: the unfitted TaskLevelRouter sends these twc tasks to the cloud.
    points = bench_points(["langchain-router:threshold=0.2"])
    run_bench(config, points)
    report = write_report(config.out_dir)
    row = next(r for r in report["rows"] if r["policy"] == "langchain-router")
    assert row["episodes"] == 2 and row["cloud_share"] == 1.0
    assert row["title"] == f"{TITLE} (langchain-router-t0.2)"
    assert f"| {TITLE} (langchain-router-t0.2) |" in (config.out_dir / "report.md").read_text()
    # Task-level: every step of an episode ran where its first step ran.
    targets: dict[int, set[str]] = defaultdict(set)
    for line in (config.out_dir / "langchain-router-t0.2" / "steps.jsonl").open():
        step = json.loads(line)
        targets[step["seed"]].add(step["target"])
    assert dict(targets) == {10: {"cloud"}, 11: {"cloud"}}
