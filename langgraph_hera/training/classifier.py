"""Fitting the Hera router's numpy classifier: full-batch Adam on class-balanced BCE.

`fit_router` / `fit_router_features` fit a `HeraRouter`'s `RouterNet` (fresh, or warm-started
for stage 2 with soft labels and sample weights); `auc_score` is the ROC AUC the reports quote.

Example:
    >>> router = fit_router(HeraRouter(spec=FeatureSpec(edge=True)), states, labels)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from langgraph_hera.policies.base import RouteInput
from langgraph_hera.policies.hera import HeraRouter, RouterNet, activate, sigmoid


def auc_score(labels: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC (rank statistic, ties averaged); NaN when only one class is present."""
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass
class TrainConfig:
    """Optimisation settings of `fit_router` (full-batch Adam, class-balanced BCE).

    Attributes:
        epochs: Adam steps over the whole set.
        lr: Adam learning rate.
        l2: L2 penalty on the weights (not the biases).
        balanced: Weigh the classes equally.
        seed: Seed of the initial weights.
        standardize: ``"block"``: scalars z-scored per column, each embedding block centred and
            divided by one scale (its RMS standard deviation), which keeps the embedding's
            geometry (better on twc: AUC +0.05 over ``"column"``); ``"column"``: every column
            z-scored.
    """

    epochs: int = 300
    lr: float = 0.01
    l2: float = 0.1
    balanced: bool = True
    seed: int = 0
    standardize: str = "block"

    def __post_init__(self) -> None:
        if self.standardize not in ("block", "column"):
            raise ValueError(f"standardize must be 'block' or 'column', got {self.standardize!r}")
        if self.epochs < 0 or self.lr <= 0 or self.l2 < 0:
            raise ValueError(
                f"need epochs >= 0, lr > 0, l2 >= 0; got {self.epochs}, {self.lr}, {self.l2}"
            )


def _adam(
    net: RouterNet, x: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: TrainConfig
) -> list[float]:
    """Full-batch Adam on the weighted BCE + L2; updates ``net.weights`` in place."""
    h0 = (x - net.mean) * net.inv_std
    params = net.weights
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    wsum = float(w.sum())
    losses = []
    for step in range(1, cfg.epochs + 1):
        if len(params) == 2:
            wt, b = params
            z = h0 @ wt + b[0]
        else:
            w1, bb1, w2, bb2 = params
            a_pre = h0 @ w1 + bb1
            a = activate(a_pre, net.activation)
            z = a @ w2 + bb2[0]
        p = sigmoid(z)
        loss = -np.sum(w * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))) / wsum
        dz = w * (p - y) / wsum
        if len(params) == 2:
            grads = [h0.T @ dz + cfg.l2 * params[0], np.array([dz.sum()])]
            loss += 0.5 * cfg.l2 * float(params[0] @ params[0])
        else:
            gw2 = a.T @ dz + cfg.l2 * w2
            da = np.outer(dz, w2)
            da *= (1.0 - a * a) if net.activation == "tanh" else (a_pre > 0)
            grads = [h0.T @ da + cfg.l2 * w1, da.sum(0), gw2, np.array([dz.sum()])]
            loss += 0.5 * cfg.l2 * float(np.sum(w1 * w1) + w2 @ w2)
        losses.append(float(loss))
        for i, (p_, g) in enumerate(zip(params, grads, strict=True)):
            m[i] = b1_ * m[i] + (1 - b1_) * g
            v[i] = b2_ * v[i] + (1 - b2_) * g * g
            mhat = m[i] / (1 - b1_**step)
            vhat = v[i] / (1 - b2_**step)
            p_ -= cfg.lr * mhat / (np.sqrt(vhat) + eps)
    return losses


