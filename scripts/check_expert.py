"""How good is the expert stand-in? Success from the start and after random detours.

    .venv/bin/python scripts/check_expert.py --suite twc --fold dev --episodes 50 --epsilon 0.3

Plays each episode with the expert, replacing its action by a random valid one with
probability epsilon; reports success rate, mean steps, and expert ms per call.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from langgraph_hera.envs import fold_seeds, make_env


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--suite", default="twc")
    p.add_argument("--fold", default="dev")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--epsilon", type=float, default=0.3)
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    env = make_env(args.suite)
    wins, steps, calls, secs, gold_len = 0, 0, 0, 0.0, 0
    try:
        for seed in list(fold_seeds(args.fold))[: args.episodes]:
            obs = env.reset(seed)
            gold_len += len(env.gold)  # type: ignore[attr-defined]
            for _ in range(args.max_steps):
                if rng.random() < args.epsilon:
                    action = rng.choice(obs.valid_actions)
                else:
                    t0 = time.perf_counter()
                    action = env.expert_action()
                    secs += time.perf_counter() - t0
                    calls += 1
                obs = env.step(action)
                steps += 1
                if obs.done:
                    break
            wins += obs.success
    finally:
        env.close()
    n = args.episodes
    print(json.dumps({
        "suite": args.suite, "fold": args.fold, "episodes": n, "epsilon": args.epsilon,
        "success": wins / n, "mean_steps": steps / n, "mean_gold_len": gold_len / n,
        "expert_ms_per_call": 1e3 * secs / max(calls, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
