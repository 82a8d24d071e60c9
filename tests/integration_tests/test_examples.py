"""CI smoke-runs every example against the real edge model (vLLM) it would start itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: example -> (extra arguments, a line its output must contain, or a tuple of alternatives)
EXPECTED = {
    "add_router_to_your_graph.py": ([], "'steps':"),
    "routed_chat_model_agent.py": ([], "'steps':"),
    "train_your_router.py": (["--train", "3", "--test", "1"], "test: success"),
    "supervised_agents.py": (["--max-steps", "6", "--verify-every", "2"], "--- EVA (T_v=2) ---"),
    "read_decisions_in_langsmith.py": ([], "decisions read back"),
    "langchain_model_router.py": ([], "requests routed: {'edge': 1, 'cloud': 1}"),
    "routing_middleware_agent.py": ([], "thread after 3 turns:"),
    # A throwaway PostgreSQL where it is installed; else the example says it skipped.
    "served_agent_postgres.py": (
        [],
        ("continued on a new connection", "skipped: PostgreSQL is not installed"),
    ),
    "train_router_on_your_agent.py": ([], "offline report:"),
}


def test_every_example_is_smoke_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, vllm_server, tmp_path: Path) -> None:
    args, expected = EXPECTED[name]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["LANGSMITH_TRACING"] = "false"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / name),
            "--edge-url",
            vllm_server.base_url,
            "--edge-model",
            vllm_server.model_name,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    alternatives = expected if isinstance(expected, tuple) else (expected,)
    assert any(e in proc.stdout for e in alternatives), proc.stdout[-3000:]


def test_model_router_example_plays_a_router_trained_on_traces(vllm_server, tmp_path: Path) -> None:
    """`langchain_model_router.py --router FILE` with the router that
    `train_router_on_your_agent.py --out DIR` leaves: every request is decided by that Hera
    router (its reason names its p(needs cloud)), not by the task-level baseline."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["LANGSMITH_TRACING"] = "false"
    served = ["--edge-url", vllm_server.base_url, "--edge-model", vllm_server.model_name]

    def run(name: str, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / name), *served, *args],
            capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout

    run("train_router_on_your_agent.py", "--out", str(tmp_path / "trained"))
    router = tmp_path / "trained" / "router.npz"
    assert router.is_file()
    out = run("langchain_model_router.py", "--router", str(router))
    assert out.count("hera p(needs cloud)") == 2, out[-3000:]
    assert "requests routed: {" in out
