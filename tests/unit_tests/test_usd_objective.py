"""Issue 21: the episode prompt layout, USD replay labels and USD calibration."""

from __future__ import annotations

import numpy as np
import pytest

from langgraph_hera import HeraContext, create_text_agent
from langgraph_hera.envs import SUITES, suite_score_kind
from langgraph_hera.policies import AlwaysEdge
from langgraph_hera.routing.nodes import (
    EPISODE_SUCCESS_SYSTEM_PROMPT,
    EPISODE_SYSTEM_PROMPT,
    episode_prompt,
    layout_prompt,
)
from langgraph_hera.training.replay import Deviation, replay_labels
from langgraph_hera.training.usd import (
    CostCurve,
    UsdObjective,
    calibrate_usd,
    calibrate_usd_budget,
    state_cloud_usd,
)
from tests.conftest import CounterEnv


def _state(actions: list[tuple[str, float]], turn: str = "e1") -> dict:
    traj, score = [], 0.0
    for i, (a, delta) in enumerate(actions):
        score += delta
        traj.append({
            "turn": turn, "step": i, "action": a, "next_observation": f"obs after {a}",
            "reward": delta, "game_score": score,
        })  # fmt: skip
    return {
        "turn": turn, "task": "Put the coat in the wardrobe.", "trajectory": traj,
        "observation": "You are in the bedroom.", "valid_actions": ["take coat", "look around"],
        "score": score,
    }  # fmt: skip


def test_episode_prompt_shows_scores_and_actions_done() -> None:
    # The loop: take the coat, put it in the book case, take it again.
    state = _state([
        ("take coat", 1.0), ("put coat in book case", 0.0), ("take coat", 0.0),
        ("put coat in wardrobe", 1.0), ("take coat", -1.0),
    ])  # fmt: skip
    system, human = episode_prompt(state)
    assert system.content == EPISODE_SYSTEM_PROMPT
    text = human.content
    assert "Score so far: 1 " in text
    assert "Step 1: > take coat\nobs after take coat\nScore: 1 (+1)" in text
    step2 = "Step 2: > put coat in book case\nobs after put coat in book case\nScore: 1 (no change)"
    assert step2 in text
    assert "Step 5: > take coat\nobs after take coat\nScore: 1 (-1)" in text
    assert (
        "Progress made (each raised the score to a new best; keep it, do not undo it): "
        "take coat; put coat in wardrobe"
    ) in text
    assert "Lowered the score (undid progress; avoid): take coat" in text
    assert "Changed nothing: put coat in book case; take coat" in text
    assert "loop" not in text
    assert text.endswith("Valid actions: take coat | look around\nAction:")
    assert layout_prompt(state, "episode") == [system, human]


def test_episode_prompt_warns_of_loops_and_stalls() -> None:
    steps = [("take coat", 1.0), ("put coat in basket", 1.0)]
    steps += [("take coat", -1.0), ("put coat in basket", 1.0)] * 3
    text = episode_prompt(_state(steps))[-1].content
    assert "going round in a loop (take coat, put coat in basket, again and again)" in text
    assert "not reached a new best for 6 steps (best 2 at step 2)" in text


def test_episode_prompt_summarises_long_episodes() -> None:
    state = _state([(f"go {i}", float(i % 3 == 0)) for i in range(14)])
    text = episode_prompt(state, full_steps=4)[-1].content
    assert "Earlier steps (1-10), action and score change:" in text
    assert "1. go 0 (+1); 2. go 1 (no change)" in text
    assert text.count("Step ") == 4 and "Step 14: > go 13" in text
    assert "obs after go 0" not in text  # only the last 4 observations in full


def test_episode_prompt_without_game_score_uses_rewards() -> None:
    state = _state([("a", 1.0), ("b", 0.0)])
    for r in state["trajectory"]:
        del r["game_score"]
    del state["score"]
    assert "Score so far: 1" in episode_prompt(state)[-1].content


