"""Replay as a Ray job on a local Ray cluster, over two fake edge replicas (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_hera.training import TraceStore, label_traces, replay_traces_ray
from tests.fake_providers import FakeProvider, Reply
from tests.unit_tests.test_traces import CITIES, _record

pytestmark = pytest.mark.integration
ray = pytest.importorskip("ray")


def test_replay_on_a_local_ray_cluster_over_two_edge_replicas(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "tr")
    _record(store, CITIES[:4])

    def script(n: int, body: dict) -> Reply:
        if body["messages"][-1]["role"] == "tool":
            return Reply.text("The weather: sunny.")
        city = body["messages"][-1]["content"].rsplit(" ", 1)[-1]
        return Reply.tool_call("get_weather", f'{{"city": "{city}"}}')

    with FakeProvider("vllm", script=script) as a, FakeProvider("vllm", script=script) as b:
        try:
            summary = replay_traces_ray(
                store, [a.url, b.url], edge_model_name=a.model, concurrency_per_replica=2
            )
            again = replay_traces_ray(store, [a.url, b.url], edge_model_name=a.model)
        finally:
            ray.shutdown()
        served = (len(a.requests), len(b.requests))
    assert summary.replayed == 8 and summary.errors == 0
    assert again.replayed == 0 and again.skipped == 8  # resumable
    assert served == (4, 4)  # one actor per replica, steps spread over them
    assert {r["replica"] for r in store.replays().values()} == {a.url, b.url}
    labels = {
        (s.record["task"], s.record["step"]): s.label
        for s in label_traces(store, embedder="lexical")
    }
    assert all(labels[(f"weather in {c}", 0)] == 0.0 for c in CITIES[:4])  # same tool call
