"""Offline report of a router on held-out tool-calling traces (``hera report --traces``).

Every replayed cloud step of the test traces is a state where both answers are known, so any
policy's outcome can be estimated without running the agent again: a step the policy sends to
the cloud gets the cloud's answer (success), a step it keeps on the edge succeeds when the edge's
answer agrees with the cloud's (label 0). Per operating point: the cloud share of steps, the
*agreement* (share of steps answered as the cloud would), the cloud USD spent (the steps'
recorded cloud cost) and its share. Policies: always-edge, always-cloud, random (expected
values over a sweep of p), a threshold baseline (`ThresholdRouter`, the ``stuck`` scorer) swept
over its scores, and the trained router swept over its scores plus its calibrated threshold.
APGR (RouteLLM's area under the performance-gap-recovered curve, `langgraph_hera.evaluation.
metrics.apgr`) with agreement as success. Estimates: the edge's later steps would differ after
a disagreement; agreement is a step-level proxy for task success.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_hera.evaluation.metrics import Point, apgr
from langgraph_hera.policies.baselines import ThresholdRouter
from langgraph_hera.policies.hera import HeraRouter
from langgraph_hera.training.labels import LabeledStep, label_traces
from langgraph_hera.training.tool_router import traces_dataset
from langgraph_hera.training.traces import TraceStore


@dataclass(frozen=True)
class ReportRow:
    """One operating point of one policy."""

    policy: str
    threshold: float | None
    cloud_share: float
    agreement: float
    usd: float
    usd_share: float


@dataclass
class TraceReport:
    """The rows, the APGR of each swept policy, and where the files went."""

    rows: list[ReportRow]
    apgr: dict[str, float]
    n_steps: int
    edge_agreement: float
    markdown: str
    paths: dict[str, Path]


def _point(
    policy: str, t: float | None, cloud: np.ndarray, labels: np.ndarray, usd: np.ndarray
) -> ReportRow:
    total = float(usd.sum())
    spent = float(usd[cloud].sum())
    return ReportRow(
        policy=policy,
        threshold=t,
        cloud_share=float(np.mean(cloud)),
        agreement=float(np.mean(cloud | (labels < 0.5))),
        usd=spent,
        usd_share=spent / total if total > 0 else float("nan"),
    )


def _sweep(name: str, scores: np.ndarray, labels: np.ndarray, usd: np.ndarray) -> list[ReportRow]:
    cuts = np.unique(scores)[::-1]
    rows = [_point(name, float(t), scores >= t, labels, usd) for t in cuts]
    return rows


def trace_report(
    traces: TraceStore | str | Path | Sequence[LabeledStep],
    router: HeraRouter | str | Path,
    *,
    out_dir: str | Path | None = None,
    random_ps: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    **label_kwargs: Any,
) -> TraceReport:
    """Estimate cloud share, agreement and USD of a router and the baselines on test traces.

    Args:
        traces: A replayed trace store (labelled with ``label_kwargs``) or labelled steps.
        router: The trained `HeraRouter` or its file.
        out_dir: Write ``report.md`` and ``results.csv`` here.
        random_ps: Cloud probabilities of the random baseline.
        **label_kwargs: Passed to `label_traces`.

    Raises:
        ValueError: No replayed cloud steps in ``traces``.
    """
    labeled = (
        list(traces) if isinstance(traces, list | tuple) else label_traces(traces, **label_kwargs)
    )
    if not labeled:
        raise ValueError(f"no replayed cloud steps in {traces!r}: replay_traces first")
    r = router if isinstance(router, HeraRouter) else HeraRouter.load(router)
    states, labels, usd = traces_dataset(labeled, edge_proposal=r.uses_edge_proposal)
    n = len(labels)
    none, every = np.zeros(n, bool), np.ones(n, bool)
    rows = [
        _point("always-edge", None, none, labels, usd),
        _point("always-cloud", None, every, labels, usd),
    ]
    edge_ok = rows[0].agreement
    total = float(usd.sum())
    for p in random_ps:  # expected values
        rows.append(
            ReportRow(
                "random",
                float(p),
                float(p),
                float(p + (1 - p) * edge_ok),
                float(p * total),
                float(p) if total > 0 else float("nan"),
            )
        )
    base = ThresholdRouter(scorer="stuck")
    base_scores = np.asarray([base.score(s) for s in states])
    hera_scores = r.predict_proba(states)
    swept = {"threshold-stuck": _sweep("threshold-stuck", base_scores, labels, usd)}
    swept["hera"] = _sweep("hera", hera_scores, labels, usd)
    swept["random"] = [row for row in rows if row.policy == "random"]
    for name in ("threshold-stuck", "hera"):
        rows += swept[name]
    rows.append(_point("hera (calibrated)", r.threshold, hera_scores >= r.threshold, labels, usd))
    scores_apgr = {
        name: apgr([Point(x.cloud_share, x.agreement) for x in pts], edge_ok, 1.0)
        for name, pts in swept.items()
    }
    md = _markdown(rows, scores_apgr, n, edge_ok)
    paths: dict[str, Path] = {}
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        paths["report"] = d / "report.md"
        paths["results"] = d / "results.csv"
        paths["report"].write_text(md)
        with paths["results"].open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(ReportRow.__dataclass_fields__))
            w.writeheader()
            w.writerows(asdict(row) for row in rows)
    return TraceReport(rows, scores_apgr, n, edge_ok, md, paths)


def _markdown(rows: list[ReportRow], scores: dict[str, float], n: int, edge_ok: float) -> str:
    def fmt(x: float | None, spec: str) -> str:
        return "" if x is None else format(x, spec)

    lines = [
        "# Router report on held-out traces",
        "",
        f"{n} replayed cloud steps; the edge agrees with the cloud on {edge_ok:.1%} of them. "
        "Agreement = share of steps answered as the cloud would (estimated: a step sent to the "
        "cloud agrees, a step kept on the edge agrees when the edge's replayed answer does).",
        "",
        "| policy | APGR |",
        "| --- | --- |",
        *(f"| {k} | {v:.3f} |" for k, v in scores.items()),
        "",
        "| policy | threshold | cloud share | agreement | cloud USD | USD share |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.policy} | {fmt(row.threshold, '.3f')} | {row.cloud_share:.1%} | "
            f"{row.agreement:.1%} | {row.usd:.5f} | {fmt(row.usd_share, '.1%')} |"
        )
    return "\n".join(lines) + "\n"
