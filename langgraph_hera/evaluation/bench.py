"""`hera bench`: routing policies side by side on one fold, with sweeps, against the oracle.

Each operating point (a policy with fixed arguments) plays the same seeds into its own
directory under the bench directory, so an interrupted bench resumes where it stopped. The
always-cloud point is played with the edge asked at every state (``also_edge``), which gives
the oracle frontier for free. `write_report` then writes ``report.md``, ``results.csv`` and
``pareto.png``.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.evaluation.metrics import (
    Point,
    apgr,
    cpt,
    oracle_episodes,
    oracle_frontier,
    oracle_summary,
    pgr,
)
from langgraph_hera.evaluation.runner import EpisodeResult, EpisodeRunner, done_seeds, summarize
from langgraph_hera.evaluation.trajectory import iter_steps
from langgraph_hera.policies import available_policies, get_policy
from langgraph_hera.policies.base import parse_policy_kwargs
from langgraph_hera.policies.langchain_router import LangChainRouter
from langgraph_hera.routing.decoding import EdgeDecoding
from langgraph_hera.routing.nodes import PromptLayout
from langgraph_hera.secrets import get_logger
from langgraph_hera.training.usd import DEFAULT_FAILURE_PENALTY_USD

logger = get_logger(__name__)


#: Default sweeps of the tunable baselines (``--sweep``).
SWEEPS: dict[str, list[dict[str, Any]]] = {
    "random": [{"p": p} for p in (0.25, 0.5, 0.75)],
    "threshold": [{"threshold": t} for t in (0.5, 0.9)],
    "task-level": [{"threshold": t} for t in (0.3, 0.5, 0.7)],
    "langchain-router": [{"threshold": t} for t in (0.3, 0.5, 0.7)],
    # The file's calibrated threshold, then one lower and one higher.
    "hera": [{}, {"threshold": 0.35}, {"threshold": 0.7}],
}

#: What the reports call a policy, when not its registry name (``title (label)`` per point).
TITLES: dict[str, str] = {LangChainRouter.name: LangChainRouter.title}


def _title(policy: str, label: str | None = None) -> str:
    """``Title (label)`` for a titled policy (the label alone for the others)."""
    title = TITLES.get(policy)
    if title is None:
        return label or policy
    return f"{title} ({label or policy})"


@dataclass(frozen=True)
class BenchPoint:
    """One operating point: a registered policy with fixed keyword arguments."""

    policy: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Directory-safe name, e.g. ``random-p0.25`` (a ``path`` argument shows its stem)."""
        short = {"p": "p", "threshold": "t"}
        parts = []
        for k, v in self.kwargs.items():
            if k == "path":
                parts.append(Path(str(v)).stem)
            else:
                parts.append(f"{short.get(k, k)}{v}")
        raw = "-".join([self.policy, *parts])
        return re.sub(r"[^A-Za-z0-9._=-]", "_", raw)


def parse_point(text: str) -> tuple[str, dict[str, Any]]:
    """``name`` or ``name:key=value:key=value`` (numbers parsed as numbers)."""
    name, *pairs = text.split(":")
    try:
        return name, parse_policy_kwargs(pairs)
    except ValueError as exc:
        raise ValueError(f"{exc} in {text!r}") from exc


