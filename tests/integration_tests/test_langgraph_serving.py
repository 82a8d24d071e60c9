"""Serving many users: `langgraph dev` serves the routed tool agents (graphs/agents.py) over HTTP
-- the router-node graph and `create_agent` with `HeraRoutingMiddleware` --; concurrent threads,
several turns each, keep their own route log, ledger and caps.

The edge and the cloud are one local fake OpenAI-compatible server (tests/fake_openai.py) told
apart by the model name: no model, no GPU, no network.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI, completion
from tests.integration_tests.langgraph_dev import get, langgraph_dev, post

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EDGE, CLOUD = "edge-fake", "cloud-fake"
TURNS = 3
#: Each thread's cap on cloud calls (its run context); the policy always asks for the cloud.
CAPS: dict[str, int | None] = {"ann": 0, "bob": None, "cyd": 1, "dan": 0, "eve": None}


def _reply(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """A user turn ``"<who> turn <t>: a+b"`` gets a calculator call; the tool's result gets a
    final answer naming the model: two model calls per turn, like a real tool agent."""
    last = body["messages"][-1]
    if last["role"] == "user":
        expr = last["content"].split(":")[-1].strip()
        payload = completion("", prompt_tokens=20 + n % 5)
        payload["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {
                        "name": "calculator",
                        "arguments": json.dumps({"expression": expr}),
                    },
                }
            ],
        }
        payload["choices"][0]["finish_reason"] = "tool_calls"
        return 200, payload, {}
    assert last["role"] == "tool", last
    return 200, completion(f"{body['model']} says {last['content']}", prompt_tokens=30), {}


def _user_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return str(content)


@pytest.mark.parametrize("assistant", ["hera_agent", "hera_middleware_agent"])
def test_concurrent_threads_keep_their_own_route_log_ledger_and_caps(
    tmp_path: Path, assistant: str
) -> None:
    fake = FakeOpenAI(script=_reply)
    # A config outside the repo: `langgraph dev` keeps its state beside it (.langgraph_api).
    config = {
        "dependencies": [str(ROOT)],
        "graphs": {assistant: f"{ROOT / 'graphs' / 'agents.py'}:{assistant}"},
    }
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "HERA_POLICY": "always-cloud",
        "HERA_EDGE_URL": fake.url,
        "HERA_EDGE_MODEL": EDGE,
        "HERA_CLOUD_URL": fake.url,
        "HERA_CLOUD_MODEL": CLOUD,
        "LANGSMITH_TRACING": "false",
    }
    env.pop("OPENAI_API_KEY", None)
    with fake, langgraph_dev(tmp_path, env, tmp_path / "langgraph-dev.log") as base:

        def converse(who: str) -> tuple[str, dict[str, Any], list[int]]:
            thread_id = post(f"{base}/threads", {"metadata": {"user": who}})["thread_id"]
            context = {} if CAPS[who] is None else {"max_cloud_calls": CAPS[who]}
            answers = []
            for turn in range(TURNS):
                a, b = len(who) * 10 + turn, turn
                message = {"role": "user", "content": f"{who} turn {turn}: {a}+{b}"}
                out = post(
                    f"{base}/threads/{thread_id}/runs/wait",
                    {
                        "assistant_id": assistant,
                        "input": {"messages": [message]},
                        "context": context,
                    },
                )
                answers.append(out["messages"][-1]["content"])
                assert len(out["route_log"]) == 2 * (turn + 1), out  # earlier turns kept
            # What another API instance would read back: the thread's stored state.
            stored = get(f"{base}/threads/{thread_id}/state")["values"]
            assert stored["route_log"] == out["route_log"] and stored["ledger"] == out["ledger"]
            return thread_id, out, [len(who) * 10 + 2 * t for t in range(TURNS)]

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(CAPS)) as pool:
            results = dict(zip(CAPS, pool.map(converse, CAPS), strict=True))
        elapsed = time.perf_counter() - t0

    threads = {who: thread_id for who, (thread_id, _, _) in results.items()}
    assert len(set(threads.values())) == len(CAPS)
    for who, (_, out, sums) in results.items():
        cap = CAPS[who]
        humans = [_user_text(m) for m in out["messages"] if m["type"] == "human"]
        assert humans == [f"{who} turn {t}: {len(who) * 10 + t}+{t}" for t in range(TURNS)]
        finals = [m["content"] for m in out["messages"] if m["type"] == "ai" and m["content"]]
        targets = [d["target"] for d in out["route_log"]]
        models = {"edge": EDGE, "cloud": CLOUD}
        assert finals == [f"{models[targets[2 * t + 1]]} says {s}" for t, s in enumerate(sums)], (
            who
        )  # its own answers, from the model its own route log names
        assert len(out["route_log"]) == len(out["ledger"]) == 2 * TURNS
        assert [e["target"] for e in out["ledger"]] == targets, who
        if cap is None:
            assert targets == ["cloud"] * (2 * TURNS), who
        elif cap == 0:
            assert targets == ["edge"] * (2 * TURNS), who
            assert all("cap" in d["reason"] for d in out["route_log"]), who
        else:  # a cap per run or per thread: either way the first call is cloud, then <= cap a turn
            assert targets[0] == "cloud", who
            for t in range(TURNS):
                assert targets[2 * t : 2 * t + 2].count("cloud") <= cap, (who, targets)
        assert sum(e["target"] == "cloud" for e in out["ledger"]) == targets.count("cloud")

    # The edge saw each thread's id as its session header, and only that thread's messages.
    edge_requests = [(b, h) for _, b, h in fake.requests if b["model"] == EDGE]
    assert edge_requests
    by_session: dict[str, set[str]] = {}
    for body, headers in edge_requests:
        first = next(m for m in body["messages"] if m["role"] == "user")
        who = re.match(r"(\w+) turn", str(first["content"])).group(1)
        by_session.setdefault(headers.get("x-session-id", "<none>"), set()).add(who)
    assert by_session == {threads[w]: {w} for w in CAPS if CAPS[w] is not None}  # no edge else
    assert not any(h.get("x-session-id") for _, b, h in fake.requests if b["model"] == CLOUD)
    print(f"{assistant}: {len(CAPS)} threads x {TURNS} turns served in {elapsed:.1f} s")
