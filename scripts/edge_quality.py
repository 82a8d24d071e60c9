"""How good is the edge alone? Agreement with the expert, validity, latency, task success.

For one served edge (the embedded SmolLM2, raw or with an adapter) and recorded expert
trajectories (`hera record --policy always-cloud`), this measures:

- per decoding (``choice``: vLLM structured outputs; ``rank``: likelihood ranking of the valid
  actions; ``free``: unconstrained, parsed afterwards): agreement with the expert's action at
  the expert's states, the share of valid answers, and the edge's per-step latency (p50/p90,
  one request at a time, the server's prefix cache warm only from earlier states);
- the edge alone playing whole episodes (``always-edge``, constrained with ``--play-decoding``)
  on the same fold's seeds: success rate and steps.

The expert is the offline stand-in (TextWorldExpress planner), not a cloud model.

Usage:
    python scripts/edge_quality.py --states runs/expert-twc-dev --adapter auto \
        --decodings choice,rank,free --max-states 200 --episodes 20 --out runs/eq-dev-adapted.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from langgraph_hera.evaluation.trajectory import iter_steps
from langgraph_hera.models import edge_chat_model, edge_endpoint
from langgraph_hera.routing.decoding import constrained
from langgraph_hera.routing.nodes import ACTION_SYSTEM_PROMPT, parse_action


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _states(path: str, limit: int, seed: int) -> list[dict[str, Any]]:
    rows = [
        r
        for r in iter_steps(path)
        if r.get("cloud_action") and r.get("valid_actions") and r.get("prompt")
    ]
    rng = random.Random(seed)
    return rows if len(rows) <= limit else rng.sample(rows, limit)


def agreement(edge: Any, rows: list[dict[str, Any]], decoding: str) -> dict[str, Any]:
    agree = valid = failed = 0
    lat: list[float] = []
    for r in rows:
        prompt = [SystemMessage(ACTION_SYSTEM_PROMPT), HumanMessage(r["prompt"])]
        t0 = time.perf_counter()
        try:
            reply = constrained(edge, r["valid_actions"], decoding).invoke(prompt)
        except Exception as exc:  # recorded, counted
            failed += 1
            print(f"  {decoding}: seed {r['seed']} step {r['step']}: {exc}", file=sys.stderr)
            continue
        lat.append((time.perf_counter() - t0) * 1e3)
        action, ok = parse_action(reply.text, r["valid_actions"])
        valid += ok
        agree += ok and action == r["cloud_action"]
    n = len(rows)
    return {
        "decoding": decoding,
        "states": n,
        "agreement": agree / n if n else None,
        "valid": valid / n if n else None,
        "failed": failed,
        "latency_ms_p50": round(_pct(lat, 0.5), 1),
        "latency_ms_p90": round(_pct(lat, 0.9), 1),
    }


def play(edge: Any, suite: str, seeds: list[int], decoding: str, max_steps: int) -> dict:
    from langgraph_hera.envs import ExpertChatModel, make_env
    from langgraph_hera.evaluation.runner import EpisodeRunner
    from langgraph_hera.policies import get_policy

    runner = EpisodeRunner(
        env_factory=lambda: make_env(suite),
        edge=edge,
        cloud_factory=lambda env: ExpertChatModel(expert=env.expert_action),
        policy_factory=lambda: get_policy("always-edge"),
        max_steps=max_steps,
        concurrency=2,
        cloud_is_stand_in=True,
        edge_decoding=decoding,
    )
    results = runner.run(seeds)
    ok = [r for r in results if not r.error]
    return {
        "decoding": decoding,
        "episodes": len(results),
        "errors": len(results) - len(ok),
        "success": sum(r.success for r in ok) / len(ok) if ok else None,
        "steps_mean": statistics.mean(r.steps for r in ok) if ok else None,
        "invalid_actions": sum(r.invalid_actions for r in ok),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--states", required=True, help="recorded expert trajectories (a run dir)")
    ap.add_argument("--adapter", default="auto", help="auto (shipped), none, or a directory")
    ap.add_argument("--edge-url", default=None, help="a running server instead of starting one")
    ap.add_argument("--edge-model", default="", help="its served model name")
    ap.add_argument("--decodings", default="choice,rank,free")
    ap.add_argument("--max-states", type=int, default=200)
    ap.add_argument("--episodes", type=int, default=20, help="always-edge episodes (0: skip)")
    ap.add_argument("--play-decoding", default="choice")
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="JSON results")
    args = ap.parse_args(argv)

    rows = _states(args.states, args.max_states, args.seed)
    if not rows:
        print(f"no expert states with prompts in {args.states}", file=sys.stderr)
        return 2
    suite = rows[0]["suite"]
    seeds = sorted({int(r["seed"]) for r in iter_steps(args.states)})[: args.episodes]
    adapter = None if args.adapter.lower() == "none" else args.adapter
    out: dict[str, Any] = {
        "command": "python scripts/edge_quality.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, {os.cpu_count()} cores",
        "states_from": args.states,
        "suite": suite,
        "cloud": "expert stand-in (planner), not a cloud model",
    }
    t0 = time.perf_counter()
    with edge_endpoint(args.edge_url, args.edge_model, adapter=adapter) as (url, name):
        out["edge"] = name
        out["adapter"] = args.adapter if not args.edge_url else "(the server's)"
        out["server_start_s"] = round(time.perf_counter() - t0, 1)
        edge = edge_chat_model(url, name, max_tokens=24)
        edge.invoke("hi")  # warm-up
        out["agreement"] = []
        for decoding in args.decodings.split(","):
            res = agreement(edge, rows, decoding.strip())
            print(json.dumps(res), file=sys.stderr)
            out["agreement"].append(res)
        if args.episodes:
            asyncio.set_event_loop(asyncio.new_event_loop())
            out["edge_alone"] = play(edge, suite, seeds, args.play_decoding, args.max_steps)
            print(json.dumps(out["edge_alone"]), file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