def _success_state(actions: list[str], observations: list[str]) -> dict:
    """An ALFWorld-style state: the score is 0 until the task is won."""
    traj, before = [], "You are in the middle of a room."
    for i, (a, after) in enumerate(zip(actions, observations, strict=True)):
        traj.append({
            "turn": "e1", "step": i, "action": a, "observation": before,
            "next_observation": after, "reward": 0.0, "game_score": 0.0,
        })  # fmt: skip
        before = after
    return {
        "turn": "e1", "task": "put a clean mug in coffeemachine.", "trajectory": traj,
        "observation": before, "valid_actions": ["look", "go to sinkbasin 1"], "score": 0.0,
        "score_kind": "success",
    }  # fmt: skip


def test_episode_prompt_of_a_success_score_has_no_score_progress() -> None:
    # The Qwen2.5-Coder-1.5B ALFWorld run: 8 steps, nothing could raise the binary score.
    actions = [f"go to cabinet {i}" for i in range(1, 9)]
    state = _success_state(actions, [f"The cabinet {i} is closed." for i in range(1, 9)])
    system, human = episode_prompt(state)
    text = human.content
    assert system.content == EPISODE_SUCCESS_SYSTEM_PROMPT
    assert "rises with each part" not in text
    assert "Score: " not in text  # no per-step score lines
    assert "new best" not in text and "no change" not in text
    assert "Changed nothing" not in text and "Nothing new" not in text  # every step was new
    assert "Step 8: > go to cabinet 8\nThe cabinet 8 is closed." in text
    assert text.endswith("Valid actions: look | go to sinkbasin 1\nAction:")
    # The progress layout of the same trajectory is what misled the model.
    progress = episode_prompt({**state, "score_kind": "progress"})[-1].content
    assert "rises with each part" in progress and "not reached a new best for 8" in progress


def test_a_recorded_state_is_priced_with_the_system_prompt_of_its_layout() -> None:
    """`state_cloud_usd` prices a recorded prompt with the system prompt it was sent with: the
    success-score episode layout's is another text than the progress layout's."""
    from langgraph_hera.accounting.pricing import GPT_4O
    from langgraph_hera.routing.action_prompts import (
        ACTION_SYSTEM_PROMPT,
        EPISODE_SYSTEM_PROMPT,
        system_prompt_for,
    )
    from langgraph_hera.training.usd import REPLY_TOKENS, call_tokens, state_cloud_usd

    state = _success_state(["look"], ["You see a cabinet 1."])
    success = episode_prompt(state)[-1].content
    progress = episode_prompt({**state, "score_kind": "progress"})[-1].content
    assert system_prompt_for(success) == EPISODE_SUCCESS_SYSTEM_PROMPT
    assert system_prompt_for(progress) == EPISODE_SYSTEM_PROMPT
    assert system_prompt_for("Task: x\nObservation: y\nAction:") == ACTION_SYSTEM_PROMPT
    n_in = call_tokens(success, EPISODE_SUCCESS_SYSTEM_PROMPT)
    assert n_in != call_tokens(success, EPISODE_SYSTEM_PROMPT)  # the two texts differ in size
    want = (n_in * GPT_4O.input + REPLY_TOKENS * GPT_4O.output) / 1e6
    assert state_cloud_usd({"prompt": success}, GPT_4O) == pytest.approx(want)


def test_episode_prompt_of_a_success_score_warns_from_repeated_observations() -> None:
    actions = ["go to cabinet 1", "open cabinet 1", "look"] + ["go to cabinet 1"] * 7
    after = ["The cabinet 1 is closed.", "You open the cabinet 1. It is empty."]
    after += ["You are facing the cabinet 1."] + ["Nothing happens."] * 7
    text = episode_prompt(_success_state(actions, after), full_steps=4)[-1].content
    assert "Earlier steps (1-6), actions:\n1. go to cabinet 1; 2. open cabinet 1; 3. look" in text
    assert "Changed nothing (the observation was one already seen): go to cabinet 1" in text
    assert "going round in a loop (go to cabinet 1, again and again)" in text
    assert "Nothing new has been seen for 6 steps (the last new observation at step 4)" in text
    assert "not reached a new best" not in text


