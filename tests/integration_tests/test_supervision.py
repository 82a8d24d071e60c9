"""Supervised agents with the real edge model (vLLM) as executor: PEVR and EVA end to end."""

from __future__ import annotations

import pytest
from langchain_core.tracers import LangChainTracer
from langsmith import Client

from langgraph_hera import (
    CostLedger,
    HeraContext,
    create_supervised_agent,
    create_supervised_text_agent,
    edge_chat_model,
)
from langgraph_hera.supervision import ExpertSupervisor, expert_plan
from langgraph_hera.trace_recorder import TraceRecorder

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["pevr", "eva"])
def test_supervised_twc_episode_with_real_edge_executor(vllm_server, mode) -> None:
    from langgraph_hera.envs import make_env

    env = make_env("twc")
    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=24, timeout=300)
    agent = create_supervised_text_agent(
        executor=edge,
        supervisor=ExpertSupervisor(planner=lambda: expert_plan(env)),
        mode=mode,
        verify_every=2,
        track_progress=True,
    )
    with TraceRecorder() as rec:
        client = Client(api_url=rec.endpoint, api_key="local-recorder")
        tracer = LangChainTracer(client=client, project_name="hera-supervision")
        try:
            out = agent.invoke(
                {"seed": 20001},
                context=HeraContext(env=env, max_steps=12),
                config={"callbacks": [tracer]},
            )
        finally:
            env.close()
        tracer.wait_for_futures()
        client.flush()
        traced = rec.runs("supervisor_decision")
    log = out["supervision_log"]
    assert log, "the supervisor never ran"
    if mode == "pevr":
        assert log[0]["action"] == "plan" and out["plan"]
    else:
        assert all(d["action"] != "plan" for d in log)
    assert {d["step"] for d in log if d["action"] != "plan"} <= set(range(2, 13, 2))
    # The constrained real executor only plays valid actions.
    assert out["trajectory"] and all(r["action_valid"] for r in out["trajectory"])
    ledger = CostLedger(out["ledger"])
    assert ledger.tokens("edge")["input"] > 0 and ledger.usd("supervisor") > 0
    # After an intervention the executor's context starts again from the handoff.
    if out.get("context_start"):
        first = str(out["messages"][0].content)
        assert "Revised plan:" in first or "Summary and advice:" in first
        assert len(out["messages"]) <= 1 + 2 * (out["step"] - out["context_start"])
    assert len(traced) == len(log)
    assert all(r["extra"]["metadata"]["hera_mode"] == mode for r in traced)


def test_real_edge_as_supervisor_is_parsed_or_recorded(vllm_server) -> None:
    """The reverse-role check with a real small model: its verdicts are parsed when they can be,
    and otherwise recorded as on track; the run never crashes."""
    url, name = vllm_server.base_url, vllm_server.model_name
    edge = edge_chat_model(url, name, max_tokens=120, timeout=300)
    agent = create_supervised_agent(
        executor=edge, supervisor=edge, mode="pevr", verify_every=1, reverse_roles=True
    )
    out = agent.invoke({"messages": [("user", "Name three primary colours.")]})
    assert out["supervision_log"][0]["action"] == "plan"
    assert out["messages"][-1].type == "ai" and out["step"] == 1
    sup = [e for e in out["ledger"] if e["target"] == "supervisor"]
    assert sup and all(e["ok"] and e["usd"] == 0 and e["energy_j"] > 0 for e in sup)
