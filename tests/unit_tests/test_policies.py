import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langgraph_hera.policies import (
    AlwaysCloud,
    AlwaysEdge,
    RandomPolicy,
    RouteInput,
    TaskLevelRouter,
    ThresholdRouter,
    calibrate_threshold,
    get_policy,
)


def test_always_policies() -> None:
    ri = RouteInput(task="t")
    assert AlwaysEdge().decide(ri)["target"] == "edge"
    d = AlwaysCloud().decide(ri)
    assert d["target"] == "cloud" and d["policy"] == "always-cloud" and d["latency_ms"] >= 0


def test_registry_errors_name_the_value_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'nope'.*always-edge"):
        get_policy("nope")
    assert isinstance(get_policy("random", p=0.2), RandomPolicy)


def _episode(seed: int, steps: int) -> list[RouteInput]:
    return [
        RouteInput(task=f"task {seed}", step=t, observation=f"room {seed}.{t}")
        for t in range(steps)
    ]


def test_random_policy_rate_and_reproducibility() -> None:
    states = [ri for s in range(500) for ri in _episode(s, 8)]
    pol = RandomPolicy(0.3, seed=1)
    targets = [pol.decide(ri)["target"] for ri in states]
    share = targets.count("cloud") / len(targets)
    assert 0.27 < share < 0.33
    pol2 = RandomPolicy(0.3, seed=1)
    assert [pol2.decide(ri)["target"] for ri in reversed(states)] == targets[::-1]
    other = [RandomPolicy(0.3, seed=2).decide(ri)["target"] for ri in states]
    assert other != targets
    assert all(RandomPolicy(0.0).decide(ri)["target"] == "edge" for ri in states[:100])
    assert all(RandomPolicy(1.0).decide(ri)["target"] == "cloud" for ri in states[:100])
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got 1.5"):
        RandomPolicy(1.5)


def test_random_policy_made_per_episode_does_not_repeat_its_draws() -> None:
    # A bench makes one policy per episode. The draws used to restart from the seed each
    # time: every 6-step episode got the same 6 draws, and at p=0.75 all of them (0.84,
    # 0.76, 0.42, 0.26, 0.51, 0.40) were >= 0.25, so every step of every episode went to
    # the cloud (125 of 125 steps on 20 ALFWorld-style test episodes).
    for p in (0.25, 0.5, 0.75):
        runs = [[RandomPolicy(p).decide(ri)["target"] for ri in _episode(s, 6)] for s in range(200)]
        assert len({tuple(r) for r in runs}) > 20
        share = sum(r.count("cloud") for r in runs) / (6 * 200)
        assert abs(share - p) < 0.05, (p, share)


def test_random_policy_draws_do_not_depend_on_other_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    states = [ri for s in range(50) for ri in _episode(s, 6)]
    alone = [RandomPolicy(0.5).decide(ri)["target"] for ri in states]
    shared = RandomPolicy(0.5)
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda ri: shared.decide(ri)["target"], states))
    assert together == alone
    unseeded = RandomPolicy(0.5, seed=None)
    assert (
        0.3 < [unseeded.decide(states[0])["target"] for _ in range(400)].count("cloud") / 400 < 0.7
    )


def test_calibrate_threshold_hits_the_share() -> None:
    scores = [i / 100 for i in range(100)]
    for share in (0.0, 0.1, 0.3, 0.55, 1.0):
        t = calibrate_threshold(scores, share)
        assert sum(s >= t for s in scores) == round(share * 100)
        assert math.isfinite(t)
    with pytest.raises(ValueError, match="cloud_share"):
        calibrate_threshold(scores, -0.1)
    with pytest.raises(ValueError, match="empty"):
        calibrate_threshold([], 0.5)
    # Ties at the boundary: the closest achievable share.
    tied = [0.9] * 3 + [0.5] * 4 + [0.1] * 3
    assert sum(s >= calibrate_threshold(tied, 0.5) for s in tied) == 3


def test_threshold_router_calibrated_on_dev_states() -> None:
    dev = [RouteInput(step=i, edge_logprob=math.log((i + 1) / 51)) for i in range(50)]
    router = ThresholdRouter.calibrated(dev, cloud_share=0.2, scorer="edge-uncertainty")
    share = sum(router.decide(s)["target"] == "cloud" for s in dev) / len(dev)
    assert share == pytest.approx(0.2)
    # The least confident proposals go to the cloud.
    assert router.decide(dev[0])["target"] == "cloud"
    assert router.decide(dev[-1])["target"] == "edge"
    with pytest.raises(ValueError, match="unknown scorer 'x'"):
        ThresholdRouter(scorer="x")


def test_stuck_scorer_rises_with_repetition() -> None:
    r = ThresholdRouter(scorer="stuck")
    calm = r.score(RouteInput(step=1))
    stuck = r.score(RouteInput(step=1, extra={"action_repeats": 3, "observation_repeats": 2}))
    assert stuck > calm


