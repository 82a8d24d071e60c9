"""The Hera router's training loop (``hera train``): imitation, then cost-aware RL rounds.

Stage 1 labels recorded steps (`label_records`: agreement with the cloud, or the replayed cost
of the edge's proposal) and fits the router (`fit_imitation`), calibrated to a cloud share on
dev states. Stage 2 (`run_rl_rounds`) rolls the router out with exploration on train seeds,
labels what it visited (replay labels, DAgger-style; or `relabel` over grouped identical
states), refits on everything gathered so far and recalibrates, round after round.

Rolling out needs an episode runner, which lives in a higher layer (`langgraph_hera.evaluation`);
the caller passes one as ``rollout``. Progress goes to an ``on_message`` callback (library code
never prints).

Example:
    >>> states, labels = label_records(records, labels="agree")
    >>> run = fit_imitation(HeraRouter(spec=FeatureSpec(edge=True)), states, labels)
    >>> await run_rl_rounds(run, config=RLConfig(rounds=1), rollout=my_rollout)
    >>> run.router.save("hera.npz")
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from langgraph_hera.accounting.pricing import GPT_4O, ModelPrice
from langgraph_hera.policies.base import RouteInput, RoutingPolicy
from langgraph_hera.policies.hera import HeraRouter
from langgraph_hera.training.classifier import auc_score, fit_router
from langgraph_hera.training.records import imitation_dataset, split_episodes
from langgraph_hera.training.replay import replay_labels
from langgraph_hera.training.rl import ExploringPolicy, relabel
from langgraph_hera.training.usd import (
    Objective,
    UsdObjective,
    calibrate_usd,
    records_usd,
)

#: How recorded steps are labelled: ``"agree"``: the edge may act where its action equals the
#: cloud's (the paper's stage 1); ``"replay"``: where its action costs nothing, replayed with the
#: cloud's expert continuing.
Labels = Literal["agree", "replay"]
LABELS: tuple[str, ...] = ("agree", "replay")
#: ``rollout(policy_factory, round, repeat)`` runs one rollout of the train seeds with a fresh
#: policy per episode and returns the rollout's step records (``steps.jsonl`` rows).
Rollout = Callable[[Callable[[], RoutingPolicy], int, int], Awaitable[list[dict[str, Any]]]]
Message = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def label_records(
    records: Sequence[dict[str, Any]],
    *,
    labels: Labels = "replay",
    env_factory: Callable[[], Any] | None = None,
    lam: float = 0.05,
    step_cost: float = 0.01,
    what: str = "train",
    on_message: Message | None = None,
    objective: Objective = "steps",
    usd: UsdObjective | None = None,
    price: ModelPrice = GPT_4O,
) -> tuple[list[RouteInput], np.ndarray]:
    """``(states, labels)`` of recorded steps (1 = needs the cloud).

    Args:
        records: Step records of ``hera record --also-edge`` runs (or of rollouts).
        labels: ``"agree"`` or ``"replay"`` (see `Labels`).
        env_factory: A fresh environment of the records' suite (``"replay"`` only).
        lam: Price of a cloud call in success units (``"replay"``, ``objective="steps"``).
        step_cost: Price of one step (``"replay"``, ``objective="steps"``).
        what: Name of the data in messages (``"train"``, ``"dev"``, ``"round 1"``).
        on_message: Receives progress lines.
        objective: ``"steps"`` or ``"usd"`` (replay labels priced in dollars, `UsdObjective`).
        usd: The USD objective's prices (``objective="usd"``).
        price: The cloud's list price (states priced from their recorded prompt).

    Raises:
        ValueError: Unknown ``labels``, or ``"replay"`` without an ``env_factory``.
    """
    states, y, _ = label_records_usd(
        records,
        labels=labels,
        env_factory=env_factory,
        lam=lam,
        step_cost=step_cost,
        what=what,
        on_message=on_message,
        objective=objective,
        usd=usd,
        price=price,
    )
    return states, y


def label_records_usd(
    records: Sequence[dict[str, Any]],
    *,
    labels: Labels = "replay",
    env_factory: Callable[[], Any] | None = None,
    lam: float = 0.05,
    step_cost: float = 0.01,
    what: str = "train",
    on_message: Message | None = None,
    objective: Objective = "steps",
    usd: UsdObjective | None = None,
    price: ModelPrice = GPT_4O,
) -> tuple[list[RouteInput], np.ndarray, np.ndarray]:
    """`label_records` plus each state's cloud call in USD (`state_cloud_usd`), for
    calibrating to a USD share or budget."""
    say = on_message or _quiet
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    if labels == "agree":
        states, y, _ = imitation_dataset(records)
        costs = records_usd(split_episodes(records), lambda r: r.get("agree") is not None, price)
        return states, y, costs
    if env_factory is None:
        raise ValueError("labels='replay' needs an env_factory to replay the recorded states")

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            say(f"  replayed {done}/{total} {what} deviations")

    rl = replay_labels(
        records,
        env_factory,
        lam=lam,
        step_cost=step_cost,
        on_progress=progress,
        objective=objective,
        usd=usd,
        price=price,
    )
    say(
        f"{what}: {len(rl.states)} states: edge agreed with the cloud {rl.agreed}; replayed: "
        f"free {rl.harmless}, at a cost {rl.costly}, fatal {rl.fatal}"
    )
    return rl.states, rl.labels, rl.usd


@dataclass
class RouterTrainingRun:
    """The router of one training run and the data it is fitted on, growing round by round.

    Attributes:
        router: The router being trained.
        states: Every labelled state so far (imitation data first).
        labels: Their labels (1 = needs the cloud).
        weights: Their sample weights.
        dev_states: States the threshold is calibrated on (and the AUC measured on).
        dev_labels: Their labels.
        cloud_share: The share of ``dev_states`` sent to the cloud by the calibrated threshold.
        has_dev: Whether dev data was given (else the train states serve as dev).
        dev_usd: Each dev state's cloud call in USD (calibration to USD).
        usd_share: Calibrate to this share of the dev states' cloud USD instead.
        usd_budget: Or to this USD budget on the dev states' cloud calls.
    """

    router: HeraRouter
    states: list[RouteInput]
    labels: np.ndarray
    weights: np.ndarray
    dev_states: list[RouteInput]
    dev_labels: np.ndarray
    cloud_share: float
    has_dev: bool
    dev_usd: np.ndarray | None = None
    usd_share: float | None = None
    usd_budget: float | None = None

    def recalibrate(self) -> None:
        """Set the router's threshold: to the USD share or budget when one is set (each dev
        state weighed by its cloud USD, `calibrate_usd`), else to ``cloud_share`` of states."""
        if self.usd_share is None and self.usd_budget is None:
            self.router.calibrate(self.dev_states, self.cloud_share)
            return
        if self.dev_usd is None or len(self.dev_usd) != len(self.dev_states):
            raise ValueError("calibrating to USD needs dev_usd, one cost per dev state")
        scores = self.router.predict_proba(self.dev_states).tolist()
        self.router.threshold = calibrate_usd(
            scores, self.dev_usd.tolist(), share=self.usd_share, budget=self.usd_budget
        )
        cloud = self.router.predict_proba(self.dev_states) >= self.router.threshold
        self.cloud_share = float(np.mean(cloud))

    def report(self, stage: str) -> str:
        """One line: data size, label share, dev AUC and the calibrated threshold."""
        auc = auc_score(self.dev_labels, self.router.predict_proba(self.dev_states))
        dev = "dev" if self.has_dev else "train"
        return (
            f"{stage}: {len(self.states)} states, {np.mean(self.labels):.1%} need the cloud; "
            f"{dev} AUC {auc:.3f}; threshold {self.router.threshold:.3f} for a "
            f"{self.cloud_share:.0%} cloud share on {dev} states"
        )


def fit_imitation(
    router: HeraRouter,
    states: Sequence[RouteInput],
    labels: np.ndarray,
    *,
    dev_states: Sequence[RouteInput] | None = None,
    dev_labels: np.ndarray | None = None,
    cloud_share: float | None = None,
    usd: np.ndarray | None = None,
    dev_usd: np.ndarray | None = None,
    usd_share: float | None = None,
    usd_budget: float | None = None,
) -> RouterTrainingRun:
    """Stage 1: fit ``router`` on labelled states and calibrate its threshold.

    Args:
        router: A new router.
        states: Labelled states (see `label_records`).
        labels: Their labels.
        dev_states: Calibration states; default: ``states``.
        dev_labels: Their labels.
        cloud_share: Target share of cloud decisions on the calibration states; default: the
            share of states labelled cloud.
        usd: Each state's cloud call in USD (calibration states when there is no dev data).
        dev_usd: Each dev state's cloud call in USD.
        usd_share: Calibrate to this share of the calibration states' cloud USD instead.
        usd_budget: Or to this USD budget on their cloud calls.

    Raises:
        ValueError: No states, or ``cloud_share`` outside [0, 1].
    """
    if not len(states):
        raise ValueError("no labelled states to fit on")
    if cloud_share is not None and not 0.0 <= cloud_share <= 1.0:
        raise ValueError(f"cloud_share must be in [0, 1], got {cloud_share!r}")
    has_dev = dev_states is not None and len(dev_states) > 0
    y = np.asarray(labels, dtype=np.float64)
    fit_router(router, states, y)
    share = float(np.mean(y)) if cloud_share is None else float(cloud_share)
    run = RouterTrainingRun(
        router=router,
        states=list(states),
        labels=y,
        weights=np.ones(len(y)),
        dev_states=list(dev_states) if has_dev and dev_states is not None else list(states),
        dev_labels=np.asarray(dev_labels) if has_dev and dev_labels is not None else y,
        cloud_share=share,
        has_dev=has_dev,
        dev_usd=np.asarray(dev_usd if has_dev else usd)
        if (usd_share, usd_budget) != (None, None)
        else None,
        usd_share=usd_share,
        usd_budget=usd_budget,
    )
    run.recalibrate()
    return run


@dataclass(frozen=True, kw_only=True)
class RLConfig:
    """Settings of the cost-aware RL rounds (stage 2).

    Attributes:
        rounds: Rounds of rollout + relabel + refit.
        repeats: Rollouts of the train seeds per round.
        explore: Probability of flipping each decision during rollouts (`ExploringPolicy`).
        rl_weight: Sample weight of the states a round adds (imitation states weigh 1).
        labels: ``"replay"``: label the visited states by replay and refit from scratch on
            everything so far; ``"agree"``: `relabel` grouped identical states and warm-start.
        lam: Price of a cloud call in success units.
        step_cost: Price of one step (``"replay"``).
        objective: ``"steps"`` or ``"usd"`` (replay labels, `langgraph_hera.training.usd`).
        usd: The USD objective's prices.
        price: The cloud's list price (states priced from their recorded prompt).

    Raises:
        ValueError: A count or rate out of range, or unknown ``labels``.
    """

    rounds: int = 1
    repeats: int = 2
    explore: float = 0.2
    rl_weight: float = 1.0
    labels: Labels = "replay"
    lam: float = 0.05
    step_cost: float = 0.01
    objective: Objective = "steps"
    usd: UsdObjective | None = None
    price: ModelPrice = GPT_4O

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.repeats < 1:
            raise ValueError(f"need rounds >= 0, repeats >= 1; got {self.rounds}, {self.repeats}")
        if not 0.0 <= self.explore <= 1.0:
            raise ValueError(f"explore must be in [0, 1], got {self.explore!r}")
        if self.lam < 0 or self.step_cost < 0 or self.rl_weight < 0:
            raise ValueError(
                f"lam, step_cost and rl_weight must be >= 0, got {self.lam}, {self.step_cost}, "
                f"{self.rl_weight}"
            )
        if self.labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {self.labels!r}")


async def run_rl_rounds(
    run: RouterTrainingRun,
    *,
    config: RLConfig,
    rollout: Rollout,
    env_factory: Callable[[], Any] | None = None,
    on_message: Message | None = None,
) -> RouterTrainingRun:
    """Stage 2: ``config.rounds`` rounds of exploring rollouts, labelling and refitting.

    All rollouts run in the caller's event loop (the chat models' async HTTP clients are bound
    to the loop that first used them).

    Args:
        run: The stage-1 result (see `fit_imitation`); updated in place.
        config: Round settings.
        rollout: Runs one rollout (see `Rollout`).
        env_factory: A fresh environment (replay labels).
        on_message: Receives progress lines.

    Returns:
        ``run``.
    """
    say = on_message or _quiet
    counter = itertools.count()
    router = run.router

    def policy() -> RoutingPolicy:
        return ExploringPolicy(router, config.explore, seed=next(counter))

    for k in range(1, config.rounds + 1):
        rollouts: list[dict[str, Any]] = []
        for rep in range(config.repeats):
            rollouts += await rollout(policy, k, rep)
        if config.labels == "replay":
            # DAgger-style: the router's own states, each labelled by replaying the edge's
            # proposal there; refit on everything gathered so far.
            new_states, new_labels = label_records(
                rollouts,
                labels="replay",
                env_factory=env_factory,
                lam=config.lam,
                step_cost=config.step_cost,
                what=f"round {k}",
                on_message=say,
                objective=config.objective,
                usd=config.usd,
                price=config.price,
            )
            new_weights = np.full(len(new_states), config.rl_weight)
            warm = False
        else:
            rl = relabel(rollouts, lam=config.lam)
            say(
                f"round {k}: {rl.groups} state groups, {rl.both_choices} with both choices; "
                f"relabelled {rl.to_cloud} to cloud, {rl.to_edge} to edge"
            )
            new_states, new_labels = rl.states, rl.labels
            new_weights = config.rl_weight * rl.weights
            warm = True
        run.states = run.states + list(new_states)
        run.labels = np.concatenate([run.labels, new_labels])
        run.weights = np.concatenate([run.weights, new_weights])
        fit_router(router, run.states, run.labels, run.weights, warm_start=warm)
        run.recalibrate()
        say(run.report(f"round {k}"))
    return run
