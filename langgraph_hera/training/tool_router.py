"""Train and calibrate a `HeraRouter` on recorded tool-calling traces (``hera train --traces``).

The loop for any routed LangGraph agent: record (`langgraph_hera.training.traces`), replay the
edge at every cloud step (`replay_traces`), label (`label_traces`), then `train_on_traces`: the
labelled steps' decision-time inputs are rebuilt with the *same* function the router uses at
decision time (`route_input_from_step` calls
`langgraph_hera.routing.features.route_input_from_messages` on the stored messages and tools),
featurised by the router's `HeraFeaturizer`, fitted (`fit_router`) and calibrated to a cloud
share of steps or of cloud USD. The file it writes loads into the router node, the middleware
and `RoutedChatModel` alike (``HeraRouter(path)``).

Example:
    >>> run = train_on_traces("traces/train", dev_traces="traces/dev", target_cloud_share=0.3)
    >>> run.router.save("router.npz")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_hera.policies.base import RouteInput, calibrate_threshold, check_fraction
from langgraph_hera.policies.features import FeatureSpec
from langgraph_hera.policies.hera import HeraRouter
from langgraph_hera.routing.features import edge_tool_context, route_input_from_messages
from langgraph_hera.training.classifier import TrainConfig, auc_score, fit_router
from langgraph_hera.training.labels import LabeledStep, label_traces
from langgraph_hera.training.traces import TraceStore, replay_reply, step_messages


def default_trace_spec(embedding: str = "hashed") -> FeatureSpec:
    """The feature spec `train_on_traces` uses by default: the request, the last message and
    the last AI message embedded, the state scalars and the tool group (`FeatureSpec.tools`).

    Args:
        embedding: ``"hashed"`` (256-d hashed n-grams, no dependency, fast) or ``"minilm"``
            (MiniLM-L6, 384-d; needs sentence-transformers at decision time too).
    """
    if embedding == "minilm":
        return FeatureSpec(tools=True)
    if embedding != "hashed":
        raise ValueError(f"embedding must be 'hashed' or 'minilm', got {embedding!r}")
    return FeatureSpec(embedding_model="hashed-256", embedding_dim=256, tools=True)


def route_input_from_step(
    record: Mapping[str, Any], replay: Mapping[str, Any] | None = None
) -> RouteInput:
    """The `RouteInput` the router saw (or would see) at a recorded step.

    The same function as at decision time (`route_input_from_messages` on the step's messages,
    its turn's route history and its tools), so features match (a parity test checks it). With
    ``replay``, the edge's answer is filled in as an edge proposal (`edge_tool_context`): only
    for edge-first routing.
    """
    ri = route_input_from_messages(
        step_messages(record),
        history=list(record.get("history") or []),
        tools=record.get("tools"),
    )
    if replay is not None:
        reply = replay_reply(replay)
        if reply is not None:
            edge_tool_context(ri, reply, record.get("tools"))
    return ri


def traces_dataset(
    labeled: Sequence[LabeledStep], *, edge_proposal: bool = False
) -> tuple[list[RouteInput], np.ndarray, np.ndarray]:
    """``(states, labels, usd)`` of labelled steps (usd: each step's recorded cloud cost)."""
    states = [route_input_from_step(s.record, s.replay if edge_proposal else None) for s in labeled]
    labels = np.asarray([s.label for s in labeled], dtype=np.float64)
    usd = np.asarray([float(s.record.get("usd") or 0.0) for s in labeled], dtype=np.float64)
    return states, labels, usd


def calibrate_usd_share(scores: Sequence[float], usd: Sequence[float], share: float) -> float:
    """The threshold that sends ``share`` of the steps' cloud USD to the cloud (score >= t).

    Like `calibrate_threshold`, but each step weighs its recorded cloud cost: the cut whose
    USD share is nearest ``share`` wins (the cheaper of two equally near).

    Raises:
        ValueError: Empty or mismatched inputs, a share outside [0, 1], no cost at all.
    """
    check_fraction("share", share)
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(usd, dtype=np.float64)
    if not len(s) or s.shape != c.shape:
        raise ValueError(f"need as many scores as costs, got {s.shape} and {c.shape}")
    total = float(c.sum())
    if total <= 0:
        raise ValueError("the steps record no cloud USD: calibrate on the share of steps")
    distinct = np.unique(s)[::-1]
    best_t, best_gap = float(distinct[0]) + 1.0, share  # none to the cloud
    for t in distinct:
        gap = abs(float(c[s >= t].sum()) / total - share)
        if gap < best_gap - 1e-12:
            best_t, best_gap = float(t), gap
    return best_t


@dataclass
class TraceTrainingRun:
    """The result of `train_on_traces`.

    Attributes:
        router: The fitted, calibrated router.
        n_train / n_dev: Labelled steps used.
        positive_share: Share of training steps labelled "needs the cloud".
        dev_auc: ROC AUC on the dev steps (NaN with one class).
        dev_cloud_share: Share of dev steps the calibrated router sends to the cloud.
        dev_usd_share: Share of the dev steps' cloud USD it spends.
        path: Where the router was saved (``out``), else ``None``.
    """

    router: HeraRouter
    n_train: int
    n_dev: int
    positive_share: float
    dev_auc: float
    dev_cloud_share: float
    dev_usd_share: float
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.n_train} train steps ({self.positive_share:.0%} need the cloud), "
            f"{self.n_dev} dev steps: AUC {self.dev_auc:.3f}; threshold "
            f"{self.router.threshold:.3f} sends {self.dev_cloud_share:.0%} of dev steps "
            f"({self.dev_usd_share:.0%} of their cloud USD) to the cloud"
        )


