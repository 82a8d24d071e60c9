"""Your agent, your router (issue 20): record routed threads, replay the edge, label, train,
calibrate, deploy in all three integrations, report. Scripted models and fake servers only."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_hera.evaluation.traces_report import trace_report
from langgraph_hera.policies import RoutingPolicy
from langgraph_hera.policies.features import FeatureSpec, HeraFeaturizer, args_match_schema
from langgraph_hera.policies.hera import HeraRouter
from langgraph_hera.routing import create_hera_agent
from langgraph_hera.routing.features import (
    edge_tool_context,
    is_tool_error,
    route_input_from_messages,
)
from langgraph_hera.routing.middleware import HeraRoutingMiddleware
from langgraph_hera.routing.routed import RoutedChatModel
from langgraph_hera.secrets import redact_personal
from langgraph_hera.state import RouteInput
from langgraph_hera.training import (
    TRACE_SCHEMA,
    TraceStore,
    calibrate_on_traces,
    canonical_args,
    label_traces,
    record_thread,
    replay_traces,
    route_input_from_step,
    same_tool_calls,
    steps_from_messages,
    steps_from_state,
    train_on_traces,
)
from langgraph_hera.training.labels import answer_similarity, replies_agree
from langgraph_hera.training.tool_router import calibrate_usd_share
from tests.conftest import ScriptedChat, TargetsPolicy

CITIES = ["Paris", "Oslo", "Lima", "Rome", "Cairo", "Quito", "Accra", "Hanoi"]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "error: unknown city" if city == "Atlantis" else f"sunny in {city}"


@tool
def convert(amount: float, unit: str) -> str:
    """Convert an amount to a unit."""
    return f"{amount} {unit}"


TOOLS = [get_weather, convert]


def _city(messages: list[BaseMessage]) -> str:
    user = [m for m in messages if isinstance(m, HumanMessage)][-1]
    return str(user.text).rsplit(" ", 1)[-1].strip("?")


def expert(messages: list[BaseMessage]) -> AIMessage:
    """The cloud: call the weather tool for the asked city, then answer from its result."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(f"The weather: {last.text}.")
    call = {"name": "get_weather", "args": {"city": _city(messages)}, "id": uuid.uuid4().hex[:12]}
    return AIMessage("", tool_calls=[call])


