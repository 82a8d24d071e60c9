"""How good is the expert stand-in? Success from the start and after random detours.

    .venv/bin/python scripts/check_expert.py --suite twc --fold dev --episodes 50 --epsilon 0.3
    .venv/bin/python scripts/check_expert.py --suite coin --episodes 1000 --epsilon 0 \\
        --game-params numLocations=11 --json-out /tmp/coin.json

Plays each episode with the expert, replacing its action by a random valid one with
probability epsilon; prints one JSON object: success rate, mean steps (all episodes and won
ones), mean gold-path length, expert ms per call, and the failures by cause:

- ``random_ended``: a random action ended the episode (e.g. eating an ingredient; the verbs of
  those actions are counted in ``random_enders``);
- ``unrecoverable``: the expert found no winning continuation after a random action (e.g. an
  ingredient cooked the wrong way), i.e. the state was most likely unwinnable;
- ``expert``: any other failure (the expert's own fault: no plan without any detour, or out of
  steps), listed with their seeds in ``expert_failed_seeds`` (and the first ten episodes'
  actions in ``expert_failed_traces``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

from langgraph_hera.envs import fold_seeds, make_env


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="twc")
    p.add_argument("--fold", default="dev")
    p.add_argument("--episodes", type=int, default=50, help="first N seeds of the fold")
    p.add_argument("--skip", type=int, default=0, help="start at the fold's N-th seed")
    p.add_argument("--epsilon", type=float, default=0.3)
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="seed of the epsilon-random actions")
    p.add_argument("--game-params", default=None, help="e.g. numLocations=5,includeDoors=1")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--progress", action="store_true", help="one line per episode on stderr")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.max_steps < 1 or not 0.0 <= args.epsilon <= 1.0:
        p.error("need --episodes >= 1, --max-steps >= 1 and 0 <= --epsilon <= 1")
    rng = random.Random(args.seed)
    kwargs = {} if args.game_params is None else {"game_params": args.game_params}
    env = make_env(args.suite, **kwargs)
    seeds = list(fold_seeds(args.fold))[args.skip : args.skip + args.episodes]
    wins, steps, win_steps, calls, secs, gold_len = 0, 0, 0, 0, 0.0, 0
    causes = {"random_ended": 0, "unrecoverable": 0, "expert": 0}
    expert_failed: list[int] = []
    traces: list[dict[str, object]] = []
    random_enders: Counter[str] = Counter()
    t_start = time.perf_counter()
    try:
        for seed in seeds:
            obs = env.reset(seed)
            gold_len += len(env.gold)  # type: ignore[attr-defined]
            n, randomised, stuck, last_random = 0, False, False, False
            for n in range(1, args.max_steps + 1):  # noqa: B007 - n is used after the loop
                last_random = rng.random() < args.epsilon
                if last_random:
                    action = rng.choice(obs.valid_actions)
                    randomised = True
                else:
                    t0 = time.perf_counter()
                    action = env.expert_action()
                    secs += time.perf_counter() - t0
                    calls += 1
                    if env.last_plan is None:  # type: ignore[attr-defined]
                        stuck = True
                obs = env.step(action)
                if obs.done:
                    break
            steps += n
            if obs.success:
                wins += 1
                win_steps += n
            elif obs.done and last_random and obs.info.get("failure"):
                causes["random_ended"] += 1
                random_enders[action.split(" ")[0]] += 1
            elif stuck and randomised:
                causes["unrecoverable"] += 1
            else:
                causes["expert"] += 1
                expert_failed.append(seed)
                if len(traces) < 10:
                    traces.append({"seed": seed, "actions": list(env.history)})  # type: ignore[attr-defined]
            if args.progress:
                print(seed, "won" if obs.success else "lost", n, file=sys.stderr, flush=True)
    finally:
        env.close()
    k = len(seeds)
    result: dict[str, object] = {
        "suite": args.suite,
        "game_params": env.game_params,  # type: ignore[attr-defined]
        "fold": args.fold,
        "seeds": f"{seeds[0]}-{seeds[-1]}",
        "episodes": k,
        "epsilon": args.epsilon,
        "max_steps": args.max_steps,
        "success": wins / k,
        "mean_steps": steps / k,
        "mean_steps_won": win_steps / max(wins, 1),
        "mean_gold_len": gold_len / k,
        "expert_calls": calls,
        "expert_ms_per_call": 1e3 * secs / max(calls, 1),
        "failures": causes,
        "random_enders": dict(random_enders),
        "expert_failed_seeds": expert_failed,
        "expert_failed_traces": traces,
        "wall_s": time.perf_counter() - t_start,
    }
    text = json.dumps(result)
    print(text)
    if args.json_out is not None:
        args.json_out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
