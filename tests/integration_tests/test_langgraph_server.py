"""`langgraph dev` (in-memory LangGraph Server) serves the prebuilt graphs in graphs/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict, timeout: float = 300) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())


def test_langgraph_dev_runs_the_text_agent(tmp_path, vllm_server) -> None:
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("langgraph-cli is not installed (pip install 'langgraph-cli[inmem]')")
    port = _free_port()
    env = {
        **os.environ,
        "HERA_POLICY": "always-cloud",
        "LANGSMITH_TRACING": "false",
        "HERA_EDGE_URL": vllm_server.base_url,
        "HERA_EDGE_MODEL": vllm_server.model_name,
    }
    env.pop("OPENAI_API_KEY", None)  # the text agent's cloud is then the expert stand-in
    log = (tmp_path / "langgraph-dev.log").open("w")
    proc = subprocess.Popen(
        [
            cli,
            "dev",
            "--config",
            "langgraph.json",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT / "graphs",  # `langgraph dev` resolves graph paths from the cwd
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/ok", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    tail = (tmp_path / "langgraph-dev.log").read_text()[-3000:]
                    pytest.fail(f"langgraph dev did not start: {tail}")
                time.sleep(1)
        assistants = _post(f"{base}/assistants/search", {"limit": 10})
        assert {a["graph_id"] for a in assistants} >= {
            "hera_agent",
            "hera_text_agent",
            "pevr_text_agent",
            "eva_text_agent",
            "supervised_agent",
        }
        out = _post(
            f"{base}/runs/wait",
            {"assistant_id": "hera_text_agent", "input": {"suite": "twc", "seed": 10001}},
        )
        assert out["success"] is True
        assert out["route_log"] and {d["target"] for d in out["route_log"]} == {"cloud"}
        assert all(d["policy"] == "always-cloud" for d in out["route_log"])
        # A supervised graph: the real edge executes, the stand-in supervisor plans first.
        out = _post(
            f"{base}/runs/wait",
            {"assistant_id": "pevr_text_agent", "input": {"suite": "twc", "seed": 10002}},
            timeout=600,
        )
        assert out["supervision_log"][0]["action"] == "plan"
        assert out["route_log"] and {d["target"] for d in out["route_log"]} == {"edge"}
        assert any(r["action_valid"] for r in out["trajectory"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        log.close()
