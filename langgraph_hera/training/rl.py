"""Hera stage 2: cost-aware reinforcement learning by grouping identical states.

One round: roll the current router out on train seeds with exploration (`ExploringPolicy`
flips a share of its decisions), group the visited states that are identical across rollouts
(`state_key`: the same game after the same actions; the environments are deterministic), and
for each group and choice (edge / cloud) estimate the expected return and the expected number
of future cloud calls. Each group is relabelled toward the choice that maximises
``return - lam * future_cloud_calls`` (`relabel`), and the router is refit on the imitation
data plus the relabelled states (warm start). ``lam`` trades success for cloud calls and moves
the router along the Pareto frontier; a target cloud-step share is met by calibrating the
threshold afterwards.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langgraph_hera.policies.base import RouteInput, RoutingPolicy
from langgraph_hera.policies.features import normalize_text
from langgraph_hera.state import Decision, Target
from langgraph_hera.training.records import route_inputs_from_records, split_episodes


class ExploringPolicy(RoutingPolicy):
    """Wraps a policy and flips each of its decisions with probability ``epsilon``.

    Args:
        policy: The policy being improved (its score, threshold and edge-first flag are kept).
        epsilon: Probability of taking the other target, in [0, 1].
        seed: Seed of the flips.
    """

    def __init__(self, policy: RoutingPolicy, epsilon: float = 0.2, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.policy = policy
        self.epsilon = float(epsilon)
        self.threshold = policy.threshold
        self.uses_edge_proposal = policy.uses_edge_proposal
        self.name = f"{policy.name}+explore"  # type: ignore[misc]
        self._rng = random.Random(seed)

    def score(self, route_input: RouteInput) -> float:
        return self.policy.score(route_input)

    def decide(self, route_input: RouteInput) -> Decision:
        decision = self.policy.decide(route_input)
        if self._rng.random() < self.epsilon:
            flipped: Target = "edge" if decision["target"] == "cloud" else "cloud"
            decision = Decision(
                **{
                    **decision,
                    "target": flipped,
                    "reason": f"exploration flip of: {decision['reason']}",
                }
            )
        return decision


def state_key(episode: Sequence[dict[str, Any]], t: int) -> str:
    """Canonical key of the state before step ``t``: suite, seed and the actions so far.

    Deterministic environments reach the same state from the same seed by the same actions,
    whichever model chose them.
    """
    first = episode[0]
    actions = " | ".join(normalize_text(r.get("action")) for r in episode[:t])
    return f"{first.get('suite')}#{first.get('seed')}#{actions}"


@dataclass
class GroupStats:
    """Per-choice outcomes of one group of identical states."""

    n: dict[str, int] = field(default_factory=lambda: {"edge": 0, "cloud": 0})
    returns: dict[str, float] = field(default_factory=lambda: {"edge": 0.0, "cloud": 0.0})
    future_cloud: dict[str, float] = field(default_factory=lambda: {"edge": 0.0, "cloud": 0.0})

    def mean(self, choice: str) -> tuple[float, float]:
        """(expected return, expected future cloud calls) of ``choice``."""
        n = self.n[choice]
        return self.returns[choice] / n, self.future_cloud[choice] / n


@dataclass
class RelabelResult:
    """States relabelled by stage 2, with weights and counts."""

    states: list[RouteInput]
    labels: np.ndarray
    weights: np.ndarray
    groups: int
    both_choices: int
    to_cloud: int
    to_edge: int


def relabel(
    records: Iterable[dict[str, Any]],
    *,
    lam: float = 0.05,
    min_visits: int = 1,
) -> RelabelResult:
    """Group identical states of rollout episodes and label each by the better choice.

    For a group where both choices were tried: label 1 (cloud) when
    ``R(cloud) - lam * C(cloud) > R(edge) - lam * C(edge)`` (R: mean episode success after the
    choice, C: mean cloud calls from this step on, this one included), else 0; weight = the
    group's visits. A group where only the edge was tried and every such episode succeeded is
    labelled 0 (the edge sufficed). Other single-choice groups carry no comparison and are
    left to the imitation labels.

    Args:
        records: Step records of rollouts (each episode recorded with ``target`` and the edge
            proposal: edge-first routing).
        lam: Price of one cloud call in units of task success.
        min_visits: Groups visited fewer times are skipped.

    Raises:
        ValueError: ``lam`` < 0.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    groups: dict[str, GroupStats] = defaultdict(GroupStats)
    example: dict[str, RouteInput] = {}
    for ep in split_episodes(records):
        success = float(bool(ep[-1].get("episode_success", ep[-1].get("success"))))
        targets = [r.get("target") for r in ep]
        inputs = route_inputs_from_records(ep)
        for t, (rec, ri) in enumerate(zip(ep, inputs, strict=True)):
            choice = rec.get("target")
            if choice not in ("edge", "cloud"):
                continue
            key = state_key(ep, t)
            g = groups[key]
            g.n[choice] += 1
            g.returns[choice] += success
            g.future_cloud[choice] += sum(x == "cloud" for x in targets[t:])
            example.setdefault(key, ri)
    states: list[RouteInput] = []
    labels: list[float] = []
    weights: list[float] = []
    both = to_cloud = to_edge = 0
    for key, g in groups.items():
        visits = g.n["edge"] + g.n["cloud"]
        if visits < min_visits:
            continue
        if g.n["edge"] and g.n["cloud"]:
            both += 1
            r_e, c_e = g.mean("edge")
            r_c, c_c = g.mean("cloud")
            label = 1.0 if r_c - lam * c_c > r_e - lam * c_e else 0.0
        elif g.n["edge"] and g.mean("edge")[0] == 1.0:
            label = 0.0
        else:
            continue
        states.append(example[key])
        labels.append(label)
        weights.append(float(visits))
        to_cloud += label == 1.0
        to_edge += label == 0.0
    return RelabelResult(
        states=states,
        labels=np.asarray(labels),
        weights=np.asarray(weights),
        groups=len(groups),
        both_choices=both,
        to_cloud=to_cloud,
        to_edge=to_edge,
    )
