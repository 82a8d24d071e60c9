"""Hera stage 2: exploration, state grouping and cost-aware relabelling."""

from __future__ import annotations

import pytest

from langgraph_hera.policies import AlwaysCloud, AlwaysEdge, RouteInput
from langgraph_hera.training import (
    ExploringPolicy,
    deviation_values,
    relabel,
    replay_labels,
    state_key,
)


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


class _Corridor:
    """A deterministic 1-D world: walk ``right`` from 0 to 4 to win; ``jump`` loses."""

    suite = "corridor"

    def __init__(self) -> None:
        self.pos = 0
        self.closed = False
        self.resets = 0

    def _step(self, done: bool = False, success: bool = False):
        from langgraph_hera.envs import EnvStep

        return EnvStep(
            task="reach 4",
            observation=f"at {self.pos}",
            valid_actions=["jump", "left", "right", "wait"],
            done=done,
            success=success,
        )

    def reset(self, seed: int):
        self.resets += 1
        self.pos = seed % 2  # seed 1 starts one step further
        return self._step()

    def step(self, action: str):
        if action == "jump":
            return self._step(done=True)
        self.pos += {"right": 1, "left": -1}.get(action, 0)
        self.pos = max(self.pos, 0)
        return self._step(done=self.pos == 4, success=self.pos == 4)

    def expert_action(self) -> str:
        return "right"

    def close(self) -> None:
        self.closed = True


def _also_edge(seed: int, proposals: list[str], policy: str = "always-cloud") -> list[dict]:
    """An always-cloud recording (the expert walks right) with the edge's proposals."""
    return [
        {
            "suite": "corridor",
            "seed": seed,
            "policy": policy,
            "step": t,
            "task": "reach 4",
            "observation": f"at {seed % 2 + t}",
            "valid_actions": ["jump", "left", "right", "wait"],
            "target": "cloud",
            "action": "right",
            "action_valid": True,
            "cloud_action": "right",
            "edge_action": edge,
            "edge_valid": True,
            "agree": edge == "right",
            "episode_success": True,
        }
        for t, edge in enumerate(proposals)
    ]


def test_deviation_values_replay_the_edge_action_with_the_cloud_continuing() -> None:
    envs: list[_Corridor] = []

    def factory() -> _Corridor:
        envs.append(_Corridor())
        return envs[-1]

    devs = deviation_values(_also_edge(0, ["right", "left", "wait", "jump"]), factory)
    assert len(envs) == 1 and envs[0].closed
    # The agreeing first state is not replayed.
    assert [(d.step, d.edge_action, d.cloud_action) for d in devs] == [
        (1, "left", "right"),
        (2, "wait", "right"),
        (3, "jump", "right"),
    ]
    # At step 1 (position 1) the cloud needs 3 steps; after "left" it needs 4 more.
    assert (devs[0].to_go_cloud, devs[0].to_go_edge, devs[0].extra_steps) == (3, 4, 2)
    assert devs[1].extra_steps == 1
    assert devs[2].to_go_edge is None and devs[2].extra_steps is None
    assert [d.needs_cloud() for d in devs] == [True, True, True]
    # A wasted step costs no cloud call: free steps make it a tie, and a tie goes to the edge.
    assert devs[1].needs_cloud(lam=0.05, step_cost=0.0) is False
    # A detour that costs 1 cloud call more than it saves is worth it when calls are cheap
    # and steps are not.
    assert devs[0].needs_cloud(lam=0.0, step_cost=0.0) is False


def test_replay_labels_count_agreement_harm_and_fatality_per_episode() -> None:
    # Two episodes of the same seed (rollout repeats): the same step index, different proposals.
    records = _also_edge(1, ["right", "left", "right"]) + _also_edge(1, ["wait", "jump"])
    rl = replay_labels(records, _Corridor)
    assert list(rl.labels) == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert (rl.agreed, rl.harmless, rl.costly, rl.fatal) == (2, 0, 2, 1)
    assert [ri.step for ri in rl.states] == [0, 1, 2, 0, 1]
    assert [ri.edge_action for ri in rl.states] == ["right", "left", "right", "wait", "jump"]
    # Free cloud calls and steps: only the fatal jump needs the cloud.
    free = replay_labels(records, _Corridor, lam=0.0, step_cost=0.0, deviations=rl.deviations)
    assert list(free.labels) == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert free.harmless == 2
    with pytest.raises(ValueError, match="lam and step_cost must be >= 0"):
        replay_labels(records, _Corridor, step_cost=-1)


def test_deviation_values_use_the_planners_continuation_when_there_is_one() -> None:
    class Planned(_Corridor):
        last_plan: list[str] | None = None

        def expert_action(self) -> str:
            self.last_plan = ["right"] * (4 - self.pos)
            return "right"

        def step(self, action: str):
            self.plays = getattr(self, "plays", 0) + 1
            return super().step(action)

    env = Planned()
    devs = deviation_values(_also_edge(1, ["left"]), lambda: env)
    assert (devs[0].to_go_cloud, devs[0].to_go_edge) == (3, 4)
    assert env.plays == 1  # only the edge's action was played; the plan gave the rest
