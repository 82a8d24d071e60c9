"""Baseline policies: AlwaysEdge, AlwaysCloud, RandomPolicy, TaskLevelRouter, ThresholdRouter."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from langgraph_hera.policies.base import (
    RouteInput,
    RoutingPolicy,
    calibrate_threshold,
    check_fraction,
    register_policy,
)
from langgraph_hera.state import Target


@register_policy("always-edge")
class AlwaysEdge(RoutingPolicy):
    """Every step on the edge (the cheap lower bound)."""

    threshold = None

    def score(self, route_input: RouteInput) -> float:
        return 0.0

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        return "always edge"


@register_policy("always-cloud")
class AlwaysCloud(RoutingPolicy):
    """Every step on the cloud (the quality upper bound)."""

    threshold = 0.5

    def score(self, route_input: RouteInput) -> float:
        return 1.0

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        return "always cloud"


@register_policy("random")
class RandomPolicy(RoutingPolicy):
    """Each step goes to the cloud with probability ``p`` (seeded, reproducible).

    With a seed, the draw is a function of the seed and the step's state (task, step index,
    observation, last action): u = sha256(seed | state) / 2**64, uniform in [0, 1). It does
    not depend on what the process drew before, so a policy made afresh per episode does not
    repeat one sequence in every episode (it did: with short ALFWorld-style episodes a
    ``p=0.75`` policy sent every step to the cloud), and threads sharing one policy get the
    same draws whatever their interleaving. Without a seed the draws are the process's
    random numbers.

    Args:
        p: Probability of the cloud, in [0, 1].
        seed: Seed of the draws; ``None`` for unseeded draws.
    """

    def __init__(self, p: float = 0.5, seed: int | None = 0) -> None:
        self.p = check_fraction("p", p)
        self.seed = seed
        # score = u, cloud when u >= 1 - p: exactly probability p.
        self.threshold = 1.0 - self.p

    def score(self, route_input: RouteInput) -> float:
        if self.seed is None:
            return random.random()
        key = "\x1f".join(
            (
                str(self.seed),
                route_input.task,
                str(route_input.step),
                route_input.observation,
                route_input.last_action,
            )
        )
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        return f"random draw with p(cloud)={self.p}"

    def __repr__(self) -> str:
        return f"RandomPolicy(p={self.p!r}, seed={self.seed!r})"


_TOKEN = re.compile(r"[a-z0-9]+")


def _hashed_features(text: str, dim: int) -> np.ndarray:
    """Hashed bag of unigrams and bigrams, L2-normalised, plus a bias and a length feature."""
    vec = np.zeros(dim + 2, dtype=np.float64)
    words = _TOKEN.findall(text.lower())
    grams = words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
    for g in grams:
        h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0
    norm = np.linalg.norm(vec[:dim])
    if norm > 0:
        vec[:dim] /= norm
    vec[dim] = 1.0
    vec[dim + 1] = math.log1p(len(words)) / 5.0
    return vec


@register_policy("task-level")
class TaskLevelRouter(RoutingPolicy):
    """One decision per task from the task text alone, as HybridLLM routes queries.

    A logistic regression on hashed word n-grams predicts whether the task needs the cloud
    (e.g. label 1 where the edge alone failed the task and the cloud succeeded); every step of the
    task then goes to the same side. Unfitted, it scores by task length (longer tasks are harder).

    Args:
        threshold: Cloud when the task's score >= threshold.
        dim: Hash dimension.
        weights: Fitted weights (from `fit` or `load`).

    Example:
        >>> r = TaskLevelRouter().fit(train_tasks, needs_cloud)
        >>> r = r.calibrate(dev_tasks, cloud_share=0.3)
    """

    def __init__(
        self, threshold: float = 0.5, *, dim: int = 512, weights: Sequence[float] | None = None
    ) -> None:
        self.threshold = float(threshold)
        self.dim = int(dim)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights is not None and self.weights.shape != (self.dim + 2,):
            raise ValueError(
                f"weights must have length dim + 2 = {self.dim + 2}, got {self.weights.shape}"
            )
        self._cache: dict[str, float] = {}

    def task_score(self, task: str) -> float:
        """The probability that ``task`` needs the cloud (cached per task text)."""
        if task not in self._cache:
            x = _hashed_features(task, self.dim)
            if self.weights is None:
                # Unfitted: a length prior, 0.5 at ~40 words.
                z = 4.0 * (x[-1] - math.log1p(40) / 5.0)
            else:
                z = float(x @ self.weights)
            self._cache[task] = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
        return self._cache[task]

    def score(self, route_input: RouteInput) -> float:
        return self.task_score(route_input.task)

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        return f"task-level score {score:.3f} vs {self.threshold:.3f}: whole task on {target}"

    def fit(
        self,
        tasks: Sequence[str],
        needs_cloud: Sequence[int | bool],
        *,
        l2: float = 1e-2,
        epochs: int = 300,
        lr: float = 0.5,
    ) -> TaskLevelRouter:
        """Fit the logistic regression (class-balanced, full-batch gradient descent)."""
        if len(tasks) != len(needs_cloud) or not tasks:
            raise ValueError(
                f"need equally many tasks and labels (> 0), got {len(tasks)} and {len(needs_cloud)}"
            )
        x = np.stack([_hashed_features(t, self.dim) for t in tasks])
        y = np.asarray(needs_cloud, dtype=np.float64)
        pos = max(y.mean(), 1e-6)
        sample_w = np.where(y > 0.5, 0.5 / pos, 0.5 / max(1 - pos, 1e-6))
        w = np.zeros(self.dim + 2)
        for _ in range(epochs):
            p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
            grad = x.T @ ((p - y) * sample_w) / len(y) + l2 * w
            w -= lr * grad
        self.weights = w
        self._cache.clear()
        return self

    def calibrate(self, dev_tasks: Sequence[str], cloud_share: float) -> TaskLevelRouter:
        """Set the threshold so ``cloud_share`` of ``dev_tasks`` go to the cloud."""
        self.threshold = calibrate_threshold([self.task_score(t) for t in dev_tasks], cloud_share)
        return self

    def save(self, path: str | Path) -> None:
        """Write threshold, dim and weights as JSON."""
        data = {
            "policy": self.name,
            "threshold": self.threshold,
            "dim": self.dim,
            "weights": None if self.weights is None else self.weights.tolist(),
        }
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> TaskLevelRouter:
        """Read a router written by `save`."""
        data = json.loads(Path(path).read_text())
        if data.get("policy") != "task-level":
            raise ValueError(f"{path} holds policy {data.get('policy')!r}, not 'task-level'")
        return cls(data["threshold"], dim=data["dim"], weights=data["weights"])


def stuck_score(route_input: RouteInput) -> float:
    """A model-free per-step difficulty score in [0, 1].

    Rises when the agent repeats itself (same last action or same observation text seen again),
    when the previous step failed to parse or its tool call returned an error (tool-calling
    agents: ``extra["last_tool_error"]``), and slowly with the step index (long episodes are
    the ones going wrong). 0.119 at step 0 with nothing wrong; one repeat or a failed step takes
    it past 0.3, two past 0.6.
    """
    extra = route_input.extra
    repeats = float(extra.get("action_repeats", 0))
    obs_repeats = float(extra.get("observation_repeats", 0))
    invalid = 1.0 if extra.get("last_action_valid") is False else 0.0
    failed_tool = 1.0 if extra.get("last_tool_error") else 0.0
    z = (
        -2.0
        + 1.2 * repeats
        + 0.8 * obs_repeats
        + 1.5 * invalid
        + 1.5 * failed_tool
        + 0.04 * route_input.step
    )
    return 1.0 / (1.0 + math.exp(-z))


def edge_uncertainty_score(route_input: RouteInput) -> float:
    """1 - p(edge proposal): the edge's own doubt about its action (needs ``edge_logprob``)."""
    if route_input.edge_logprob is None:
        return stuck_score(route_input)
    return 1.0 - math.exp(min(route_input.edge_logprob, 0.0))


