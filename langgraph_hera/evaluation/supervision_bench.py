"""`hera supervise`: supervised agents (PEVR / EVA) over a sweep of verification intervals.

Each configuration plays the same seeds into its own directory (resumable); `write_report`
tabulates success, cloud USD, interventions, verifier false positives / negatives against the
expert's distance to the goal, and the executor's maximum context (with its KV-cache estimate)
next to the monolithic edge agent.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.accounting.pricing import kv_cache_bytes
from langgraph_hera.evaluation.runner import EpisodeResult, EpisodeRunner, done_seeds, summarize
from langgraph_hera.routing.deprecation import renamed_kwargs
from langgraph_hera.supervision.graph import EXECUTOR_PROMPT_LAYOUTS, ExecutorPromptLayout
from langgraph_hera.supervision.node import check_supervision_args

#: The paper's sweep of the verification interval T_v.
INTERVALS = (1, 2, 4, 8, 16)

#: SmolLM2-135M-Instruct: layers, KV heads, head dimension (for the KV-cache estimate), when the
#: served edge model's are not given.
EDGE_KV_DIMS = (30, 3, 64)
#: What the report calls the edge when no other is given (the KV dims above are its).
EDGE_LABEL = "SmolLM2-135M"


@dataclass(frozen=True)
class SupervisionPoint:
    """One configuration: a mode and interval, or a monolithic baseline.

    Attributes:
        mode: ``"pevr"``, ``"eva"``, ``"monolithic-edge"`` or ``"monolithic-cloud"``.
        verify_every: T_v (ignored by the monolithic baselines).
        reverse_roles: Cloud executor, edge supervisor.
        summarize: EVA's summary in the handoff.
    """

    mode: str
    verify_every: int = 4
    reverse_roles: bool = False
    summarize: bool = True
    executor_prompt_layout: ExecutorPromptLayout = "messages"
    """How the executor sees its context (`create_supervised_text_agent`)."""
    trigger: str | None = None
    """A routing policy deciding when to verify (``name:key=value:...``), beyond the paper."""

    @property
    def label(self) -> str:
        suffix = "-1msg" if self.executor_prompt_layout == "since-reset" else ""
        if self.trigger:
            suffix += "-trig-" + re.sub(r"[^A-Za-z0-9.]+", "_", self.trigger)
        if self.mode.startswith("monolithic"):
            return self.mode + suffix
        label = f"{self.mode}-T{self.verify_every}{suffix}"
        if not self.summarize:
            label += "-nosum"
        return label + ("-reverse" if self.reverse_roles else "")

    @property
    def supervised(self) -> bool:
        return not self.mode.startswith("monolithic")

    def supervision(self) -> dict[str, Any]:
        """The keyword arguments of `create_supervised_text_agent` for this point."""
        if not self.supervised:
            return {
                "reverse_roles": self.mode == "monolithic-cloud",
                "executor_prompt_layout": self.executor_prompt_layout,
            }
        trigger = None
        if self.trigger:
            from langgraph_hera.evaluation.bench import parse_point
            from langgraph_hera.policies import get_policy

            name, kwargs = parse_point(self.trigger)
            trigger = get_policy(name, **kwargs)
        return {
            "trigger": trigger,
            "executor_prompt_layout": self.executor_prompt_layout,
            "mode": self.mode,
            "verify_every": self.verify_every,
            "summarize": self.summarize,
            "reverse_roles": self.reverse_roles,
        }


def supervision_points(
    modes: Sequence[str],
    intervals: Sequence[int] = INTERVALS,
    *,
    monolithic: bool = True,
    reverse: Sequence[int] = (),
    no_summary: Sequence[int] = (),
    executor_prompt_layout: ExecutorPromptLayout = "messages",
    trigger: str | None = None,
    **deprecated: Any,
) -> list[SupervisionPoint]:
    """The sweep: each mode at each interval, the monolithic baselines, the reverse-role
    check at the intervals in ``reverse`` and EVA without summary at those in ``no_summary``.
    With ``trigger`` the mode/interval points also verify whenever that policy says "cloud"
    (the interval is then the longest gap).

    Raises:
        ValueError: Unknown mode or a bad interval (the message names it).
    """
    old = renamed_kwargs(
        "supervision_points", deprecated, {"executor_history": "executor_prompt_layout"}
    )
    h = old.get("executor_prompt_layout", executor_prompt_layout)
    if h not in EXECUTOR_PROMPT_LAYOUTS:
        raise ValueError(
            f"executor_prompt_layout must be one of {list(EXECUTOR_PROMPT_LAYOUTS)}, got {h!r}"
        )
    if trigger:
        from langgraph_hera.evaluation.bench import parse_point
        from langgraph_hera.policies import get_policy

        name, kwargs = parse_point(trigger)
        get_policy(name, **kwargs)  # fail early on a bad trigger
    points: list[SupervisionPoint] = []
    if monolithic:
        points += [
            SupervisionPoint("monolithic-edge", executor_prompt_layout=h),
            SupervisionPoint("monolithic-cloud", executor_prompt_layout=h),
        ]
    for mode in modes:
        for t in intervals:
            check_supervision_args(mode, t, None)
            points.append(SupervisionPoint(mode, t, executor_prompt_layout=h, trigger=trigger))
        for t in reverse:
            check_supervision_args(mode, t, None)
            points.append(SupervisionPoint(mode, t, reverse_roles=True, executor_prompt_layout=h))
    for t in no_summary:
        check_supervision_args("eva", t, None)
        points.append(SupervisionPoint("eva", t, summarize=False, executor_prompt_layout=h))
    return points


@dataclass
class SupervisionBench:
    """What every configuration shares.

    Attributes:
        seeds: The seeds every configuration plays.
        out_dir: One sub-directory per configuration (resumable).
        env_factory: Makes an environment.
        edge: The edge chat model (executor; supervisor in the reverse-role check).
        cloud_factory: Makes the cloud executor for an environment (reverse roles, cloud-only).
        supervisor_factory: Makes the cloud supervisor for an environment.
        edge_supervisor: The edge model as supervisor (reverse roles; more output tokens).
        max_steps: Turn budget per episode.
        concurrency: Episodes in flight.
        cloud_is_stand_in: Label the results as played with the expert stand-in.
        edge_kv_dims: Layers, KV heads and head dimension of the served edge model
            (`langgraph_hera.models.EdgeServer.model_shape`), for the report's KV-cache
            estimate; ``None``: SmolLM2-135M's (`EDGE_KV_DIMS`).
        edge_label: What the report calls the edge (default `EDGE_LABEL`).
    """

    seeds: Sequence[int]
    out_dir: Path
    env_factory: Callable[[], Any]
    edge: Any
    cloud_factory: Callable[[Any], Any]
    supervisor_factory: Callable[[Any], Any]
    edge_supervisor: Any = None
    max_steps: int = 40
    concurrency: int = 1
    cloud_is_stand_in: bool = True
    edge_kv_dims: tuple[int, int, int] | None = None
    edge_label: str | None = None
    runner_kwargs: dict[str, Any] = field(default_factory=dict)


def run_supervision_bench(
    bench: SupervisionBench,
    points: Sequence[SupervisionPoint],
    *,
    on_episode: Callable[[SupervisionPoint, EpisodeResult], None] | None = None,
) -> dict[str, list[EpisodeResult]]:
    """Play every point's seeds (resuming what is already in ``out_dir``); the edge's label and
    KV dims go into ``out_dir/edge.json`` for `write_report`."""
    bench.out_dir.mkdir(parents=True, exist_ok=True)
    edge = {
        "edge_label": bench.edge_label or EDGE_LABEL,
        "edge_kv_dims": list(bench.edge_kv_dims or EDGE_KV_DIMS),
    }
    (bench.out_dir / "edge.json").write_text(json.dumps(edge, indent=1))
    results: dict[str, list[EpisodeResult]] = {}
    for point in points:
        sup_factory: Callable[[Any], Any] | None
        if not point.supervised:
            sup_factory = None
        elif point.reverse_roles:
            edge_sup = bench.edge_supervisor or bench.edge
            sup_factory = functools.partial(_same, edge_sup)
        else:
            sup_factory = bench.supervisor_factory
        runner = EpisodeRunner(
            env_factory=bench.env_factory,
            edge=bench.edge,
            cloud_factory=bench.cloud_factory,
            supervisor_factory=sup_factory,
            supervision=point.supervision(),
            label=point.label,
            max_steps=bench.max_steps,
            concurrency=bench.concurrency,
            out_dir=bench.out_dir / point.label,
            cloud_is_stand_in=bench.cloud_is_stand_in,
            **bench.runner_kwargs,
        )
        results[point.label] = runner.run(
            list(bench.seeds),
            on_episode=functools.partial(on_episode, point) if on_episode else None,
        )
    return results


def _rate(num: int, den: int) -> str:
    return f"{num / den:.0%} ({num}/{den})" if den else "-"


def context_at(out_dir: Path, turns: Sequence[int]) -> dict[int, int | None]:
    """Max executor context (prompt tokens) reached within the first ``t`` turns, for each t,
    over all episodes of a configuration (from its ``steps.jsonl``); ``None`` when no episode
    was played for ``t`` turns."""
    path = out_dir / "steps.jsonl"
    best: dict[int, int] = dict.fromkeys(turns, 0)
    longest = 0
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            step = int(rec["step"])
            longest = max(longest, step + 1)
            for t in turns:
                if step < t:
                    best[t] = max(best[t], int(rec.get("input_tokens") or 0))
    return {t: (best[t] if longest >= t else None) for t in turns}


def write_report(out_dir: str | Path, *, turns: Sequence[int] = (20, 40, 80)) -> dict[str, Any]:
    """Write ``report.md`` and ``results.csv`` for every configuration under ``out_dir``.

    The KV-cache estimate uses the edge's dims from ``edge.json`` (`run_supervision_bench`);
    SmolLM2-135M's (`EDGE_KV_DIMS`) for a directory without one.
    """
    out = Path(out_dir)
    edge_path = out / "edge.json"
    edge = json.loads(edge_path.read_text()) if edge_path.exists() else {}
    layers, kv_heads, head_dim = (int(x) for x in edge.get("edge_kv_dims") or EDGE_KV_DIMS)
    edge_label = str(edge.get("edge_label") or EDGE_LABEL)
    rows: list[dict[str, Any]] = []
    stand_in = False
    labels: set[str] = set()
    for sub in sorted(p for p in out.iterdir() if (p / "episodes.jsonl").exists()):
        results = list(done_seeds(sub / "episodes.jsonl").values())
        if not results:
            continue
        s = summarize(results)
        stand_in |= bool(s["cloud_is_stand_in"])
        labels |= {r.cloud_label for r in results if r.cloud_label}
        n = s["episodes"]
        ctx = context_at(sub, turns)
        kv_bytes = kv_cache_bytes(layers, kv_heads, head_dim, int(s["max_context_tokens"]))
        rows.append(
            {
                "config": sub.name,
                "episodes": n,
                "success": s["success"],
                "mean_steps": s["mean_steps"],
                "cloud_usd_per_episode": s["cloud_usd"] / n,
                "edge_energy_j_per_episode": s["edge_energy_j"] / n,
                "interventions_per_episode": s["interventions_per_episode"],
                "verifications": s["verifications"],
                "verifier_fp": s["verifier_fp"],
                "verifier_fn": s["verifier_fn"],
                "verifier_judged": s["verifier_judged"],
                "max_context_tokens": s["max_context_tokens"],
                "mean_max_context_tokens": s["mean_max_context_tokens"],
                "kv_cache_mb": kv_bytes / 2**20,
                **{f"context_at_{t}": ctx[t] for t in turns},
                "failed_episodes": s["failed_episodes"],
            }
        )
    order = {"monolithic-edge": 0, "monolithic-cloud": 1}

    def key(row: dict[str, Any]) -> tuple:
        name = row["config"]
        m = re.match(r"(\w+)-T(\d+)(.*)", name)
        return (
            order.get(name, 2),
            m.group(1) if m else name,
            m.group(3) if m else "",
            int(m.group(2)) if m else 0,
        )

    rows.sort(key=key)
    if rows:
        with (out / "results.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    llm = sorted(x for x in labels if x != "expert stand-in")
    (out / "report.md").write_text(_markdown(rows, stand_in, turns, llm, edge_label))
    return {"rows": rows, "stand_in": stand_in}


def _markdown(
    rows: list[dict[str, Any]],
    stand_in: bool,
    turns: Sequence[int],
    llm_labels: Sequence[str] = (),
    edge_label: str = EDGE_LABEL,
) -> str:
    mono = next((r for r in rows if r["config"] == "monolithic-edge"), None)
    if llm_labels:
        cloud_line = (
            "Cloud side (supervisor; executor of the cloud-only and reverse-role rows): **"
            + "; ".join(llm_labels)
            + "**, not a cloud model."
        )
    elif stand_in:
        cloud_line = (
            "Cloud side (supervisor; executor of the cloud-only and reverse-role rows): "
            "**expert stand-in** (the environment's planner and transcript rules, priced as "
            "GPT-4o), not a cloud model."
        )
    else:
        cloud_line = "Cloud side: a real cloud model."
    lines = [
        "# Supervised agents (PEVR / EVA)",
        "",
        cloud_line,
        "Verifier FP: interventions although the expert's distance to the goal went down; FN: "
        "'on track' although it did not. Context: prompt tokens of the executor's calls; KV: "
        f"{edge_label}, bf16, at the max context.",
        "",
        "| config | eps | success | steps | cloud USD/ep | interventions/ep | verifier FP | "
        "verifier FN | max ctx | mean max ctx | KV MB | "
        + " | ".join(f"ctx@{t}" for t in turns)
        + f" | ctx@{turns[-1]} vs mono |",
        "|" + "---|" * (11 + len(turns) + 1),
    ]
    last = turns[-1]
    for r in rows:
        judged = r["verifier_judged"]
        vs = "-"
        if (
            mono
            and r[f"context_at_{last}"]
            and mono[f"context_at_{last}"]
            and (r["config"] != "monolithic-edge")
        ):
            vs = f"{r[f'context_at_{last}'] / mono[f'context_at_{last}']:.0%}"
        lines.append(
            f"| {r['config']} | {r['episodes']} | {r['success']:.0%} | {r['mean_steps']:.1f} | "
            f"{r['cloud_usd_per_episode']:.4f} | {r['interventions_per_episode']:.1f} | "
            f"{_rate(r['verifier_fp'], judged)} | {_rate(r['verifier_fn'], judged)} | "
            f"{r['max_context_tokens']} | {r['mean_max_context_tokens']:.0f} | "
            f"{r['kv_cache_mb']:.1f} | "
            + " | ".join(
                "-" if r[f"context_at_{t}"] is None else str(r[f"context_at_{t}"]) for t in turns
            )
            + f" | {vs} |"
        )
    return "\n".join(lines) + "\n"


def _same(supervisor: Any, _env: Any) -> Any:
    """A supervisor factory's body that ignores the environment (reverse-role runs)."""
    return supervisor
