"""Routing metrics over steps: PGR, APGR and CPT (RouteLLM's definitions with *cloud-step
share* as the cost axis) and the oracle frontier from replayed cloud trajectories.

Definitions (RouteLLM, Ong et al. 2024, applied to steps instead of queries):

- ``PGR(policy) = (success(policy) - success(edge)) / (success(cloud) - success(edge))``: the share
  of the edge-to-cloud performance gap a policy recovers.
- ``APGR``: the area under PGR as a function of the cloud-step share on [0, 1], from the
  points of a policy's sweep plus the two end points (all-edge at share 0, all-cloud at 1).
- ``CPT(x)``: the smallest cloud-step share at which the (linearly interpolated) PGR reaches
  ``x`` (e.g. CPT(50%)).

The **oracle frontier** is computed from a cloud trajectory on which the edge was asked at
every state (``hera record --also-edge``): in hindsight a step needs the cloud only where the
edge's action differs from the cloud's; giving every other step to the edge replays the same
trajectory, with the same success. Its cloud share (disagreements / steps) is therefore an
upper bound on the true hindsight minimum (an edge detour may be harmless) and the limit a
step router trained to imitate agreement can reach.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Point:
    """One operating point: cloud-step share and success rate (both in [0, 1])."""

    cloud_share: float
    success: float


def pgr(success: float, edge_success: float, cloud_success: float) -> float:
    """Performance gap recovered; ``nan`` when the cloud is no better than the edge."""
    gap = cloud_success - edge_success
    if gap <= 0:
        return float("nan")
    return (success - edge_success) / gap


def _curve(points: Iterable[Point], edge_success: float, cloud_success: float) -> list[Point]:
    """PGR points sorted by cloud share, with the end points added (x = share, y = PGR)."""
    pts = [Point(0.0, 0.0), Point(1.0, 1.0)]
    pts += [Point(p.cloud_share, pgr(p.success, edge_success, cloud_success)) for p in points]
    # Keep, per share, the best PGR (a sweep may repeat a share).
    best: dict[float, float] = {}
    for p in pts:
        best[p.cloud_share] = max(best.get(p.cloud_share, float("-inf")), p.success)
    return [Point(x, best[x]) for x in sorted(best)]


def apgr(points: Iterable[Point], edge_success: float, cloud_success: float) -> float:
    """Area under the PGR-vs-cloud-share curve (trapezoids; ``nan`` if there is no gap)."""
    if cloud_success - edge_success <= 0:
        return float("nan")
    c = _curve(points, edge_success, cloud_success)
    return sum(
        (b.cloud_share - a.cloud_share) * (a.success + b.success) / 2
        for a, b in itertools.pairwise(c)
    )


def cpt(points: Iterable[Point], edge_success: float, cloud_success: float, target: float) -> float:
    """The smallest cloud-step share whose interpolated PGR reaches ``target`` (in [0, 1]).

    Raises:
        ValueError: ``target`` outside [0, 1].
    """
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target PGR must be in [0, 1], got {target!r}")
    if cloud_success - edge_success <= 0:
        return float("nan")
    c = _curve(points, edge_success, cloud_success)
    for a, b in itertools.pairwise(c):
        if a.success >= target:
            return a.cloud_share
        if b.success >= target:
            frac = (target - a.success) / (b.success - a.success)
            return a.cloud_share + frac * (b.cloud_share - a.cloud_share)
    return 1.0


@dataclass(frozen=True)
class OracleEpisode:
    """One replayed cloud episode: its length, success, and edge/cloud disagreements."""

    seed: int
    steps: int
    disagreements: int
    success: bool


def oracle_episodes(steps: Iterable[dict[str, Any]]) -> list[OracleEpisode]:
    """Per-episode disagreement counts from step records with ``edge_action`` and
    ``cloud_action`` at every step (a cloud run with ``--also-edge``).

    A step where the edge was not asked counts as a disagreement (it needs the cloud).
    """
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        by_seed[int(s["seed"])].append(s)
    out = []
    for seed, rows in sorted(by_seed.items()):
        rows.sort(key=lambda r: r["step"])
        dis = sum(not r.get("agree") for r in rows)
        success = bool(rows[-1].get("episode_success", rows[-1].get("success")))
        out.append(OracleEpisode(seed, len(rows), dis, success))
    return out


def oracle_frontier(episodes: Sequence[OracleEpisode]) -> list[Point]:
    """The oracle's success-vs-cloud-share frontier.

    Episodes the cloud solves are "bought" cheapest first (fewest disagreements per episode);
    an unbought episode is assumed lost (its edge-only outcome is not known from a cloud
    replay). The last point is the oracle's full-success operating point.
    """
    n = len(episodes)
    total_steps = sum(e.steps for e in episodes)
    if not n or not total_steps:
        return []
    wins = sorted((e for e in episodes if e.success), key=lambda e: e.disagreements)
    pts = [Point(0.0, 0.0)]
    cloud, won = 0, 0
    for e in wins:
        cloud += e.disagreements
        won += 1
        pts.append(Point(cloud / total_steps, won / n))
    return pts


def oracle_summary(episodes: Sequence[OracleEpisode]) -> dict[str, float]:
    """The oracle's operating point: cloud share that keeps every cloud success, and success."""
    steps = sum(e.steps for e in episodes)
    return {
        "episodes": len(episodes),
        "success": sum(e.success for e in episodes) / len(episodes) if episodes else 0.0,
        "cloud_share": sum(e.disagreements for e in episodes) / steps if steps else 0.0,
        "agreement": 1 - sum(e.disagreements for e in episodes) / steps if steps else 0.0,
    }
