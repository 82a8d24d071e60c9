"""TextWorldExpress environments (real games, ~1 ms per step) and the expert stand-in."""

from __future__ import annotations

import random

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langgraph_hera.envs import SUITES, ExpertChatModel, fold_seeds, make_env
from langgraph_hera.envs.twx import fold_of

pytest.importorskip("textworld_express")


@pytest.fixture(scope="module")
def twc():
    env = make_env("twc")
    yield env
    env.close()


def test_bad_suite_and_fold_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown suite 'nope'.*twc"):
        make_env("nope")
    with pytest.raises(ValueError, match=r"unknown fold 'val'"):
        fold_seeds("val")
    with pytest.raises(ValueError, match=r"seed 5000 is in no fold"):
        fold_of(5000)
    assert fold_of(10003) == "dev" and fold_of(20999) == "test" and fold_of(0) == "train"


def test_reset_step_and_valid_actions(twc) -> None:
    first = twc.reset(10000)
    assert "task" in first.task.lower() and first.valid_actions == sorted(first.valid_actions)
    assert not first.done and first.score == 0.0
    bad = twc.step("fly to the moon")
    assert not bad.done and bad.reward == 0.0
    assert twc.history == ["fly to the moon"]
    # Same seed, same game: deterministic.
    assert twc.reset(10000).observation == first.observation


def test_expert_wins_from_the_start(twc) -> None:
    for seed in (10001, 10002):
        obs = twc.reset(seed)
        for _ in range(40):
            obs = twc.step(twc.expert_action())
            if obs.done:
                break
        assert obs.success, f"expert failed seed {seed}"


def test_expert_recovers_after_random_detours(twc) -> None:
    rng = random.Random(7)
    wins = 0
    for seed in range(10010, 10016):
        obs = twc.reset(seed)
        for i in range(60):
            # Four random actions first: the agent is off the gold path before the expert acts.
            action = rng.choice(obs.valid_actions) if i < 4 else twc.expert_action()
            obs = twc.step(action)
            if obs.done:
                break
        wins += obs.success
    assert wins == 6


def test_expert_query_does_not_move_the_episode(twc) -> None:
    twc.reset(10020)
    twc.step(sorted(a for a in twc.valid_actions if a.startswith("move"))[0])
    before = (list(twc.history), list(twc.valid_actions))
    twc.expert_action()
    assert (list(twc.history), list(twc.valid_actions)) == before
    after = twc.step("inventory")
    assert "inventory" in after.observation.lower()


def test_expert_chat_model_reports_usage_and_label(twc) -> None:
    twc.reset(10000)
    model = ExpertChatModel(oracle=twc.expert_action)
    reply = model.invoke([SystemMessage("Pick an action."), HumanMessage("Observation: " * 20)])
    assert reply.content == twc.expert_action()
    usage = reply.usage_metadata
    assert usage["input_tokens"] > 20 and usage["output_tokens"] >= 1
    assert reply.response_metadata["stand_in"] == "expert stand-in"


def test_expert_chat_model_epsilon() -> None:
    with pytest.raises(ValueError, match="valid_actions"):
        ExpertChatModel(oracle=lambda: "a", epsilon=0.5)
    model = ExpertChatModel(
        oracle=lambda: "gold", valid_actions=lambda: ["x", "y"], epsilon=1.0, seed=0
    )
    assert {model.invoke("hi").content for _ in range(10)} <= {"x", "y"}


def test_all_suites_start() -> None:
    for suite in SUITES:
        env = make_env(suite)
        try:
            assert env.reset(20000).valid_actions
        finally:
            env.close()
