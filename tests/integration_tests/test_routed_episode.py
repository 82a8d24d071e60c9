"""A routed episode end to end with the real edge model behind a real vLLM server."""

from __future__ import annotations

import re
import urllib.request

import pytest
from langchain_core.tracers import LangChainTracer
from langsmith import Client

from langgraph_hera import CostLedger, HeraContext, create_text_agent, edge_chat_model
from langgraph_hera.policies import RandomPolicy
from langgraph_hera.trace_recorder import TraceRecorder

pytestmark = pytest.mark.integration


def _server_token_counters(base_url: str) -> tuple[float, float]:
    """vLLM's own Prometheus counters: (prompt tokens, generation tokens) served so far."""
    root = base_url.rsplit("/v1", 1)[0]
    text = urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode()

    def total(name: str) -> float:
        pattern = rf"^vllm:{name}_total\{{[^}}]*\}} ([0-9.e+]+)$"
        return sum(float(v) for v in re.findall(pattern, text, flags=re.M))

    return total("prompt_tokens"), total("generation_tokens")


def test_routed_twc_episode_with_real_edge(vllm_server) -> None:
    from langgraph_hera.envs import ExpertChatModel, make_env

    env = make_env("twc")
    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=24, timeout=300)
    cloud = ExpertChatModel(expert=env.expert_action)
    agent = create_text_agent(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=11))
    before = _server_token_counters(vllm_server.base_url)
    with TraceRecorder() as rec:
        client = Client(api_url=rec.endpoint, api_key="local-recorder")
        tracer = LangChainTracer(client=client, project_name="hera-integration")
        try:
            out = agent.invoke(
                {"seed": 10000},
                context=HeraContext(env=env, max_steps=8),
                config={"callbacks": [tracer]},
            )
        finally:
            env.close()
        tracer.wait_for_futures()
        client.flush()
        decisions = rec.runs("route_decision")
        llm_runs = [r for r in rec.runs() if r.get("run_type") == "llm"]
    after = _server_token_counters(vllm_server.base_url)

    log = out["route_log"]
    targets = [d["target"] for d in log]
    assert len(out["trajectory"]) >= 1
    assert "edge" in targets
    assert all(d["policy"] == "random" for d in log)
    # Constrained decoding: every edge action is one of the valid actions, with a logprob.
    edge_steps = [r for r in out["trajectory"] if r["target"] == "edge"]
    assert edge_steps and all(r["action_valid"] for r in edge_steps)
    assert all(r["action"] in r["valid_actions"] for r in edge_steps)
    assert all(r["action_logprob"] is not None and r["action_logprob"] <= 0 for r in edge_steps)
    # The ledger's edge tokens equal what the server itself counted.
    ledger = CostLedger(out["ledger"])
    assert ledger.tokens("edge")["input"] == after[0] - before[0] > 0
    assert ledger.tokens("edge")["output"] == after[1] - before[1] > 0
    # Cloud steps are the stand-in's, priced as GPT-4o calls.
    if "cloud" in targets:
        assert ledger.cloud_usd > 0
    # Every decision reached the LangSmith client, with its metadata.
    decisions.sort(key=lambda d: d["extra"]["metadata"]["hera_step"])
    assert [d["extra"]["metadata"]["hera_target"] for d in decisions] == targets
    edge_llm = [r for r in llm_runs if r["extra"]["metadata"].get("hera_target") == "edge"]
    assert len(edge_llm) == targets.count("edge")
