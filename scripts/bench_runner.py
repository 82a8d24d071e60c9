"""The plugin's own overhead: routed-runner steps/s against raw environment stepping.

    .venv/bin/python scripts/bench_runner.py --suite twc --episodes 20

Both sides play the same seeds with the expert choosing every action, so the difference is
what the routed graph adds (LangGraph nodes, router, prompts, token counting, trajectory
records, JSONL). The edge and the cloud are both the expert stand-in here; no model runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from langgraph_hera.envs import ExpertChatModel, fold_seeds, make_env
from langgraph_hera.evaluation import EpisodeRunner
from langgraph_hera.policies import get_policy


def raw(suite: str, seeds: list[int], max_steps: int) -> tuple[int, float, float]:
    """Expert actions straight into the environment; returns steps, seconds, expert seconds."""
    env = make_env(suite)
    steps, expert_s = 0, 0.0
    t0 = time.perf_counter()
    try:
        for seed in seeds:
            obs = env.reset(seed)
            for _ in range(max_steps):
                t1 = time.perf_counter()
                action = env.expert_action()
                expert_s += time.perf_counter() - t1
                obs = env.step(action)
                steps += 1
                if obs.done:
                    break
    finally:
        env.close()
    return steps, time.perf_counter() - t0, expert_s


def routed(suite: str, seeds: list[int], max_steps: int, policy: str) -> tuple[int, float]:
    """The same episodes through `EpisodeRunner` (expert on both sides)."""

    def expert(env):
        return ExpertChatModel(
            expert=env.expert_action, valid_actions=lambda: list(env.valid_actions)
        )

    with tempfile.TemporaryDirectory() as tmp:
        # Concurrency 1: the edge model is the expert of the single environment.
        env = make_env(suite)
        runner = EpisodeRunner(
            env_factory=lambda: env,
            edge=expert(env),
            cloud_factory=expert,
            policy_factory=lambda: get_policy(policy),
            max_steps=max_steps,
            concurrency=1,
            out_dir=Path(tmp),
            cloud_is_stand_in=True,
        )
        t0 = time.perf_counter()
        results = runner.run(seeds)
        wall = time.perf_counter() - t0
    return sum(r.steps for r in results), wall


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--suite", default="twc")
    p.add_argument("--fold", default="dev")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=40)
    p.add_argument("--policy", default="random")
    args = p.parse_args()
    seeds = list(fold_seeds(args.fold))[: args.episodes]
    raw(args.suite, seeds[:2], args.max_steps)  # warm the JVM and caches
    r_steps, r_wall, r_expert = raw(args.suite, seeds, args.max_steps)
    g_steps, g_wall = routed(args.suite, seeds, args.max_steps, args.policy)
    print(json.dumps({
        "suite": args.suite, "fold": args.fold, "episodes": len(seeds), "policy": args.policy,
        "raw_steps": r_steps, "raw_steps_per_s": r_steps / r_wall,
        "raw_expert_ms_per_step": 1e3 * r_expert / max(r_steps, 1),
        "routed_steps": g_steps, "routed_steps_per_s": g_steps / g_wall,
        "overhead_ms_per_step": 1e3 * (g_wall / max(g_steps, 1) - r_wall / max(r_steps, 1)),
        "machine": f"{platform.machine()} cores={os.cpu_count()}",
        "date": time.strftime("%Y-%m-%d"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
