"""Conversation torture suite (issue 18): multi-turn threads through every integration, with
edge and cloud faults injected between turns, against the provider fakes of
`tests/fake_providers.py` (vLLM-like edge, OpenAI-like strict cloud, llama.cpp-like edge).

Each test asserts per turn: the answer, the route-log / ledger entries of that turn (their
``turn`` key), the caps, that the strict cloud fake never had to reject a request (a 400), and
that faults are recorded in ``errors`` / on the ledger.

Run with ``HERA_TORTURE_REPORT=path.json`` to write the figures quoted in docs/RELIABILITY.md
("Conversations (issue 18)").
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph

from langgraph_hera import (
    HeraContext,
    HeraState,
    RoutedChatModel,
    add_router,
    create_hera_agent,
    create_supervised_agent,
    create_text_agent,
    edge_chat_model,
    ledger_from_messages,
    route_log_from_messages,
)
from langgraph_hera.models.retry import RetryPolicy
from langgraph_hera.policies.baselines import TaskLevelRouter
from langgraph_hera.routing.wire import MAX_TOOL_CALL_ID, UNANSWERED_CALL
from tests.conftest import CounterEnv, ScriptedChat, TargetsPolicy
from tests.fake_providers import FakeProvider, Reply, tool_then_answer

# --------------------------------------------------------------------------- report

REPORT: Counter[str] = Counter()
_REPORT_LOCK = threading.Lock()


def note(key: str, n: int = 1) -> None:
    with _REPORT_LOCK:
        REPORT[key] += n


@pytest.fixture(scope="module", autouse=True)
def _torture_report() -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    path = os.environ.get("HERA_TORTURE_REPORT")
    if path:
        data = dict(sorted(REPORT.items()))
        data["cap_violations"] = REPORT["cap_violations"]  # always present (must be 0)
        data["wall_s"] = round(time.perf_counter() - t0, 1)
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- helpers

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, jitter=0.0)
_ID_OK = re.compile(r"^[A-Za-z0-9_-]+$")


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def llm(srv: FakeProvider, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=srv.model, base_url=srv.url, api_key="sk-test", max_retries=0, timeout=10, **kwargs
    )


def dead_llm() -> ChatOpenAI:
    return ChatOpenAI(
        model="edge-model", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0, timeout=2
    )


class Faults:
    """A fake's script: the injected replies first (one per request), then ``base``."""

    def __init__(self, base: Any = tool_then_answer) -> None:
        self.base = base
        self.pending: list[Reply] = []
        self.lock = threading.Lock()

    def inject(self, *replies: Reply) -> None:
        with self.lock:
            self.pending.extend(replies)
        note("faults_injected", len(replies))

    def __call__(self, n: int, body: dict[str, Any]) -> Reply:
        with self.lock:
            if self.pending:
                return self.pending.pop(0)
        return self.base(n, body)


def rejected(srv: FakeProvider) -> list[Any]:
    """The requests this fake had to reject (400 from the strict cloud, 500 from llama.cpp)."""
    return [r for r in (srv._validate(q.body) for q in srv.requests) if r is not None]


def cloud_cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def user(text: str, mid: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text, id=mid)]}


def of_turn(items: list[Any], turn: str) -> list[Any]:
    return [i for i in items if i.get("turn") == turn]


def last_ai(messages: list[BaseMessage]) -> AIMessage:
    return next(m for m in reversed(messages) if isinstance(m, AIMessage))


#: One event loop for the module: LangChain's OpenAI client keeps its async HTTP client per
#: base URL, bound to the loop of its first call (``asyncio.run`` per turn would close it).
_LOOP = asyncio.new_event_loop()


def arun(coro: Any) -> Any:
    return _LOOP.run_until_complete(coro)


def run_graph(graph: Any, inputs: Any, config: Any, mode: str, context: Any = None) -> Any:
    """One run of ``graph`` by ``mode``; returns the thread's state values after it."""
    kw: dict[str, Any] = {"context": context} if context is not None else {}
    if mode == "invoke":
        graph.invoke(inputs, config, **kw)
    elif mode.startswith("stream-"):
        for _ in graph.stream(inputs, config, stream_mode=mode.split("-", 1)[1], **kw):
            pass
    elif mode == "ainvoke":
        arun(graph.ainvoke(inputs, config, **kw))
    elif mode.startswith("astream-"):

        async def go() -> None:
            async for _ in graph.astream(inputs, config, stream_mode=mode[8:], **kw):
                pass

        arun(go())
    else:  # pragma: no cover
        raise ValueError(mode)
    note("turns")
    return graph.get_state(config).values


def check_wire(srv: FakeProvider) -> int:
    """Every tool call the server received is paired with its result, ids <= 40 chars and
    plain; returns how many pairs were checked."""
    pairs = 0
    for req in srv.requests:
        msgs = req.messages
        for i, m in enumerate(msgs):
            for call in m.get("tool_calls") or []:
                cid = call["id"]
                assert len(cid) <= MAX_TOOL_CALL_ID and _ID_OK.match(cid), cid
                answers = [t for t in msgs[i + 1 :] if t.get("role") == "tool"]
                assert cid in [t["tool_call_id"] for t in answers], (cid, msgs)
                pairs += 1
    return pairs


