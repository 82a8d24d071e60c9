"""`langgraph dev` (in-memory LangGraph Server) serves the prebuilt graphs in graphs/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration_tests.langgraph_dev import langgraph_dev, post

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_dev_runs_the_text_agent(tmp_path, vllm_server) -> None:
    env = {
        **os.environ,
        "HERA_POLICY": "always-cloud",
        "LANGSMITH_TRACING": "false",
        "HERA_EDGE_URL": vllm_server.base_url,
        "HERA_EDGE_MODEL": vllm_server.model_name,
    }
    env.pop("OPENAI_API_KEY", None)  # the text agent's cloud is then the expert stand-in
    # `langgraph dev` resolves graph paths from the cwd
    with langgraph_dev(ROOT / "graphs", env, tmp_path / "langgraph-dev.log") as base:
        assistants = post(f"{base}/assistants/search", {"limit": 10})
        assert {a["graph_id"] for a in assistants} >= {
            "hera_agent",
            "hera_text_agent",
            "pevr_text_agent",
            "eva_text_agent",
            "supervised_agent",
        }
        out = post(
            f"{base}/runs/wait",
            {"assistant_id": "hera_text_agent", "input": {"suite": "twc", "seed": 10001}},
        )
        assert out["success"] is True
        assert out["route_log"] and {d["target"] for d in out["route_log"]} == {"cloud"}
        assert all(d["policy"] == "always-cloud" for d in out["route_log"])
        # A supervised graph: the real edge executes, the stand-in supervisor plans first.
        out = post(
            f"{base}/runs/wait",
            {"assistant_id": "pevr_text_agent", "input": {"suite": "twc", "seed": 10002}},
            timeout=600,
        )
        assert out["supervision_log"][0]["action"] == "plan"
        assert out["route_log"] and {d["target"] for d in out["route_log"]} == {"edge"}
        assert any(r["action_valid"] for r in out["trajectory"])