def test_task_level_router_one_decision_per_task_and_fit() -> None:
    fruit = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "yam", "corn", "bean"]
    easy = [f"put the {f} in the fridge {i}" for i in range(2) for f in fruit]
    hard = [
        f"find the {f} coin across rooms with locked doors {i}" for i in range(2) for f in fruit
    ]
    r = TaskLevelRouter().fit(easy + hard, [0] * 20 + [1] * 20)
    assert r.task_score(hard[0]) > 0.5 > r.task_score(easy[0])
    # Same task -> same decision at every step.
    targets = {r.decide(RouteInput(task=hard[3], step=s))["target"] for s in range(10)}
    assert targets == {"cloud"}
    r.calibrate(easy + hard, cloud_share=0.25)
    scores = sorted({r.task_score(t) for t in easy + hard})
    share = sum(r.decide(RouteInput(task=t))["target"] == "cloud" for t in easy + hard) / 40
    if len(scores) == 40:  # no tied scores: the share is exact
        assert share == pytest.approx(0.25)
    assert 0.2 <= share <= 0.3


def test_task_level_router_save_load(tmp_path) -> None:
    r = TaskLevelRouter().fit(["a b", "c d"], [0, 1])
    r.save(tmp_path / "r.json")
    r2 = TaskLevelRouter.load(tmp_path / "r.json")
    assert r2.task_score("c d") == pytest.approx(r.task_score("c d"))
    (tmp_path / "bad.json").write_text('{"policy": "random"}')
    with pytest.raises(ValueError, match="not 'task-level'"):
        TaskLevelRouter.load(tmp_path / "bad.json")


# -- calibrate_threshold: ties, extremes, bad scores (issue 18) ---------------------------------


def _realised(scores: list[float], t: float) -> int:
    return sum(s >= t for s in scores)


def test_calibrate_all_equal_scores_takes_the_nearest_share_cheaper_on_a_tie() -> None:
    flat = [0.5] * 10
    # 30 % asked: 0 % is 0.3 away, 100 % is 0.7 away -> nothing to the cloud.
    t = calibrate_threshold(flat, 0.3)
    assert _realised(flat, t) == 0 and t == 1.5  # above the top score by 1
    assert _realised(flat, calibrate_threshold(flat, 0.7)) == 10  # 0.3 away vs 0.7
    assert _realised(flat, calibrate_threshold(flat, 0.5)) == 0  # 0.5 both ways: cheaper
    assert _realised(flat, calibrate_threshold(flat, 0.0)) == 0
    assert calibrate_threshold(flat, 1.0) == 0.5


def test_calibrate_ties_at_the_boundary_break_toward_the_cheaper_cut() -> None:
    tied = [0.9] * 3 + [0.5] * 4 + [0.1] * 3  # achievable shares 0, 0.3, 0.7, 1.0
    assert _realised(tied, calibrate_threshold(tied, 0.5)) == 3  # 0.2 away both ways
    assert calibrate_threshold(tied, 0.5) == pytest.approx(0.7)  # midway 0.9 / 0.5
    assert _realised(tied, calibrate_threshold(tied, 0.55)) == 7  # 0.15 vs 0.25 away
    # Same kind without ties: 0.375 * 4 = 1.5 cloud steps; 1 and 2 are equally near (the old
    # round() went half-to-even, to 2): the cheaper cut, 1 step, threshold midway 4 / 3.
    assert calibrate_threshold([1.0, 2.0, 3.0, 4.0], 0.375) == 3.5
    # 0.25 of 10 is 2.5 steps: 2.
    assert _realised(list(range(10)), calibrate_threshold(list(range(10)), 0.25)) == 2


def test_calibrate_threshold_on_adjacent_floats_stays_exact() -> None:
    hi = 1.0
    lo = math.nextafter(hi, 0.0)  # no float lies strictly between them
    t = calibrate_threshold([hi, lo], 0.5)
    assert t == hi and _realised([hi, lo], t) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "x", None])
def test_calibrate_rejects_scores_that_are_not_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match=r"scores\[2\] must be a finite number, got") as err:
        calibrate_threshold([0.1, 0.2, bad, 0.4], 0.5)  # type: ignore[list-item]
    assert repr(bad) in str(err.value)


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(
        st.one_of(
            st.sampled_from([0.0, 0.25, 0.5, 1.0]),  # ties
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=40,
    ),
    share=st.floats(0.0, 1.0),
)
def test_calibrate_threshold_realises_the_nearest_achievable_share(
    scores: list[float], share: float
) -> None:
    t = calibrate_threshold(scores, share)
    assert math.isfinite(t)
    n = len(scores)
    achievable = {0} | {_realised(scores, s) for s in scores}
    best = min(achievable, key=lambda c: (abs(Fraction(c, n) - Fraction(share)), c))
    assert _realised(scores, t) == best


def test_stuck_score_sees_a_failed_tool_call_and_the_reason_names_the_signal_used() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from langgraph_hera.policies import ThresholdRouter
    from langgraph_hera.routing.features import route_input_from_messages

    call = AIMessage("", tool_calls=[{"name": "add", "args": {}, "id": "c1"}])
    ok = route_input_from_messages([HumanMessage("q"), call, ToolMessage("3", tool_call_id="c1")])
    bad = route_input_from_messages(
        [
            HumanMessage("q"),
            call,
            ToolMessage("error: missing a", tool_call_id="c1", status="error"),
        ]
    )
    router = ThresholdRouter(0.3)  # edge-uncertainty: no edge proposal in a chat
    assert router.decide(ok)["target"] == "edge"
    decision = router.decide(bad)
    assert decision["target"] == "cloud" and decision["score"] > 0.3
    assert decision["reason"].startswith("stuck (no edge proposal for edge-uncertainty) score")
    with pytest.raises(ValueError, match="threshold must be a number, got 'high'"):
        ThresholdRouter("high")  # type: ignore[arg-type]