def bench_points(policies: Sequence[str], *, sweep: bool = False) -> list[BenchPoint]:
    """Operating points for ``policies`` (always-edge and always-cloud are always included).

    A policy is a registered name, optionally with fixed arguments: ``hera:path=router.npz``.
    With ``sweep``, tunable policies get `SWEEPS`'s points (merged over the fixed arguments).

    Raises:
        ValueError: An unknown policy name (the message lists the registered ones), a
            malformed argument, or arguments the policy refuses (``random:p=1.5``, a missing
            router file): each point's policy is made once here, before anything starts.
    """
    known = available_policies()
    parsed = [parse_point(p) for p in policies]
    for name, _ in parsed:
        if name not in known:
            raise ValueError(f"unknown policy {name!r}; available: {', '.join(known)}")
    points: list[BenchPoint] = [BenchPoint("always-edge"), BenchPoint("always-cloud")]
    for name, fixed in parsed:
        if name in ("always-edge", "always-cloud"):
            continue
        if name == "hera":
            fixed.setdefault("path", "shipped")
        if sweep and name in SWEEPS:
            points += [BenchPoint(name, {**fixed, **kw}) for kw in SWEEPS[name]]
        else:
            points.append(BenchPoint(name, fixed))
    unique = list({p.label: p for p in points}.values())  # one point per label
    for point in unique:  # every point's arguments checked before any server starts
        try:
            get_policy(point.policy, **point.kwargs)
        except (TypeError, ValueError, OSError) as exc:
            raise ValueError(f"bench point {point.label!r}: {exc}") from exc
    return unique


@dataclass
class BenchConfig:
    """What a bench plays (the models and the environment are supplied by the caller).

    Args:
        suite: Environment suite.
        seeds: The seeds every point plays.
        out_dir: Bench directory (one sub-directory per point; resumable).
        env_factory: Makes a fresh environment.
        edge: Edge chat model.
        cloud_factory: Cloud model per environment (the stand-in needs it).
        max_steps: Step limit per episode.
        concurrency: Episodes in flight at once.
        cloud_is_stand_in: Label results as played with the expert stand-in.
        edge_health: Liveness probe of the edge server.
        edge_decoding: ``"choice"``, ``"rank"`` or ``"free"`` (`langgraph_hera.routing.decoding`).
        pricing: Cloud prices (default: the shipped list prices).
        edge_params: Edge model size N (edge energy estimate): the served model's
            (`langgraph_hera.models.EdgeServer.model_shape`); default SmolLM2-135M's.
        edge_label: What the edge is, written into ``bench.json`` and the report (e.g.
            "qwen2.5-0.5b-instruct; 494.0M params, 24 layers x 2 KV heads x 64").
        prompt_layout: The edge's prompt layout (`langgraph_hera.routing.nodes.PromptLayout`).
        cloud_prompt_layout: The cloud's (default: ``prompt_layout``).
        cloud_label: What the cloud is, written into ``bench.json``, every episode and the
            report (e.g. "local LLM stand-in for a cloud model (Qwen2.5-Coder-1.5B)").
        price_note: How the cloud is priced, for the report (e.g. "gpt-4o-mini list price").
        failure_penalty_usd: P of the report's "USD per solved task (failure penalty P)".
    """

    suite: str
    seeds: Sequence[int]
    out_dir: Path
    env_factory: Callable[[], Any]
    edge: Any
    cloud_factory: Callable[[Any], Any]
    max_steps: int = 30
    concurrency: int = 2
    cloud_is_stand_in: bool = False
    edge_health: Callable[[], bool] | None = None
    edge_decoding: EdgeDecoding = "choice"
    pricing: Pricing | None = None
    edge_params: float = DEFAULT_EDGE_PARAMS
    edge_label: str | None = None
    prompt_layout: PromptLayout = "window"
    cloud_prompt_layout: PromptLayout | None = None
    cloud_label: str | None = None
    price_note: str | None = None
    failure_penalty_usd: float = DEFAULT_FAILURE_PENALTY_USD


