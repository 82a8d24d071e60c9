"""Durable runs and threads on a real PostgreSQL server (started by the ``postgres_server``
fixture), with checkpoints read back under ``LANGGRAPH_STRICT_MSGPACK=true``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.durable_child import GOAL, Slow, kill_after, runner

pytestmark = pytest.mark.integration


@pytest.fixture
def strict_msgpack(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Checkpoints are read as under ``LANGGRAPH_STRICT_MSGPACK=true`` (only LangGraph's safe
    types are revived); yields the list of serde events (blocked types) seen meanwhile."""
    from langgraph.checkpoint.serde import _msgpack
    from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener

    monkeypatch.setenv("LANGGRAPH_STRICT_MSGPACK", "true")
    # The flag is read when langgraph is imported; serializers made from now on are strict.
    monkeypatch.setattr(_msgpack, "STRICT_MSGPACK_ENABLED", True)
    events: list[dict[str, Any]] = []
    unregister = register_serde_event_listener(lambda e: events.append(dict(e)))
    try:
        yield events
    finally:
        unregister()


def _checkpoints(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    except psycopg.Error:  # the tables are created by the child's first setup()
        return 0


def test_sigkilled_run_on_postgres_resumes_without_losing_or_repeating_steps(
    tmp_path: Path, postgres_url: str, strict_msgpack: list[dict[str, Any]]
) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    # Kill somewhere past step 10.
    kill_after([str(out), "0.05", postgres_url], lambda: _checkpoints(postgres_url), 35, env=env)
    assert not (out / "episodes.jsonl").exists()  # it really died mid-episode
    run_id = (out / "run_id").read_text().strip()

    edge, cloud = Slow(script=["inc"]), Slow(script=["inc"], name_="gpt-4o")
    (result,) = runner(out, 0.0, edge, cloud, checkpoint=postgres_url).run([0])
    assert result.success and result.error is None, result
    steps = [json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines()]
    assert steps == list(range(GOAL))
    assert result.steps == GOAL and result.edge_steps + result.cloud_steps == GOAL
    assert result.edge_tokens + result.cloud_tokens == GOAL * 14  # one ledger entry per step
    assert 0 < edge.calls + cloud.calls < GOAL - 5  # resumed mid-episode, not from the start
    assert strict_msgpack == []  # nothing in the state needed an unsafe type to be revived

    import psycopg

    with psycopg.connect(postgres_url) as conn:
        threads = {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {f"{run_id}:random:counter:0"}  # namespaced by the run: a shared database


def test_two_runs_share_one_database_without_mixing_threads(
    tmp_path: Path, postgres_url: str
) -> None:
    """Same policy, suite and seed in two output folders: two threads, two full episodes."""
    for name in ("a", "b"):
        edge = Slow(script=["inc"])
        (result,) = runner(tmp_path / name, 0.0, edge, Slow(script=["inc"]), postgres_url).run([0])
        assert result.success and result.steps == GOAL
        assert edge.calls > 0  # b did not just read a's finished thread
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        threads = conn.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()[0]
    assert threads == 2


def _tool_then_answer(name: str) -> Any:
    """A fake chat model for a tool agent: asks the calculator on a user turn, then answers with
    the tool's result (``"<name>: <result>"``)."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from tests.conftest import ScriptedChat

    def reply(messages: list[Any]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            expr = str(last.content).split(":")[-1].strip()
            call = {"name": "calculator", "args": {"expression": expr}, "id": f"c{len(messages)}"}
            return AIMessage("", tool_calls=[call])
        assert isinstance(last, ToolMessage), last
        return AIMessage(f"{name}: {last.content}")

    return ScriptedChat(script=[reply], name_=name)


def _calculator() -> Any:
    from langchain_core.tools import tool

    @tool
    def calculator(expression: str) -> str:
        """Add two integers written as ``a+b``."""
        a, b = expression.split("+")
        return str(int(a) + int(b))

    return calculator


def test_chat_thread_continues_on_another_worker(
    postgres_url: str, strict_msgpack: list[dict[str, Any]]
) -> None:
    """Five turns on one worker (sync graph, `PostgresSaver`); a new graph on a new connection
    (async, `AsyncPostgresSaver`) continues the thread and sees the route log and the ledger of
    the earlier turns."""
    import asyncio

    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from langgraph_hera import HeraContext, create_hera_agent
    from langgraph_hera.policies import RandomPolicy

    def agent(checkpointer: Any) -> Any:
        return create_hera_agent(
            edge=_tool_then_answer("edge"),
            cloud=_tool_then_answer("gpt-4o"),
            tools=[_calculator()],
            policy=RandomPolicy(0.5, seed=3),
            checkpointer=checkpointer,
        )

    config = {"configurable": {"thread_id": "user-42"}}
    with PostgresSaver.from_conn_string(postgres_url) as saver:
        saver.setup()
        graph = agent(saver)
        for turn in range(5):
            out = graph.invoke(
                {"messages": [HumanMessage(f"turn {turn}: {turn}+10")]},
                config,
                context=HeraContext(),
            )
            assert out["messages"][-1].content.endswith(f": {turn + 10}")
    log_before, ledger_before = out["route_log"], out["ledger"]
    assert len(log_before) == len(ledger_before) == 10  # two model calls per turn
    assert {d["target"] for d in log_before} == {"edge", "cloud"}

    async def other_worker() -> dict[str, Any]:
        async with AsyncPostgresSaver.from_conn_string(postgres_url) as saver:
            graph = agent(saver)
            before = (await graph.aget_state(config)).values
            assert before["route_log"] == log_before and before["ledger"] == ledger_before
            return await graph.ainvoke(
                {"messages": [HumanMessage("turn 5: 5+10")]}, config, context=HeraContext()
            )

    out = asyncio.run(other_worker())
    assert out["messages"][-1].content.endswith(": 15")
    assert out["route_log"][:10] == log_before and len(out["route_log"]) == 12
    assert out["ledger"][:10] == ledger_before and len(out["ledger"]) == 12
    kinds = [type(m) for m in out["messages"]]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage] * 6
    assert out["messages"][1].tool_calls[0]["args"] == {"expression": "0+10"}
    assert strict_msgpack == []  # the whole thread is readable under strict msgpack
