"""Dollars as the routing objective of text-action routers (``hera train --objective usd``).

The replay labels of `langgraph_hera.training.replay` compare, at each state where the edge's
proposal differs from the cloud's, two choices (the cloud's planner continuing after either):

- **cloud** acts here: ``k_c`` cloud calls (steps ``t .. t+k_c-1``), solved;
- **edge** acts here: one edge call, then ``k_e`` cloud calls (steps ``t+1 .. t+k_e``), solved;
  or nothing wins any more (fatal): unsolved.

With ``objective="usd"`` each choice is valued in USD (`UsdObjective`)::

    value = - lam_usd x (cloud USD + edge USD) - step_cost_usd x steps
            - failure_penalty_usd x (not solved)

i.e. the task's return priced at the failure penalty (``return - lam x cost`` with return in
USD). A cloud call's USD is its real token cost at that state: the recorded call's ``usd`` where
the cloud ran the step, else the recorded prompt's tokens (``cloud_prompt``, or ``prompt``) at
the cloud's input price plus a short reply at its output price (`state_cloud_usd`). The
continuation's ``j``-th call after the state is priced at the state's own cost plus ``j`` times
the episode's growth per step (the least-squares slope of its per-step costs, never negative:
prompts grow with the episode layout, hardly with the window), `CostCurve.ahead`; so a wasted
step costs one more cloud call of the grown size. Under edge-first
routing every cloud step also pays an edge proposal (``edge_usd_per_call``, 0 by default: the
edge runs on hardware already paid for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from langgraph_hera.accounting.pricing import GPT_4O, ModelPrice
from langgraph_hera.policies.base import check_fraction

#: ``"steps"``: labels priced in success units per cloud call and per step (``lam``,
#: ``step_cost``; the labels of issue 20 and before); ``"usd"``: priced in dollars (`UsdObjective`).
Objective = Literal["steps", "usd"]
OBJECTIVES: tuple[str, ...] = ("usd", "steps")

#: What an unsolved task costs, in USD. 0.10 USD is about eight always-cloud twc episodes with
#: the expert stand-in priced at GPT-4o and the window prompt (0.2548 USD for 20 test episodes,
#: docs/bench-twc-test-report.md): a failure outweighs any saving on one episode.
DEFAULT_FAILURE_PENALTY_USD = 0.10
#: USD per step (any model): a tie-breaker toward shorter episodes, far below a cloud call.
DEFAULT_STEP_COST_USD = 1e-5
#: Reply tokens assumed when a state's cloud call is priced from its prompt alone (an action).
REPLY_TOKENS = 8


@dataclass(frozen=True)
class UsdObjective:
    """The USD objective of replay labels (see the module docstring).

    Attributes:
        lam_usd: Weight of a dollar spent on model calls (1: a dollar is a dollar; above 1
            makes spending dearer, e.g. to meet a budget).
        step_cost_usd: USD per step (any model).
        failure_penalty_usd: USD an unsolved task costs.
        edge_usd_per_call: USD of one edge call (0: the edge's hardware is already paid for).
        edge_first: Every cloud step also pays an edge proposal (edge-first routing).
    """

    lam_usd: float = 1.0
    step_cost_usd: float = DEFAULT_STEP_COST_USD
    failure_penalty_usd: float = DEFAULT_FAILURE_PENALTY_USD
    edge_usd_per_call: float = 0.0
    edge_first: bool = True

    def __post_init__(self) -> None:
        for name in ("lam_usd", "step_cost_usd", "failure_penalty_usd", "edge_usd_per_call"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def needs_cloud(self, deviation: Any, cost: CostCurve) -> bool:
        """Whether the cloud is the cheaper choice at ``deviation``'s state (a
        `langgraph_hera.training.replay.Deviation`); ``cost.ahead(t, j)`` prices the cloud call
        ``j`` steps after state ``t`` (`CostCurve`).

        Ties go to the edge, like the ``steps`` objective.
        """
        k_c, k_e, t = deviation.to_go_cloud, deviation.to_go_edge, int(deviation.step)
        if k_c is None:
            return False  # nothing wins from here either way: the cheaper choice
        proposal = self.edge_usd_per_call if self.edge_first else 0.0
        cloud_usd = sum(cost.ahead(t, j) + proposal for j in range(k_c))
        v_cloud = -self.lam_usd * cloud_usd - self.step_cost_usd * k_c
        if k_e is None:  # fatal: one edge step, then unsolved
            v_edge = (
                -self.lam_usd * self.edge_usd_per_call
                - self.step_cost_usd
                - self.failure_penalty_usd
            )
        else:
            edge_usd = self.edge_usd_per_call + sum(
                cost.ahead(t, j) + proposal for j in range(1, k_e + 1)
            )
            v_edge = -self.lam_usd * edge_usd - self.step_cost_usd * (1 + k_e)
        return v_cloud > v_edge


def call_tokens(prompt: str, system: str) -> int:
    """Prompt tokens of one text-action call (GPT-4o's count, or chars/4 offline), with the
    chat format's overhead (`langgraph_hera.envs.expert.stand_in_reply`)."""
    from langgraph_hera.envs.expert import count_tokens

    return 3 + sum(count_tokens(text)[0] + 3 for text in (system, prompt))


def state_cloud_usd(record: dict[str, Any], price: ModelPrice = GPT_4O) -> float:
    """USD of the cloud's call at a recorded state: the recorded cost where the cloud ran the
    step, else the recorded prompt priced at ``price`` (``cloud_prompt``: the cloud's own
    layout, else ``prompt``) plus `REPLY_TOKENS`; 0 for a record without a prompt."""
    from langgraph_hera.routing.action_prompts import system_prompt_for

    if record.get("target") == "cloud" and float(record.get("usd") or 0.0) > 0:
        return float(record["usd"])
    prompt = record.get("cloud_prompt") or record.get("prompt")
    if not prompt:
        return 0.0
    n_in = call_tokens(str(prompt), system_prompt_for(str(prompt)))
    return (n_in * price.input + REPLY_TOKENS * price.output) / 1e6


class CostCurve:
    """USD of a cloud call by step in one episode: ``curve(i)`` is the recorded state ``i``'s
    cost (extrapolated past the last); ``curve.ahead(t, j)`` prices the call ``j`` steps after
    state ``t``: state ``t``'s cost plus ``j`` times ``growth``, the least-squares slope of the
    episode's costs per step (never negative)."""

    def __init__(self, costs: Sequence[float]) -> None:
        self.costs = [float(c) for c in costs]
        n = len(self.costs)
        self.growth = 0.0
        if n > 1:
            x = np.arange(n, dtype=np.float64)
            y = np.asarray(self.costs)
            slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
            self.growth = max(0.0, slope)

    def __call__(self, i: int) -> float:
        if not self.costs:
            return 0.0
        if i < len(self.costs):
            return self.costs[max(0, i)]
        return self.costs[-1] + (i - len(self.costs) + 1) * self.growth

    def ahead(self, t: int, j: int) -> float:
        """The cloud call ``j`` steps after state ``t``."""
        return self(t) + j * self.growth


def episode_curve(episode: Sequence[dict[str, Any]], price: ModelPrice = GPT_4O) -> CostCurve:
    """`CostCurve` of one episode's records (ordered by step)."""
    return CostCurve([state_cloud_usd(r, price) for r in episode])


def calibrate_usd_budget(scores: Sequence[float], usd: Sequence[float], budget: float) -> float:
    """The threshold that spends the most of ``budget`` USD on the states' cloud calls without
    exceeding it (score >= t goes to the cloud); above every score when even the costliest
    state alone is over budget.

    Raises:
        ValueError: Empty or mismatched inputs, or a negative budget.
    """
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(usd, dtype=np.float64)
    if not len(s) or s.shape != c.shape:
        raise ValueError(f"need as many scores as costs, got {s.shape} and {c.shape}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0 USD, got {budget!r}")
    distinct = np.unique(s)[::-1]
    best = float(distinct[0]) + 1.0  # none to the cloud
    for t in distinct:
        if float(c[s >= t].sum()) <= budget + 1e-15:
            best = float(t)
        else:
            break
    return best


def calibrate_usd(
    scores: Sequence[float],
    usd: Sequence[float],
    *,
    share: float | None = None,
    budget: float | None = None,
) -> float:
    """A text router's threshold for a share of the dev states' cloud USD (``share``, as
    `langgraph_hera.training.tool_router.calibrate_usd_share` does for tool traces) or a USD
    budget on them (`calibrate_usd_budget`): each dev state weighs its own cloud call's USD.

    Raises:
        ValueError: Not exactly one of ``share`` and ``budget``; see the two functions.
    """
    from langgraph_hera.training.tool_router import calibrate_usd_share

    if (share is None) == (budget is None):
        raise ValueError("give exactly one of share and budget")
    if share is not None:
        check_fraction("share", share)
        return calibrate_usd_share(scores, usd, share)
    assert budget is not None
    return calibrate_usd_budget(scores, usd, budget)


def records_usd(
    episodes: Iterable[Sequence[dict[str, Any]]],
    keep: Callable[[dict[str, Any]], bool],
    price: ModelPrice = GPT_4O,
) -> np.ndarray:
    """The cloud USD (`state_cloud_usd`) of every kept record, episode by episode, in order."""
    return np.asarray(
        [state_cloud_usd(r, price) for ep in episodes for r in ep if keep(r)], dtype=np.float64
    )