def test_episode_prompt_without_a_score_kind_is_the_progress_layout() -> None:
    state = _success_state(["look"], ["You see a mug."])
    del state["score_kind"]
    system, human = episode_prompt(state)
    assert system.content == EPISODE_SYSTEM_PROMPT
    assert "Score so far: 0 (it rises with each part of the task done)" in human.content
    assert "Score: 0 (no change)" in human.content


def test_every_suite_declares_what_its_score_means() -> None:
    kinds = {suite: suite_score_kind(suite) for suite in SUITES}
    assert kinds == {
        "twc": "progress", "cookingworld": "progress", "coin": "progress", "alfworld": "success",
    }  # fmt: skip


class _WonOrNotEnv(CounterEnv):
    score_kind = "success"


@pytest.mark.parametrize(
    ("env", "kind"), [(CounterEnv(goal=2), "progress"), (_WonOrNotEnv(2), "success")]
)
def test_the_env_node_passes_the_score_kind_to_the_episode_prompt(scripted, env, kind) -> None:
    agent = create_text_agent(
        edge=scripted("look", "inc", "inc", name="edge"), cloud=scripted("inc", name="cloud"),
        policy=AlwaysEdge(), prompt_layout="episode",
    )  # fmt: skip
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=5))
    assert out["score_kind"] == kind
    last = out["trajectory"][-1]["prompt"]
    assert ("Score: 0 (no change)" in last) is (kind == "progress")
    assert ("rises with each part" in last) is (kind == "progress")


def _dev(step: int, k_c: int | None, k_e: int | None) -> Deviation:
    return Deviation(0, 0, step, "e", "c", k_c, k_e)


def test_usd_objective() -> None:
    flat = CostCurve([0.001] * 10)
    obj = UsdObjective(step_cost_usd=0.0)
    assert not obj.needs_cloud(_dev(0, 5, 4), flat)  # the edge made the cloud's progress
    assert not obj.needs_cloud(_dev(0, 5, 5), flat)  # a wasted step costs nothing here: tie
    assert UsdObjective().needs_cloud(_dev(0, 5, 5), flat)  # ... but a step's cost breaks it
    assert obj.needs_cloud(_dev(0, 5, 6), flat)  # one more cloud call
    assert obj.needs_cloud(_dev(0, 5, None), flat)  # fatal: the failure penalty
    assert not obj.needs_cloud(_dev(0, None, 3), flat)  # nothing wins either way
    # Growing prompts: a wasted step costs the extra growth of every later cloud call.
    growing = CostCurve([0.001 * (i + 1) for i in range(10)])
    assert obj.needs_cloud(_dev(2, 5, 5), growing)
    # A fatal edge action is worth it only when the cloud costs more than the penalty.
    cheap_failure = UsdObjective(failure_penalty_usd=0.001)
    assert not cheap_failure.needs_cloud(_dev(0, 5, None), flat)
    # Edge proposals on cloud steps are counted (edge-first routing).
    priced_edge = UsdObjective(step_cost_usd=0.0, edge_usd_per_call=0.01)
    assert priced_edge.needs_cloud(_dev(0, 5, 5), flat)  # the wasted step's edge call
    # The edge made progress but costs more than a cloud call: the cloud, unless every cloud
    # step pays an edge proposal anyway (edge-first).
    edge_after = UsdObjective(step_cost_usd=0.0, edge_usd_per_call=0.01, edge_first=False)
    assert edge_after.needs_cloud(_dev(0, 5, 4), flat)
    assert not priced_edge.needs_cloud(_dev(0, 5, 4), flat)
    with pytest.raises(ValueError, match="failure_penalty_usd must be >= 0"):
        UsdObjective(failure_penalty_usd=-1)


