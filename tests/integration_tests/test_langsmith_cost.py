"""LangSmith cost (issue 19): what the real LangSmith client sends to the local recorder.

For each integration -- `create_agent` + `HeraRoutingMiddleware`, `RoutedChatModel` in
`create_agent`, `create_hera_agent` -- with edge and cloud `ChatOpenAI` models on fake
OpenAI-compatible servers (tests/fake_providers.py): every model run carries the
``ls_provider`` / ``ls_model_name`` and the token usage of the side that answered (so LangSmith's
price table prices it); the `RoutedChatModel`'s own run reports ``ls_provider="hera"`` (no price:
the call is priced once); the edge's cost (energy, tokens) and the thread's cost per side are in
the trace. Fast (no model, no network): not marked integration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_hera import CostLedger, HeraContext, RoutedChatModel, create_hera_agent
from langgraph_hera.policies import AlwaysCloud, AlwaysEdge, RoutingPolicy
from langgraph_hera.routing.middleware import HeraRoutingMiddleware
from langgraph_hera.routing.routed import ledger_from_messages
from langgraph_hera.state import RouteInput
from langgraph_hera.trace_recorder import TraceRecorder
from langgraph_hera.tracing import COST_METADATA_KEYS, thread_cost
from tests.fake_providers import FakeProvider

EDGE_MODEL, CLOUD_MODEL = "Qwen/Qwen3-4B", "gpt-4o"
#: What the fake cloud reports as the model that answered (a dated snapshot, like OpenAI's).
CLOUD_REPORTED = "gpt-4o-2024-08-06"


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


class Alternate(RoutingPolicy):
    """Edge at even steps of a run, cloud at odd ones: both sides in every run."""

    name = "alternate"
    threshold = 0.5

    def score(self, route_input: RouteInput) -> float:
        return float(route_input.step % 2)


@pytest.fixture
def servers() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    with (
        FakeProvider("vllm", model=EDGE_MODEL) as edge,
        FakeProvider("openai", model=CLOUD_REPORTED) as cloud,
    ):
        yield edge, cloud


def _models(servers: tuple[FakeProvider, FakeProvider]) -> tuple[ChatOpenAI, ChatOpenAI]:
    edge, cloud = servers
    return (
        ChatOpenAI(model=EDGE_MODEL, base_url=edge.url, api_key="x"),  # type: ignore[arg-type]
        ChatOpenAI(model=CLOUD_MODEL, base_url=cloud.url, api_key="x"),  # type: ignore[arg-type]
    )


def _build(kind: str, servers: tuple[FakeProvider, FakeProvider]) -> Any:
    edge, cloud = _models(servers)
    policy = Alternate()
    if kind == "middleware":
        mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy)
        return create_agent(
            cloud,
            [get_weather],
            middleware=[mw],
            context_schema=HeraContext,
            checkpointer=InMemorySaver(),
        )
    if kind == "routed":
        model = RoutedChatModel(edge=edge, cloud=cloud, policy=policy)
        return create_agent(model, [get_weather], checkpointer=InMemorySaver())
    return create_hera_agent(
        edge=edge, cloud=cloud, tools=[get_weather], policy=policy, checkpointer=InMemorySaver()
    )


def _ledger(kind: str, out: dict[str, Any]) -> list[Any]:
    return ledger_from_messages(out["messages"]) if kind == "routed" else list(out["ledger"])


def _usage(run: dict[str, Any]) -> dict[str, Any]:
    """The token usage LangSmith reads from an llm run's outputs."""
    message = run["outputs"]["generations"][0][0]["message"]
    return message["kwargs"]["usage_metadata"]


