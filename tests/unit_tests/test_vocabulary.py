"""One vocabulary, typed: the renamed keywords (old names warn and still work), the state
schema checks of `add_router` and the prebuilt factories, the public helpers of routing."""

from __future__ import annotations

import operator
from typing import Annotated, get_args

import pytest
from langgraph.graph import MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_hera import (
    HeraContext,
    HeraState,
    RoutingState,
    TextEnvState,
    add_router,
    create_hera_agent,
    create_supervised_agent,
    create_supervised_text_agent,
    create_text_agent,
)
from langgraph_hera.envs import ExpertChatModel
from langgraph_hera.routing.decoding import EDGE_DECODINGS, EdgeDecoding, constrained
from langgraph_hera.routing.nodes import (
    PROMPT_LAYOUTS,
    PromptLayout,
    clip_text,
    create_action_node,
    normalize_action,
)
from langgraph_hera.supervision.node import MODES, SupervisionMode
from tests.conftest import CounterEnv

# ------------------------------------------------------------------------ one name per knob


def test_literals_list_their_values() -> None:
    assert get_args(EdgeDecoding) == EDGE_DECODINGS == ("choice", "rank", "free")
    assert (
        get_args(PromptLayout)
        == PROMPT_LAYOUTS
        == (
            "window",
            "messages",
            "since-reset",
            "episode",
        )
    )
    assert get_args(SupervisionMode) == MODES == ("pevr", "eva")


@pytest.mark.parametrize("old", [True, "choice", False, "free"])
def test_create_text_agent_constrain_edge_is_a_deprecated_alias(scripted, old) -> None:
    with pytest.warns(DeprecationWarning, match=r"constrain_edge=.*use edge_decoding="):
        agent = create_text_agent(edge=scripted("inc"), cloud=scripted("inc"), constrain_edge=old)
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=2), max_steps=4))
    assert out["success"] is True


def test_bad_edge_decoding_names_the_allowed_values(scripted) -> None:
    with pytest.raises(ValueError, match=r"edge_decoding must be one of .*'beam'"):
        create_text_agent(edge=scripted(), cloud=scripted(), edge_decoding="beam")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'constrian_edge'"):
        create_text_agent(edge=scripted(), cloud=scripted(), constrian_edge=True)


def test_create_action_node_old_names_warn(scripted) -> None:
    with pytest.warns(DeprecationWarning, match=r"constrain=.*edge_decoding"):
        create_action_node(scripted(), target="edge", constrain=False)
    with pytest.warns(DeprecationWarning, match=r"history=.*prompt_layout"):
        create_action_node(scripted(), target="edge", history="messages")
    with pytest.raises(ValueError, match=r"prompt_layout must be one of .*'chat'"):
        create_action_node(scripted(), target="edge", prompt_layout="chat")  # type: ignore[arg-type]


def test_create_supervised_text_agent_old_names_warn(scripted) -> None:
    with pytest.warns(DeprecationWarning, match="constrain_executor"):
        create_supervised_text_agent(executor=scripted(), supervisor=None, constrain_executor=True)
    with pytest.warns(DeprecationWarning, match="executor_history"):
        create_supervised_text_agent(
            executor=scripted(), supervisor=None, executor_history="since-reset"
        )


def test_supervision_points_old_name_warns() -> None:
    from langgraph_hera.evaluation.supervision_bench import supervision_points

    with pytest.warns(DeprecationWarning, match="executor_history"):
        points = supervision_points(["eva"], [2], executor_history="since-reset")
    assert all(p.executor_prompt_layout == "since-reset" for p in points)
    assert points[-1].supervision()["executor_prompt_layout"] == "since-reset"


def test_constrained_old_keyword_warns() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    fake = FakeListChatModel(responses=["a"])
    with pytest.warns(DeprecationWarning, match=r"decoding=.*edge_decoding"):
        assert constrained(fake, ["a"], decoding="rank") is fake


def test_expert_chat_model_expert_and_the_old_oracle_name() -> None:
    assert ExpertChatModel(expert=lambda: "inc").invoke("x").content == "inc"
    with pytest.warns(DeprecationWarning, match=r"oracle=.*use expert="):
        old = ExpertChatModel(oracle=lambda: "dec")
    assert old.invoke("x").content == "dec"
    with pytest.warns(DeprecationWarning):
        assert old.oracle() == "dec"


