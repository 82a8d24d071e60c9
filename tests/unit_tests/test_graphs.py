import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import collect_runs
from langgraph.graph import StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_hera import (
    HeraContext,
    HeraState,
    add_router,
    create_hera_agent,
    create_router_node,
    create_text_agent,
    route_by_decision,
)
from langgraph_hera.policies import AlwaysCloud, AlwaysEdge, RandomPolicy, RoutingPolicy
from tests.conftest import CounterEnv


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _tool_call(i: int = 1) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 2}, "id": f"c{i}"}])


def test_add_router_tool_loop_logs_every_step(scripted) -> None:
    edge = scripted(_tool_call(1), "the answer is 3", name="edge-model")
    cloud = scripted("cloud answer", name="gpt-4o")
    builder = StateGraph(HeraState)
    builder.add_node("tools", ToolNode([add]))
    add_router(builder, policy=AlwaysEdge(), edge=edge, cloud=cloud, after="tools")
    graph = builder.compile(name="my_agent")
    out = graph.invoke({"messages": [("user", "what is 1 + 2?")]})
    assert out["messages"][-1].content == "the answer is 3"
    assert [d["target"] for d in out["route_log"]] == ["edge", "edge"]
    assert [d["step"] for d in out["route_log"]] == [0, 1]
    assert all(d["policy"] == "always-edge" for d in out["route_log"])
    assert [e["target"] for e in out["ledger"]] == ["edge", "edge"]
    assert out["ledger"][0]["input_tokens"] == 11 and out["ledger"][0]["model"] == "edge-model"
    assert any(m.type == "tool" and m.content == "3" for m in out["messages"])
    assert cloud.calls == 0


def test_add_router_refuses_existing_nodes(scripted) -> None:
    builder = StateGraph(HeraState)
    builder.add_node("router", lambda s: s)
    with pytest.raises(ValueError, match=r"already has node\(s\) \['router'\]"):
        add_router(builder, policy="always-edge", edge=scripted(), cloud=scripted())


def test_edge_failure_falls_back_to_cloud_with_reason(scripted) -> None:
    agent = create_hera_agent(
        edge=scripted(fail=True, name="edge"), cloud=scripted("fine", name="gpt-4o"), tools=[add]
    )
    out = agent.invoke({"messages": [("user", "hi")]})
    assert out["messages"][-1].content == "fine"
    targets = [d["target"] for d in out["route_log"]]
    assert targets == ["edge", "cloud"]
    assert "edge failed at this step" in out["route_log"][1]["reason"]
    assert "ConnectionError" in out["route_log"][1]["reason"]
    assert [e["ok"] for e in out["ledger"]] == [False, True]
    assert any("edge call failed" in e for e in out["errors"])


def test_cloud_cap_is_never_exceeded(scripted) -> None:
    cloud = scripted(_tool_call(1), _tool_call(2), _tool_call(3), "done", name="gpt-4o")
    edge = scripted("edge done", name="edge")
    agent = create_hera_agent(edge=edge, cloud=cloud, tools=[add], policy=AlwaysCloud())
    out = agent.invoke({"messages": [("user", "hi")]}, context=HeraContext(max_cloud_calls=2))
    targets = [d["target"] for d in out["route_log"]]
    assert targets == ["cloud", "cloud", "edge"]
    assert "cloud call cap reached (run): 2 of 2" in out["route_log"][2]["reason"]
    assert cloud.calls == 2


def test_cloud_usd_budget_blocks_cloud(scripted) -> None:
    cloud = scripted(_tool_call(1), "done", name="gpt-4o")
    agent = create_hera_agent(
        edge=scripted("edge", name="e"), cloud=cloud, tools=[add], policy="always-cloud"
    )
    out = agent.invoke({"messages": [("user", "hi")]}, context={"cloud_budget_usd": 1e-9})
    assert [d["target"] for d in out["route_log"]] == ["cloud", "edge"]
    assert "cloud budget reached" in out["route_log"][1]["reason"]


def test_cloud_failure_halts_and_is_recorded(scripted) -> None:
    agent = create_hera_agent(
        edge=scripted(name="e"), cloud=scripted(fail=True, name="gpt-4o"), policy="always-cloud"
    )
    out = agent.invoke({"messages": [("user", "hi")]})
    assert out["halt"].startswith("cloud call failed at step 0")
    assert out["ledger"][0]["ok"] is False


