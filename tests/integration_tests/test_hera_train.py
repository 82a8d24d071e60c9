"""`hera train` with an RL round against a real vLLM edge: rollouts, replay labels, refit."""

from __future__ import annotations

import json
import re

import pytest

from langgraph_hera.cli import main
from tests.conftest import write_wasteful_edge_recording

pytestmark = pytest.mark.integration


def test_rl_round_labels_the_routers_own_rollouts_by_replay(vllm_server, tmp_path, capsys):
    pytest.importorskip("textworld_express")
    from langgraph_hera.policies import HeraRouter

    write_wasteful_edge_recording(tmp_path / "train", [0, 2])
    out = tmp_path / "hera.npz"
    rc = main([
        "train", "--data", str(tmp_path / "train"), "--out", str(out), "--rounds", "1",
        "--episodes", "1", "--offset", "5", "--repeats", "1", "--max-steps", "6",
        "--explore", "0.5", "--edge-url", vllm_server.base_url,
        "--edge-model", vllm_server.model_name,
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    rollout = [
        json.loads(line)
        for line in (tmp_path / "hera.rollouts" / "round-1" / "rep-0" / "steps.jsonl")
        .read_text()
        .splitlines()
    ]
    # The real edge proposed at every step of the rollout (edge-first routing) ...
    assert rollout and all(r["edge_action"] for r in rollout)
    # ... and every rollout state was labelled: agreed with a cloud step, or replayed.
    m = re.search(
        r"round 1: (\d+) states: edge agreed with the cloud (\d+); replayed: free (\d+), "
        r"at a cost (\d+), fatal (\d+)",
        err,
    )
    assert m, err
    n, *parts = map(int, m.groups())
    assert n == len(rollout) == sum(parts)
    first = re.search(r"stage 1 \(imitation\): (\d+) states", err)
    assert first and f"round 1: {int(first.group(1)) + n} states" in err
    router, il = HeraRouter(out), HeraRouter(tmp_path / "hera-il.npz")
    assert router.info["rounds"] == 1 and il.info["rounds"] == 0
    assert router.info["n_train"] == il.info["n_train"] + n