def test_public_helpers_replace_the_private_ones() -> None:
    assert clip_text("a  b\n c", 600) == "a b c"
    assert clip_text("x" * 10, 6) == "xxx..."
    assert normalize_action(' "Take  Apple." ') == "take apple"


# --------------------------------------------------------------------------- schema checks


class _NoLedger(MessagesState):
    route_log: Annotated[list, operator.add]
    errors: Annotated[list, operator.add]


class _PlainLedger(RoutingState):
    ledger: list  # type: ignore[misc]  # no reducer: each step would overwrite the last


class _Mine(RoutingState):
    user_field: str


def test_add_router_names_the_missing_fields(scripted) -> None:
    builder = StateGraph(_NoLedger)
    builder.add_node("tools", ToolNode([]))
    with pytest.raises(ValueError, match=r"_NoLedger lacks the field\(s\) \['ledger'") as exc:
        add_router(builder, policy="always-edge", edge=scripted(), cloud=scripted())
    msg = str(exc.value)
    for field in ("decision", "step", "turn", "halt", "edge_failed_step", "edge_error"):
        assert field in msg
    assert "StateGraph(RoutingState)" in msg and "subclass RoutingState" in msg
    assert "route_log" not in msg.split("lacks")[1]  # only what is missing


def test_add_router_wants_reducers_on_accumulating_fields(scripted) -> None:
    builder = StateGraph(_PlainLedger)
    with pytest.raises(ValueError, match=r"\['ledger'\] .* must accumulate"):
        add_router(builder, policy="always-edge", edge=scripted(), cloud=scripted(), after=None)


def test_add_router_checks_that_after_exists(scripted) -> None:
    builder = StateGraph(RoutingState)
    with pytest.raises(ValueError, match=r"after='tools' names no node .*before add_router"):
        add_router(builder, policy="always-edge", edge=scripted(), cloud=scripted())
    assert set(builder.nodes) == set()  # nothing wired


def test_add_router_accepts_a_subclass(scripted) -> None:
    builder = StateGraph(_Mine)
    add_router(builder, policy="always-edge", edge=scripted("hi"), cloud=scripted(), after=None)
    out = builder.compile().invoke({"messages": [("user", "hello")], "user_field": "kept"})
    assert out["user_field"] == "kept" and out["route_log"][0]["target"] == "edge"


def test_factories_default_to_the_narrowest_schema(scripted) -> None:
    assert create_hera_agent(edge=scripted(), cloud=scripted()).builder.state_schema is RoutingState
    text = create_text_agent(edge=scripted(), cloud=scripted())
    assert text.builder.state_schema is TextEnvState
    sup = create_supervised_agent(executor=scripted(), supervisor=scripted())
    assert sup.builder.state_schema.__name__ == "SupervisionState"
    sup_text = create_supervised_text_agent(executor=scripted(), supervisor=None)
    assert sup_text.builder.state_schema is HeraState


def test_factories_validate_a_user_schema(scripted) -> None:
    agent = create_hera_agent(edge=scripted("ok"), cloud=scripted(), state_schema=_Mine)
    assert agent.invoke({"messages": [("user", "x")], "user_field": "y"})["user_field"] == "y"
    with pytest.raises(ValueError, match=r"create_hera_agent.*lacks the field\(s\) \['ledger'"):
        create_hera_agent(edge=scripted(), cloud=scripted(), state_schema=_NoLedger)
    with pytest.raises(ValueError, match=r"create_text_agent.*'suite'.*'trajectory'"):
        create_text_agent(edge=scripted(), cloud=scripted(), state_schema=RoutingState)
    with pytest.raises(ValueError, match=r"create_supervised_agent.*'supervision_log'"):
        create_supervised_agent(executor=scripted(), supervisor=scripted(), state_schema=_Mine)
    with pytest.raises(ValueError, match=r"create_supervised_text_agent.*'plan'"):
        create_supervised_text_agent(
            executor=scripted(), supervisor=None, state_schema=TextEnvState
        )
