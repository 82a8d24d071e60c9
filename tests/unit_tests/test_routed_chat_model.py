from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langchain_tests.unit_tests import ChatModelUnitTests

from langgraph_hera import CostLedger, RoutedChatModel, ledger_from_messages
from langgraph_hera import route_log_from_messages as route_log
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


def _ledger(*replies) -> CostLedger:
    return CostLedger(ledger_from_messages(list(replies)))


def test_routes_per_call_and_records_on_each_reply(scripted) -> None:
    edge, cloud = scripted("from edge", name="edge"), scripted("from cloud", name="gpt-4o")
    model = RoutedChatModel(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=7))
    replies = [model.invoke([HumanMessage(f"q{i}")]) for i in range(40)]
    targets = [r.response_metadata["hera_target"] for r in replies]
    assert {"edge", "cloud"} == set(targets)
    for r, t in zip(replies, targets, strict=True):
        assert r.content == f"from {t}"
        assert r.response_metadata["hera_decision"]["policy"] == "random"
    assert [d["target"] for d in route_log(replies)] == targets
    ledger = _ledger(*replies)
    assert ledger.calls("edge") == edge.calls == targets.count("edge")
    assert ledger.calls("cloud") == cloud.calls == targets.count("cloud")
    assert ledger.tokens("cloud")["input"] == 11 * targets.count("cloud")
    # Nothing about the calls stays in the model (one instance serves every thread).
    assert not hasattr(model, "route_log") and len(model._reservations) == 0


def test_edge_failure_retries_on_cloud(scripted) -> None:
    model = RoutedChatModel(edge=scripted(fail=True), cloud=scripted("ok", name="gpt-4o"))
    reply = model.invoke("hi")
    assert reply.content == "ok"
    assert reply.response_metadata["hera_target"] == "cloud"
    assert "edge failed: ConnectionError" in route_log([reply])[0]["reason"]
    assert [e["ok"] for e in _ledger(reply).entries] == [False, True]


def test_cloud_cap_holds_within_a_conversation(scripted) -> None:
    cloud = scripted("c", name="gpt-4o")
    model = RoutedChatModel(
        edge=scripted("e"), cloud=cloud, policy=AlwaysCloud(), max_cloud_calls=3
    )
    messages: list = [HumanMessage("hi")]
    for _ in range(6):
        messages.append(model.invoke(messages))
    assert cloud.calls == 3
    assert [d["target"] for d in route_log(messages)] == ["cloud"] * 3 + ["edge"] * 3
    assert "cloud call cap reached (run): 3 of 3" in route_log(messages)[3]["reason"]


def test_step_and_history_come_from_the_current_run(scripted) -> None:
    seen = []

    class Spy(AlwaysCloud):
        name = "always-cloud"

        def score(self, route_input):
            seen.append(route_input)
            return 1.0

    model = RoutedChatModel(edge=scripted(), cloud=scripted("c"), policy=Spy())
    first = model.invoke([HumanMessage("task")])
    second = model.invoke([HumanMessage("task"), first])
    model.invoke([HumanMessage("task"), first, second, HumanMessage("more")])
    assert [s.step for s in seen] == [0, 1, 0]
    assert seen[1].history == ["cloud"] and seen[1].task == "task"
    # A new user message starts a new run: its own task, step 0, empty history.
    assert seen[2].task == "more" and seen[2].history == []


def test_streaming_routes_and_records(scripted) -> None:
    model = RoutedChatModel(edge=scripted("streamed", name="e"), cloud=scripted())
    chunks = list(model.stream("hi"))
    text = "".join(c.content for c in chunks)
    assert text == "streamed"
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata["hera_target"] == "edge"
    assert _ledger(merged).calls("edge") == 1


async def test_async_invoke(scripted) -> None:
    model = RoutedChatModel(edge=scripted("a", name="e"), cloud=scripted())
    reply = await model.ainvoke("hi")
    assert reply.content == "a" and _ledger(reply).calls("edge") == 1


def test_bound_tools_reach_the_routed_model(scripted) -> None:
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
    reply = bound.invoke("hi")
    assert got["edge"][0][0]["function"]["name"] == "echo"
    assert got["edge"][1] == {"tool_choice": "any"}
    assert "cloud" not in got
    assert _ledger(reply).calls("edge") == 1


def test_bad_arguments_are_clear(scripted) -> None:
    with pytest.raises(ValueError, match="unknown policy 'bogus'"):
        RoutedChatModel(edge=scripted(), cloud=scripted(), policy="bogus")
    with pytest.raises(ValueError, match="chat models"):
        RoutedChatModel(edge="not a model", cloud=scripted())
    with pytest.raises(ValueError, match="budget caps must be >= 0"):
        RoutedChatModel(edge=scripted(), cloud=scripted(), cloud_budget_usd=-1)
    with pytest.raises(ValueError, match="budget_scope"):
        RoutedChatModel(edge=scripted(), cloud=scripted(), budget_scope="process")


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
    assert [d["target"] for d in route_log(out["messages"])] == ["edge", "edge"]
    assert [d["step"] for d in route_log(out["messages"])] == [0, 1]


@pytest.mark.parametrize("policy", ["always-edge", "always-cloud"])
def test_streams_each_reply_once_inside_create_agent(policy: str) -> None:
    """The inner model's tokens are not streamed besides the routed model's (found by a
    new-user trial: every reply arrived twice under stream_mode="messages")."""
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langgraph.checkpoint.memory import InMemorySaver

    edge = GenericFakeChatModel(messages=iter([AIMessage("edge answer one")]))
    cloud = GenericFakeChatModel(messages=iter([AIMessage("cloud answer two")]))
    agent = create_agent(
        RoutedChatModel(edge=edge, cloud=cloud, policy=policy), checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "once"}}
    streamed = "".join(
        str(chunk.content)
        for chunk, _ in agent.stream({"messages": [("user", "hi")]}, config, stream_mode="messages")
    )
    final = agent.get_state(config).values["messages"][-1]
    assert streamed == final.content
    assert final.content == ("edge answer one" if policy == "always-edge" else "cloud answer two")


def test_a_model_that_does_not_stream_keeps_its_tool_calls_on_a_stream(scripted) -> None:
    call = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "t1"}])
    edge = scripted(call, name="edge")  # ScriptedChat has no _stream: one whole message
    model = RoutedChatModel(edge=edge, cloud=scripted(name="gpt-4o"), policy="always-edge")
    merged = None
    for chunk in model.stream("1+2?"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.tool_calls == [
        {"name": "add", "args": {"a": 1, "b": 2}, "id": "t1", "type": "tool_call"}
    ]
    assert merged.usage_metadata and merged.usage_metadata["input_tokens"] == 11