@pytest.fixture
def providers() -> Iterator[dict[str, Any]]:
    edge_faults, cloud_faults = Faults(), Faults()
    with (
        FakeProvider("vllm", script=edge_faults, model="qwen3-4b") as edge,
        FakeProvider("openai", script=cloud_faults, model="gpt-4o") as cloud,
    ):
        yield {
            "edge": edge,
            "cloud": cloud,
            "edge_faults": edge_faults,
            "cloud_faults": cloud_faults,
        }


# =========================================================================== kind 1
# Run-scoped state kept on the thread: a halted run must not halt the next one.

MODES = ["invoke", "stream-updates", "ainvoke", "astream-messages"]


@pytest.mark.parametrize("mode", MODES)
def test_add_router_halt_then_healthy_turns(providers, mode) -> None:
    edge, cloud, faults = providers["edge"], providers["cloud"], providers["cloud_faults"]
    builder = StateGraph(HeraState, context_schema=HeraContext)
    add_router(builder, policy="always-cloud", edge=llm(edge), cloud=llm(cloud), after=None)
    graph = builder.compile(checkpointer=InMemorySaver())
    cfg, ctx = cloud_cfg(f"ar-{mode}"), HeraContext(cloud_retry=FAST_RETRY)
    for k in range(6):
        down = k in (0, 3)
        if down:
            faults.inject(Reply.error(503), Reply.error(503))
        before = len(cloud.requests)
        state = run_graph(graph, user(f"question {k}", f"u{k}"), cfg, mode, ctx)
        turn = f"u{k}"
        assert state["turn"] == turn
        assert len(cloud.requests) == before + (2 if down else 1)  # turn k sent its request
        decisions, entries = of_turn(state["route_log"], turn), of_turn(state["ledger"], turn)
        assert [d["target"] for d in decisions] == ["cloud"] and decisions[0]["step"] == 0
        assert len(entries) == 1
        if down:
            assert state["halt"] and "503" in entries[0].get("error")
            assert any("cloud call failed" in e for e in state["errors"])
            note("errors_recorded")
        else:
            assert state["halt"] is None and entries[0].get("error") is None
            assert state["messages"][-1].content == "Hello from the fake."
            # the request carried every user message of the thread, halted turns' included
            sent = [m["content"] for m in cloud.requests[-1].messages if m["role"] == "user"]
            assert sent == [f"question {i}" for i in range(k + 1)]
    assert rejected(cloud) == []


@pytest.mark.parametrize("mode", ["invoke", "astream-updates", "stream-messages"])
def test_hera_agent_torture_thread(providers, mode) -> None:
    """Edge faults (503, truncated tool call, reasoning only, invalid JSON) and a cloud outage
    between turns of one thread; the strict cloud sees vLLM's ids from the history."""
    edge, cloud = providers["edge"], providers["cloud"]
    ef, cf = providers["edge_faults"], providers["cloud_faults"]
    agent = create_hera_agent(
        edge=llm(edge), cloud=llm(cloud), tools=[get_weather], checkpointer=InMemorySaver()
    )
    cfg, ctx = cloud_cfg(f"ha-{mode}"), HeraContext(cloud_retry=FAST_RETRY)
    plan: list[tuple[list[Reply], list[Reply], str]] = [
        ([Reply.error(503)], [Reply.error(503)] * 2, "halt"),  # both sides down
        ([], [], "edge"),
        ([Reply.truncated_tool_call("get_weather")], [], "failover"),
        ([Reply(content=None, reasoning="I think it is sunny.")], [], "failover"),
        ([Reply.tool_call("get_weather", '{"city": Paris}')], [], "failover"),  # not JSON
        ([Reply.tool_call("get_weather", '{"city": ')], [], "failover"),  # a JSON prefix
        ([], [], "edge"),
    ]
    for k, (edge_faults, cloud_faults, expect) in enumerate(plan):
        if edge_faults:
            ef.inject(*edge_faults)
        if cloud_faults:
            cf.inject(*cloud_faults)
        state = run_graph(agent, user(f"weather {k}?", f"h{k}"), cfg, mode, ctx)
        turn = f"h{k}"
        decisions, entries = of_turn(state["route_log"], turn), of_turn(state["ledger"], turn)
        if expect == "halt":
            assert state["halt"] and [d["target"] for d in decisions] == ["edge", "cloud"]
            assert [bool(e.get("error")) for e in entries] == [True, True]
            continue
        assert state["halt"] is None
        assert state["messages"][-1].content == "Done: Sunny in Paris"
        assert [d["step"] for d in decisions][-1] == 1
        if expect == "edge":
            assert [d["target"] for d in decisions] == ["edge", "edge"]
            assert [e.get("error") for e in entries] == [None, None]
        else:  # step 0: edge reply unusable, retried on the cloud; step 1 back on the edge
            assert [d["target"] for d in decisions] == ["edge", "cloud", "edge"]
            assert entries[0]["target"] == "edge" and entries[0].get("error")
            assert any("edge reply unusable" in e for e in state["errors"])
            note("unusable_edge_replies_failed_over")
        # the unusable reply never entered the thread
        for m in state["messages"]:
            if isinstance(m, AIMessage):
                assert not m.invalid_tool_calls and (m.text or m.tool_calls)
    assert rejected(cloud) == [] and rejected(edge) == []
    note("wire_pairs_checked", check_wire(cloud))