class _Errors(logging.Handler):
    """Callback errors LangChain logs instead of raising (a tracer that lost a run...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run_two_turns(kind: str, servers: Any) -> tuple[TraceRecorder, list[dict[str, Any]]]:
    agent = _build(kind, servers)
    outs = []
    errors = _Errors()
    callback_log = logging.getLogger("langchain_core.callbacks.manager")
    callback_log.addHandler(errors)
    with TraceRecorder() as rec:
        config = {
            "configurable": {"thread_id": f"cost-{kind}"},
            "callbacks": [rec.tracer(project=f"cost-{kind}")],
        }
        for text in ("weather in Paris?", "and in Rome?"):
            outs.append(agent.invoke({"messages": [("user", text)]}, config))
        rec.flush()
    callback_log.removeHandler(errors)
    # Each run is registered once with the tracer and ended once ("No indexed run ID" when a
    # routed model's inner runs were registered twice).
    assert not [m for m in errors.messages if "Tracer" in m], errors.messages
    return rec, outs


@pytest.fixture(scope="module", params=["middleware", "routed", "hera_agent"])
def traced(request: pytest.FixtureRequest) -> Iterator[tuple[str, TraceRecorder, list[Any]]]:
    with (
        FakeProvider("vllm", model=EDGE_MODEL) as edge,
        FakeProvider("openai", model=CLOUD_REPORTED) as cloud,
    ):
        rec, outs = _run_two_turns(request.param, (edge, cloud))
    yield request.param, rec, outs


def _model_runs(rec: TraceRecorder) -> list[dict[str, Any]]:
    return [r for r in rec.runs() if r.get("run_type") == "llm" and r.get("name") == "ChatOpenAI"]


def test_every_model_run_carries_the_provider_model_and_usage_of_its_side(traced) -> None:
    kind, rec, outs = traced
    ledger = _ledger(kind, outs[-1])
    runs = _model_runs(rec)
    assert len(runs) == len(ledger) == 4  # 2 turns x (tool call + answer), edge then cloud
    for run in runs:
        meta = run["extra"]["metadata"]
        side = meta["hera_target"]
        assert meta["ls_provider"] == "openai"
        assert meta["ls_model_name"] == (EDGE_MODEL if side == "edge" else CLOUD_MODEL)
        assert f"hera:{side}" in run["tags"]
        usage = _usage(run)
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        assert run.get("end_time") and not run.get("error")
    by_side = sorted(r["extra"]["metadata"]["hera_target"] for r in runs)
    assert by_side == ["cloud", "cloud", "edge", "edge"]
    # The ledger's tokens are the ones LangSmith sees on the runs (same calls, same usage).
    traced_tokens = sorted(_usage(r)["input_tokens"] + _usage(r)["output_tokens"] for r in runs)
    ledger_tokens = sorted(e["input_tokens"] + e["output_tokens"] for e in ledger)
    assert traced_tokens == ledger_tokens
    # Nothing went wrong in the tracer (every run it started, it ended once).
    assert all(r.get("end_time") for r in rec.runs())


def test_a_routed_model_run_is_not_priced_twice(traced) -> None:
    kind, rec, _ = traced
    outer = [r for r in rec.runs() if r.get("name") == "RoutedChatModel"]
    if kind != "routed":
        assert not outer
        return
    assert len(outer) == 4
    for run in outer:
        meta = run["extra"]["metadata"]
        # No price table lists this provider / model: only the inner run is priced.
        assert (meta["ls_provider"], meta["ls_model_name"]) == ("hera", "hera-routed")
        # Its one child model run is the side that answered, priced under its own name.
        inner = [r for r in _model_runs(rec) if r.get("parent_run_id") == run["id"]]
        assert len(inner) == 1
        assert inner[0]["extra"]["metadata"]["ls_model_name"] in (EDGE_MODEL, CLOUD_MODEL)
        # The routed reply carries its record (decision and ledger) in the run's outputs.
        reply = run["outputs"]["generations"][0][0]["message"]["kwargs"]
        assert reply["response_metadata"]["hera_ledger"]


def test_edge_cost_is_visible_on_the_decision_and_the_outputs(traced) -> None:
    kind, rec, outs = traced
    decisions = rec.runs("route_decision")
    assert [d["extra"]["metadata"]["hera_target"] for d in decisions].count("edge") == 2
    ledger = _ledger(kind, outs[-1])
    edge = [e for e in ledger if e["target"] == "edge"]
    assert edge and all(e["energy_j"] > 0 and e["usd"] == 0 for e in edge)
    if kind == "routed":  # the record rides on the replies (the root run's output messages)
        root = next(r for r in rec.runs() if r.get("parent_run_id") is None and r.get("outputs"))
        dumped = json.dumps(root["outputs"])
        assert "hera_ledger" in dumped and "energy_j" in dumped
    else:  # the graph's final outputs carry the thread's ledger
        roots = [r for r in rec.runs() if r.get("parent_run_id") is None]
        last = max(roots, key=lambda r: r["start_time"])
        assert last["outputs"]["ledger"] == json.loads(json.dumps(ledger))


def test_the_trace_shows_the_threads_cost_per_side(traced) -> None:
    kind, rec, outs = traced
    ledger = _ledger(kind, outs[-1])
    totals = thread_cost(ledger)
    assert totals["usd_cloud"] == pytest.approx(CostLedger(ledger).cloud_usd)
    assert totals["energy_j_edge"] == pytest.approx(CostLedger(ledger).energy_j)
    assert totals["usd_cloud"] > 0 and totals["energy_j_edge"] > 0
    costs = rec.runs("hera_cost")
    assert len(costs) == len(ledger) == 4
    for run in costs:
        meta = run["extra"]["metadata"]
        assert set(COST_METADATA_KEYS) <= set(meta), set(COST_METADATA_KEYS) - set(meta)
        assert meta["thread_id"] == f"cost-{kind}"  # LangSmith groups the thread by it
        assert "hera:cost" in run["tags"]
        assert run["outputs"]["thread"] == {
            k.removeprefix("hera_thread_"): v for k, v in meta.items() if "_thread_" in k
        }
    last = max(costs, key=lambda r: r["start_time"])["extra"]["metadata"]
    assert last["hera_thread_usd_cloud"] == pytest.approx(totals["usd_cloud"])
    assert last["hera_thread_energy_j_edge"] == pytest.approx(totals["energy_j_edge"])
    assert last["hera_thread_cloud_calls"] == last["hera_thread_edge_calls"] == 2
    assert last["hera_thread_tokens_edge"] == sum(
        e["input_tokens"] + e["output_tokens"] for e in ledger if e["target"] == "edge"
    )
    # Each call's own cost: edge calls cost energy and no USD, cloud calls the reverse.
    for run in costs:
        meta = run["extra"]["metadata"]
        if meta["hera_target"] == "edge":
            assert meta["hera_usd"] == 0 and meta["hera_energy_j"] > 0
            assert meta["hera_model"] == EDGE_MODEL
        else:
            assert meta["hera_usd"] > 0 and meta["hera_energy_j"] == 0
            assert meta["hera_model"] == CLOUD_REPORTED


def test_a_fixed_side_is_priced_under_its_own_name(servers) -> None:
    """Always-edge and always-cloud through the middleware: one side only, named as such."""
    edge, cloud = _models(servers)
    cases = ((AlwaysEdge(), "edge", EDGE_MODEL), (AlwaysCloud(), "cloud", CLOUD_MODEL))
    for policy, side, name in cases:
        agent = create_agent(
            cloud, [], middleware=[HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy)]
        )
        with TraceRecorder() as rec:
            agent.invoke({"messages": [("user", "hello")]}, {"callbacks": [rec.tracer()]})
            rec.flush()
        runs = _model_runs(rec)
        assert [r["extra"]["metadata"]["ls_model_name"] for r in runs] == [name], side
        assert [r["extra"]["metadata"]["hera_target"] for r in runs] == [side]
