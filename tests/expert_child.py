"""Child process of the expert-determinism test: plays the expert on some seeds, prints JSON.

``python expert_child.py SUITE:SEED [SUITE:SEED ...]`` prints one JSON object: ``"suite:seed"``
-> the episode's steps, each ``[observation, valid actions, action, window prompt]``. The test
runs it under different ``PYTHONHASHSEED`` values and compares the output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langgraph_hera.envs import ExpertChatModel, make_env  # noqa: E402
from langgraph_hera.routing.action_prompts import action_prompt  # noqa: E402

MAX_STEPS = 40


def play(env: Any, seed: int) -> list[list[Any]]:
    """The expert stand-in's episode of ``seed``, as a routed episode's cloud would play it."""
    cloud = ExpertChatModel(expert=env.expert_action)
    obs = env.reset(seed)
    steps: list[list[Any]] = []
    trajectory: list[dict[str, Any]] = []
    for _ in range(MAX_STEPS):
        state = {
            "task": obs.task,
            "observation": obs.observation,
            "valid_actions": obs.valid_actions,
            "trajectory": trajectory,
        }
        prompt = action_prompt(state)
        action = str(cloud.invoke(prompt).content)
        steps.append([obs.observation, obs.valid_actions, action, prompt[-1].content])
        nxt = env.step(action)
        trajectory.append({"action": action, "next_observation": nxt.observation})
        obs = nxt
        if obs.done:
            break
    return steps


def main(args: list[str]) -> None:
    out: dict[str, list[list[Any]]] = {}
    envs: dict[str, Any] = {}
    try:
        for arg in args:
            suite, seed = arg.split(":")
            if suite not in envs:
                envs[suite] = make_env(suite)
            # Twice in one process too: a second reset of the seed must play the same episode.
            first = play(envs[suite], int(seed))
            again = play(envs[suite], int(seed))
            out[arg] = first if first == again else [["differs within a process"], first, again]
    finally:
        for env in envs.values():
            env.close()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