def test_graph_stream_partial_json_tool_call(providers) -> None:
    edge, cloud, ef = providers["edge"], providers["cloud"], providers["edge_faults"]
    agent = create_hera_agent(
        edge=llm(edge), cloud=llm(cloud), tools=[get_weather], checkpointer=InMemorySaver()
    )
    ef.inject(Reply.tool_call("get_weather", '{"city": '))
    state = run_graph(agent, user("weather?", "pj"), cloud_cfg("pj"), "stream-messages")
    assert state["messages"][-1].content == "Done: Sunny in Paris"


def test_supervised_agent_halt_then_healthy_turns(providers) -> None:
    edge, cloud = providers["edge"], providers["cloud"]
    ef, cf = providers["edge_faults"], providers["cloud_faults"]
    agent = create_supervised_agent(
        executor=llm(edge),
        supervisor=llm(cloud),
        tools=[get_weather],
        checkpointer=InMemorySaver(),
    )
    cfg, ctx = cloud_cfg("sup"), HeraContext(cloud_retry=FAST_RETRY)
    for k in range(5):
        if k == 0:
            ef.inject(Reply.error(503))  # the executor (edge, no router) fails: the run halts
        if k == 2:
            cf.inject(Reply.error(503), Reply.error(503))  # no plan: the executor goes on
        state = run_graph(agent, user(f"weather {k}?", f"s{k}"), cfg, "invoke", ctx)
        turn = f"s{k}"
        assert state["turn"] == turn
        log = of_turn(state["supervision_log"], turn)
        assert [s["action"] for s in log] == ["plan"]
        entries = of_turn(state["ledger"], turn)
        if k == 0:
            assert state["halt"] and "edge call failed" in state["halt"]
            assert [e["target"] for e in entries] == ["supervisor", "edge"]
            continue
        assert state["halt"] is None, state["halt"]
        assert state["messages"][-1].content == "Done: Sunny in Paris"
        assert [d["step"] for d in of_turn(state["route_log"], turn)] == [0, 1]
        if k == 2:
            assert log[0]["reason"].startswith("no plan")
            assert any("supervisor plan failed" in e for e in state["errors"])
        else:
            assert log[0]["reason"] == "initial plan"
    assert rejected(cloud) == []


def test_text_agent_second_episode_after_halt(scripted) -> None:
    edge, cloud = scripted("inc", name="edge"), scripted("inc", name="gpt-4o")
    agent = create_text_agent(edge=edge, cloud=cloud, checkpointer=InMemorySaver())
    cfg = cloud_cfg("text")
    ctx = HeraContext(env=CounterEnv(goal=3), max_steps=10, cloud_retry=FAST_RETRY)
    for k in range(5):
        edge.fail = cloud.fail = k in (0, 2)
        if edge.fail:
            note("faults_injected", 2)
        state = run_graph(agent, {"seed": k}, cfg, "invoke", ctx)
        turn = state["turn"]
        traj = [r for r in state["trajectory"] if r.get("turn") == turn]
        if k in (0, 2):
            assert state["halt"] and state["success"] is not True
            assert len(of_turn(state["ledger"], turn)) == 2  # edge failed, cloud failed
            continue
        assert state["halt"] is None and state["success"] is True
        assert [r["action"] for r in traj] == ["inc"] * 3 and state["step"] == 3
        assert [d["step"] for d in of_turn(state["route_log"], turn)] == [0, 1, 2]


class _WonOrNotCounter(CounterEnv):
    """CounterEnv whose score only says won or not (the ALFWorld-style suite's kind)."""

    score_kind = "success"


def _episode_kind(state: dict[str, Any]) -> str:
    """Which episode layout the thread's current episode was prompted with."""
    traj = [r for r in state["trajectory"] if r.get("turn") == state["turn"]]
    prompt = traj[-1]["prompt"]
    assert ("rises with each part" in prompt) is not ("becomes 1 only when" in prompt), prompt
    return "progress" if "rises with each part" in prompt else "success"


@pytest.mark.parametrize("mode", ["invoke", "stream-updates", "ainvoke", "astream-updates"])
def test_episode_prompt_follows_each_episodes_score_kind_in_a_thread(scripted, mode) -> None:
    """A thread's episodes may play environments whose scores mean different things: each
    episode is prompted for its own env's score kind (set at reset, checkpointed), also in the
    episode after a failed one."""
    edge, cloud = scripted("inc", name="edge"), scripted("inc", name="gpt-4o")
    agent = create_text_agent(
        edge=edge, cloud=cloud, checkpointer=InMemorySaver(), prompt_layout="episode"
    )
    cfg = cloud_cfg(f"score-kind-{mode}")
    for k in range(5):
        kind = "success" if k % 2 else "progress"
        env = _WonOrNotCounter(goal=2) if k % 2 else CounterEnv(goal=2)
        edge.fail = cloud.fail = k == 2
        if edge.fail:
            note("faults_injected", 2)
        ctx = HeraContext(env=env, max_steps=5, cloud_retry=FAST_RETRY)
        state = run_graph(agent, {"seed": k}, cfg, mode, ctx)
        assert state["score_kind"] == kind
        if k == 2:
            assert state["halt"] and state["success"] is not True
            continue
        assert state["halt"] is None and state["success"] is True
        assert _episode_kind(state) == kind


