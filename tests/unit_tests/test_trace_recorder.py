"""The LangSmith client (real, over HTTP) sends routing decisions to the local recorder."""

from langchain_core.tracers import LangChainTracer
from langsmith import Client

from langgraph_hera import create_hera_agent
from langgraph_hera.trace_recorder import TraceRecorder


def test_decisions_reach_a_real_langsmith_client(scripted) -> None:
    with TraceRecorder() as rec:
        client = Client(api_url=rec.endpoint, api_key="local-recorder")
        tracer = LangChainTracer(client=client, project_name="hera-test")
        agent = create_hera_agent(edge=scripted("hi", name="edge"), cloud=scripted(name="c"))
        agent.invoke({"messages": [("user", "hello")]}, config={"callbacks": [tracer]})
        tracer.wait_for_futures()
        client.flush()
        decisions = rec.runs("route_decision")
        graph_runs = rec.runs("hera_agent")
    assert ("GET", "/info") in [(m, p.split("?")[0]) for m, p in rec.requests]
    assert len(decisions) == 1
    meta = decisions[0]["extra"]["metadata"]
    assert meta["hera_target"] == "edge"
    assert meta["hera_policy"] == "always-edge"
    assert meta["hera_step"] == 0
    assert "hera:edge" in decisions[0]["tags"]
    assert graph_runs and graph_runs[0].get("outputs") is not None