SCORERS: dict[str, Callable[[RouteInput], float]] = {
    "stuck": stuck_score,
    "edge-uncertainty": edge_uncertainty_score,
}


@register_policy("threshold")
class ThresholdRouter(RoutingPolicy):
    """A per-step score against a threshold calibrated to a target cloud-step share.

    The RouteLLM recipe applied to steps: any scorer (a callable ``RouteInput -> float``, or the
    name of a built-in one: ``"stuck"``, ``"edge-uncertainty"``), and a threshold picked on dev
    states so that the wanted share of steps goes to the cloud.

    Example:
        >>> router = ThresholdRouter.calibrated(dev_states, cloud_share=0.3)
    """

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        scorer: str | Callable[[RouteInput], float] = "edge-uncertainty",
    ) -> None:
        if isinstance(scorer, str):
            if scorer not in SCORERS:
                raise ValueError(
                    f"unknown scorer {scorer!r}; available: {', '.join(sorted(SCORERS))}"
                )
            self.scorer_name = scorer
            self._scorer = SCORERS[scorer]
        elif callable(scorer):
            self.scorer_name = getattr(scorer, "__name__", "custom")
            self._scorer = scorer
        else:
            raise ValueError(f"scorer must be a callable or a name, got {scorer!r}")
        try:
            self.threshold = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(f"threshold must be a number, got {threshold!r}") from None
        self.uses_edge_proposal = self.scorer_name == "edge-uncertainty"

    def score(self, route_input: RouteInput) -> float:
        return float(self._scorer(route_input))

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        op = ">=" if target == "cloud" else "<"
        name = self.scorer_name
        if name == "edge-uncertainty" and route_input.edge_logprob is None:
            # Without an edge proposal (chat agents: the edge does not answer first) the edge's
            # doubt is unknown; say so instead of naming a signal that was not measured.
            name = "stuck (no edge proposal for edge-uncertainty)"
        return f"{name} score {score:.3f} {op} threshold {self.threshold:.3f}"

    @classmethod
    def calibrated(
        cls,
        dev_states: Sequence[RouteInput],
        cloud_share: float,
        *,
        scorer: str | Callable[[RouteInput], float] = "edge-uncertainty",
    ) -> ThresholdRouter:
        """A router whose threshold sends ``cloud_share`` of ``dev_states`` to the cloud."""
        router = cls(scorer=scorer)
        router.threshold = calibrate_threshold([router.score(s) for s in dev_states], cloud_share)
        return router

    def __repr__(self) -> str:
        return f"ThresholdRouter(threshold={self.threshold:.4f}, scorer={self.scorer_name!r})"