def test_two_threads_with_different_score_kinds_at_once(scripted) -> None:
    agent = create_text_agent(
        edge=scripted("inc", name="edge"),
        cloud=scripted("inc", name="gpt-4o"),
        checkpointer=InMemorySaver(),
        prompt_layout="episode",
    )

    async def play(thread: str, make_env: Any) -> list[str]:
        kinds = []
        for k in range(3):
            ctx = HeraContext(env=make_env(), max_steps=5)
            await agent.ainvoke({"seed": k}, cloud_cfg(thread), context=ctx)
            kinds.append(_episode_kind(agent.get_state(cloud_cfg(thread)).values))
        return kinds

    won, progress = arun(
        asyncio.gather(
            play("kinds-a", lambda: _WonOrNotCounter(goal=2)),
            play("kinds-b", lambda: CounterEnv(goal=2)),
        )
    )
    assert won == ["success"] * 3 and progress == ["progress"] * 3


def _margin_of(value: int) -> float:
    """The scripted edge's margin at counter value ``value`` (narrow at even values)."""
    return 0.25 if value % 2 == 0 else 2.0 + value


def _edge_with_margins(messages: list[BaseMessage]) -> AIMessage:
    """The edge's ``inc`` with the token logprobs a server returns: its runner-up ``dec`` is
    `_margin_of` the prompt's counter value behind (what `reply_margin` reads)."""
    value = int(re.findall(r"Observation: value is (-?\d+)", str(messages[-1].content))[-1])
    top = [{"token": "inc", "logprob": -0.1}, {"token": "dec", "logprob": -0.1 - _margin_of(value)}]
    content = [{"token": "inc", "logprob": -0.1, "top_logprobs": top}]
    return AIMessage("inc", response_metadata={"logprobs": {"content": content}})


class _NarrowMarginToCloud(TargetsPolicy):
    """Edge-first: the cloud when the edge's proposal is less than one nat ahead."""

    name = "narrow-margin"
    uses_edge_proposal = True

    def __init__(self) -> None:
        super().__init__(["edge"])

    def score(self, route_input: Any) -> float:
        margin = route_input.edge_margin
        return 1.0 if margin is None or margin < 1.0 else 0.0


def _assert_margins_routed(state: dict[str, Any]) -> None:
    """Every step of the thread's current episode: the recorded margin is its own state's, and
    the router decided on it (cloud exactly where it was narrow)."""
    traj = [r for r in state["trajectory"] if r.get("turn") == state["turn"]]
    assert traj
    for rec in traj:
        want = _margin_of(int(rec["observation"].rsplit(" ", 1)[-1]))
        assert rec["edge_margin"] == pytest.approx(want), rec
        assert rec["target"] == ("cloud" if want < 1.0 else "edge"), rec


@pytest.mark.parametrize("mode", ["invoke", "stream-updates", "ainvoke", "astream-updates"])
def test_edge_margin_is_routed_on_and_recorded_in_a_thread(scripted, mode) -> None:
    """The edge's margin over its runner-up (`reply_margin`) reaches the router and the
    trajectory record at every step of every episode of a checkpointed thread, on every call
    path, also in the episode after one the models failed."""
    edge = scripted(_edge_with_margins, name="edge")
    cloud = scripted("inc", name="gpt-4o")
    agent = create_text_agent(
        edge=edge, cloud=cloud, policy=_NarrowMarginToCloud(), checkpointer=InMemorySaver()
    )
    cfg = cloud_cfg(f"margin-{mode}")
    for k in range(4):
        edge.fail = cloud.fail = k == 1
        if edge.fail:
            note("faults_injected", 2)
        ctx = HeraContext(env=CounterEnv(goal=4), max_steps=6, cloud_retry=FAST_RETRY)
        state = run_graph(agent, {"seed": k}, cfg, mode, ctx)
        if k == 1:
            assert state["halt"] and state["success"] is not True
            continue
        assert state["halt"] is None and state["success"] is True
        _assert_margins_routed(state)
        targets = [r["target"] for r in state["trajectory"] if r.get("turn") == state["turn"]]
        assert targets == ["cloud", "edge", "cloud", "edge"]


@pytest.mark.parametrize("mode", ["invoke", "astream-updates"])
def test_edge_margin_is_recorded_when_the_edge_acts_without_proposing(scripted, mode) -> None:
    """A policy that decides before the edge (not edge-first): the edge's own steps still
    record their margin (as their log-probability), the cloud's steps none."""
    agent = create_text_agent(
        edge=scripted(_edge_with_margins, name="edge"),
        cloud=scripted("inc", name="gpt-4o"),
        policy=TargetsPolicy(["edge", "cloud"]),
        checkpointer=InMemorySaver(),
    )
    for k in range(2):
        ctx = HeraContext(env=CounterEnv(goal=4), max_steps=6)
        state = run_graph(agent, {"seed": k}, cloud_cfg(f"margin-late-{mode}"), mode, ctx)
        traj = [r for r in state["trajectory"] if r.get("turn") == state["turn"]]
        assert [r["target"] for r in traj] == ["edge", "cloud", "edge", "cloud"]
        for rec in traj:
            value = int(rec["observation"].rsplit(" ", 1)[-1])
            if rec["target"] == "edge":
                assert rec["edge_margin"] == pytest.approx(_margin_of(value)), rec
            else:
                assert rec["edge_margin"] is None, rec


