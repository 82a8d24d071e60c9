"""`hera calibrate --thresholds` against a real vLLM edge: played dev games, the real edge
asked at every routed step, the cheapest qualifying threshold written into a copy."""

from __future__ import annotations

import json

import pytest

from langgraph_hera.cli import main
from langgraph_hera.policies.hera import SHIPPED_ROUTER, HeraRouter

pytestmark = pytest.mark.integration


def test_closed_loop_calibration_with_the_served_edge(vllm_server, tmp_path, capsys) -> None:
    pytest.importorskip("textworld_express")
    out, bench = tmp_path / "cal.npz", tmp_path / "episodes"
    rc = main([
        "calibrate", "--suite", "twc", "--fold", "dev", "--episodes", "2", "--max-steps", "8",
        "--game-param", "numLocations=1", "--game-param", "numItemsToPutAway=1",
        "--router", str(SHIPPED_ROUTER), "--thresholds", "0,1", "--min-success-ratio", "1",
        "--edge-url", vllm_server.base_url, "--edge-model", vllm_server.model_name,
        "--out", str(out), "--bench-dir", str(bench),
    ])  # fmt: skip
    printed = capsys.readouterr()
    cal = HeraRouter(out).info["calibration"]
    table = {row["threshold"]: row for row in cal["table"]}
    cloud = cal["always_cloud"]
    assert rc == 0, printed.err
    # Threshold 0 sends every step to the cloud (the expert stand-in): always-cloud's success.
    assert cloud["success"] == 1.0 and table[0.0]["success"] == 1.0
    assert table[0.0]["cloud_share"] == 1.0 and table[1.0]["cloud_share"] == 0.0
    # The cheapest threshold that keeps all of always-cloud's success is the one written.
    keep = [t for t, row in table.items() if row["success"] >= cloud["success"]]
    assert cal["threshold"] == min(keep, key=lambda t: (table[t]["cloud_usd"], -t))
    assert HeraRouter(out).threshold == cal["threshold"] and f"router: {out}" in printed.out
    # At threshold 1 every action came from the served model, with its log-probability.
    lines = (bench / "hera-hera-twc-t1.0" / "steps.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in lines]
    assert steps and all(s["target"] == "edge" and s["edge_logprob"] is not None for s in steps)
