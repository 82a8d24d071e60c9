"""The ALFWorld suite: offline game generation, ALFWorld text, and the planner expert."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from langgraph_hera.envs.alfworld import (
    TASK_TYPES,
    AlfWorldEnv,
    default_cache_dir,
    game_file,
    generate_game,
    set_textworld_speedups,
)
from langgraph_hera.envs.base import FOLD_SEEDS, TextEnv

#: Six consecutive dev seeds: one of each task type (``seed % 6``).
DEV_SIX = list(range(10000, 10006))
NOOPS = ("help", "inventory", "look", "examine")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    pytest.importorskip("textworld")
    pytest.importorskip("fast_downward")
    pytest.importorskip("alfworld")
    e = AlfWorldEnv(cache_dir=tmp_path_factory.mktemp("alfworld-cache"))
    yield e
    e.close()


def _play_expert(env: AlfWorldEnv, obs, limit: int = 50):
    for _ in range(limit):
        if obs.done:
            break
        action = env.expert_action()
        assert action in obs.valid_actions, (env.seed, action, obs.valid_actions)
        assert env.last_plan is not None and env.last_plan[0] == action
        obs = env.step(action)
    return obs


# -- generation (pure Python) -------------------------------------------------------------------


def test_every_fold_covers_the_six_task_types() -> None:
    for seeds in FOLD_SEEDS.values():
        types = {generate_game(s).task_type for s in list(seeds)[:6]}
        assert types == set(TASK_TYPES)
    assert [generate_game(s).task_type for s in DEV_SIX] == [TASK_TYPES[s % 6] for s in DEV_SIX]


def test_generation_is_deterministic_and_alfworld_like() -> None:
    for seed in range(20000, 20012):
        a, b = generate_game(seed), generate_game(seed)
        assert a == b
        assert a.task.endswith(".") and a.target.lower() in a.task
        assert a.walkthrough and a.walkthrough[0].startswith("go to ")
        problem = a.pddl_problem()
        assert "(:domain alfred)" in problem and "(canContain " in problem
        assert "(:goal (and " in problem
    texts = {generate_game(s).task for s in range(10000, 10060)}
    assert len(texts) > 40  # varied scenes and tasks
    look = generate_game(10003)
    assert look.task_type == "look_at_obj_in_light"
    assert look.toggle in {"DeskLamp", "FloorLamp"} and look.toggle.lower() in look.task


def test_cache_dir_honours_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "langgraph_hera" / "alfworld"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "langgraph_hera" / "alfworld"


# -- playing (TextWorld's PDDL backend) ----------------------------------------------------------


def test_protocol_text_and_invalid_actions(env: AlfWorldEnv) -> None:
    assert isinstance(env, TextEnv) and env.suite == "alfworld"
    obs = env.reset(10005)  # heat
    assert obs.task == generate_game(10005).task and obs.task.startswith(("put a hot", "heat"))
    assert obs.observation.startswith("You are in the middle of a room.")
    assert f"Your task is to: {obs.task}" in obs.observation
    assert obs.valid_actions == sorted(obs.valid_actions)
    assert "go to microwave 1" in obs.valid_actions and "inventory" in obs.valid_actions
    assert not obs.done and obs.score == 0.0 and obs.info["task_type"] == TASK_TYPES[10005 % 6]
    bad = env.step("fly to the moon")
    assert bad.observation == "Nothing happens." and not bad.done and bad.reward == 0.0
    assert env.history == ["fly to the moon"]
    arrive = env.step("go to microwave 1")
    assert arrive.observation.startswith("You arrive at microwave 1.")
    assert "open microwave 1" in arrive.valid_actions


def test_unknown_seed_names_the_folds(env: AlfWorldEnv) -> None:
    with pytest.raises(ValueError, match=r"seed 5000 is in no fold.*train 0-999.*dev 10000-10999"):
        env.reset(5000)


def test_same_seed_same_game(env: AlfWorldEnv, tmp_path: Path) -> None:
    first = env.reset(10002)
    again = env.reset(10002)
    assert (again.task, again.observation, again.valid_actions) == (
        first.task,
        first.observation,
        first.valid_actions,
    )
    # A fresh cache generates the same file.
    fresh = json.loads(game_file(10002, tmp_path).read_text())
    cached = json.loads(game_file(10002, env.cache_dir).read_text())
    assert fresh == cached and fresh["task"] == first.task


@pytest.mark.parametrize("seed", DEV_SIX)
def test_expert_solves_each_task_type(env: AlfWorldEnv, seed: int) -> None:
    obs = _play_expert(env, env.reset(seed))
    assert obs.success and obs.reward == 1.0 and obs.score == 1.0, (seed, env.history)
    assert env.history == env.gold  # followed the planner's plan from the start
    assert env.replans == 1  # ... made once, then followed
    # The generator's hand-made walkthrough wins too.
    obs = env.reset(seed)
    for action in generate_game(seed).walkthrough:
        assert action in obs.valid_actions, (seed, action)
        obs = env.step(action)
    assert obs.success


@pytest.mark.parametrize("seed", range(10006, 10012))
def test_expert_recovers_after_random_actions(env: AlfWorldEnv, seed: int) -> None:
    rng = random.Random(seed)
    obs = env.reset(seed)
    for _ in range(3):
        world = [a for a in obs.valid_actions if not a.startswith(NOOPS)]
        obs = env.step(rng.choice(world))
    obs = _play_expert(env, obs)
    assert obs.success, (seed, env.history)
    assert env.replans >= 2 or env.history[:3] == env.gold[:3]  # the detour made it replan


def test_detour_mid_plan_and_noop_keep_the_expert_on_track(env: AlfWorldEnv) -> None:
    obs = env.reset(10004)  # clean
    plan = list(env.gold)
    obs = env.step(env.expert_action())
    obs = env.step("look")  # changes nothing: the plan is still followed
    assert env.expert_action() == plan[1] and env.replans == 1
    obs = env.step("inventory")
    obs = _play_expert(env, obs)
    assert obs.success and env.replans == 1


def test_step_limit_and_episode_end(env: AlfWorldEnv) -> None:
    env.max_steps = 3
    try:
        obs = env.reset(10000)
        for _ in range(3):
            obs = env.step("look")
        assert obs.done and not obs.success and obs.info["failure"]
        with pytest.raises(RuntimeError, match="is over"):
            env.step("look")
    finally:
        env.max_steps = 50


def test_speedups_do_not_change_the_text(env: AlfWorldEnv) -> None:
    def trajectory(e: AlfWorldEnv) -> list[object]:
        rng = random.Random(7)
        obs = e.reset(10002)
        out: list[object] = [obs.observation, obs.valid_actions, list(e.gold)]
        for i in range(6):
            action = rng.choice(obs.valid_actions) if i % 2 else e.expert_action()
            obs = e.step(action)
            out.append([action, obs.observation, obs.valid_actions, obs.success])
            if obs.done:
                break
        return out

    fast = trajectory(env)
    set_textworld_speedups(False)
    from textworld.envs.pddl import textgen

    assert textgen.copy_context.__module__ == textgen.__name__  # TextWorld's own again
    slow_env = AlfWorldEnv(cache_dir=env.cache_dir, speedups=False)
    try:
        slow = trajectory(slow_env)
    finally:
        slow_env.close()
        set_textworld_speedups(True)
    assert fast == slow