def test_edge_margin_of_two_threads_at_once(scripted) -> None:
    agent = create_text_agent(
        edge=scripted(_edge_with_margins, name="edge"),
        cloud=scripted("inc", name="gpt-4o"),
        policy=_NarrowMarginToCloud(),
        checkpointer=InMemorySaver(),
    )

    async def play(thread: str, goal: int) -> int:
        for k in range(3):
            ctx = HeraContext(env=CounterEnv(goal=goal), max_steps=8)
            await agent.ainvoke({"seed": k}, cloud_cfg(thread), context=ctx)
            state = agent.get_state(cloud_cfg(thread)).values
            _assert_margins_routed(state)
        return len([r for r in state["trajectory"] if r.get("turn") == state["turn"]])

    assert arun(asyncio.gather(play("margin-a", 3), play("margin-b", 5))) == [3, 5]


# =========================================================================== kind 2
# Features scoped to the current turn.

PROOF = (
    "Prove that for every integer n greater than one there exist infinitely many primes p such "
    "that p is congruent to one modulo n, using cyclotomic polynomials, and state each lemma you "
    "need with a complete proof, including the properties of the order of an integer modulo p "
    "and the argument that a prime divisor of the cyclotomic value must be congruent to one."
)


def test_task_level_score_ignores_earlier_turns(scripted) -> None:
    model = RoutedChatModel(
        edge=scripted("e"), cloud=scripted("c", name="gpt-4o"), policy=TaskLevelRouter()
    )
    alone = model.invoke([HumanMessage(PROOF)]).response_metadata["hera_decision"]
    after = model.invoke(
        [HumanMessage("hi"), AIMessage("hello!"), HumanMessage(PROOF)]
    ).response_metadata["hera_decision"]
    assert alone["target"] == after["target"] == "cloud"
    assert after["score"] == alone["score"] and after["step"] == alone["step"] == 0
    hi = model.invoke([HumanMessage("hi")]).response_metadata["hera_decision"]
    assert hi["target"] == "edge"


@pytest.mark.parametrize("mode", ["invoke", "astream-updates"])
def test_task_level_router_per_turn_in_a_thread(providers, mode) -> None:
    edge, cloud = providers["edge"], providers["cloud"]
    policy = TaskLevelRouter()
    alone = policy.task_score(PROOF)
    agent = create_hera_agent(
        edge=llm(edge),
        cloud=llm(cloud),
        tools=[get_weather],
        policy=policy,
        checkpointer=InMemorySaver(),
    )
    cfg = cloud_cfg(f"tl-{mode}")
    for k in range(5):
        text = PROOF if k % 2 else "hi"
        state = run_graph(agent, user(text, f"t{k}"), cfg, mode)
        decisions = of_turn(state["route_log"], f"t{k}")
        assert [d["step"] for d in decisions] == [0, 1]  # steps count within the turn
        want = "cloud" if k % 2 else "edge"
        assert [d["target"] for d in decisions] == [want, want]
        if k % 2:
            assert [d["score"] for d in decisions] == [alone, alone]
    assert rejected(cloud) == []


# =========================================================================== kind 3 + 4
# Unusable edge replies; switching sides through RoutedChatModel in create_agent.


@pytest.mark.parametrize("mode", ["invoke", "stream-messages", "astream-updates"])
def test_routed_model_unusable_edge_replies_fail_over(providers, mode) -> None:
    edge, cloud, ef = providers["edge"], providers["cloud"], providers["edge_faults"]
    model = RoutedChatModel(edge=llm(edge), cloud=llm(cloud), policy="always-edge")
    agent = create_agent(model, tools=[get_weather], checkpointer=InMemorySaver())
    cfg = cloud_cfg(f"rm-{mode}")
    faults = [
        Reply.truncated_tool_call("get_weather"),
        None,
        Reply(content=None, reasoning="The answer is sunny."),
        Reply.tool_call("get_weather", '{"city": '),  # invalid JSON, finish_reason tool_calls
        Reply(content=""),  # empty
        None,
    ]
    for k, fault in enumerate(faults):
        if fault is not None:
            ef.inject(fault)
        state = run_graph(agent, user(f"weather {k}?", f"r{k}"), cfg, mode)
        msgs = state["messages"]
        assert msgs[-1].content == "Done: Sunny in Paris"
        log = of_turn(route_log_from_messages(msgs), f"r{k}")
        entries = of_turn(ledger_from_messages(msgs), f"r{k}")
        assert [d["step"] for d in log] == [0, 1]
        if fault is None:
            assert [d["target"] for d in log] == ["edge", "edge"]
        else:
            assert [d["target"] for d in log] == ["cloud", "edge"]
            assert "edge failed" in log[0]["reason"]
            assert entries[0]["target"] == "edge" and entries[0].get("error")
            assert entries[1]["target"] == "cloud" and entries[1].get("error") is None
            note("unusable_edge_replies_failed_over")
        for m in msgs:
            if isinstance(m, AIMessage):
                assert not m.invalid_tool_calls and (m.text or m.tool_calls)
    assert rejected(cloud) == []
    assert len(model._reservations) == 0
    note("wire_pairs_checked", check_wire(cloud))