def test_cost_curve_extrapolates() -> None:
    c = CostCurve([1.0, 2.0, 3.0])
    assert [c(i) for i in range(5)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert CostCurve([3.0, 1.0])(5) == 1.0 and CostCurve([3.0, 1.0]).growth == 0.0
    assert CostCurve([1.0, 2.0, 3.0]).ahead(0, 2) == 3.0
    assert CostCurve([])(3) == 0.0


def test_state_cloud_usd() -> None:
    assert state_cloud_usd({"target": "cloud", "usd": 0.002, "prompt": "x"}) == 0.002
    edge = state_cloud_usd({"target": "edge", "usd": 0.0, "prompt": "Task: t\nObservation: o"})
    longer = state_cloud_usd({"target": "edge", "prompt": "Task: t\nObservation: " + "o " * 500})
    assert 0 < edge < longer
    assert state_cloud_usd({"target": "edge"}) == 0.0


def test_usd_calibration() -> None:
    scores, usd = [0.9, 0.8, 0.7, 0.1], [3.0, 1.0, 1.0, 5.0]
    # Half of the 10 USD: the top two states cost 4, the top three 5.
    assert calibrate_usd(scores, usd, share=0.5) == 0.7
    assert calibrate_usd_budget(scores, usd, 4.5) == 0.8
    assert calibrate_usd_budget(scores, usd, 2.0) > 0.9  # even the first is over budget
    assert calibrate_usd_budget(scores, usd, 100) == 0.1
    with pytest.raises(ValueError, match="exactly one"):
        calibrate_usd(scores, usd)


class _NoEnv:
    def __call__(self):  # pragma: no cover - deviations are given
        raise AssertionError


def _records() -> tuple[list[dict], list[Deviation]]:
    recs, devs = [], []
    for t in range(6):
        recs.append({
            "suite": "twc", "seed": 0, "policy": "always-cloud", "step": t, "task": "t",
            "observation": "o", "valid_actions": ["a", "b"], "target": "cloud",
            "action": "a", "cloud_action": "a", "edge_action": "a" if t % 2 else "b",
            "agree": bool(t % 2), "usd": 0.001 * (t + 1), "prompt": "Task: t",
        })  # fmt: skip
    # Per disagreeing state: wasted (k_e = k_c), shorter, fatal.
    devs = [_dev(0, 6, 6), _dev(2, 4, 3), _dev(4, 2, None)]
    return recs, devs


@pytest.mark.parametrize(("lam", "step_cost"), [(0.05, 0.01), (0.0, 0.0), (0.2, 0.0)])
def test_steps_objective_reproduces_the_old_labels(lam, step_cost) -> None:
    recs, devs = _records()
    rl = replay_labels(recs, _NoEnv(), lam=lam, step_cost=step_cost, deviations=devs)
    # Today's rule, state by state: agreed -> 0, else `Deviation.needs_cloud(lam, step_cost)`.
    by_state = [devs[0], None, devs[1], None, devs[2], None]
    old = [0.0 if d is None else float(d.needs_cloud(lam, step_cost)) for d in by_state]
    assert rl.labels.tolist() == old
    explicit = replay_labels(
        recs, _NoEnv(), lam=lam, step_cost=step_cost, deviations=devs, objective="steps"
    )
    assert explicit.labels.tolist() == rl.labels.tolist()


def test_usd_objective_labels_and_costs() -> None:
    recs, devs = _records()
    rl = replay_labels(recs, _NoEnv(), deviations=devs, objective="usd")
    # wasted step -> cloud (growing prompts), shorter way -> edge, fatal -> cloud
    assert rl.labels.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert np.allclose(rl.usd, [0.001 * (t + 1) for t in range(6)])
    with pytest.raises(ValueError, match="objective must be one of"):
        replay_labels(recs, _NoEnv(), deviations=devs, objective="joules")  # type: ignore[arg-type]