def weak_edge(messages: list[BaseMessage]) -> AIMessage:
    """The edge: right on cities with an 'a' in their name, wrong tool arguments otherwise;
    answers the final step in other words."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage(f"The weather: {last.text}.")
    city = _city(messages)
    args = {"city": city if "a" in city.lower() else city.upper()}
    return AIMessage("", tool_calls=[{"name": "get_weather", "args": args, "id": "e1"}])


def _models() -> tuple[ScriptedChat, ScriptedChat]:
    return ScriptedChat(script=[weak_edge], name_="edge-s"), ScriptedChat(
        script=[expert], name_="cloud-s", tokens_in=200, tokens_out=20
    )


def _mw_agent(policy: Any, checkpointer: Any = None) -> Any:
    edge, cloud = _models()
    mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy)
    return create_agent(cloud, tools=TOOLS, middleware=[mw], checkpointer=checkpointer)


def _record(store: TraceStore, cities: list[str], policy: Any = "always-cloud") -> None:
    agent = _mw_agent(policy, InMemorySaver())
    for i, city in enumerate(cities):
        config = {"configurable": {"thread_id": f"t{i}"}}
        agent.invoke({"messages": [("user", f"weather in {city}")]}, config)
        record_thread(agent, config, store, tools=TOOLS)


# --------------------------------------------------------------------------- redaction


def test_redact_personal_emails_phones_and_keys() -> None:
    text = "ann.lee@example.co.uk, +1 415-555-0100, (020) 7946 0958, sk-abcdefghijklmnop1234"
    assert redact_personal(text) == "[EMAIL], [PHONE], [PHONE], [REDACTED]"
    for keep in ("2024-01-15 10:30", "127.0.0.1", "amount 123456789", "v1.2.3", "id 12-34"):
        assert redact_personal(keep) == keep


# --------------------------------------------------------------------------- recording


def test_record_from_router_node_graph_state() -> None:
    edge, cloud = _models()
    agent = create_hera_agent(
        edge=edge, cloud=cloud, tools=TOOLS, policy=TargetsPolicy(["cloud", "edge"])
    )
    out = agent.invoke({"messages": [("user", "weather in Paris")]})
    steps = steps_from_state(out, tools=TOOLS, thread_id="g1")
    assert [s["target"] for s in steps] == ["cloud", "edge"]
    first, second = steps
    assert list(first) == list(TRACE_SCHEMA)
    assert first["step_id"] == f"g1:{out['messages'][0].id}:0"
    assert first["tool_calls"][0]["name"] == "get_weather"
    assert first["tool_names"] == ["get_weather", "convert"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert first["usd"] > 0 and second["usd"] == 0
    assert first["input_tokens"] == 200 and first["decision"]["target"] == "cloud"
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "tool"]
    assert second["history"] == ["cloud"] and second["task"] == "weather in Paris"


def test_record_from_routed_chat_model_messages_and_pii_redacted() -> None:
    edge, cloud = _models()
    model = RoutedChatModel(edge=edge, cloud=cloud, policy="always-cloud")
    agent = create_agent(model, tools=TOOLS)
    out = agent.invoke({"messages": [("user", "mail bob@example.com: weather in Oslo")]})
    steps = steps_from_messages(out["messages"], tools=TOOLS)
    assert [s["target"] for s in steps] == ["cloud", "cloud"]
    assert all(s["source"] == "messages" and s["usd"] > 0 for s in steps)
    dumped = json.dumps(steps)
    assert "bob@example.com" not in dumped and "[EMAIL]" in dumped


def test_record_thread_from_middleware_is_idempotent(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "tr")
    agent = _mw_agent("always-cloud", InMemorySaver())
    config = {"configurable": {"thread_id": "m1"}}
    agent.invoke({"messages": [("user", "weather in Lima")]}, config)
    assert record_thread(agent, config, store, tools=TOOLS) == 2
    agent.invoke({"messages": [("user", "weather in Rome")]}, config)  # a second turn
    assert record_thread(agent, config, store, tools=TOOLS) == 2  # only the new steps
    steps = store.steps()
    assert len(steps) == 4 and len({s["turn"] for s in steps}) == 2
    assert [s["step"] for s in steps] == [0, 1, 0, 1]
    assert steps[2]["task"] == "weather in Rome"
    parquet = store.write_parquet()
    assert parquet is not None and parquet.exists()


# --------------------------------------------------------------------------- replay


def test_replay_concurrent_resumable_with_cache(tmp_path: Path) -> None:
    from langgraph_hera.models.cache import ProposalCache

    store = TraceStore(tmp_path / "tr")
    _record(store, CITIES[:4])
    edge, _ = _models()
    summary = replay_traces(store, edge, concurrency=3)
    assert summary.replayed == 8 and summary.errors == 0 and edge.calls == 8
    again = replay_traces(store, edge)
    assert again.replayed == 0 and again.skipped == 8 and edge.calls == 8
    cache = ProposalCache(tmp_path / "cache.sqlite")
    replay_traces(store, edge, cache=cache, resume=False)
    replay_traces(store, edge, cache=cache, resume=False)
    assert cache.stats()["hits"] >= 4  # identical prompts (no ids in them) hit


def test_replay_binds_the_steps_tools_on_a_fake_server(tmp_path: Path) -> None:
    from langchain_openai import ChatOpenAI

    from tests.fake_providers import FakeProvider, Reply

    store = TraceStore(tmp_path / "tr")
    _record(store, ["Paris"])
    script = [Reply.tool_call("get_weather", '{"city": "Paris"}'), Reply.error(500)]
    with FakeProvider("vllm", script=script) as srv:
        edge = ChatOpenAI(model=srv.model, base_url=srv.url, api_key="x", max_retries=0)
        summary = replay_traces(store, edge, concurrency=1)
        bodies = [r.body for r in srv.requests]
    assert summary.replayed == 2 and summary.errors == 1
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["get_weather", "convert"]
    labels = {s.record["step"]: s.label for s in label_traces(store, embedder="lexical")}
    assert labels == {0: 0.0, 1: 1.0}  # same call agrees; an edge error needs the cloud


# --------------------------------------------------------------------------- labels


def test_canonical_tool_call_agreement() -> None:
    a = [{"name": "f", "args": {"x": 1, "s": " a  b "}}, {"name": "g", "args": {}}]
    b = [{"name": "g", "args": {}}, {"name": "f", "args": {"s": "a b", "x": 1.0}}]
    assert same_tool_calls(a, b)
    assert not same_tool_calls(a, [{"name": "f", "args": {"x": "1", "s": "a b"}}, b[0]])
    assert same_tool_calls(
        [{"name": "f", "args": {"x": "1"}}], [{"name": "f", "args": {"x": 1}}], numeric_strings=True
    )
    assert canonical_args(True) != canonical_args(1)
    assert canonical_args('{"b": 2, "a": [1]}') == canonical_args({"a": [1.0], "b": 2})
    assert not same_tool_calls(a, a[:1])


def test_answer_agreement_comparator_and_outcome_labels(tmp_path: Path) -> None:
    assert answer_similarity("It is sunny in Paris", "it is  sunny in Paris", embedder="lexical")
    assert answer_similarity("sunny in Paris", "The cat sat", embedder="lexical") < 0.7
    cloud, text = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]), AIMessage("x")
    assert not replies_agree(cloud, text) and not replies_agree(cloud, None)
    assert replies_agree(cloud, text, comparator=lambda c, e: True)
    store = TraceStore(tmp_path / "tr")
    _record(store, ["Paris", "Oslo"])
    edge, _ = _models()
    replay_traces(store, edge)
    by_agree = {(s.record["task"], s.record["step"]): s.label for s in label_traces(store)}
    assert by_agree == {
        ("weather in Paris", 0): 0.0,
        ("weather in Paris", 1): 0.0,
        ("weather in Oslo", 0): 1.0,  # OSLO
        ("weather in Oslo", 1): 0.0,
    }

    def score(messages: list[BaseMessage], reply: AIMessage) -> float:  # the user's env
        calls = reply.tool_calls
        return 1.0 if not calls or calls[0]["args"]["city"] == _city(messages) else 0.0

    outcome = label_traces(store, score=score)
    assert [s.label for s in outcome] == [0.0, 0.0, 1.0, 0.0]
    assert outcome[2].edge_score == 0.0 and outcome[2].cloud_score == 1.0


# --------------------------------------------------------------------------- features


def test_tool_features_and_schema_check() -> None:
    msgs: list[BaseMessage] = [
        HumanMessage("weather in Atlantis", id="u1"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "A"}, "id": "c1"}]),
        ToolMessage("Error: unknown city", tool_call_id="c1"),
    ]
    ri = route_input_from_messages(msgs, tools=TOOLS)
    assert ri.extra["tools_offered"] == ["convert", "get_weather"]
    assert ri.extra["last_tool_result"] and ri.extra["last_tool_error"]
    assert is_tool_error(ToolMessage("boom", tool_call_id="c", status="error"))
    assert route_input_from_messages(msgs).extra["tools_offered"] is None
    schema = get_weather.tool_call_schema.model_json_schema()
    assert args_match_schema({"city": "x"}, schema)
    assert not args_match_schema({"city": 3}, schema) and not args_match_schema({}, schema)
    proposal = AIMessage("", tool_calls=[{"name": "convert", "args": {"amount": "x"}, "id": "c"}])
    edge_tool_context(ri, proposal, TOOLS)
    assert ri.extra["edge_tool"] == "convert" and ri.extra["edge_args_valid"] is False
    spec = FeatureSpec(embedding_model="hashed-16", embedding_dim=16, tools=True, edge=True)
    x = HeraFeaturizer(spec).transform_one(ri)
    names = spec.names()
    assert x[names.index("last_tool_error")] == 1.0 and x[names.index("edge_tool_call")] == 1.0
    assert x[names.index("tools_offered_log")] == pytest.approx(np.log1p(2))
    assert FeatureSpec().names() == FeatureSpec.from_dict(FeatureSpec().to_dict()).names()


class _Spy(RoutingPolicy):
    """Always cloud; keeps every RouteInput it saw."""

    name = "spy"

    def __init__(self) -> None:
        self.seen: list[RouteInput] = []
        self.threshold = 0.5

    def score(self, route_input: RouteInput) -> float:
        self.seen.append(route_input)
        return 1.0


def test_feature_parity_train_time_equals_decision_time(tmp_path: Path) -> None:
    spy = _Spy()
    store = TraceStore(tmp_path / "tr")
    _record(store, ["Paris", "Oslo"], policy=spy)
    steps = store.steps()
    assert len(spy.seen) == len(steps) == 4
    spec = FeatureSpec(embedding_model="hashed-32", embedding_dim=32, tools=True)
    feat = HeraFeaturizer(spec)
    live = feat.transform(spy.seen)
    recorded = feat.transform([route_input_from_step(s) for s in steps])
    np.testing.assert_allclose(live, recorded)
    assert spy.seen[1].extra["last_tool_result"] and spy.seen[1].history == ["cloud"]


# --------------------------------------------------------------------------- train, deploy, report


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Path, TraceStore, TraceStore]:
    train, dev = TraceStore(tmp_path / "train"), TraceStore(tmp_path / "dev")
    _record(train, CITIES * 2)
    _record(dev, ["Berlin", "Madrid", "Tokyo", "Sofia"])
    edge, _ = _models()
    replay_traces(train, edge)
    replay_traces(dev, edge)
    run = train_on_traces(
        train,
        dev_traces=dev,
        out=tmp_path / "router.npz",
        target_cloud_share=0.3,
        embedder="lexical",
        spec=FeatureSpec(embedding_model="hashed-64", embedding_dim=64, tools=True),
    )
    assert run.path is not None and run.n_train == 32 and run.n_dev == 8
    assert 0 < run.positive_share < 1 and "AUC" in run.summary()
    return run.path, train, dev


def test_train_calibrate_and_deploy_in_all_three_integrations(trained: Any) -> None:
    path, _, dev = trained
    usd_share = calibrate_on_traces(path, dev, cloud_usd_share=0.5, embedder="lexical")
    assert usd_share.threshold <= 1.0
    router = HeraRouter.load(path)
    assert router.spec.tools and router.info["trained_on"] == "traces"
    edge, cloud = _models()
    graph = create_hera_agent(edge=edge, cloud=cloud, tools=TOOLS, policy=HeraRouter(path))
    out = graph.invoke({"messages": [("user", "weather in Paris")]})
    assert {d["policy"] for d in out["route_log"]} == {"hera"}
    out = _mw_agent(HeraRouter.load(path)).invoke({"messages": [("user", "weather in Oslo")]})
    assert out["route_log"] and out["route_log"][0]["policy"] == "hera"
    model = RoutedChatModel(edge=edge, cloud=cloud, policy=HeraRouter(path))
    out = create_agent(model, tools=TOOLS).invoke({"messages": [("user", "weather in Lima")]})
    decisions = [m.response_metadata["hera_decision"] for m in out["messages"][1::2]]
    assert decisions and all(d["policy"] == "hera" for d in decisions)


def test_calibrate_usd_share() -> None:
    assert calibrate_usd_share([0.9, 0.5, 0.1], [1.0, 1.0, 2.0], 0.5) == 0.5
    assert calibrate_usd_share([0.9, 0.5, 0.1], [1.0, 1.0, 2.0], 0.0) > 0.9
    with pytest.raises(ValueError, match="no cloud USD"):
        calibrate_usd_share([0.1], [0.0], 0.5)


def test_offline_report(trained: Any, tmp_path: Path) -> None:
    path, _, dev = trained
    report = trace_report(dev, path, out_dir=tmp_path / "rep", embedder="lexical")
    policies = {r.policy for r in report.rows}
    assert {"always-edge", "always-cloud", "random", "threshold-stuck", "hera"} <= policies
    cloud = next(r for r in report.rows if r.policy == "always-cloud")
    assert cloud.agreement == 1.0 and cloud.usd_share == 1.0
    assert set(report.apgr) == {"threshold-stuck", "hera", "random"}
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# Router report")
    assert (tmp_path / "rep" / "results.csv").read_text().count("\n") == len(report.rows) + 1


def test_cli_train_calibrate_report(trained: Any, tmp_path: Path, capsys: Any) -> None:
    from langgraph_hera.cli import main

    _, train, dev = trained
    out = tmp_path / "cli.npz"
    common = ["--answer-embedder", "lexical"]
    argv = ["train", "--traces", str(train.path), "--dev-traces", str(dev.path), "--out", str(out)]
    assert main([*argv, "--target-cloud-share", "0.3", "--hash-dim", "32", *common]) == 0
    assert HeraRouter.load(out).spec.tools
    trained_bytes = out.read_bytes()
    assert (
        main(
            [
                "calibrate",
                "--router",
                str(out),
                "--traces",
                str(dev.path),
                "--cloud-share",
                "0.5",
                *common,
            ]
        )
        == 0
    )
    # Without --out the input router is kept and the calibrated copy written beside it.
    assert out.read_bytes() == trained_bytes
    calibrated = HeraRouter.load(tmp_path / "cli-cal.npz")
    assert calibrated.threshold != HeraRouter.load(out).threshold
    assert str(tmp_path / "cli-cal.npz") in capsys.readouterr().out
    rep = tmp_path / "rep"
    assert (
        main(
            ["report", "--traces", str(dev.path), "--router", str(out), "--out", str(rep), *common]
        )
        == 0
    )
    assert (rep / "results.csv").exists() and "APGR" in capsys.readouterr().out
    assert main(["calibrate", "--router", str(out), "--traces", str(dev.path)]) == 2


def test_calibrate_on_traces_refuses_a_missing_store_and_a_bad_share(
    trained: Any, tmp_path: Path
) -> None:
    """A missing trace directory is an error (it used to be created, empty); a share outside
    [0, 1] is named before any replay."""
    from langgraph_hera.cli import main

    path, _, dev = trained
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match="no trace store at .*nope"):
        calibrate_on_traces(path, missing, cloud_share=0.3)
    assert not missing.exists()
    with pytest.raises(ValueError, match=r"cloud_share must be in \[0, 1\], got 1.5"):
        calibrate_on_traces(path, dev, cloud_share=1.5)
    with pytest.raises(ValueError, match=r"cloud_usd_share must be in \[0, 1\], got -0.1"):
        calibrate_on_traces(path, dev, cloud_usd_share=-0.1)
    argv = ["calibrate", "--router", str(path), "--traces", str(missing), "--cloud-share", "0.3"]
    assert main(argv) == 2 and not missing.exists()
