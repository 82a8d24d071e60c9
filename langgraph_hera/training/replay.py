"""Hera stage 2 by replay: what each edge proposal that differs from the cloud's costs.

`deviation_values` replays every recorded state where the edge's proposal is not known to be
the cloud's (the edge's action, then the cloud's expert continuing) and `replay_labels` turns the
results into router labels (``return - lam * future cloud calls``, per step).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langgraph_hera.accounting.pricing import GPT_4O, ModelPrice
from langgraph_hera.policies.base import RouteInput
from langgraph_hera.training.records import route_inputs_from_records, split_episodes
from langgraph_hera.training.usd import OBJECTIVES, Objective, UsdObjective, episode_curve


@dataclass
class Deviation:
    """What one edge proposal that differs from the cloud's action costs, by replay.

    Attributes:
        episode: Index of the episode in ``split_episodes(records)`` order.
        seed: Episode seed.
        step: Step index of the state.
        edge_action: The edge's proposal.
        cloud_action: The cloud's action at that state.
        to_go_cloud: Steps to success from the state under the cloud (the continuation the
            cloud's planner found), ``None`` when it found none.
        to_go_edge: Steps to success after the edge's action, the cloud continuing;
            ``None``: no winning continuation (the edge's action was fatal or the episode ended
            in failure), ``0``: the edge's action itself ended the episode in success.
    """

    episode: int
    seed: int
    step: int
    edge_action: str
    cloud_action: str
    to_go_cloud: int | None
    to_go_edge: int | None

    @property
    def extra_steps(self) -> int | None:
        """Steps the edge's action adds to the episode (``None``: fatal, or unknown)."""
        if self.to_go_edge is None or self.to_go_cloud is None:
            return None
        return 1 + self.to_go_edge - self.to_go_cloud

    def needs_cloud(self, lam: float = 0.05, step_cost: float = 0.01) -> bool:
        """Whether the cloud is the better choice at this state.

        Compares ``success - lam * cloud_calls - step_cost * steps`` of the two choices, the
        cloud continuing after either (so cloud calls = the steps the cloud takes): the cloud
        wins when the edge's action is fatal, or when it adds steps and ``lam``/``step_cost``
        make them dearer than the one cloud call saved.
        """
        if self.to_go_cloud is None:
            return False  # nothing wins from here either way: the cheaper choice
        if self.to_go_edge is None:
            return True
        v_cloud = 1.0 - (lam + step_cost) * self.to_go_cloud
        v_edge = 1.0 - lam * self.to_go_edge - step_cost * (1 + self.to_go_edge)
        return v_cloud > v_edge


def _cloud_to_go(env: Any, step: Any, budget: int) -> int | None:
    """Steps the env's expert (the cloud stand-in) needs to win from the current state.

    Uses the planner's whole continuation (``last_plan``) when the env exposes one, else plays
    the expert out (``budget`` steps at most) on the env itself.
    """
    if step.done:
        return 0 if step.success else None
    if hasattr(env, "last_plan"):
        env.expert_action()
        plan = env.last_plan
        return len(plan) if plan else None
    for n in range(1, budget + 1):
        step = env.step(env.expert_action())
        if step.done:
            return n if step.success else None
    return None


def _replay_to(env: Any, seed: int, before: Sequence[dict[str, Any]]) -> Any:
    """Reset ``env`` to ``seed`` and play the recorded actions of ``before``; the last step."""
    step = env.reset(seed)
    for rec in before:
        step = env.step(str(rec.get("action")))
    return step


def deviation_values(
    records: Iterable[dict[str, Any]],
    env_factory: Any,
    *,
    budget: int = 40,
    on_progress: Any = None,
) -> list[Deviation]:
    """Replay every recorded state where the edge's proposal is not known to be the cloud's.

    The counterfactual estimate of Hera's stage 2: for each such state of a recording with the
    edge's proposal at every step (an ``--also-edge`` run, or an edge-first rollout of a
    router), the environment is reset to the state by replaying the recorded actions (the
    environments are deterministic), the edge's action is taken, and the cloud's planner
    reports how many steps are left (or that nothing wins any more). States where the edge
    agreed with the cloud (``agree`` true) cost nothing and are not replayed.

    Args:
        records: Step records with ``edge_action`` and ``action`` (and, where the cloud was
            also asked, ``cloud_action`` and ``agree``).
        env_factory: ``() -> TextEnv`` whose ``expert_action`` is the cloud's choice (the
            expert stand-in); one env is used for all replays and closed at the end.
        budget: Most steps to play the expert out when the env has no planner continuation.
        on_progress: Called as ``on_progress(done, total)`` after each replay.

    Returns:
        One `Deviation` per disagreeing state, in record order.
    """
    todo: list[tuple[int, list[dict[str, Any]], int]] = []
    for e, ep in enumerate(split_episodes(records)):
        for t, rec in enumerate(ep):
            if rec.get("agree") is not True and rec.get("edge_action") is not None:
                todo.append((e, ep, t))
    out: list[Deviation] = []
    if not todo:
        return out
    env = env_factory()
    try:
        for i, (e, ep, t) in enumerate(todo):
            rec = ep[t]
            seed = int(rec["seed"])

            to_go_cloud = _cloud_to_go(env, _replay_to(env, seed, ep[:t]), budget)
            if not hasattr(env, "last_plan"):
                _replay_to(env, seed, ep[:t])  # the expert was played out: back to the state
            edge_step = env.step(str(rec["edge_action"]))
            to_go_edge = _cloud_to_go(env, edge_step, budget)
            out.append(
                Deviation(
                    episode=e,
                    seed=seed,
                    step=int(rec.get("step", t)),
                    edge_action=str(rec["edge_action"]),
                    cloud_action=str(rec.get("cloud_action") or ""),
                    to_go_cloud=to_go_cloud,
                    to_go_edge=to_go_edge,
                )
            )
            if on_progress is not None:
                on_progress(i + 1, len(todo))
    finally:
        env.close()
    return out


@dataclass
class ReplayLabels:
    """Step-router training data labelled by replay (see `replay_labels`).

    ``agreed``: states where the edge's proposal was the cloud's action; of the replayed
    states, ``harmless`` cost nothing (label 0), ``costly`` added priced steps and ``fatal``
    left nothing that wins (label 1).
    """

    states: list[RouteInput]
    labels: np.ndarray
    seeds: np.ndarray
    deviations: list[Deviation]
    agreed: int
    harmless: int
    costly: int
    fatal: int
    #: Each state's cloud call in USD (`langgraph_hera.training.usd.state_cloud_usd`).
    usd: np.ndarray = field(default_factory=lambda: np.zeros(0))


def replay_labels(
    records: Iterable[dict[str, Any]],
    env_factory: Any,
    *,
    lam: float = 0.05,
    step_cost: float = 0.01,
    deviations: Sequence[Deviation] | None = None,
    on_progress: Any = None,
    objective: Objective = "steps",
    usd: UsdObjective | None = None,
    price: ModelPrice = GPT_4O,
) -> ReplayLabels:
    """Label every state with an edge proposal by what letting the edge act would cost.

    Label 0 (the edge may act) where the edge agreed with the cloud or where its different
    action costs nothing (`Deviation.needs_cloud` false: another order of the same plan, or a
    shorter way); 1 where it is fatal or adds steps that ``lam`` / ``step_cost`` price above
    the cloud call saved. This is the imitation label of stage 1 made cost-aware: plain
    disagreement counts every harmless reordering as "needs the cloud".

    Args:
        records: Step records with the edge's proposal at every state.
        env_factory: ``() -> TextEnv`` with the cloud's expert (see `deviation_values`).
        lam: Price of one cloud call in units of task success.
        step_cost: Price of one step (any model): breaks ties toward shorter episodes.
        deviations: Precomputed `deviation_values` of ``records`` (skips the replays).
        on_progress: Passed to `deviation_values`.
        objective: ``"steps"`` (``lam`` and ``step_cost`` in success units,
            `Deviation.needs_cloud`) or ``"usd"`` (`UsdObjective.needs_cloud` with each cloud
            call's USD at its state, `langgraph_hera.training.usd`).
        usd: The USD objective's prices (default `UsdObjective()`).
        price: The cloud's list price, for states whose cloud call is priced from the prompt.

    Raises:
        ValueError: ``lam`` or ``step_cost`` < 0, or an unknown ``objective``.
    """
    if lam < 0 or step_cost < 0:
        raise ValueError(f"lam and step_cost must be >= 0, got {lam!r} and {step_cost!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    usd_objective = usd or UsdObjective()
    records = list(records)
    if deviations is None:
        deviations = deviation_values(records, env_factory, on_progress=on_progress)
    by_state = {(d.episode, d.step): d for d in deviations}
    states: list[RouteInput] = []
    labels: list[float] = []
    seeds: list[int] = []
    costs: list[float] = []
    agreed = harmless = costly = fatal = 0
    for e, ep in enumerate(split_episodes(records)):
        curve = episode_curve(ep, price)
        for t, (ri, rec) in enumerate(zip(route_inputs_from_records(ep), ep, strict=True)):
            if rec.get("edge_action") is None:
                continue
            seed, step = int(rec["seed"]), int(rec.get("step", t))
            if rec.get("agree") is True:
                agreed += 1
                label = 0.0
            elif (e, step) in by_state:
                dev = by_state[(e, step)]
                if objective == "usd":
                    label = 1.0 if usd_objective.needs_cloud(dev, curve) else 0.0
                else:
                    label = 1.0 if dev.needs_cloud(lam, step_cost) else 0.0
                if dev.to_go_edge is None and dev.to_go_cloud is not None:
                    fatal += 1
                elif label:
                    costly += 1
                else:
                    harmless += 1
            else:
                continue
            states.append(ri)
            labels.append(label)
            seeds.append(seed)
            costs.append(curve(t))
    return ReplayLabels(
        states=states,
        labels=np.asarray(labels),
        seeds=np.asarray(seeds, dtype=np.int64),
        deviations=list(deviations),
        agreed=agreed,
        harmless=harmless,
        costly=costly,
        fatal=fatal,
        usd=np.asarray(costs, dtype=np.float64),
    )