def run_bench(
    config: BenchConfig,
    points: Sequence[BenchPoint],
    *,
    on_episode: Callable[[BenchPoint, EpisodeResult], None] | None = None,
) -> dict[str, list[EpisodeResult]]:
    """Play every point on ``config.seeds``; results by point label (resumes finished work)."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "suite": config.suite,
        "seeds": list(config.seeds),
        "max_steps": config.max_steps,
        "points": [{"policy": p.policy, "kwargs": p.kwargs, "label": p.label} for p in points],
        "cloud_is_stand_in": config.cloud_is_stand_in,
        "cloud_label": config.cloud_label
        or ("expert stand-in" if config.cloud_is_stand_in else None),
        "price_note": config.price_note,
        "edge_label": config.edge_label,
        "edge_params": config.edge_params,
        "failure_penalty_usd": config.failure_penalty_usd,
        "prompt_layout": config.prompt_layout,
        "cloud_prompt_layout": config.cloud_prompt_layout or config.prompt_layout,
    }
    (config.out_dir / "bench.json").write_text(json.dumps(meta, indent=1))
    results: dict[str, list[EpisodeResult]] = {}
    for point in points:
        runner = EpisodeRunner(
            env_factory=config.env_factory,
            edge=config.edge,
            cloud_factory=config.cloud_factory,
            policy_factory=functools.partial(get_policy, point.policy, **point.kwargs),
            max_steps=config.max_steps,
            concurrency=config.concurrency,
            out_dir=config.out_dir / point.label,
            cloud_is_stand_in=config.cloud_is_stand_in,
            edge_health=config.edge_health,
            also_edge=point.policy == "always-cloud",
            edge_decoding=config.edge_decoding,
            pricing=config.pricing,
            edge_params=config.edge_params,
            prompt_layout=config.prompt_layout,
            cloud_prompt_layout=config.cloud_prompt_layout,
            cloud_label=config.cloud_label,
        )
        t0 = time.perf_counter()
        results[point.label] = runner.run(
            config.seeds,
            on_episode=functools.partial(on_episode, point) if on_episode else None,
        )
        logger.info("bench point %s done in %.1f s", point.label, time.perf_counter() - t0)
    return results


def _fmt(x: float, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.4f}"


def usd_per_solved(cloud_usd: float, episodes: int, success: float, penalty_usd: float) -> float:
    """USD per solved task with each failure priced at ``penalty_usd``:
    ``(cloud USD + penalty x failures) / solved``; NaN when nothing was solved."""
    solved = round(success * episodes)
    if solved <= 0:
        return math.nan
    return (cloud_usd + penalty_usd * (episodes - solved)) / solved


def usd_saved_at_equal_success(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The routed point that saves the most cloud USD against always-cloud among those with at
    least always-cloud's success (equal success), or ``None`` without such a point (or without
    always-cloud, or when always-cloud spent nothing).

    Returns:
        ``{"label", "title", "saved", "usd", "cloud_usd", "success"}``: ``saved`` is the share
        of always-cloud's USD saved.
    """
    cloud = next((r for r in rows if r["label"] == "always-cloud"), None)
    if cloud is None or cloud["cloud_usd"] <= 0:
        return None
    same = [
        r
        for r in rows
        if r["label"] != "always-cloud"
        and r["episodes"] == cloud["episodes"]
        and r["success"] >= cloud["success"]
    ]
    if not same:
        return None
    best = min(same, key=lambda r: r["cloud_usd"])
    return {
        "label": best["label"],
        "title": best["title"],
        "saved": 1.0 - best["cloud_usd"] / cloud["cloud_usd"],
        "usd": best["cloud_usd"],
        "cloud_usd": cloud["cloud_usd"],
        "success": best["success"],
    }