def _labeled(traces: Any, label_kwargs: Mapping[str, Any]) -> list[LabeledStep]:
    if isinstance(traces, list | tuple):
        return list(traces)
    if isinstance(traces, str | Path) and not Path(traces).is_dir():
        # A path is read, never created: opening a TraceStore would make an empty one.
        raise FileNotFoundError(
            f"no trace store at {str(traces)!r}: give the directory a TraceRecorder wrote "
            "and replay_traces filled"
        )
    return label_traces(traces, **dict(label_kwargs))


def _shares(
    router: HeraRouter, states: Sequence[RouteInput], usd: np.ndarray
) -> tuple[float, float]:
    cloud = router.predict_proba(states) >= router.threshold
    total = float(usd.sum())
    return float(np.mean(cloud)), float(usd[cloud].sum() / total) if total > 0 else float("nan")


def calibrate_on_traces(
    router: HeraRouter | str | Path,
    traces: TraceStore | str | Path | Sequence[LabeledStep],
    *,
    cloud_share: float | None = None,
    cloud_usd_share: float | None = None,
    out: str | Path | None = None,
    **label_kwargs: Any,
) -> HeraRouter:
    """Set a router's threshold on labelled dev traces (``hera calibrate``).

    Args:
        router: A `HeraRouter` or its file.
        traces: A trace store (replayed) or labelled steps.
        cloud_share: Target share of steps sent to the cloud.
        cloud_usd_share: Target share of the steps' cloud USD (instead of ``cloud_share``).
        out: Save the calibrated router here.
        **label_kwargs: Passed to `label_traces` (comparator, score, embedder...).

    Raises:
        ValueError: Neither or both targets, a target outside [0, 1], or no replayed steps.
        FileNotFoundError: ``traces`` names no directory (it is read, never created).
    """
    if (cloud_share is None) == (cloud_usd_share is None):
        raise ValueError("give exactly one of cloud_share and cloud_usd_share")
    share = cloud_share if cloud_share is not None else cloud_usd_share
    if not 0.0 <= float(share) <= 1.0:  # type: ignore[arg-type]
        name = "cloud_share" if cloud_share is not None else "cloud_usd_share"
        raise ValueError(f"{name} must be in [0, 1], got {share}")
    r = router if isinstance(router, HeraRouter) else HeraRouter.load(router)
    labeled = _labeled(traces, label_kwargs)
    if not labeled:
        raise ValueError(f"no replayed cloud steps to calibrate on in {traces!r}")
    states, _, usd = traces_dataset(labeled, edge_proposal=r.uses_edge_proposal)
    scores = r.predict_proba(states)
    if cloud_usd_share is not None:
        r.threshold = calibrate_usd_share(scores.tolist(), usd.tolist(), cloud_usd_share)
    else:
        r.threshold = calibrate_threshold(scores.tolist(), float(cloud_share))  # type: ignore[arg-type]
    if out is not None:
        r.save(out)
    return r


