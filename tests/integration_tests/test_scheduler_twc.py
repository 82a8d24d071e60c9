"""HeraScheduler on twc with the real edge model (vLLM): profile, save, load, route an episode."""

from __future__ import annotations

import pytest

from langgraph_hera import HeraContext, create_text_agent, edge_chat_model
from langgraph_hera.policies import HeraScheduler, profile_tasks

pytestmark = pytest.mark.integration


def test_profile_twc_with_the_real_edge_then_route(vllm_server, tmp_path) -> None:
    from langgraph_hera.envs import ExpertChatModel, make_env

    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=24)
    prof = profile_tasks(lambda: make_env("twc"), edge, seeds=[0], depth=2, request_steps=4)
    root = prof.nodes[0]
    assert root.depth == 0 and root.edge_child >= 0 and len(prof.nodes) in (2, 3)
    # The constrained edge only proposes valid actions; the expert is the cloud side.
    assert root.edge_action and root.cloud_action
    assert prof.request_similarity in ([0.0], [1.0])

    path = HeraScheduler(profile=prof, embedding_model="hashed-256").save(tmp_path / "s.npz")
    scheduler = HeraScheduler(path, components="no-sd")
    env = make_env("twc")
    try:
        agent = create_text_agent(
            edge=edge, cloud=ExpertChatModel(expert=env.expert_action), policy=scheduler
        )
        out = agent.invoke({"seed": 20000}, context=HeraContext(env=env, max_steps=4))
    finally:
        env.close()
    assert len(out["route_log"]) >= 1
    assert {d["policy"] for d in out["route_log"]} == {"hera-scheduler"}
    assert all(d["reason"] for d in out["route_log"])