def test_broken_policy_is_recorded_and_uses_cloud(scripted) -> None:
    class Broken(RoutingPolicy):
        name = "broken"

        def score(self, route_input):
            raise RuntimeError("bad features")

    agent = create_hera_agent(
        edge=scripted(name="e"), cloud=scripted("c", name="gpt-4o"), policy=Broken()
    )
    out = agent.invoke({"messages": [("user", "hi")]})
    assert out["route_log"][0]["target"] == "cloud"
    assert "policy error (RuntimeError)" in out["route_log"][0]["reason"]
    assert any("bad features" in e for e in out["errors"])


async def test_async_path(scripted) -> None:
    agent = create_hera_agent(
        edge=scripted(_tool_call(), "a", name="e"), cloud=scripted(name="c"), tools=[add]
    )
    out = await agent.ainvoke({"messages": [("user", "hi")]})
    assert [d["target"] for d in out["route_log"]] == ["edge", "edge"]


def test_decision_reaches_run_metadata(scripted) -> None:
    agent = create_hera_agent(edge=scripted("x", name="e"), cloud=scripted(name="c"))
    with collect_runs() as cb:
        agent.invoke({"messages": [("user", "hi")]})
    runs = []
    stack = list(cb.traced_runs)
    while stack:
        r = stack.pop()
        runs.append(r)
        stack.extend(r.child_runs)
    decisions = [r for r in runs if r.name == "route_decision"]
    assert len(decisions) == 1
    meta = decisions[0].extra["metadata"]
    assert meta["hera_target"] == "edge" and meta["hera_policy"] == "always-edge"
    assert "hera:edge" in decisions[0].tags
    llm_runs = [r for r in runs if r.run_type == "llm"]
    assert llm_runs and llm_runs[0].extra["metadata"]["hera_step"] == 0


def test_route_by_decision_requires_a_decision() -> None:
    with pytest.raises(ValueError, match="router node first"):
        route_by_decision({"messages": []})


def test_create_router_node_rejects_bad_policy() -> None:
    with pytest.raises(ValueError, match="unknown policy 'smart'"):
        create_router_node("smart")
    with pytest.raises(ValueError, match="RoutingPolicy or a policy name"):
        create_router_node(42)  # type: ignore[arg-type]


def test_text_agent_plays_an_episode(scripted) -> None:
    env = CounterEnv(goal=3)
    edge = scripted("Action: inc.", name="edge")  # free-form, parsed onto a valid action
    cloud = scripted("inc", name="gpt-4o")
    agent = create_text_agent(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=3))
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=10))
    assert out["success"] is True and out["done"] is True
    traj = out["trajectory"]
    assert [r["action"] for r in traj] == ["inc", "inc", "inc"]
    assert [r["target"] for r in traj] == [d["target"] for d in out["route_log"]]
    assert all(r["action_valid"] for r in traj)
    assert edge.calls + cloud.calls == 3


def test_text_agent_records_invalid_actions_and_stops_at_max_steps(scripted) -> None:
    env = CounterEnv(goal=3)
    agent = create_text_agent(edge=scripted("I would like to dance"), cloud=scripted("inc"))
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=4))
    assert out["success"] is False and out["step"] == 4
    assert sum("not a valid action" in e for e in out["errors"]) == 4
    assert out["trajectory"][0]["action_valid"] is False
    assert out["action_repeats"] == 3


def test_text_agent_env_crash_is_recorded(scripted) -> None:
    env = CounterEnv(goal=3, fail_on="dec")
    agent = create_text_agent(edge=scripted("dec"), cloud=scripted("inc"))
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=5))
    assert out["success"] is False and "environment failed" in out["halt"]


def test_unreachable_edge_server_sends_steps_to_cloud(scripted) -> None:
    """A real OpenAI client against a closed loopback port: every step falls back, recorded."""
    import socket

    from langgraph_hera import edge_chat_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave the block
    edge = edge_chat_model(f"http://127.0.0.1:{port}/v1", "smol", timeout=5, max_retries=0)
    cloud = scripted("inc", name="gpt-4o")
    agent = create_text_agent(edge=edge, cloud=cloud, policy="always-edge")
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=2), max_steps=5))
    assert out["success"] is True
    assert [d["target"] for d in out["route_log"]] == ["edge", "cloud", "edge", "cloud"]
    assert "ConnectionError" in out["route_log"][1]["reason"]
    assert [r["target"] for r in out["trajectory"]] == ["cloud", "cloud"]
    assert sum(not e["ok"] for e in out["ledger"]) == 2


