"""BFCL v4 multi-turn: a LangGraph tool-calling agent, routed edge/cloud step by step, scored by
BFCL's own checker per turn and per task (issue 20). Commands and results: docs/BENCHMARKS.md.

The agent is ``langchain.agents.create_agent`` with the task's tools, one thread per task
(``InMemorySaver``), one user message per BFCL turn, at most BFCL's 20 steps per turn. Models:

- edge: a real model behind an OpenAI-compatible server (``--edge runs/bfcl/edge-0.5b.json``,
  written by ``scripts/bfcl_serve.py 0.5b``: Qwen2.5-Coder-0.5B-Instruct);
- cloud: ``--cloud expert``: the **expert stand-in (BFCL ground truth)**, or an info file of a
  served model (``scripts/bfcl_serve.py 1.5b``: Qwen2.5-Coder-1.5B-Instruct, a **local LLM
  stand-in for a cloud model**). Cloud calls are priced at ``--price`` list prices (gpt-4o).

Policies (``--policies``, comma-separated): ``edge-alone`` / ``cloud-alone`` (one model, no
routing middleware: the models measured alone), ``always-edge``, ``always-cloud``,
``random:P``, ``threshold:T`` or ``threshold@SHARE`` (``stuck`` scorer; the threshold
calibrated to a cloud-step share on ``--calibrate-from``, another split's run),
``hera:FILE`` (a `HeraRouter` file) — the routed ones through `HeraRoutingMiddleware` (an
unusable edge reply fails over to the cloud).
Results: ``OUT/<policy>.jsonl`` (one line per task; reruns skip done tasks) and, with
``--report``, ``OUT/report.md``.

    nice -n 10 .venv/bin/python scripts/bfcl_bench.py --split dev --limit 3 \
        --edge runs/bfcl/edge-0.5b.json --cloud expert --policies edge-alone --out runs/bfcl/dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError

from langgraph_hera.accounting.pricing import LIST_PRICES
from langgraph_hera.envs.bfcl import (
    MAX_STEPS_PER_TURN,
    BfclTask,
    decoded_turns,
    get_task,
    make_tools,
    score_task,
    split_ids,
    text_tool_calls,
)
from langgraph_hera.envs.bfcl_expert import EXPERT_LABEL, BfclExpertChatModel
from langgraph_hera.evaluation.metrics import Point, apgr, cpt
from langgraph_hera.models import edge_chat_model
from langgraph_hera.policies import (
    AlwaysCloud,
    AlwaysEdge,
    HeraRouter,
    RandomPolicy,
    ThresholdRouter,
)
from langgraph_hera.policies.base import RoutingPolicy, calibrate_threshold
from langgraph_hera.routing.middleware import HeraRoutingMiddleware

LOCAL_CLOUD_LABEL = "local LLM stand-in for a cloud model"


class TextToolCalls(BaseChatModel):
    """A served model whose JSON-in-text tool calls are read as tool calls (`text_tool_calls`).

    Qwen2.5-Coder-0.5B answers a tools request with a fenced JSON call in the content more
    often than with ``<tool_call>`` tags (which vLLM's hermes parser reads); BFCL's handlers
    would score that as no call. ``--text-tool-calls`` turns it on and every result says so.
    """

    inner: BaseChatModel

    @property
    def _llm_type(self) -> str:
        return "bfcl-text-tool-calls"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        """Bind the tools to the inner model at call time."""
        return self.bind(tools=tools, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        inner: Any = self.inner
        if tools:
            inner = inner.bind_tools(tools, tool_choice=tool_choice)
        reply = inner.invoke(messages, stop=stop, **kwargs)
        if isinstance(reply, AIMessage) and not reply.tool_calls and isinstance(reply.content, str):
            calls = text_tool_calls(reply.content)
            if calls:
                reply = AIMessage(
                    content="",
                    tool_calls=calls,
                    id=reply.id,
                    usage_metadata=reply.usage_metadata,
                    response_metadata={**reply.response_metadata, "text_tool_calls": True},
                )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def served(info_file: str, *, max_tokens: int, text_calls: bool) -> tuple[BaseChatModel, str]:
    """A chat model for a server described by ``scripts/bfcl_serve.py``'s info file."""
    info = json.loads(Path(info_file).read_text())
    model: BaseChatModel = edge_chat_model(
        info["base_url"], info["model"], max_tokens=max_tokens, timeout=900
    )
    if text_calls:
        model = TextToolCalls(inner=model)
    return model, str(info["model"])


def calibrated_threshold(spec: str, calibrate_from: str | None) -> float:
    """``threshold@SHARE``: the threshold at which SHARE of the calibration steps go to the cloud.

    The steps are the records of ``--calibrate-from``, a `TraceStore` recorded on another split
    (``--record`` with ``always-cloud``); each is scored by the ``stuck`` scorer on the same
    `RouteInput` the router sees at decision time (`route_input_from_step`).
    """
    if not calibrate_from:
        raise SystemExit(f"{spec} needs --calibrate-from TRACE_STORE (recorded on dev)")
    from langgraph_hera.policies.baselines import stuck_score
    from langgraph_hera.training.tool_router import route_input_from_step
    from langgraph_hera.training.traces import TraceStore

    steps = TraceStore(calibrate_from).steps()
    if not steps:
        raise SystemExit(f"no recorded steps in {calibrate_from}")
    scores = [stuck_score(route_input_from_step(r)) for r in steps]
    return calibrate_threshold(scores, float(spec.split("@", 1)[1]))


def make_policy(spec: str, calibrate_from: str | None = None) -> RoutingPolicy | None:
    """A policy from its spec; ``None`` for the unrouted ``*-alone`` runs."""
    if spec.startswith("threshold@"):
        return ThresholdRouter(calibrated_threshold(spec, calibrate_from), scorer="stuck")
    name, _, arg = spec.partition(":")
    if name in ("edge-alone", "cloud-alone"):
        return None
    if name == "always-edge":
        return AlwaysEdge()
    if name == "always-cloud":
        return AlwaysCloud()
    if name == "random":
        return RandomPolicy(float(arg or 0.5), seed=0)
    if name == "threshold":
        return ThresholdRouter(float(arg or 0.5), scorer="stuck")
    if name == "hera":
        return HeraRouter(arg)
    raise ValueError(
        f"unknown policy {spec!r}; allowed: edge-alone, cloud-alone, always-edge, always-cloud, "
        "random:P, threshold:T, threshold@SHARE, hera:FILE"
    )


def play(task: BfclTask, agent: Any, thread: str) -> tuple[list[BaseMessage], bool, dict[str, Any]]:
    """Every turn of ``task`` on one thread; returns the messages, forced quit, final state."""
    config: dict[str, Any] = {
        "configurable": {"thread_id": thread},
        # model + tools per step, and a margin: past it, BFCL's step limit is exceeded.
        "recursion_limit": 2 * (MAX_STEPS_PER_TURN + 1) + 1,
    }
    forced = False
    for text in task.turns:
        try:
            agent.invoke({"messages": [HumanMessage(text)]}, config)
        except GraphRecursionError:
            forced = True
            break
    values = dict(agent.get_state(config).values)
    return list(values.get("messages") or []), forced, values


def run_task(
    task: BfclTask,
    policy_spec: str,
    edge: BaseChatModel | None,
    cloud_kind: str,
    cloud_url: tuple[BaseChatModel, str] | None,
    price: str,
    calibrate_from: str | None = None,
    record: str | None = None,
) -> dict[str, Any]:
    """Play one task under one policy and score it."""
    cloud: BaseChatModel = (
        BfclExpertChatModel(task=task) if cloud_kind == "expert" else cloud_url[0]  # type: ignore[index]
    )
    policy = make_policy(policy_spec, calibrate_from)
    tools = make_tools(task)
    if policy is None:
        model = edge if policy_spec == "edge-alone" else cloud
        if model is None:
            raise SystemExit(f"{policy_spec} needs --edge")
        agent = create_agent(model, tools, checkpointer=InMemorySaver(), name="bfcl_agent")
    else:
        if edge is None:
            raise SystemExit(f"{policy_spec} needs --edge")
        mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy)
        agent = create_agent(cloud, tools, middleware=[mw], checkpointer=InMemorySaver(),
                             name="bfcl_agent")  # fmt: skip
    t0 = time.perf_counter()
    thread = f"{policy_spec}|{task.id}"
    messages, forced, values = play(task, agent, thread)
    wall = time.perf_counter() - t0
    if record:  # trace records for `hera train --traces` (langgraph_hera.training.traces)
        from langgraph_hera.training.traces import TraceStore, steps_from_state

        TraceStore(record).add(steps_from_state(values, tools=tools, thread_id=thread))
    score = score_task(task, decoded_turns(messages), forced_quit=forced)
    ais = [m for m in messages if isinstance(m, AIMessage)]
    if policy is None:
        side = "edge" if policy_spec == "edge-alone" else "cloud"
        sides = [side] * len(ais)
        usage = [(m.usage_metadata or {}) for m in ais] if side == "cloud" else []
        scores = []
    else:
        ledger = [e for e in values.get("ledger") or [] if e.get("ok", True)]
        sides = [str(e["target"]) for e in ledger]
        usage = [e for e in ledger if e["target"] == "cloud"]
        scores = [float(d["score"]) for d in values.get("route_log") or []]
    p = LIST_PRICES[price]
    n_in = sum(int(u.get("input_tokens") or 0) for u in usage)
    n_out = sum(int(u.get("output_tokens") or 0) for u in usage)
    return {
        "task": task.id,
        "policy": policy_spec,
        "cloud": EXPERT_LABEL
        if cloud_kind == "expert"
        else f"{cloud_url[1]} ({LOCAL_CLOUD_LABEL})",  # type: ignore[index]
        **score,
        "forced_quit": forced,
        "calls": len(sides),
        "cloud_calls": sides.count("cloud"),
        "cloud_input_tokens": n_in,
        "cloud_output_tokens": n_out,
        "usd": (n_in * p.input + n_out * p.output) / 1e6,
        "price": price,
        "wall_s": round(wall, 1),
        "text_tool_calls": sum(bool(m.response_metadata.get("text_tool_calls")) for m in ais),
        "decoded": decoded_turns(messages),
        "scores": scores,
    }