def write_report(out_dir: str | Path, *, title: str | None = None) -> dict[str, Any]:
    """Read a bench directory and write ``report.md``, ``results.csv`` and ``pareto.png``.

    Works on partial benches (points with no episodes are left out). The report leads with the
    USD saved at equal success (`usd_saved_at_equal_success`) and gives each point's USD per
    solved task with failures priced at the bench's failure penalty (`usd_per_solved`).

    Returns:
        The rows, the per-policy sweep metrics and the oracle summary.

    Raises:
        FileNotFoundError: ``out_dir`` has no ``bench.json``.
    """
    out = Path(out_dir)
    meta_path = out / "bench.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{out} is not a bench directory (no bench.json)")
    meta = json.loads(meta_path.read_text())
    seeds = set(meta["seeds"])
    rows: list[dict[str, Any]] = []
    for p in meta["points"]:
        done = done_seeds(out / p["label"] / "episodes.jsonl")
        res = [r for s, r in done.items() if s in seeds]
        if not res:
            continue
        s = summarize(res)
        rows.append(
            {
                "label": p["label"],
                "policy": p["policy"],
                "title": _title(p["policy"], p["label"]),
                "kwargs": p["kwargs"],
                **s,
            }
        )
    penalty = float(meta.get("failure_penalty_usd", DEFAULT_FAILURE_PENALTY_USD))
    for r in rows:
        r["usd_per_solved"] = usd_per_solved(r["cloud_usd"], r["episodes"], r["success"], penalty)
        r["cloud_label"] = meta.get("cloud_label") or ""
    by_label = {r["label"]: r for r in rows}
    edge_s = by_label.get("always-edge", {}).get("success", float("nan"))
    cloud_s = by_label.get("always-cloud", {}).get("success", float("nan"))
    for r in rows:
        r["pct_of_cloud"] = r["success"] / cloud_s if cloud_s and cloud_s == cloud_s else math.nan
        r["pgr"] = pgr(r["success"], edge_s, cloud_s)

    families: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r["policy"] for r in rows):
        if name in ("always-edge", "always-cloud"):
            continue
        pts = [Point(r["cloud_share"], r["success"]) for r in rows if r["policy"] == name]
        families[name] = {
            "apgr": apgr(pts, edge_s, cloud_s),
            **{f"cpt{int(t * 100)}": cpt(pts, edge_s, cloud_s, t) for t in (0.5, 0.7, 0.9)},
        }

    oracle: dict[str, Any] = {}
    frontier: list[Point] = []
    cloud_steps = out / "always-cloud" / "steps.jsonl"
    if cloud_steps.exists():
        eps = [e for e in oracle_episodes(iter_steps(cloud_steps)) if e.seed in seeds]
        if eps:
            oracle = oracle_summary(eps)
            frontier = oracle_frontier(eps)
            opt = [Point(oracle["cloud_share"], oracle["success"])]
            oracle["apgr"] = apgr(opt, edge_s, cloud_s)

    with (out / "results.csv").open("w", newline="") as f:
        cols = [
            "label", "policy", "title", "kwargs", "episodes", "success", "pct_of_cloud", "pgr",
            "cloud_share", "mean_steps", "cloud_usd", "edge_tokens", "cloud_tokens",
            "edge_energy_j", "router_ms_per_step", "failed_episodes", "cloud_is_stand_in",
            "usd_per_solved", "cloud_label",
        ]  # fmt: skip
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "kwargs": json.dumps(r["kwargs"])})

    _plot(out / "pareto.png", rows, frontier, meta, title)
    saved = usd_saved_at_equal_success(rows)
    _markdown(out / "report.md", rows, families, oracle, meta, title, saved)
    return {"rows": rows, "families": families, "oracle": oracle, "usd_saved": saved}


