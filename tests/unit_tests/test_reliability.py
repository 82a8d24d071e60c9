"""Budgets (property-based) and fuzzing of the router, the supervisor and the parsers.

Hypothesis drives whole graphs here (scripted models, the counter game): no sequence of routing
decisions or call costs may push the cloud past a cap, and no model output or state may crash
a run; bad outputs end up as recorded errors.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_hera import (
    CostLedger,
    HeraContext,
    create_supervised_agent,
    create_supervised_text_agent,
    create_text_agent,
)
from langgraph_hera.accounting.pricing import GPT_4O
from langgraph_hera.policies import available_policies, get_policy
from langgraph_hera.routing.features import route_input_from_state
from langgraph_hera.routing.nodes import parse_action
from langgraph_hera.routing.router import decide_step
from langgraph_hera.supervision import ExpertSupervisor, parse_verdict
from tests.conftest import CostlyChat, CounterEnv, ScriptedChat, TargetsPolicy

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cost(tokens_in: int, tokens_out: int = 3) -> float:
    return (tokens_in * GPT_4O.input + tokens_out * GPT_4O.output) / 1e6


@FUZZ
@given(
    targets=st.lists(st.sampled_from(["edge", "cloud"]), min_size=1, max_size=12),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    cap_usd=st.one_of(st.none(), st.floats(0, 0.05)),
    cap_calls=st.one_of(st.none(), st.integers(0, 6)),
    with_estimate=st.booleans(),
)
def test_no_decision_sequence_exceeds_the_caps(
    targets, sizes, cap_usd, cap_calls, with_estimate
) -> None:
    cloud = CostlyChat(script=["inc", "look"], name_="gpt-4o", sizes=sizes)
    edge = ScriptedChat(script=["look"], name_="edge")
    estimate = _cost(max(sizes)) if with_estimate else None
    agent = create_text_agent(edge=edge, cloud=cloud, policy=TargetsPolicy(targets))
    ctx = HeraContext(
        env=CounterEnv(goal=50),
        max_steps=15,
        cloud_budget_usd=cap_usd,
        max_cloud_calls=cap_calls,
        cloud_call_usd_estimate=estimate,
    )
    out = agent.invoke({"seed": 0}, {"recursion_limit": 500}, context=ctx)
    ledger = CostLedger(out["ledger"])
    if cap_calls is not None:
        assert ledger.cloud_calls <= cap_calls
    if cap_usd is not None and with_estimate:
        # The guarantee: no call costs more than the estimate in effect.
        assert ledger.cloud_usd <= cap_usd + 1e-12
    elif cap_usd is not None:
        # Default estimate (the dearest call so far): at most one call's overshoot.
        assert ledger.cloud_usd <= cap_usd + _cost(max(sizes)) + 1e-12
    # A blocked step still runs (on the edge) and says why.
    blocked = [d for d in out["route_log"] if "reached" in d["reason"]]
    assert all(d["target"] == "edge" for d in blocked)


@FUZZ
@given(cap_calls=st.integers(0, 5), verdicts=st.lists(st.booleans(), min_size=1, max_size=6))
def test_supervisor_calls_respect_the_call_cap(cap_calls, verdicts) -> None:
    replies = [json.dumps({"on_track": v, "reason": "r"}) for v in verdicts]
    supervisor = ScriptedChat(script=["1. inc", *replies], name_="gpt-4o")
    agent = create_supervised_text_agent(
        executor=ScriptedChat(script=["look", "inc"]), supervisor=supervisor, verify_every=1
    )
    ctx = HeraContext(env=CounterEnv(goal=50), max_steps=10, max_cloud_calls=cap_calls)
    out = agent.invoke({"seed": 0}, {"recursion_limit": 500}, context=ctx)
    assert CostLedger(out["ledger"]).cloud_calls <= cap_calls
    assert supervisor.calls <= cap_calls
    if supervisor.calls == cap_calls and out["step"] > cap_calls:
        assert any("cloud call cap reached" in e for e in out.get("errors", []))


# --------------------------------------------------------------------------- fuzzing

VALID = ["go north", "take apple", "open fridge", "look around"]


@FUZZ
@given(text=st.text(max_size=300), valid=st.lists(st.text(max_size=30), max_size=6))
def test_parse_action_never_crashes_and_valid_means_listed(text, valid) -> None:
    action, ok = parse_action(text, valid)
    assert isinstance(action, str)
    if ok and valid:
        assert action in valid


@FUZZ
@given(text=st.one_of(st.text(max_size=300), st.none(), st.integers()))
def test_parse_verdict_never_crashes(text) -> None:
    on_track, reason, parsed = parse_verdict(text)
    assert isinstance(on_track, bool) and isinstance(reason, str)
    if not parsed:
        assert on_track is True


state_strategy = st.fixed_dictionaries(
    {},
    optional={
        "task": st.text(max_size=200),
        "observation": st.text(max_size=400),
        "last_action": st.text(max_size=50),
        "valid_actions": st.lists(st.text(max_size=30), max_size=10),
        "step": st.integers(0, 10_000),
        "action_repeats": st.integers(0, 100),
        "observation_repeats": st.integers(0, 100),
        "action_valid": st.booleans(),
        "edge_proposal": st.fixed_dictionaries(
            {
                "step": st.integers(0, 5),
                "action": st.text(max_size=30),
                "valid": st.booleans(),
                "logprob": st.one_of(st.none(), st.floats(allow_nan=True)),
            }
        ),
        "route_log": st.lists(
            st.fixed_dictionaries({"target": st.sampled_from(["edge", "cloud"])}), max_size=20
        ),
        "messages": st.lists(st.text(max_size=100).map(AIMessage), max_size=5),
    },
)


@FUZZ
@given(state=state_strategy)
def test_every_registered_policy_decides_on_any_state(state) -> None:
    route_input_from_state(state)
    for name in available_policies():
        if name in ("hera", "hera-scheduler"):
            continue  # covered by their own tests (they load trained files)
        policy = get_policy(name)
        decision, errors, halt = decide_step(policy, state)
        assert decision["target"] in ("edge", "cloud") and halt is None
        assert math.isfinite(decision["latency_ms"])
        # A policy that cannot score the state is recorded and sends the step to the cloud.
        if errors:
            assert decision["target"] == "cloud"


@FUZZ
@given(outputs=st.lists(st.text(max_size=200), min_size=1, max_size=5))
def test_supervisor_survives_any_model_output(outputs) -> None:
    supervisor = ScriptedChat(script=outputs, name_="gpt-4o")
    executor = ScriptedChat(
        script=[
            AIMessage("", tool_calls=[{"name": "noop", "args": {}, "id": "1"}]),
            "done",
        ]
    )
    from langchain_core.tools import tool

    @tool
    def noop() -> str:
        """Do nothing."""
        return "ok"

    for mode in ("pevr", "eva"):
        agent = create_supervised_agent(
            executor=executor, supervisor=supervisor, tools=[noop], mode=mode, verify_every=1
        )
        out = agent.invoke({"messages": [("user", "q")]})
        for entry in out["supervision_log"]:
            if entry["action"] == "verify" and not entry["parsed"]:
                assert any("counted as on track" in e for e in out["errors"])


@FUZZ
@given(prompt=st.text(max_size=500))
def test_expert_supervisor_answers_or_refuses_clearly(prompt) -> None:
    sup = ExpertSupervisor(planner=lambda: ["inc"])
    try:
        reply = sup.invoke(prompt)
    except ValueError as exc:
        assert "unknown request kind" in str(exc)
    else:
        assert isinstance(reply.content, str)


class Garbage(ScriptedChat):
    """Executor that answers with arbitrary text (or nothing)."""

    texts: list[str] = [""]

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        text = self.texts[self.calls % len(self.texts)]
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


@FUZZ
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=6))
def test_text_agent_records_any_executor_output(texts) -> None:
    agent = create_text_agent(edge=Garbage(texts=texts), cloud=ScriptedChat(), policy="always-edge")
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=3), max_steps=6))
    invalid = [r for r in out["trajectory"] if not r["action_valid"]]
    assert len([e for e in out.get("errors", []) if "not a valid action" in e]) == len(invalid)