@pytest.mark.parametrize("via", ["hera_agent", "routed_model"])
def test_switching_sides_keeps_tool_call_pairing(providers, via) -> None:
    """Step 0 on the vLLM edge (46-char ids), step 1 on the OpenAI-like cloud (max 40)."""
    edge, cloud = providers["edge"], providers["cloud"]
    policy = TargetsPolicy(["edge", "cloud"])
    if via == "hera_agent":
        agent = create_hera_agent(
            edge=llm(edge),
            cloud=llm(cloud),
            tools=[get_weather],
            policy=policy,
            checkpointer=InMemorySaver(),
        )
    else:
        model = RoutedChatModel(edge=llm(edge), cloud=llm(cloud), policy=policy)
        agent = create_agent(model, tools=[get_weather], checkpointer=InMemorySaver())
    cfg = cloud_cfg(f"sw-{via}")
    for k in range(5):
        n = len(cloud.requests)
        state = run_graph(agent, user(f"weather {k}?", f"w{k}"), cfg, "invoke")
        assert state["messages"][-1].content == "Done: Sunny in Paris"
        assert len(cloud.requests) == n + 1
        # the thread keeps vLLM's own id; the cloud got a short one, the same in call and result
        calls = [m for m in state["messages"] if isinstance(m, AIMessage) and m.tool_calls]
        assert len(calls[-1].tool_calls[0]["id"]) == 46
        sent = cloud.requests[-1].messages
        ids = [c["id"] for m in sent for c in m.get("tool_calls") or []]
        results = [m["tool_call_id"] for m in sent if m["role"] == "tool"]
        assert ids == results and len(ids) == k + 1
        assert all(len(i) <= MAX_TOOL_CALL_ID for i in ids)
        note("wire_cases")
    assert rejected(cloud) == []
    note("wire_pairs_checked", check_wire(cloud))


def test_dotted_tool_call_id_and_llamacpp_edge(providers) -> None:
    """Tool-call ids with dots, reused on every turn (servers that number calls per reply,
    ``functions.get_weather:0``), reach the strict cloud as plain ids, each call paired."""
    cloud = providers["cloud"]
    dotted = AIMessage(
        "",
        tool_calls=[
            {"id": "functions.get_weather:0", "name": "get_weather", "args": {"city": "Paris"}}
        ],
    )
    edge = ScriptedChat(script=[dotted], name_="edge")
    agent = create_hera_agent(
        edge=edge,
        cloud=llm(cloud),
        tools=[get_weather],
        policy=TargetsPolicy(["edge", "cloud"]),
        checkpointer=InMemorySaver(),
    )
    cfg = cloud_cfg("dots")
    for k in range(3):
        state = run_graph(agent, user(f"weather {k}?", f"d{k}"), cfg, "invoke")
        assert state["messages"][-1].content == "Done: Sunny in Paris"
        note("wire_cases")
    assert rejected(cloud) == [] and check_wire(cloud) == 1 + 2 + 3


def test_llamacpp_edge_after_a_cloud_tool_call(providers) -> None:
    """Plain ChatOpenAI sends an assistant tool-call message with ``content: null``, which
    llama.cpp's chat formatter rejects (HTTP 500); `edge_chat_model(..., backend="llamacpp")` (the
    project's edge client) sends ``""``, so the edge serves the step after the cloud's call."""
    cloud = providers["cloud"]
    with FakeProvider("llamacpp", model="llama-edge") as lcpp:
        edge = edge_chat_model(lcpp.url, lcpp.model, backend="llamacpp", max_retries=0)
        agent = create_hera_agent(
            edge=edge,
            cloud=llm(cloud),
            tools=[get_weather],
            policy=TargetsPolicy(["cloud", "edge"]),
            checkpointer=InMemorySaver(),
        )
        cfg = cloud_cfg("lcpp")
        for k in range(3):
            state = run_graph(agent, user(f"weather {k}?", f"l{k}"), cfg, "invoke")
            assert state["messages"][-1].content == "Done: Sunny in Paris"
            assert [d["target"] for d in of_turn(state["route_log"], f"l{k}")] == ["cloud", "edge"]
            assert state["errors"] == []
            note("wire_cases")
        assert rejected(lcpp) == []


def test_dangling_call_and_orphan_result_in_resumed_thread(providers) -> None:
    """A thread resumed with an unanswered call (a run stopped before its tools ran) and an
    orphan tool result: the strict cloud must accept the next turns."""
    edge, cloud = providers["edge"], providers["cloud"]
    agent = create_hera_agent(
        edge=llm(edge),
        cloud=llm(cloud),
        tools=[get_weather],
        policy="always-cloud",
        checkpointer=InMemorySaver(),
    )
    cfg = cloud_cfg("resume")
    run_graph(agent, user("weather 0?", "o0"), cfg, "invoke")
    dangling = AIMessage(
        "",
        tool_calls=[
            {"id": "chatcmpl-tool-" + "a" * 32, "name": "get_weather", "args": {"city": "Oslo"}}
        ],
    )
    agent.update_state(cfg, {"messages": [dangling]}, as_node="tools")
    state = run_graph(agent, user("weather 1?", "o1"), cfg, "invoke")
    assert state["messages"][-1].content == "Done: Sunny in Paris"
    sent = cloud.requests[-2].messages  # the turn's first request
    assert any(m["role"] == "tool" and m["content"] == UNANSWERED_CALL for m in sent)
    agent.update_state(
        cfg, {"messages": [ToolMessage("stale", tool_call_id="call_gone")]}, as_node="tools"
    )
    for k in (2, 3, 4):
        state = run_graph(agent, user(f"weather {k}?", f"o{k}"), cfg, "invoke")
        assert state["messages"][-1].content == "Done: Sunny in Paris"
        assert "stale" not in json.dumps(cloud.requests[-2].messages)
        note("wire_cases")
    assert rejected(cloud) == []
    note("wire_cases", 1)