def _markdown(
    path: Path,
    rows: list[dict[str, Any]],
    families: dict[str, dict[str, float]],
    oracle: dict[str, Any],
    meta: dict[str, Any],
    title: str | None,
    saved: dict[str, Any] | None = None,
) -> None:
    seeds = meta["seeds"]
    penalty = float(meta.get("failure_penalty_usd", DEFAULT_FAILURE_PENALTY_USD))
    if saved is not None:
        lead = (
            f"**USD saved at equal success: {_fmt(saved['saved'])}** ({saved['title']}: cloud "
            f"USD {saved['usd']:.4f} vs always-cloud {saved['cloud_usd']:.4f}, success "
            f"{_fmt(saved['success'])})."
        )
    else:
        lead = (
            "**USD saved at equal success: none**: no routed point matched always-cloud's "
            "success on these seeds (or always-cloud was not played)."
        )
    lines = [
        f"# {title or 'hera bench: ' + meta['suite']}",
        "",
        lead,
        "",
        f"Suite `{meta['suite']}`, {len(seeds)} seeds ({min(seeds)}-{max(seeds)}), "
        f"max {meta['max_steps']} steps, written {time.strftime('%Y-%m-%d %H:%M')}.",
    ]
    label = meta.get("cloud_label")
    if label and label != "expert stand-in":
        price = f", priced at the {meta['price_note']}" if meta.get("price_note") else ""
        lines.append(f"The cloud is a **{label}**{price}, not a cloud model.")
    elif meta.get("cloud_is_stand_in"):
        lines.append(
            "The cloud is the **expert stand-in** (the environment's planner wrapped as a chat "
            "model), not a cloud LLM: cloud-only success is the expert's."
        )
    if meta.get("edge_label"):
        lines.append(f"The edge is **{meta['edge_label']}**.")
    lines += [
        "",
        "| point | success | % of cloud-only | PGR | cloud-step share | cloud USD | "
        f"USD per solved task (failure penalty {penalty:g} USD) | router ms/step | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = r.get("usd_per_solved", math.nan)
        lines.append(
            f"| {r['title']} | {_fmt(r['success'])} | {_fmt(r['pct_of_cloud'])} | "
            f"{_fmt(r['pgr'])} | {_fmt(r['cloud_share'])} | {r['cloud_usd']:.4f} | "
            f"{_fmt(per, pct=False)} | {r['router_ms_per_step']:.3f} | {r['failed_episodes']} |"
        )
    if families:
        lines += ["", "| policy | APGR | CPT(50%) | CPT(70%) | CPT(90%) |", "|---|---|---|---|---|"]
        for name, m in families.items():
            lines.append(
                f"| {_title(name)} | {_fmt(m['apgr'], pct=False)} | {_fmt(m['cpt50'])} | "
                f"{_fmt(m['cpt70'])} | {_fmt(m['cpt90'])} |"
            )
    if oracle:
        lines += [
            "",
            f"**Oracle frontier** (hindsight, from the always-cloud replay with the edge asked at "
            f"every state): the edge agrees with the cloud on {_fmt(oracle['agreement'])} of "
            f"steps, so keeping every cloud-only success needs the cloud on at most "
            f"{_fmt(oracle['cloud_share'])} of steps (APGR of that point "
            f"{_fmt(oracle.get('apgr', math.nan), pct=False)}).",
        ]
    lines += ["", "Files: `results.csv`, `pareto.png`, one directory per point (JSONL + Parquet)."]
    path.write_text("\n".join(lines) + "\n")


def _plot(
    path: Path,
    rows: list[dict[str, Any]],
    frontier: list[Point],
    meta: dict[str, Any],
    title: str | None,
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: %s not written", path)
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for name in dict.fromkeys(r["policy"] for r in rows):
        pts = sorted((r["cloud_share"], r["success"]) for r in rows if r["policy"] == name)
        xs, ys = zip(*pts, strict=True)
        style = "-" if len(pts) > 1 else "none"
        ax.plot(xs, ys, marker="o", linestyle=style, label=TITLES.get(name, name))
    if frontier:
        xs, ys = zip(*((p.cloud_share, p.success) for p in frontier), strict=True)
        ax.step(xs, ys, where="post", color="black", linestyle="--", label="oracle frontier")
    ax.set_xlabel("cloud-step share")
    ax.set_ylabel("success rate")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    stand_in = " (cloud = expert stand-in)" if meta.get("cloud_is_stand_in") else ""
    if meta.get("cloud_label") and meta["cloud_label"] != "expert stand-in":
        stand_in = f" (cloud = {meta['cloud_label']})"
    ax.set_title((title or f"hera bench: {meta['suite']}") + stand_in, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
