"""HeraScheduler: profiling trees, estimators, Algorithm 1 and its ablations (counter game)."""

from __future__ import annotations

import pytest

from langgraph_hera import HeraContext, create_text_agent
from langgraph_hera.policies import HeraScheduler, RouteInput, get_policy, profile_tasks
from langgraph_hera.policies.hera_scheduler import PRESETS, Kappa, ProfileNode, SchedulerProfile
from tests.conftest import CounterEnv

EMB = "hashed-64"


@pytest.fixture(scope="module")
def profile(request) -> SchedulerProfile:
    from tests.conftest import ScriptedChat

    # The edge agrees with the cloud ("inc") on the first two steps of a task, then dithers.
    def act(messages):
        line = next(x for x in str(messages[-1].content).splitlines() if x.startswith("Obs"))
        return "inc" if line in ("Observation: value is 0", "Observation: value is 1") else "look"

    edge = ScriptedChat(script=[act])
    return profile_tasks(lambda: CounterEnv(goal=5), edge, seeds=[0, 1], depth=3)


def test_profile_is_a_choice_tree_with_sl_distances(profile) -> None:
    nodes = [n for n in profile.nodes if n.seed == 0]
    root = nodes[0]
    assert root.depth == 0 and root.edge_action == root.cloud_action == "inc"
    # Identical choices share one child.
    assert root.edge_child == root.cloud_child >= 0
    assert root.sl_distance == 0
    deep = [n for n in nodes if n.edge_action == "look"]
    assert deep and all(n.cloud_action == "inc" and n.sl_distance == -1 for n in deep)
    assert all(n.depth < 3 for n in nodes)
    # All-edge fails (it dithers at 2), all-cloud succeeds: outcomes differ.
    assert profile.request_similarity == [0.0, 0.0]


def test_kappa_is_position_adaptive() -> None:
    k = Kappa()
    assert [round(k(i), 2) for i in (0, 1, 5, 9)] == [0.6, 0.62, 0.7, 0.7]


def test_algorithm_1_routes_by_the_estimators(profile) -> None:
    sched = HeraScheduler(profile=profile, embedding_model=EMB)
    first = sched.decide(RouteInput(task="reach 5", observation="value is 0", step=0))
    assert first["target"] == "edge" and first["reason"].startswith("SSE")
    late = sched.decide(
        RouteInput(task="reach 5", observation="value is 2", last_action="inc", step=2)
    )
    assert late["target"] == "cloud"
    assert late["threshold"] == pytest.approx(0.64)
    only_urc = HeraScheduler(profile=profile, embedding_model=EMB, components="urc")
    assert only_urc.decide(RouteInput(task="reach 5", step=0))["target"] == "cloud"


def test_urc_sends_a_whole_request_to_the_edge_when_outcomes_match() -> None:
    node = ProfileNode(seed=0, depth=0, state="task: t", edge_action="a", cloud_action="b")
    prof = SchedulerProfile(nodes=[node], requests=["task: t"], request_similarity=[1.0])
    sched = HeraScheduler(profile=prof, embedding_model=EMB, k=1)
    d = sched.decide(RouteInput(task="t", step=0))
    assert d["target"] == "edge" and d["reason"].startswith("URC")
    no_urc = HeraScheduler(profile=prof, embedding_model=EMB, k=1, components="no-urc")
    assert no_urc.decide(RouteInput(task="t", step=0))["target"] == "cloud"


def test_save_load_roundtrip_and_bad_files(profile, tmp_path) -> None:
    sched = HeraScheduler(profile=profile, embedding_model=EMB)
    path = sched.save(tmp_path / "sched.npz")
    again = get_policy("hera-scheduler", path=str(path), components="no-sd")
    ri = RouteInput(task="reach 5", observation="value is 0", step=0)
    assert again.decide(ri)["target"] == sched.decide(ri)["target"]
    assert again.components == PRESETS["no-sd"]
    with pytest.raises(FileNotFoundError):
        HeraScheduler(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception):  # noqa: B017 - numpy's own error for a non-npz file
        HeraScheduler(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="unknown \\['magic'\\]"):
        HeraScheduler(profile=profile, embedding_model=EMB, components="sse+magic")
    with pytest.raises(ValueError, match="needs a saved profile"):
        HeraScheduler()


def test_scheduler_plays_an_episode_in_the_text_agent(profile, scripted) -> None:
    sched = HeraScheduler(profile=profile, embedding_model=EMB)
    agent = create_text_agent(edge=scripted("inc"), cloud=scripted("inc"), policy=sched)
    out = agent.invoke({"seed": 3}, context=HeraContext(env=CounterEnv(goal=5), max_steps=8))
    assert out["success"] is True
    assert {d["policy"] for d in out["route_log"]} == {"hera-scheduler"}
    assert "edge" in {d["target"] for d in out["route_log"]}
    assert all(ms < 50 for ms in sched.timings)


def test_sd_prompts_the_bound_edge(profile, scripted) -> None:
    sched = HeraScheduler(profile=profile, embedding_model=EMB, components="sse+sd")
    edge = scripted("1. look\n2. look")
    sched.bind_edge(edge)
    d = sched.decide(
        RouteInput(
            task="reach 5",
            observation="value is 3",
            last_action="inc",
            step=3,
            valid_actions=["dec", "inc", "look"],
        )
    )
    assert edge.calls == 1 and d["reason"].startswith(("SD", "no estimator"))


def _tool_or_answer(answer: str):
    from langchain_core.messages import AIMessage, ToolMessage

    def reply(messages):
        if isinstance(messages[-1], ToolMessage):
            return answer
        call = {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}
        return AIMessage("", tool_calls=[call])

    return reply


def test_chat_profile_and_scheduler_in_a_tool_agent(scripted) -> None:
    from langchain_core.tools import tool

    from langgraph_hera import create_hera_agent
    from langgraph_hera.policies import profile_chat_tasks

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    edge = scripted(_tool_or_answer("3"), name="edge-m")
    cloud = scripted(_tool_or_answer("The answer is 3."), name="gpt-4o")
    prof = profile_chat_tasks(
        ["what is 1 + 2?", "add one and two"],
        edge,
        cloud,
        tools=[add],
        depth=2,
        embedding_model=EMB,
    )
    roots = [n for n in prof.nodes if n.depth == 0]
    assert len(roots) == 2
    root = roots[0]
    assert root.edge_action == root.cloud_action == "add({'a': 1, 'b': 2})"
    assert root.sl_distance == 0 and root.edge_child >= 0 and root.cloud_child >= 0
    leaf = prof.nodes[root.edge_child]
    assert leaf.depth == 1 and leaf.edge_action == "3" and leaf.cloud_action == "The answer is 3."
    assert "observation: 3" in leaf.state  # the tool's result is the subtask's input
    assert len(prof.request_similarity) == 2 and all(
        0 <= x <= 1.0001 for x in prof.request_similarity
    )

    sched = HeraScheduler(profile=prof, embedding_model=EMB, components="no-urc")
    agent = create_hera_agent(edge=edge, cloud=cloud, tools=[add], policy=sched)
    out = agent.invoke({"messages": [("user", "what is 1 + 2?")]})
    assert [d["policy"] for d in out["route_log"]] == ["hera-scheduler"] * 2
    # The tool call is predicted identical on both sides: the edge makes it.
    assert out["route_log"][0]["target"] == "edge"