# =========================================================================== kind 5
# Streaming: fail-over and costs.


def test_stream_falls_over_from_a_dead_edge(providers) -> None:
    cloud = providers["cloud"]
    model = RoutedChatModel(edge=dead_llm(), cloud=llm(cloud), policy="always-edge")
    chunks = list(model.stream([HumanMessage("hello", id="x")]))
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == "Hello from the fake."
    meta = total.response_metadata
    assert meta["hera_target"] == "cloud" and "edge failed" in meta["hera_decision"]["reason"]
    assert [e["target"] for e in meta["hera_ledger"]] == ["edge", "cloud"]
    assert meta["hera_ledger"][0].get("error")
    note("faults_injected")
    note("errors_recorded")

    async def astream() -> list[Any]:
        return [c async for c in model.astream([HumanMessage("hello again", id="y")])]

    achunks = arun(astream())
    assert "".join(str(c.content) for c in achunks) == "Hello from the fake."
    assert achunks[-1].response_metadata["hera_target"] == "cloud"
    note("faults_injected")


@pytest.mark.parametrize("mode", ["stream-messages", "astream-messages"])
def test_agent_stream_messages_fail_over_per_turn(providers, mode) -> None:
    cloud = providers["cloud"]
    model = RoutedChatModel(edge=dead_llm(), cloud=llm(cloud), policy="always-edge")
    agent = create_agent(model, checkpointer=InMemorySaver())
    cfg = cloud_cfg(f"sf-{mode}")
    for k in range(5):
        state = run_graph(agent, user(f"q{k}", f"f{k}"), cfg, mode)
        note("faults_injected")
        msgs = state["messages"]
        assert isinstance(msgs[-1], AIMessage) and msgs[-1].content == "Hello from the fake."
        log = of_turn(route_log_from_messages(msgs), f"f{k}")
        entries = of_turn(ledger_from_messages(msgs), f"f{k}")
        assert [d["target"] for d in log] == ["cloud"]
        assert [(e["target"], bool(e.get("error"))) for e in entries] == [
            ("edge", True),
            ("cloud", False),
        ]
    assert rejected(cloud) == [] and len(model._reservations) == 0


def _sized(n: int, body: dict[str, Any]) -> Reply:
    return Reply.text("ok " * 60)


PROMPT = "lorem ipsum " * 420  # ~1000 prompt tokens: one gpt-4o call costs ~0.003 USD


@pytest.mark.parametrize("mode", ["invoke", "stream-messages"])
def test_stream_costs_are_estimated_and_capped_like_invoke(mode) -> None:
    """No usage in the cloud's stream (custom base_url): the ledger counts tokens itself, so a
    0.005 USD cap with ~0.0035 per call allows one cloud call on stream exactly as on invoke."""
    with FakeProvider("openai", script=_sized, model="gpt-4o") as cloud:
        model = RoutedChatModel(
            edge=ScriptedChat(script=["edge answer"], name_="edge"),
            cloud=llm(cloud),
            policy="always-cloud",
            budget_scope="thread",
            cloud_budget_usd=0.005,
            cloud_call_usd_estimate=0.0035,
        )
        agent = create_agent(model, checkpointer=InMemorySaver())
        cfg = cloud_cfg(f"usd-{mode}")
        for k in range(3):
            state = run_graph(agent, user(f"{PROMPT} {k}", f"c{k}"), cfg, mode)
        entries = ledger_from_messages(state["messages"])
        assert [e["target"] for e in entries] == ["cloud", "edge", "edge"]
        assert len(cloud.requests) == 1
        spent = sum(e["usd"] for e in entries)
        assert 0.0015 < spent <= 0.005
        estimated = entries[0].get("usage_estimated", False)
        assert estimated is (mode != "invoke")
        assert entries[0]["input_tokens"] > 500 and entries[0]["output_tokens"] > 0
        note("cost_entries_estimated" if estimated else "cost_entries_reported")


def test_add_router_stream_costs_estimated_and_capped() -> None:
    with (
        FakeProvider("openai", script=_sized, model="gpt-4o") as cloud,
        FakeProvider("vllm", model="qwen3-4b") as edge,
    ):
        builder = StateGraph(HeraState, context_schema=HeraContext)
        add_router(builder, policy="always-cloud", edge=llm(edge), cloud=llm(cloud), after=None)
        graph = builder.compile(checkpointer=InMemorySaver())
        ctx = HeraContext(
            cloud_budget_usd=0.005, cloud_call_usd_estimate=0.0035, budget_scope="thread"
        )
        cfg = cloud_cfg("ar-usd")
        for k in range(3):
            state = run_graph(graph, user(f"{PROMPT} {k}", f"a{k}"), cfg, "stream-messages", ctx)
        assert [e["target"] for e in state["ledger"]] == ["cloud", "edge", "edge"]
        first = state["ledger"][0]
        assert first["usage_estimated"] is True and 0.0015 < first["usd"] <= 0.005
        note("cost_entries_estimated")


# =========================================================================== kind 6
# Caps and logs per thread / run; concurrency.


