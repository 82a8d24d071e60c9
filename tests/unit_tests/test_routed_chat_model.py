from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langchain_tests.unit_tests import ChatModelUnitTests

from langgraph_hera import RoutedChatModel
from langgraph_hera.policies import AlwaysCloud, RandomPolicy


class TestRoutedChatModelStandard(ChatModelUnitTests):
    """LangChain's standard unit tests for chat models."""

    @property
    def chat_model_class(self) -> type[RoutedChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "edge": ChatOpenAI(
                model="edge-model", api_key="sk-test", base_url="http://127.0.0.1:9/v1"
            ),
            "cloud": ChatOpenAI(model="gpt-4o", api_key="sk-test"),
            "policy": "always-edge",
            "model": "hera-routed",
        }

    @property
    def has_tool_choice(self) -> bool:
        return True


def test_routes_per_call_and_keeps_a_ledger(scripted) -> None:
    edge, cloud = scripted("from edge", name="edge"), scripted("from cloud", name="gpt-4o")
    model = RoutedChatModel(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=7))
    replies = [model.invoke([HumanMessage(f"q{i}")]) for i in range(40)]
    targets = [r.response_metadata["hera_target"] for r in replies]
    assert {"edge", "cloud"} == set(targets)
    for r, t in zip(replies, targets, strict=True):
        assert r.content == f"from {t}"
        assert r.response_metadata["hera_decision"]["policy"] == "random"
    assert [d["target"] for d in model.route_log] == targets
    assert model.ledger.calls("edge") == edge.calls == targets.count("edge")
    assert model.ledger.calls("cloud") == cloud.calls == targets.count("cloud")
    assert model.ledger.tokens("cloud")["input"] == 11 * targets.count("cloud")


def test_edge_failure_retries_on_cloud(scripted) -> None:
    model = RoutedChatModel(edge=scripted(fail=True), cloud=scripted("ok", name="gpt-4o"))
    reply = model.invoke("hi")
    assert reply.content == "ok"
    assert reply.response_metadata["hera_target"] == "cloud"
    assert "edge failed: ConnectionError" in model.route_log[0]["reason"]
    assert [e["ok"] for e in model.ledger.entries] == [False, True]


def test_cloud_cap_holds(scripted) -> None:
    cloud = scripted("c", name="gpt-4o")
    model = RoutedChatModel(
        edge=scripted("e"), cloud=cloud, policy=AlwaysCloud(), max_cloud_calls=3
    )
    for _ in range(6):
        model.invoke("hi")
    assert cloud.calls == 3
    assert [d["target"] for d in model.route_log] == ["cloud"] * 3 + ["edge"] * 3


def test_step_and_history_come_from_the_conversation(scripted) -> None:
    seen = []

    class Spy(AlwaysCloud):
        name = "always-cloud"

        def score(self, route_input):
            seen.append(route_input)
            return 1.0

    model = RoutedChatModel(edge=scripted(), cloud=scripted("c"), policy=Spy())
    first = model.invoke([HumanMessage("task")])
    model.invoke([HumanMessage("task"), first, HumanMessage("more")])
    assert [s.step for s in seen] == [0, 1]
    assert seen[1].history == ["cloud"] and seen[1].task == "task"


def test_streaming_routes_and_records(scripted) -> None:
    model = RoutedChatModel(edge=scripted("streamed", name="e"), cloud=scripted())
    chunks = list(model.stream("hi"))
    text = "".join(c.content for c in chunks)
    assert text == "streamed"
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata["hera_target"] == "edge"
    assert model.ledger.calls("edge") == 1


async def test_async_invoke(scripted) -> None:
    model = RoutedChatModel(edge=scripted("a", name="e"), cloud=scripted())
    reply = await model.ainvoke("hi")
    assert reply.content == "a" and model.ledger.calls("edge") == 1


def test_bound_tools_reach_the_routed_model_and_share_the_ledger(scripted) -> None:
    @tool
    def echo(x: str) -> str:
        """Echo."""
        return x

    got = {}

    class Recording(type(scripted())):
        def bind_tools(self, tools, **kwargs):
            got[self.name_] = (tools, kwargs)
            return self

    edge, cloud = Recording(name_="edge"), Recording(name_="cloud")
    model = RoutedChatModel(edge=edge, cloud=cloud, policy="always-edge")
    bound = model.bind_tools([echo], tool_choice="any")
    bound.invoke("hi")
    assert got["edge"][0][0]["function"]["name"] == "echo"
    assert got["edge"][1] == {"tool_choice": "any"}
    assert "cloud" not in got
    assert model.ledger.calls("edge") == 1  # the binding shares the original's ledger


def test_bad_arguments_are_clear(scripted) -> None:
    with pytest.raises(ValueError, match="unknown policy 'bogus'"):
        RoutedChatModel(edge=scripted(), cloud=scripted(), policy="bogus")
    with pytest.raises(ValueError, match="chat models"):
        RoutedChatModel(edge="not a model", cloud=scripted())
    with pytest.raises(ValueError, match="budget caps must be >= 0"):
        RoutedChatModel(edge=scripted(), cloud=scripted(), cloud_budget_usd=-1)


def test_works_inside_create_agent(scripted) -> None:
    from langchain.agents import create_agent

    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "t1"}])
    edge = scripted(call, "3", name="edge")
    model = RoutedChatModel(edge=edge, cloud=scripted(name="gpt-4o"))
    agent = create_agent(model, tools=[add])
    out = agent.invoke({"messages": [("user", "1+2?")]})
    assert out["messages"][-1].content == "3"
    assert [d["target"] for d in model.route_log] == ["edge", "edge"]
    assert [d["step"] for d in model.route_log] == [0, 1]
