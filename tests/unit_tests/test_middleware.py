"""HeraRoutingMiddleware inside LangChain 1.x `create_agent`: routing per step, state, caps,
fail-over, composition with LangChain's own middleware, traces."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, ModelRetryMiddleware
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import collect_runs
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_hera import CostLedger, HeraContext, HeraRoutingMiddleware
from langgraph_hera.policies import AlwaysCloud, AlwaysEdge
from tests.conftest import ScriptedChat, TargetsPolicy


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _call(i: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}"}])


class BindingChat(ScriptedChat):
    """Records the tools the framework binds to it."""

    bound: list[Any] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:
        self.bound.append([getattr(t, "name", t) for t in tools])
        return self


def _agent(edge, cloud, policy, **kw):
    mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy, **kw.pop("mw", {}))
    return create_agent(
        cloud,
        tools=[add],
        middleware=[*kw.pop("before", []), mw, *kw.pop("after", [])],
        context_schema=HeraContext,
        checkpointer=InMemorySaver(),
        **kw,
    )


def test_routes_each_step_and_writes_state_in_the_same_step() -> None:
    edge = BindingChat(script=[_call(1), "edge says 2"], name_="edge", bound=[])
    cloud = ScriptedChat(script=[_call(2), "cloud says 3"], name_="gpt-4o")
    agent = _agent(edge, cloud, TargetsPolicy(["edge", "cloud", "edge"]))
    out = agent.invoke({"messages": [("user", "1+1?")]}, {"configurable": {"thread_id": "a"}})
    assert [d["target"] for d in out["route_log"]] == ["edge", "cloud", "edge"]
    assert [d["step"] for d in out["route_log"]] == [0, 1, 2]
    ledger = CostLedger(out["ledger"])
    assert (ledger.calls("edge"), ledger.calls("cloud")) == (2, 1)
    assert ledger.tokens("cloud")["input"] == 11 and ledger.cloud_usd > 0
    assert out["messages"][-1].content == "edge says 2"
    assert out["messages"][-1].response_metadata["hera_target"] == "edge"
    # The framework bound the agent's tools to the (unbound) edge model after the middleware.
    assert edge.bound and edge.bound[0] == ["add"]
    # Every decision and entry names its run (the user message's id).
    turn = out["messages"][0].id
    assert {d["turn"] for d in out["route_log"]} == {turn} == {e["turn"] for e in out["ledger"]}


async def test_async_path_routes_the_same() -> None:
    edge = ScriptedChat(script=[_call(1), "done"], name_="edge")
    cloud = ScriptedChat(script=["cloud"], name_="gpt-4o")
    agent = _agent(edge, cloud, AlwaysEdge())
    out = await agent.ainvoke({"messages": [("user", "q")]}, {"configurable": {"thread_id": "b"}})
    assert [d["target"] for d in out["route_log"]] == ["edge", "edge"]
    assert cloud.calls == 0 and out["messages"][-1].content == "done"


@pytest.mark.parametrize(
    "bad_reply",
    [
        AIMessage(
            "",
            invalid_tool_calls=[
                {"name": "add", "args": '{"a": 1, "b', "id": "x", "error": "bad json", "type": ""}
            ],
            response_metadata={"finish_reason": "length"},
        ),
        AIMessage("", additional_kwargs={"reasoning_content": "the answer is 4"}),
    ],
    ids=["truncated-tool-call", "text-only-in-reasoning"],
)
def test_unusable_edge_reply_fails_over_and_never_enters_the_thread(bad_reply) -> None:
    edge = ScriptedChat(script=[bad_reply], name_="edge")
    cloud = ScriptedChat(script=["4"], name_="gpt-4o")
    agent = _agent(edge, cloud, AlwaysEdge())
    out = agent.invoke({"messages": [("user", "2+2?")]}, {"configurable": {"thread_id": "c"}})
    assert out["messages"][-1].content == "4"
    assert [m.type for m in out["messages"]] == ["human", "ai"]  # the bad reply is not kept
    assert out["route_log"][0]["target"] == "cloud"
    assert "edge failed" in out["route_log"][0]["reason"]
    assert [(e["target"], e["ok"]) for e in out["ledger"]] == [("edge", False), ("cloud", True)]
    assert any("retried on the cloud" in e for e in out["errors"])


def test_edge_exception_fails_over_inside_the_same_call() -> None:
    edge = ScriptedChat(name_="edge", fail=True)
    cloud = ScriptedChat(script=["ok"], name_="gpt-4o")
    out = _agent(edge, cloud, AlwaysEdge()).invoke(
        {"messages": [("user", "q")]}, {"configurable": {"thread_id": "d"}}
    )
    assert out["messages"][-1].content == "ok" and "ConnectionError" in out["ledger"][0]["error"]


@pytest.mark.parametrize(("scope", "second_turn_cloud"), [("run", 1), ("thread", 0)])
def test_caps_per_run_or_per_thread_from_the_context(scope: str, second_turn_cloud: int) -> None:
    cloud = ScriptedChat(script=[_call(1), "c"], name_="gpt-4o")
    edge = ScriptedChat(script=["e"], name_="edge")
    agent = _agent(edge, cloud, AlwaysCloud())
    config = {"configurable": {"thread_id": f"caps-{scope}"}}
    context = HeraContext(max_cloud_calls=1, budget_scope=scope)  # type: ignore[arg-type]
    out = agent.invoke({"messages": [("user", "t1")]}, config, context=context)
    assert [d["target"] for d in out["route_log"]] == ["cloud", "edge"]
    assert "cloud call cap reached" in out["route_log"][1]["reason"]
    out = agent.invoke({"messages": [("user", "t2")]}, config, context=context)
    second = [d["target"] for d in out["route_log"][2:]]
    assert second.count("cloud") == second_turn_cloud


def test_cap_reached_and_edge_down_ends_the_run_cleanly_then_the_next_turn_works() -> None:
    edge = ScriptedChat(name_="edge", fail=True)
    cloud = ScriptedChat(script=["fine"], name_="gpt-4o")
    agent = _agent(edge, cloud, AlwaysEdge())
    config = {"configurable": {"thread_id": "halt"}}
    out = agent.invoke({"messages": [("user", "q1")]}, config, context={"max_cloud_calls": 0})
    assert out["messages"][-1].content.startswith("I had to stop: cloud call cap reached")
    assert out["hera_halt"] and cloud.calls == 0
    edge.fail = False
    edge.script = ["edge back"]
    out = agent.invoke({"messages": [("user", "q2")]}, config, context={"max_cloud_calls": 0})
    assert out["messages"][-1].content == "edge back" and out["hera_halt"] is None


def test_composes_with_langchain_middleware() -> None:
    edge = ScriptedChat(name_="edge", fail=True)  # every edge call fails over
    cloud = ScriptedChat(script=[_call(1), _call(2), _call(3), "end"], name_="gpt-4o")
    agent = _agent(
        edge,
        cloud,
        AlwaysEdge(),
        before=[ModelCallLimitMiddleware(run_limit=2, exit_behavior="end")],
        # on_failure="error": the retry middleware raises once its retries are spent, so the
        # routing middleware sees the failure and fails over (its default answers with a message).
        after=[
            ModelRetryMiddleware(max_retries=1, initial_delay=0.0, jitter=False, on_failure="error")
        ],
    )
    out = agent.invoke({"messages": [("user", "q")]}, {"configurable": {"thread_id": "mix"}})
    # The call limit (outside) counts routed calls: 2 model calls, then the run ends.
    assert len(out["route_log"]) == 2
    assert cloud.calls == 2
    # The retry middleware (inside) retried each failing edge call once before the fail-over.
    assert edge.calls == 4


def test_decision_is_traced_and_the_model_run_carries_it() -> None:
    edge = ScriptedChat(script=["hi"], name_="edge")
    agent = _agent(edge, ScriptedChat(name_="gpt-4o"), AlwaysEdge())
    with collect_runs() as cb:
        agent.invoke({"messages": [("user", "q")]}, {"configurable": {"thread_id": "t"}})
    runs = []
    stack = list(cb.traced_runs)
    while stack:
        run = stack.pop()
        runs.append(run)
        stack.extend(run.child_runs)
    decision = next(r for r in runs if r.name == "route_decision")
    assert decision.extra["metadata"]["hera_target"] == "edge"
    llm = next(r for r in runs if r.run_type == "llm")
    assert "hera:edge" in llm.tags and llm.extra["metadata"]["hera_policy"] == "always-edge"


def test_streams_messages() -> None:
    edge = ScriptedChat(script=["streamed answer"], name_="edge")
    agent = _agent(edge, ScriptedChat(name_="gpt-4o"), AlwaysEdge())
    texts = [
        chunk.content
        for chunk, _ in agent.stream(
            {"messages": [HumanMessage("q")]},
            {"configurable": {"thread_id": "s"}},
            stream_mode="messages",
        )
        if chunk.type.startswith("ai")
    ]
    assert "".join(texts) == "streamed answer"


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        HeraRoutingMiddleware(edge=ScriptedChat(), cloud=ScriptedChat(), policy="nope")
    with pytest.raises(ValueError, match="unbound BaseChatModel"):
        HeraRoutingMiddleware(edge=ScriptedChat().bind(x=1), cloud=ScriptedChat())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="budget_scope"):
        HeraRoutingMiddleware(edge=ScriptedChat(), cloud=ScriptedChat(), budget_scope="all")  # type: ignore[arg-type]


async def test_two_threads_five_turns_with_faults_between_turns_async_and_streamed() -> None:
    """The middleware on the conversation checks of issue 18: two threads at once, five turns
    each (ainvoke and astream alternating), an edge fault and an unusable edge reply on some
    turns, a per-run cap of one cloud call; each turn's records are its own."""
    import asyncio

    def edge_reply(messages):
        request = str([m for m in messages if m.type == "human"][-1].content)
        if "edge-down" in request:
            raise ConnectionError("edge is down")
        if "edge-empty" in request:
            return AIMessage("")
        return f"edge: {request}"

    def cloud_reply(messages):
        return f"cloud: {[m for m in messages if m.type == 'human'][-1].content}"

    edge = ScriptedChat(script=[edge_reply], name_="edge")
    cloud = ScriptedChat(script=[cloud_reply], name_="gpt-4o")
    agent = _agent(edge, cloud, AlwaysEdge())
    plan = ["ok", "edge-down", "ok", "edge-empty", "ok"]

    async def thread(name: str) -> None:
        config = {"configurable": {"thread_id": name}}
        context = HeraContext(max_cloud_calls=1)
        for k, kind in enumerate(plan):
            request = f"{name} turn {k} {kind}"
            payload = {"messages": [HumanMessage(request)]}
            if k % 2:
                async for _ in agent.astream(payload, config, context=context):
                    pass
                out = (await agent.aget_state(config)).values
            else:
                out = await agent.ainvoke(payload, config, context=context)
            side = "edge" if kind == "ok" else "cloud"
            assert out["messages"][-1].content == f"{side}: {request}"
            turn = out["messages"][-2].id
            mine = [d for d in out["route_log"] if d["turn"] == turn]
            assert [d["target"] for d in mine] == [side]
            entries = CostLedger(out["ledger"]).for_turn(turn)
            assert entries.cloud_calls == (0 if kind == "ok" else 1)
            # Nothing of another thread ever enters this one.
            other = "b" if name == "a" else "a"
            assert not any(other + " turn" in str(m.content) for m in out["messages"])
        assert len(out["route_log"]) == len(plan)

    await asyncio.gather(thread("a"), thread("b"))
