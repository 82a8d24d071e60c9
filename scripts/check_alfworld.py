"""Play the ALFWorld suite with its expert (optionally with random detours); JSON per task type.

    .venv/bin/python scripts/check_alfworld.py --fold dev --per-type 10 --epsilon 0
    .venv/bin/python scripts/check_alfworld.py --fold dev --per-type 10 --epsilon 0.2 --progress

Plays the first ``6 * per-type`` seeds of the fold (``seed % 6`` is the task type, so that is
``per-type`` episodes of each of the six types). At every step the expert's action is replaced
by a random valid one with probability epsilon. Prints one JSON object: overall and per task
type success rate, mean steps (all episodes and won ones), mean length of the planner's plan
from the start, ms per environment step, ms per expert call, ms per reset and planner calls per
episode.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from langgraph_hera.envs.alfworld import TASK_TYPES, AlfWorldEnv
from langgraph_hera.envs.base import FOLD_SEEDS


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    k = max(len(rows), 1)
    won = [r for r in rows if r["success"]]
    steps = sum(r["steps"] for r in rows)
    calls = sum(r["expert_calls"] for r in rows)
    return {
        "episodes": len(rows),
        "success": len(won) / k,
        "mean_steps": steps / k,
        "mean_steps_won": sum(r["steps"] for r in won) / max(len(won), 1),
        "mean_gold_len": sum(r["gold_len"] for r in rows) / k,
        "ms_per_step": 1e3 * sum(r["step_s"] for r in rows) / max(steps, 1),
        "expert_ms_per_call": 1e3 * sum(r["expert_s"] for r in rows) / max(calls, 1),
        "reset_ms": 1e3 * sum(r["reset_s"] for r in rows) / k,
        "replans_per_episode": sum(r["replans"] for r in rows) / k,
        "failed_seeds": [r["seed"] for r in rows if not r["success"]],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fold", default="dev", choices=list(FOLD_SEEDS))
    p.add_argument("--per-type", type=int, default=10, help="episodes per task type")
    p.add_argument("--epsilon", type=float, default=0.0)
    p.add_argument("--max-steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="seed of the epsilon-random actions")
    p.add_argument("--cache-dir", type=Path, default=None, help="game-file cache")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--progress", action="store_true", help="one line per episode on stderr")
    args = p.parse_args(argv)
    if args.per_type < 1 or args.max_steps < 1 or not 0.0 <= args.epsilon <= 1.0:
        p.error("need --per-type >= 1, --max-steps >= 1 and 0 <= --epsilon <= 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rng = random.Random(args.seed)
    t_start = time.perf_counter()
    env = AlfWorldEnv(max_steps=args.max_steps, cache_dir=args.cache_dir)
    seeds = list(FOLD_SEEDS[args.fold])[: 6 * args.per_type]
    rows: list[dict[str, Any]] = []
    try:
        for seed in seeds:
            t0 = time.perf_counter()
            obs = env.reset(seed)
            row = {
                "seed": seed,
                "task_type": obs.info["task_type"],
                "reset_s": time.perf_counter() - t0,
                "gold_len": len(env.gold),
                "steps": 0,
                "step_s": 0.0,
                "expert_s": 0.0,
                "expert_calls": 0,
            }
            while not obs.done:
                if rng.random() < args.epsilon:
                    action = rng.choice(obs.valid_actions)
                else:
                    t0 = time.perf_counter()
                    action = env.expert_action()
                    row["expert_s"] += time.perf_counter() - t0
                    row["expert_calls"] += 1
                t0 = time.perf_counter()
                obs = env.step(action)
                row["step_s"] += time.perf_counter() - t0
                row["steps"] += 1
            row["success"] = obs.success
            row["replans"] = env.replans
            rows.append(row)
            if args.progress:
                print(
                    seed, row["task_type"], "won" if obs.success else "lost", row["steps"],
                    file=sys.stderr, flush=True,
                )  # fmt: skip
    finally:
        env.close()
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_type[row["task_type"]].append(row)
    result: dict[str, Any] = {
        "suite": "alfworld",
        "fold": args.fold,
        "seeds": f"{seeds[0]}-{seeds[-1]}",
        "epsilon": args.epsilon,
        "max_steps": args.max_steps,
        **_summary(rows),
        "by_task_type": {t: _summary(by_type[t]) for t in TASK_TYPES if t in by_type},
        "wall_s": time.perf_counter() - t_start,
    }
    text = json.dumps(result)
    print(text)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