def test_one_model_two_threads_each_get_their_cloud_call(providers) -> None:
    edge, cloud = providers["edge"], providers["cloud"]
    model = RoutedChatModel(
        edge=llm(edge),
        cloud=llm(cloud),
        policy="always-cloud",
        max_cloud_calls=1,
        budget_scope="thread",
    )
    agent = create_agent(model, checkpointer=InMemorySaver())
    for thread in ("A", "B"):
        for k in range(3):
            state = run_graph(agent, user(f"q{k}", f"{thread}{k}"), cloud_cfg(thread), "invoke")
            log = route_log_from_messages(state["messages"])
            assert [d["target"] for d in log] == ["cloud"] + ["edge"] * k
        assert len(model._reservations) == 0
    assert len(cloud.requests) == 2
    assert not hasattr(model, "route_log") and not hasattr(model, "ledger")


def _slow_priced(n: int, body: dict[str, Any]) -> Reply:
    return Reply.text("cloud ok", prompt_tokens=1000, completion_tokens=100, hang_s=0.4)


def test_concurrent_runs_on_one_thread_respect_usd_cap() -> None:
    """6 concurrent ainvoke on ONE thread, 0.004 USD thread cap, ~0.0035 per call."""
    with FakeProvider("openai", script=_slow_priced, model="gpt-4o") as cloud:
        model = RoutedChatModel(
            edge=ScriptedChat(script=["edge ok"], name_="edge"),
            cloud=llm(cloud),
            policy="always-cloud",
            budget_scope="thread",
            cloud_budget_usd=0.004,
            cloud_call_usd_estimate=0.0035,
        )
        agent = create_agent(model, checkpointer=InMemorySaver())
        cfg = cloud_cfg("one")

        async def go() -> list[Any]:
            return await asyncio.gather(
                *(agent.ainvoke(user(f"q{i}", f"q{i}"), cfg) for i in range(6))
            )

        outs = arun(go())
        note("turns", 6)
        replies = {m.id: m for o in outs for m in o["messages"] if isinstance(m, AIMessage)}
        entries = ledger_from_messages(list(replies.values()))
        spent = sum(e["usd"] for e in entries if e["target"] == "cloud")
        cloud_calls = sum(e["target"] == "cloud" for e in entries)
        note("cap_violations", int(spent > 0.004))
        note("concurrent_cap_checks")
        assert len(cloud.requests) == cloud_calls == 1
        assert spent <= 0.004
        assert len(model._reservations) == 0


def test_batch_on_one_thread_makes_one_cloud_call() -> None:
    with FakeProvider("openai", script=_slow_priced, model="gpt-4o") as cloud:
        edge = ScriptedChat(script=["edge ok"], name_="edge")
        model = RoutedChatModel(
            edge=edge, cloud=llm(cloud), policy="always-cloud", max_cloud_calls=1
        )
        prompt = [HumanMessage("same question", id="same")]
        replies = model.batch([prompt] * 6, {"configurable": {"thread_id": "t"}})
        targets = [r.response_metadata["hera_target"] for r in replies]
        note("cap_violations", int(targets.count("cloud") != 1))
        note("concurrent_cap_checks")
        assert sorted(targets) == ["cloud"] + ["edge"] * 5
        assert len(cloud.requests) == 1 and edge.calls == 5
        assert len(model._reservations) == 0


def test_concurrent_threads_run_caps_and_faults() -> None:
    """4 threads x 5 turns at once (asyncio.gather), a per-run cap of 1 cloud call, cloud
    outages injected on some turns: every turn answers, no thread sees another's calls."""
    cloud_faults = Faults()
    with (
        FakeProvider("vllm", model="qwen3-4b") as edge,
        FakeProvider("openai", script=cloud_faults, model="gpt-4o") as cloud,
    ):
        agent = create_hera_agent(
            edge=llm(edge),
            cloud=llm(cloud),
            tools=[get_weather],
            policy="always-cloud",
            checkpointer=InMemorySaver(),
        )
        ctx = HeraContext(
            max_cloud_calls=1, cloud_retry=RetryPolicy(attempts=3, base_delay=0.0, jitter=0.0)
        )

        async def thread(t: int) -> None:
            cfg = cloud_cfg(f"ct{t}")
            for k in range(5):
                if (t + k) % 4 == 0:
                    cloud_faults.inject(Reply.error(503))  # absorbed by the retry
                await agent.ainvoke(user(f"weather {t}.{k}?", f"ct{t}-{k}"), cfg, context=ctx)
                note("turns")
                state = (await agent.aget_state(cfg)).values
                turn = f"ct{t}-{k}"
                assert state["halt"] is None and state["turn"] == turn
                assert state["messages"][-1].content == "Done: Sunny in Paris"
                decisions = of_turn(state["route_log"], turn)
                assert [d["target"] for d in decisions] == ["cloud", "edge"]  # cap: 1 per run
                cloud_used = [
                    e
                    for e in of_turn(state["ledger"], turn)
                    if e["target"] == "cloud" and not e.get("error")
                ]
                note("cap_violations", int(len(cloud_used) > 1))
                note("concurrent_cap_checks")
                users = [m.content for m in state["messages"] if isinstance(m, HumanMessage)]
                assert users == [f"weather {t}.{i}?" for i in range(k + 1)]

        async def go() -> None:
            await asyncio.gather(*(thread(t) for t in range(4)))

        arun(go())
        assert rejected(cloud) == []
