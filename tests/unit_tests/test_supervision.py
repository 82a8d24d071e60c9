"""Supervised agents (PEVR / EVA): graph logic with scripted models and the counter game.

The real-model runs (edge executor on vLLM) are in tests/integration_tests/test_supervision.py.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import collect_runs

from langgraph_hera import (
    HeraContext,
    create_supervised_agent,
    create_supervised_text_agent,
    create_supervisor_node,
)
from langgraph_hera.evaluation.runner import EpisodeRunner, summarize, verifier_errors
from langgraph_hera.policies import RoutingPolicy
from langgraph_hera.routing.features import executor_context
from langgraph_hera.supervision import ExpertSupervisor, parse_verdict, transcript
from langgraph_hera.supervision.prompts import request_kind, verify_prompt
from tests.conftest import CounterEnv

OFF = json.dumps({"on_track": False, "reason": "looping"})
ON = json.dumps({"on_track": True, "reason": "fine"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ON, (True, "fine", True)),
        ('Sure! {"on_track": false, "reason": "stuck"} hope it helps', (False, "stuck", True)),
        ('{"on_track": "no", "reason": "r"}', (False, "r", True)),
        ("on_track: yes - the plan is followed", (True, "the plan is followed", True)),
        ("On track: NO, it repeats", (False, "it repeats", True)),
    ],
)
def test_parse_verdict_accepts_json_and_plain_lines(text, expected) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text", ["", "I think so", '{"on_track": "maybe"}', None, "{broken"])
def test_unparsable_verdict_counts_as_on_track_and_says_so(text) -> None:
    on_track, reason, parsed = parse_verdict(text)
    assert on_track is True and parsed is False
    assert reason.startswith("unparsable verifier output")


def test_invalid_mode_and_interval_are_clear_errors(scripted) -> None:
    with pytest.raises(ValueError, match=r"mode must be one of \['pevr', 'eva'\], got 'pver'"):
        create_supervisor_node(scripted(), mode="pver")
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="verify_every"):
            create_supervisor_node(scripted(), verify_every=bad)
    with pytest.raises(ValueError, match="trigger policy"):
        create_supervisor_node(scripted(), verify_every=None)
    with pytest.raises(ValueError, match="side must be one of"):
        create_supervisor_node(scripted(), side="moon")
    with pytest.raises(ValueError, match="max_turns must be >= 1, got 0"):
        create_supervised_agent(executor=scripted(), supervisor=scripted(), max_turns=0)


# --------------------------------------------------------------------------- tool agents


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def _call(i: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "lookup", "args": {"key": f"k{i}"}, "id": f"c{i}"}])


def test_pevr_tool_agent_plans_verifies_replans_and_resets_context(scripted) -> None:
    executor = scripted(_call(1), _call(2), _call(3), _call(4), "final answer", name="edge-m")
    supervisor = scripted("1. look up k1\n2. answer", OFF, "1. answer now", ON, name="gpt-4o")
    agent = create_supervised_agent(
        executor=executor, supervisor=supervisor, tools=[lookup], mode="pevr", verify_every=2
    )
    out = agent.invoke({"messages": [("user", "find the value")]})
    log = out["supervision_log"]
    assert [(d["step"], d["action"], d["on_track"]) for d in log] == [
        (0, "plan", None),
        (2, "replan", False),
        (4, "verify", True),
    ]
    assert log[1]["reason"] == "looping" and log[1]["trigger"] == "every 2"
    assert log[1]["context_tokens"] == 11  # the executor's last prompt before the reset
    # The reset cut the executor's context: its view starts at the revised plan and the k1/k2
    # exchanges are out of it; the thread itself keeps the user's conversation.
    view = [str(m.content) for m in executor_context(out["messages"])]
    assert view[0].startswith("find the value\n\nRevised plan:\n1. answer now")
    assert not any("value of k1" in t for t in view)
    assert str(out["messages"][0].content) == "find the value"
    assert any("value of k1" in str(m.content) for m in out["messages"])
    assert view[-1] == "final answer" and out["plan"] == "1. answer now"
    assert out["query"] == "find the value"
    targets = [e["target"] for e in out["ledger"]]
    assert targets.count("supervisor") == 4 and targets.count("edge") == 5
    sup_usd = [e["usd"] for e in out["ledger"] if e["target"] == "supervisor"]
    assert all(u > 0 for u in sup_usd)  # priced as the cloud (gpt-4o)
    assert all(e["energy_j"] == 0 for e in out["ledger"] if e["target"] == "supervisor")
    assert [d["target"] for d in out["route_log"]] == ["edge"] * 5


def test_eva_has_no_plan_and_hands_off_summary_and_advice(scripted) -> None:
    executor = scripted(_call(1), _call(2), "done", name="edge-m")
    supervisor = scripted(OFF, "Summary: looked up k1, k2.\nAdvice: answer.", name="gpt-4o")
    agent = create_supervised_agent(
        executor=executor, supervisor=supervisor, tools=[lookup], mode="eva", verify_every=2
    )
    out = agent.invoke({"messages": [("user", "q?")]})
    assert [d["action"] for d in out["supervision_log"]] == ["advise"]
    view = executor_context(out["messages"])
    assert str(view[0].content).startswith("q?\n\nSummary and advice:\nSummary:")
    assert out.get("plan") is None


def test_max_turns_ends_the_run(scripted) -> None:
    executor = scripted(*[_call(i) for i in range(10)])
    agent = create_supervised_agent(
        executor=executor, supervisor=scripted(ON), tools=[lookup], mode="eva", max_turns=3
    )
    out = agent.invoke({"messages": [("user", "q")]})
    assert out["step"] == 3 and executor.calls == 3


def test_unparsable_verdict_lets_the_executor_continue(scripted) -> None:
    supervisor = scripted("I am not sure what you want", name="gpt-4o")
    agent = create_supervised_agent(
        executor=scripted(_call(1), "done"),
        supervisor=supervisor,
        tools=[lookup],
        mode="eva",
        verify_every=1,
    )
    out = agent.invoke({"messages": [("user", "q")]})
    (entry,) = out["supervision_log"]
    assert entry["on_track"] is True and entry["parsed"] is False
    assert any("verifier output counted as on track" in e for e in out["errors"])
    assert out["messages"][-1].content == "done"


def test_unreachable_supervisor_is_recorded_and_the_executor_goes_on(scripted) -> None:
    agent = create_supervised_agent(
        executor=scripted(_call(1), _call(2), "done"),
        supervisor=scripted(fail=True, name="gpt-4o"),
        tools=[lookup],
        mode="pevr",
        verify_every=1,
    )
    out = agent.invoke({"messages": [("user", "q")]})
    assert out["messages"][-1].content == "done"
    failed = [e for e in out["ledger"] if e["target"] == "supervisor"]
    assert failed and not any(e["ok"] for e in failed)
    assert "ConnectionError" in failed[0]["error"]
    assert any("supervisor plan failed" in e for e in out["errors"])
    assert all(d["on_track"] in (None, True) for d in out["supervision_log"])


def test_reverse_roles_price_the_executor_and_charge_the_supervisor_energy(scripted) -> None:
    agent = create_supervised_agent(
        executor=scripted(_call(1), "done", name="gpt-4o"),
        supervisor=scripted("1. do it", ON, name="smollm2"),
        tools=[lookup],
        mode="pevr",
        verify_every=1,
        reverse_roles=True,
    )
    out = agent.invoke({"messages": [("user", "q")]})
    sup = [e for e in out["ledger"] if e["target"] == "supervisor"]
    exe = [e for e in out["ledger"] if e["target"] == "cloud"]
    assert sup and all(e["usd"] == 0 and e["energy_j"] > 0 for e in sup)
    assert exe and all(e["usd"] > 0 for e in exe)


def test_supervisor_decisions_are_traced(scripted) -> None:
    agent = create_supervised_agent(
        executor=scripted(_call(1), _call(2), "done"),
        supervisor=scripted("1. a", OFF, "1. b"),
        tools=[lookup],
        mode="pevr",
        verify_every=2,
    )
    with collect_runs() as cb:
        agent.invoke({"messages": [("user", "q")]})
    runs = []
    stack = list(cb.traced_runs)
    while stack:
        run = stack.pop()
        runs.append(run)
        stack.extend(run.child_runs)
    decisions = [r for r in runs if r.name == "supervisor_decision"]
    assert sorted(r.metadata["hera_action"] for r in decisions) == ["plan", "replan"]
    replan = next(r for r in decisions if r.metadata["hera_action"] == "replan")
    assert "hera:replan" in replan.tags and replan.metadata["hera_on_track"] is False


# --------------------------------------------------------------------------- text agents


def _counter_agent(executor, supervisor, **kw):
    return create_supervised_text_agent(
        executor=executor, supervisor=supervisor, track_progress=True, **kw
    )


def test_text_agent_executor_context_grows_until_reset(scripted) -> None:
    env = CounterEnv(goal=100)
    executor = scripted("look")  # never makes progress
    agent = _counter_agent(executor, None)  # monolithic: no supervisor
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=6))
    assert out["step"] == 6 and not out.get("supervision_log")
    # Task + 6 x (action, observation): the whole history is the executor's context.
    assert len(out["messages"]) == 13
    assert [d["policy"] for d in out["route_log"]] == ["supervised-pevr"] * 6


def test_text_agent_pevr_with_expert_supervisor_recovers(scripted) -> None:
    env = CounterEnv(goal=4)

    # The executor dithers until it is given a plan again, then follows the handoff's plan.
    def act(messages):
        first = str(messages[1].content)
        return "inc" if "Revised plan" in first else "look"

    supervisor = ExpertSupervisor(planner=lambda: ["inc"] * 4)
    agent = _counter_agent(scripted(act), supervisor, mode="pevr", verify_every=2)
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=20))
    assert out["success"] is True
    log = out["supervision_log"]
    assert [d["action"] for d in log[:2]] == ["plan", "replan"]
    assert log[1]["reason"].startswith("the executor is repeating itself")
    assert out["context_start"] == 2
    fp, fn, judged = verifier_errors(log, out["trajectory"])
    assert judged >= 1 and fp == 0  # the replan at step 2 was right: no progress was made
    records = out["trajectory"]
    assert [r["expert_distance"] for r in records[:3]] == [4, 4, 3]  # look, look, inc
    stand_in = [e for e in out["ledger"] if e["target"] == "supervisor"]
    assert stand_in and all(e["usd"] > 0 for e in stand_in)


def test_learned_trigger_decides_when_to_verify(scripted) -> None:
    class AtStep3(RoutingPolicy):
        name = "at-step-3"

        def score(self, route_input):
            return 1.0 if route_input.step == 3 else 0.0

    env = CounterEnv(goal=100)
    supervisor = scripted(ON, name="gpt-4o")
    agent = _counter_agent(
        scripted("look"), supervisor, mode="eva", verify_every=None, trigger=AtStep3()
    )
    out = agent.invoke({"seed": 0}, context=HeraContext(env=env, max_steps=6))
    (entry,) = out["supervision_log"]
    assert entry["step"] == 3 and entry["trigger"].startswith("at-step-3")


def test_verifier_errors_against_expert_distance() -> None:
    traj = [
        {"expert_distance_before": 5, "expert_distance": 4},
        {"expert_distance": 4},
        {"expert_distance": 4},
        {"expert_distance": 3},
    ]
    log = [
        {"step": 2, "on_track": False},  # 5 -> 4: progressed, intervention: false positive
        {"step": 3, "on_track": True},  # 4 -> 4: no progress, on track: false negative
        {"step": 4, "on_track": True},  # 4 -> 3: correct
    ]
    assert verifier_errors(log, traj) == (1, 1, 3)
    assert verifier_errors([{"step": 1, "on_track": None}], traj) == (0, 0, 0)


def test_expert_supervisor_rules() -> None:
    sup = ExpertSupervisor(planner=lambda: ["take apple", "go north"])
    looping = "> look\nnothing\n" * 3
    reply = sup.invoke(verify_prompt("eva", "t", looping))
    assert json.loads(str(reply.content))["on_track"] is False
    assert reply.response_metadata["stand_in"] == "expert stand-in"
    assert reply.usage_metadata["input_tokens"] > 0
    ok = sup.invoke(verify_prompt("pevr", "t", "> take apple\nTaken.", plan="1. take apple"))
    assert json.loads(str(ok.content))["on_track"] is True
    with pytest.raises(ValueError, match="unknown request kind"):
        sup.invoke("hello")
    assert request_kind(verify_prompt("pevr", "t", "x")) == "verify-plan"


def test_transcript_keeps_the_latest_steps_within_budget() -> None:
    state = {
        "valid_actions": ["a"],
        "trajectory": [
            {"step": i, "action": f"act{i}", "next_observation": "o" * 50} for i in range(100)
        ],
    }
    text = transcript(state, since=90, max_chars=200)
    assert "act99" in text and "act89" not in text and text.startswith("...")


def test_runner_plays_supervised_episodes_and_summarises(scripted, tmp_path) -> None:
    runner = EpisodeRunner(
        env_factory=lambda: CounterEnv(goal=3),
        edge=scripted("look", "inc"),
        cloud_factory=lambda env: None,
        supervisor_factory=lambda env: ExpertSupervisor(planner=lambda: ["inc"]),
        supervision={"mode": "eva", "verify_every": 2},
        max_steps=12,
        out_dir=tmp_path,
        cloud_is_stand_in=True,
    )
    results = runner.run([1, 2])
    assert [r.policy for r in results] == ["eva-T2", "eva-T2"]
    assert all(r.success and r.verifications >= 1 for r in results)
    s = summarize(results)
    assert s["verifications"] == sum(r.verifications for r in results)
    assert s["max_context_tokens"] == 11 + 3  # ScriptedChat reports 11 in + 3 out
    assert (tmp_path / "episodes.jsonl").exists()
    with pytest.raises(ValueError, match="policy_factory"):
        EpisodeRunner(env_factory=CounterEnv, edge=None, cloud_factory=lambda e: None)


def test_since_reset_executor_sees_the_handoff_and_every_step_since(scripted) -> None:
    seen: list[str] = []

    def act(messages):
        seen.append(str(messages[-1].content))
        return "look"

    supervisor = ExpertSupervisor(planner=lambda: ["inc", "inc"])
    agent = create_supervised_text_agent(
        executor=scripted(act),
        supervisor=supervisor,
        mode="pevr",
        verify_every=3,
        executor_prompt_layout="since-reset",
    )
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=9), max_steps=5))
    assert out["context_start"] == 3  # replanned at step 3 (the executor kept looking)
    assert seen[0].startswith("Task: reach 9\nPlan:\n1. inc\n2. inc")
    assert seen[2].count("> look") == 2  # all steps since the start, not a window
    assert seen[3].count("> look") == 0  # the reset cut them
    with pytest.raises(ValueError, match=r"executor_prompt_layout must be one of .*'x'"):
        create_supervised_text_agent(
            executor=scripted(), supervisor=None, executor_prompt_layout="x"
        )


def test_supervision_points_with_a_trigger_policy() -> None:
    from langgraph_hera.evaluation.supervision_bench import supervision_points

    (point,) = supervision_points(
        ["eva"], [16], monolithic=False, trigger="threshold:scorer=stuck:threshold=0.7"
    )
    assert point.label == "eva-T16-trig-threshold_scorer_stuck_threshold_0.7"
    trigger = point.supervision()["trigger"]
    assert trigger.name == "threshold" and trigger.threshold == 0.7
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        supervision_points(["eva"], [4], trigger="nope")


def test_cloud_supervisor_retries_are_recorded(scripted) -> None:
    from langgraph_hera.models.retry import RetryPolicy

    class Flaky(type(scripted())):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            if self.calls == 0:
                self.calls += 1
                raise ConnectionError("supervisor blip")
            return super()._generate(messages, stop, run_manager, **kwargs)

    supervisor = Flaky(script=[ON], name_="gpt-4o")
    agent = create_supervised_text_agent(
        executor=scripted("look"), supervisor=supervisor, mode="eva", verify_every=2
    )
    ctx = HeraContext(env=CounterEnv(goal=9), max_steps=3, cloud_retry=RetryPolicy(base_delay=0.01))
    out = agent.invoke({"seed": 0}, context=ctx)
    (entry,) = out["supervision_log"]
    assert entry["on_track"] is True and entry["parsed"] is True
    notes = [e for e in out["errors"] if "supervisor attempt 1 failed" in e]
    assert len(notes) == 1 and "ConnectionError: supervisor blip" in notes[0]


def test_a_chat_thread_keeps_its_turns_through_resets_and_each_turn_gets_a_plan(scripted) -> None:
    """PEVR on a multi-turn chat: every request is planned afresh, the executor sees only its
    view (from the latest handoff), and the thread keeps every user message and answer."""
    from langgraph.checkpoint.memory import InMemorySaver

    seen: list[list[str]] = []

    def answer(messages):
        seen.append([str(m.content) for m in messages])
        return f"answer {len(seen)}"

    executor = scripted(answer, name="edge-m")
    supervisor = scripted("1. answer", name="gpt-4o")
    agent = create_supervised_agent(
        executor=executor,
        supervisor=supervisor,
        mode="pevr",
        verify_every=4,
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "chat"}}
    for k in range(3):
        out = agent.invoke({"messages": [("user", f"request {k}")]}, config)
    users = [m.content for m in out["messages"] if m.type == "human" and not is_handoff(m)]
    assert users == ["request 0", "request 1", "request 2"]
    assert [m.content for m in out["messages"] if m.type == "ai"] == [
        "answer 1",
        "answer 2",
        "answer 3",
    ]
    assert [d["action"] for d in out["supervision_log"]] == ["plan"] * 3
    # Each executor call saw its own request's plan only, not the earlier turns.
    assert [len(s) for s in seen] == [1, 1, 1]
    assert all(s[0].startswith(f"request {k}\n\nPlan:") for k, s in enumerate(seen))


def is_handoff(message) -> bool:
    from langgraph_hera.routing.features import HANDOFF_KEY

    return bool(message.additional_kwargs.get(HANDOFF_KEY))