def train_on_traces(
    traces: TraceStore | str | Path | Sequence[LabeledStep],
    *,
    dev_traces: TraceStore | str | Path | Sequence[LabeledStep] | None = None,
    out: str | Path | None = None,
    target_cloud_share: float | None = 0.3,
    target_cloud_usd_share: float | None = None,
    spec: FeatureSpec | None = None,
    hidden: int = 0,
    config: TrainConfig | None = None,
    edge_model: str | None = None,
    cloud_model: str | None = None,
    **label_kwargs: Any,
) -> TraceTrainingRun:
    """Fit a `HeraRouter` on labelled traces and calibrate it (``hera train --traces``).

    Args:
        traces: A replayed trace store (labelled here with ``label_kwargs``) or labelled steps.
        dev_traces: Calibration steps (default: the training steps).
        out: Save the router here (``.npz``).
        target_cloud_share: Share of (dev) steps to send to the cloud.
        target_cloud_usd_share: Share of the dev steps' cloud USD instead (overrides the above).
        spec: Feature spec (default `default_trace_spec`); ``edge=True`` only where the edge
            proposes before the router decides.
        hidden: Hidden units (0: logistic regression).
        config: Optimiser settings.
        edge_model: The edge model's id, stored in the file.
        cloud_model: The cloud model's id, stored in the file.
        **label_kwargs: Passed to `label_traces` (comparator, score, margin, embedder...).

    Raises:
        ValueError: No labelled steps, or a target outside [0, 1].
        FileNotFoundError: ``traces`` or ``dev_traces`` names no directory.
    """
    labeled = _labeled(traces, label_kwargs)
    if not labeled:
        raise ValueError(f"no replayed cloud steps to train on in {traces!r}: replay_traces first")
    dev = _labeled(dev_traces, label_kwargs) if dev_traces is not None else labeled
    if not dev:
        raise ValueError(f"no replayed cloud steps in the dev traces {dev_traces!r}")
    router = HeraRouter(
        spec=spec or default_trace_spec(),
        hidden=hidden,
        edge_model=edge_model,
        cloud_model=cloud_model,
    )
    states, labels, _ = traces_dataset(labeled, edge_proposal=router.uses_edge_proposal)
    fit_router(router, states, labels, config=config)
    dev_states, dev_labels, dev_usd = traces_dataset(dev, edge_proposal=router.uses_edge_proposal)
    scores = router.predict_proba(dev_states)
    if target_cloud_usd_share is not None:
        router.threshold = calibrate_usd_share(
            scores.tolist(), dev_usd.tolist(), target_cloud_usd_share
        )
    else:
        share = float(np.mean(labels)) if target_cloud_share is None else target_cloud_share
        router.threshold = calibrate_threshold(scores.tolist(), share)
    cloud_share, usd_share = _shares(router, dev_states, dev_usd)
    run = TraceTrainingRun(
        router=router,
        n_train=len(labeled),
        n_dev=len(dev),
        positive_share=float(np.mean(labels)),
        dev_auc=auc_score(dev_labels, scores),
        dev_cloud_share=cloud_share,
        dev_usd_share=usd_share,
    )
    router.info.update(
        trained_on="traces",
        n_train=run.n_train,
        n_dev=run.n_dev,
        dev_auc=None if np.isnan(run.dev_auc) else run.dev_auc,
        target_cloud_share=target_cloud_share,
        target_cloud_usd_share=target_cloud_usd_share,
    )
    if out is not None:
        run.path = router.save(out)
    return run
