"""Faults over real HTTP: edge servers that die, hang and come back; cloud 429 / 5xx / timeouts;
and secrets that must never be recorded. The servers are local fakes speaking the OpenAI API
(canned replies); the clients are the real ChatOpenAI / ChatEdge."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from langchain_core.tracers import LangChainTracer
from langchain_openai import ChatOpenAI

from langgraph_hera import HeraContext, create_text_agent, edge_chat_model
from langgraph_hera.evaluation.runner import EpisodeRunner
from langgraph_hera.models.retry import RetryPolicy, is_retryable, retry_after
from langgraph_hera.policies import AlwaysCloud, AlwaysEdge
from langgraph_hera.secrets import REDACTED, redact, redacting_langsmith_client
from langgraph_hera.trace_recorder import TraceRecorder
from tests.conftest import CounterEnv
from tests.fake_openai import FakeOpenAI, completion

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def _cloud(url: str, **kw) -> ChatOpenAI:
    kw.setdefault("api_key", "test-key")
    return ChatOpenAI(model="gpt-4o", base_url=url, max_retries=0, **kw)


def _play(edge, cloud, policy, env=None, **ctx):
    agent = create_text_agent(edge=edge, cloud=cloud, policy=policy)
    env = env or CounterEnv(goal=2)
    return agent.invoke({"seed": 0}, context=HeraContext(env=env, **ctx))


# --------------------------------------------------------------------------- cloud faults


def test_cloud_429_honours_retry_after_then_succeeds() -> None:
    def script(n, body, headers):
        if n == 0:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}
        return 200, completion("inc"), {}

    with FakeOpenAI(script) as cloud_srv:
        out = _play(None, _cloud(cloud_srv.url), AlwaysCloud(), max_steps=2)
        assert len(cloud_srv.requests) == 3  # step 0 twice, step 1 once
    assert out["success"] is True
    notes = [e for e in out["errors"] if "retrying" in e]
    assert len(notes) == 1
    assert "cloud attempt 1 failed (" in notes[0] and "RateLimitError: Error code: 429" in notes[0]
    assert "retrying in 1.00 s (Retry-After 1 s)" in notes[0]
    assert all(e["ok"] for e in out["ledger"])


def test_cloud_5xx_is_retried_a_bounded_number_of_times_then_recorded() -> None:
    with FakeOpenAI(lambda n, b, h: (503, {"error": {"message": "overloaded"}}, {})) as srv:
        out = _play(None, _cloud(srv.url), AlwaysCloud(), max_steps=3, cloud_retry=FAST)
        assert len(srv.requests) == FAST.attempts
    assert out["halt"].startswith("cloud call failed at step 0: ")
    assert "Error code: 503 - overloaded" in out["halt"]
    assert sum("retrying in" in e for e in out["errors"]) == FAST.attempts - 1
    (entry,) = out["ledger"]
    assert entry["ok"] is False and "503" in entry["error"]


def test_cloud_timeout_is_retried() -> None:
    with FakeOpenAI(
        lambda n, b, h: (200, completion("inc"), {}), hang=lambda n: 2.0 * (n == 0)
    ) as srv:
        out = _play(
            None, _cloud(srv.url, timeout=0.3), AlwaysCloud(), max_steps=2, cloud_retry=FAST
        )
    assert out["success"] is True
    assert any("TimeoutError" in e and "retrying" in e for e in out["errors"])


def test_client_errors_are_not_retried() -> None:
    with FakeOpenAI(lambda n, b, h: (400, {"error": {"message": "bad request"}}, {})) as srv:
        out = _play(None, _cloud(srv.url), AlwaysCloud(), max_steps=2, cloud_retry=FAST)
        assert len(srv.requests) == 1
    assert "Error code: 400 - bad request" in out["halt"]


def test_retry_policy_validation_and_classification() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match=r"jitter must be in \[0, 1\], got 2"):
        RetryPolicy(jitter=2)
    policy = RetryPolicy(base_delay=1, max_delay=3, jitter=0)
    assert [policy.backoff(k) for k in (1, 2, 3, 4)] == [1, 2, 3, 3]
    assert is_retryable(TimeoutError()) and not is_retryable(ValueError())

    class Resp:
        headers = {"retry-after-ms": "250"}

    class Err(Exception):
        response = Resp()
        status_code = 429

    assert retry_after(Err()) == 0.25 and is_retryable(Err())


# --------------------------------------------------------------------------- edge faults


class _SwitchingEnv(CounterEnv):
    """Stops the edge server after step 2 and starts it again (same port) after step 4."""

    def __init__(self, edge_srv: list[FakeOpenAI]) -> None:
        super().__init__(goal=7)
        self.edge_srv = edge_srv

    def step(self, action: str):
        obs = super().step(action)
        if self.value == 2:
            self.edge_srv[0].stop()
        if self.value == 4:
            self.edge_srv[0] = FakeOpenAI(
                lambda n, b, h: (200, completion("inc"), {}), port=self.edge_srv[0].port
            )
        return obs


def test_edge_killed_mid_episode_falls_back_to_cloud_and_comes_back() -> None:
    edge_srv = [FakeOpenAI(lambda n, b, h: (200, completion("inc"), {}))]
    with FakeOpenAI(lambda n, b, h: (200, completion("inc"), {})) as cloud_srv:
        edge = edge_chat_model(edge_srv[0].url, "fake", timeout=2, max_retries=0)
        try:
            out = _play(edge, _cloud(cloud_srv.url), AlwaysEdge(), env=_SwitchingEnv(edge_srv))
        finally:
            edge_srv[0].stop()
    final = {d["step"]: d["target"] for d in out["route_log"]}  # the last decision per step
    assert out["success"] is True
    # Steps 0-1 on the edge; 2-3 fail over to the cloud (edge down); 4+ back on the edge.
    assert [final[k] for k in sorted(final)] == ["edge"] * 2 + ["cloud"] * 2 + ["edge"] * 3
    overrides = [d for d in out["route_log"] if d["target"] == "cloud"]
    assert all(
        d["reason"].startswith("edge failed at this step: OpenAIConnectionError") for d in overrides
    )


def test_hung_edge_times_out_to_the_cloud() -> None:
    with (
        FakeOpenAI(lambda n, b, h: (200, completion("inc"), {}), hang=lambda n: 3.0) as edge_srv,
        FakeOpenAI(lambda n, b, h: (200, completion("inc"), {})) as cloud_srv,
    ):
        edge = edge_chat_model(edge_srv.url, "fake", timeout=0.3, max_retries=0)
        out = _play(edge, _cloud(cloud_srv.url), AlwaysEdge(), max_steps=2)
    assert out["success"] is True
    assert [d["target"] for d in out["route_log"]] == ["edge", "cloud", "edge", "cloud"]
    assert all("TimeoutError" in d["reason"] for d in out["route_log"][1::2])


# --------------------------------------------------------------------------- secrets

PLANTED = "sk-hera-planted-0123456789abcdefXYZ"


def test_planted_key_never_reaches_traces_logs_files_or_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The cloud key is used (the server sees it) but never recorded, even when a misbehaving
    server echoes it back in its error bodies."""
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)

    def echo(n, body, headers):
        if n % 3 == 0:  # a proxy that echoes the Authorization header in its 500s
            return (
                500,
                {"error": {"message": f"upstream said no to {headers['authorization']}"}},
                {},
            )
        return 200, completion("inc"), {}

    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(echo) as srv, TraceRecorder() as rec:
        client = redacting_langsmith_client(api_url=rec.endpoint, api_key="local-recorder")
        tracer = LangChainTracer(client=client, project_name="secrets")
        runner = EpisodeRunner(
            env_factory=lambda: CounterEnv(goal=3),
            edge=None,
            cloud_factory=lambda env: ChatOpenAI(
                model="gpt-4o", base_url=srv.url, max_retries=0
            ).with_config(callbacks=[tracer]),
            policy_factory=AlwaysCloud,
            out_dir=tmp_path / "run",
            max_steps=5,
        )
        results = runner.run([0, 1])
        tracer.wait_for_futures()
        client.flush()
        sent = b"".join(rec.bodies)
        auth = [h.get("authorization", "") for _, _, h in srv.requests]
    assert all(a == f"Bearer {PLANTED}" for a in auth)  # the key was really used
    assert any(r.errors for r in results)  # the echoing 500s happened and were recorded
    assert (
        REDACTED.encode() in sent
        or REDACTED in caplog.text
        or any(REDACTED in e for r in results for e in r.errors)
    )
    files = b"".join(p.read_bytes() for p in (tmp_path / "run").iterdir())
    for where, blob in {
        "trace payloads": sent,
        "run files": files,
        "logs": caplog.text.encode(),
        "errors": json.dumps([r.errors for r in results]).encode(),
    }.items():
        assert PLANTED.encode() not in blob, f"the key leaked into {where}"
    assert sent, "nothing reached the trace recorder"


def test_redact_patterns() -> None:
    assert redact("key sk-abcdefghijklmnop1234 here") == f"key {REDACTED} here"
    assert redact("Authorization: Bearer abc.def-ghi_jkl012") == f"Authorization: Bearer {REDACTED}"
    assert redact("lsv2_pt_0123456789abcdef") == REDACTED
    assert redact("nothing secret") == "nothing secret"