def fit_router(
    router: HeraRouter,
    states: Sequence[RouteInput],
    labels: Sequence[float] | np.ndarray,
    sample_weight: Sequence[float] | np.ndarray | None = None,
    *,
    config: TrainConfig | None = None,
    warm_start: bool = False,
) -> HeraRouter:
    """Fit ``router`` on states and labels (1 = needs the cloud; soft labels in [0, 1] are fine).

    Args:
        router: The router to fit (its spec and hidden size say what to fit).
        states: Decision-time inputs (see `imitation_dataset`).
        labels: Targets in [0, 1].
        sample_weight: Per-state weights (>= 0), multiplied by the class balance.
        config: Optimiser settings.
        warm_start: Continue from the current weights and standardisation (stage 2).

    Returns:
        ``router``, fitted.

    Raises:
        ValueError: Shapes, label range or weights are wrong.
    """
    return fit_router_features(
        router,
        router.featurizer.transform(states),
        labels,
        sample_weight,
        config=config,
        warm_start=warm_start,
    )


def fit_router_features(
    router: HeraRouter,
    x: np.ndarray,
    labels: Sequence[float] | np.ndarray,
    sample_weight: Sequence[float] | np.ndarray | None = None,
    *,
    config: TrainConfig | None = None,
    warm_start: bool = False,
) -> HeraRouter:
    """`fit_router` on a precomputed feature matrix (``router.featurizer.transform(states)``).

    Args:
        router: The router to fit.
        x: Features, shape ``(n, router.featurizer.dim)``.
        labels: Targets in [0, 1] (1 = needs the cloud).
        sample_weight: Per-state weights (>= 0), multiplied by the class balance.
        config: Optimiser settings.
        warm_start: Continue from the current weights and standardisation (stage 2).

    Returns:
        ``router``, fitted.

    Raises:
        ValueError: Shapes, label range or weights are wrong.
    """
    cfg = config or TrainConfig()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    dim = router.featurizer.dim
    if x.ndim != 2 or x.shape[1] != dim or len(x) != len(y) or not len(y):
        raise ValueError(
            f"need features of shape (n > 0, {dim}) and n labels, got {x.shape} and {y.shape}"
        )
    if not np.all((y >= 0) & (y <= 1)):
        raise ValueError("labels must lie in [0, 1] (1 = needs the cloud)")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    if w.shape != y.shape or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {len(y)} finite weights >= 0, not all 0")
    if cfg.balanced:
        pos = float(np.sum(w * y) / w.sum())
        if 0.0 < pos < 1.0:
            w = w * (y * 0.5 / pos + (1 - y) * 0.5 / (1 - pos))
    net = router.net if warm_start and router.net is not None else _fresh_net(router, x, cfg)
    losses = _adam(net, x, y, w, cfg)
    info = {
        "n_train": len(y),
        "positive_share": float(np.mean(y)),
        "final_loss": losses[-1] if losses else None,
        "train_config": asdict(cfg),
    }
    router.set_net(net, info)
    return router


def _fresh_net(router: HeraRouter, x: np.ndarray, cfg: TrainConfig) -> RouterNet:
    """Standardisation from ``x`` and initial weights for ``router``'s shape."""
    mean = x.mean(0)
    std = x.std(0)
    inv_std = np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 0.0)
    if cfg.standardize == "block":
        e = router.spec.embedding_dim
        for i in range(len(router.spec.text_fields)):
            block = slice(i * e, (i + 1) * e)
            rms = float(np.sqrt(np.mean(std[block] ** 2)))
            inv_std[block] = np.where(std[block] > 1e-8, 1.0 / max(rms, 1e-8), 0.0)
    rng = np.random.default_rng(cfg.seed)
    d = x.shape[1]
    if router.hidden:
        weights = [
            rng.normal(0.0, 1.0 / math.sqrt(d), (d, router.hidden)),
            np.zeros(router.hidden),
            rng.normal(0.0, 1.0 / math.sqrt(router.hidden), router.hidden),
            np.zeros(1),
        ]
    else:
        weights = [np.zeros(d), np.zeros(1)]
    return RouterNet(mean, inv_std, weights, router.activation)
