"""Hera stage 2: exploration, state grouping and cost-aware relabelling."""

from __future__ import annotations

import pytest

from langgraph_hera.policies import AlwaysCloud, AlwaysEdge, RouteInput
from langgraph_hera.policies.hera_rl import ExploringPolicy, relabel, state_key


def test_exploring_policy_flips_at_the_given_rate() -> None:
    pol = ExploringPolicy(AlwaysEdge(), epsilon=0.3, seed=1)
    targets = [pol.decide(RouteInput(step=i))["target"] for i in range(2000)]
    assert 0.25 < targets.count("cloud") / 2000 < 0.35
    flipped = next(
        d for d in (pol.decide(RouteInput()) for _ in range(50)) if d["target"] == "cloud"
    )
    assert flipped["reason"].startswith("exploration flip of: always edge")
    assert ExploringPolicy(AlwaysCloud(), epsilon=0.0).decide(RouteInput())["target"] == "cloud"
    with pytest.raises(ValueError, match="epsilon must be in"):
        ExploringPolicy(AlwaysEdge(), epsilon=1.5)


def _episode(seed: int, steps: list[tuple[str, str]], success: bool, policy: str = "p") -> list:
    """Records of one rollout: (target, action) per step."""
    return [
        {
            "suite": "twc",
            "seed": seed,
            "policy": policy,
            "step": t,
            "observation": f"obs after {[a for _, a in steps[:t]]}",
            "next_observation": f"obs after {[a for _, a in steps[: t + 1]]}",
            "valid_actions": ["a", "b", "c"],
            "target": target,
            "action": action,
            "action_valid": True,
            "edge_action": action,
            "edge_valid": True,
            "episode_success": success,
        }
        for t, (target, action) in enumerate(steps)
    ]


def test_state_key_is_seed_plus_action_history() -> None:
    ep = _episode(3, [("edge", "Open Door"), ("cloud", "take key")], True)
    assert state_key(ep, 0) == "twc#3#"
    assert state_key(ep, 1) == "twc#3#open door"
    other_seed = _episode(4, [("edge", "open door")], True)
    assert state_key(other_seed, 1) != state_key(ep, 1)


def test_relabel_prefers_return_then_fewer_future_cloud_calls() -> None:
    rollouts = (
        # Seed 1, first state: the edge fails the task, the cloud wins -> cloud.
        _episode(1, [("edge", "b"), ("edge", "b")], False)
        + _episode(1, [("cloud", "a"), ("edge", "a")], True)
        # Seed 2, first state: both win, the cloud path costs 2 cloud calls -> edge.
        + _episode(2, [("edge", "a"), ("cloud", "a")], True)
        + _episode(2, [("cloud", "a"), ("cloud", "a")], True)
    )
    rl = relabel(rollouts, lam=0.05)
    assert rl.both_choices == 2
    # Groups in visiting order: seed 1 start (cloud wins), seed 1 after "a" (edge-only and
    # successful -> edge); seed 1 after "b" (edge-only, failed) is skipped; seed 2 start (both
    # win, edge costs fewer future cloud calls -> edge); seed 2 after "a" is cloud-only: skipped.
    assert [(ri.step, ri.last_action) for ri in rl.states] == [(0, ""), (1, "a"), (0, "")]
    assert list(rl.labels) == [1.0, 0.0, 0.0]
    assert list(rl.weights) == [2.0, 1.0, 2.0]
    # With a huge price per cloud call, even the seed-1 state goes to the edge.
    cheap = relabel(rollouts, lam=10.0)
    assert cheap.to_cloud == 0
    with pytest.raises(ValueError, match="lam must be >= 0"):
        relabel(rollouts, lam=-1)


def test_single_choice_groups_only_teach_a_successful_edge() -> None:
    rl = relabel(
        _episode(5, [("edge", "a"), ("edge", "b")], True) + _episode(6, [("cloud", "a")], True)
    )
    # Seed 5's two edge states succeeded -> labelled edge; seed 6's cloud-only state -> skipped.
    assert list(rl.labels) == [0.0, 0.0] and rl.both_choices == 0
    failed = relabel(_episode(7, [("edge", "a")], False))
    assert len(failed.states) == 0