def test_edge_chat_model_validates_and_fixes_payload() -> None:
    from langgraph_hera import edge_chat_model

    with pytest.raises(ValueError, match="base_url must be an http"):
        edge_chat_model("localhost:8000", "m")
    with pytest.raises(ValueError, match="model must be"):
        edge_chat_model("http://127.0.0.1:8000/v1", "")
    m = edge_chat_model("http://127.0.0.1:8000/v1", "m", max_tokens=7)
    payload = m._get_request_payload([("user", "hi"), AIMessage(""), ("user", "again")])
    assert payload["max_tokens"] == 7 and "max_completion_tokens" not in payload
    assert all(msg["content"] is not None for msg in payload["messages"])


def test_edge_first_routing_sees_the_proposal_and_reuses_it(scripted) -> None:
    """ThresholdRouter(edge-uncertainty): the edge proposes first; confident proposals execute
    without a second call, doubtful ones go to the cloud."""
    import math

    from langgraph_hera.policies import ThresholdRouter

    confidences = iter([0.9, 0.2, 0.95, 0.9])

    def reply(messages):
        p = next(confidences)
        return AIMessage(
            "inc",
            response_metadata={"logprobs": {"content": [{"token": "inc", "logprob": math.log(p)}]}},
        )

    edge = scripted(reply, name="edge")
    cloud = scripted("inc", name="gpt-4o")
    policy = ThresholdRouter(0.5, scorer="edge-uncertainty")
    agent = create_text_agent(edge=edge, cloud=cloud, policy=policy)
    assert "propose" in agent.get_graph().nodes
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=3), max_steps=5))
    assert out["success"] is True
    assert [d["target"] for d in out["route_log"]] == ["edge", "cloud", "edge"]
    assert [round(d["score"], 2) for d in out["route_log"]] == [0.1, 0.8, 0.05]
    assert edge.calls == 3 and cloud.calls == 1  # one proposal per step, never a second call
    assert [e["target"] for e in out["ledger"]] == ["edge", "edge", "cloud", "edge"]
    assert out["trajectory"][0]["action_logprob"] == pytest.approx(math.log(0.9))


def _server_graphs(monkeypatch, **env: str) -> dict:
    """The module LangGraph Server loads (graphs/agents.py), with ``env`` set."""
    import runpy
    from pathlib import Path

    for key in ("HERA_POLICY", "HERA_ROUTER", "HERA_EDGE_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(Path(__file__).parents[2] / "graphs" / "agents.py"))


def test_server_graphs_with_the_hera_policy_get_a_trained_router(monkeypatch, tmp_path) -> None:
    """HERA_POLICY=hera: the text agent plays the router shipped for the served edge, a tool
    agent needs HERA_ROUTER (an untrained router cannot decide), and HERA_ROUTER is played."""
    from langgraph_hera.policies import shipped_router

    qwen = "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora"
    with pytest.raises(ValueError, match="HERA_POLICY=hera needs HERA_ROUTER"):
        _server_graphs(monkeypatch, HERA_POLICY="hera", HERA_EDGE_MODEL=qwen)
    router = str(shipped_router(qwen, "alfworld"))
    module = _server_graphs(
        monkeypatch, HERA_POLICY="hera", HERA_EDGE_MODEL=qwen, HERA_ROUTER=router
    )
    policy = module["_policy"](text_agent=False)
    assert policy.fitted and policy.models["edge"] == qwen
    assert round(policy.threshold, 3) == 0.170  # HERA_ROUTER's, the Qwen ALFWorld-style router
    # Without HERA_ROUTER the text agent plays the one shipped for the edge (Qwen's twc: 0.4).
    module["_policy"].__globals__["ROUTER"] = None
    text = module["_policy"](text_agent=True)
    assert text.fitted and text.models["edge"] == qwen and text.threshold == 0.4
    assert _server_graphs(monkeypatch)["_policy"](text_agent=True).name == "threshold"