def report(out: Path) -> str:
    """A markdown table of every ``OUT/*.jsonl`` (policies over the tasks they share)."""
    rows = {f.stem: [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
            for f in sorted(out.glob("*.jsonl"))}  # fmt: skip
    rows = {k: v for k, v in rows.items() if v}
    shared = set.intersection(*({r["task"] for r in v} for v in rows.values())) if rows else set()
    if not shared:
        return "no tasks shared by every policy\n"
    rows = {k: [r for r in v if r["task"] in shared] for k, v in rows.items()}
    lines = [
        f"Tasks every policy ran: {len(shared)}.",
        "",
        "| policy | cloud | tasks | task acc. | turn acc. | cloud-call share | USD | wall s/task |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary: dict[str, dict[str, float]] = {}
    for rs in rows.values():
        calls = sum(r["calls"] for r in rs)
        s = {
            "acc": sum(r["valid"] for r in rs) / len(rs),
            "turn": sum(r["turn_accuracy"] for r in rs) / len(rs),
            "share": sum(r["cloud_calls"] for r in rs) / calls if calls else 0.0,
            "usd": sum(r["usd"] for r in rs),
            "wall": sum(r["wall_s"] for r in rs) / len(rs),
        }
        summary[rs[0]["policy"]] = s
        read = sum(r.get("text_tool_calls", 0) for r in rs)
        mode = f" (+{read} JSON-in-text calls read)" if read else ""
        lines.append(
            f"| {rs[0]['policy']}{mode} | {rs[0]['cloud']} | {len(rs)} | {s['acc']:.2f} "
            f"| {s['turn']:.2f} "
            f"| {s['share']:.2f} | {s['usd']:.4f} ({rs[0]['price']}) | {s['wall']:.0f} |"
        )
    edge, cloud = summary.get("always-edge"), summary.get("always-cloud")
    if edge and cloud:
        for prefix in ("random", "threshold", "hera"):
            pts = [Point(v["share"], v["acc"]) for k, v in summary.items() if k.startswith(prefix)]
            if pts:
                a = apgr(pts, edge["acc"], cloud["acc"])
                c50 = cpt(pts, edge["acc"], cloud["acc"], 0.5)
                lines.append(f"\n{prefix}: APGR {a:.3f}, CPT(50%) {c50:.2f}")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the policies on a split (resumable), then optionally write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    ap.add_argument("--sizes", default="small", choices=["small", "full"])
    ap.add_argument("--limit", type=int, default=None, help="first N tasks of the split")
    ap.add_argument("--tasks", default=None, help="comma-separated task ids (instead of a split)")
    ap.add_argument("--policies", default="edge-alone")
    ap.add_argument("--edge", default=None, help="info JSON of the edge server")
    ap.add_argument("--cloud", default="expert", help="'expert' or an info JSON of a server")
    ap.add_argument("--price", default="gpt-4o", choices=sorted(LIST_PRICES))
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument(
        "--text-tool-calls",
        action="store_true",
        help="read served models' JSON-in-text tool calls as calls (reported in the results)",
    )
    ap.add_argument("--out", default="runs/bfcl/dev")
    ap.add_argument("--report", action="store_true")
    ap.add_argument(
        "--calibrate-from", default=None, help="TraceStore (dev) that calibrates threshold@SHARE"
    )
    ap.add_argument(
        "--record", default=None, help="also add each thread's steps to this TraceStore"
    )
    ap.add_argument(
        "--replay-traces",
        default=None,
        help="instead of playing: ask the --edge model at every cloud step of this TraceStore",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.tasks:
        ids = args.tasks.split(",")
    else:
        ids = split_ids(args.split, sizes="full" if args.sizes == "full" else None)
    ids = ids[: args.limit] if args.limit else ids
    if args.replay_traces:
        from langgraph_hera.training.trace_replay import replay_traces

        if not args.edge:
            raise SystemExit("--replay-traces needs --edge")
        edge_model = served(args.edge, max_tokens=args.max_tokens, text_calls=False)[0]
        sys.stderr.write(f"{replay_traces(args.replay_traces, edge_model, concurrency=1)}\n")
        return 0
    tc = args.text_tool_calls
    edge = served(args.edge, max_tokens=args.max_tokens, text_calls=tc)[0] if args.edge else None
    cloud_url = (
        None
        if args.cloud == "expert"
        else served(args.cloud, max_tokens=args.max_tokens, text_calls=tc)
    )
    for spec in [p for p in args.policies.split(",") if p]:
        path = out / f"{spec.replace(':', '=').replace('/', '_')}.jsonl"
        done = (
            {json.loads(x)["task"] for x in path.read_text().splitlines()}
            if path.exists()
            else set()
        )
        for tid in ids:
            if tid in done:
                continue
            kind = "expert" if args.cloud == "expert" else "url"
            row = run_task(
                get_task(tid),
                spec,
                edge,
                kind,
                cloud_url,
                args.price,
                args.calibrate_from,
                args.record,
            )
            with open(path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            sys.stderr.write(
                f"{spec} {tid}: valid={row['valid']} turns={row['turns']} "
                f"cloud {row['cloud_calls']}/{row['calls']} {row['wall_s']} s\n"
            )
    if args.report:
        sys.stdout.write(report(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
