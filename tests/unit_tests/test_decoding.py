"""Constrained action decoding: choice (vLLM / llama.cpp grammar), likelihood ranking, free."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from langgraph_hera.models import edge_chat_model
from langgraph_hera.routing.decoding import (
    check_decoding,
    choice_grammar,
    constrained,
    reply_logprob,
    reply_margin,
)
from tests.fake_openai import FakeOpenAI

CHOICES = ["take apple", "take apple pie", 'say "hi"']


def test_check_decoding_names_the_allowed_values() -> None:
    assert check_decoding(True) == "choice" and check_decoding(False) == "free"
    assert check_decoding("rank") == "rank"
    with pytest.raises(ValueError, match=r"'beam'.*\['choice', 'rank', 'free'\]|beam"):
        check_decoding("beam")


def test_choice_grammar_is_exactly_the_actions_escaped() -> None:
    g = choice_grammar([*CHOICES, "take apple"])  # duplicates once
    assert g == 'root ::= "take apple" | "take apple pie" | "say \\"hi\\""'
    with pytest.raises(ValueError, match="at least one"):
        choice_grammar([])


def _bound_kwargs(model: Any) -> dict[str, Any]:
    return dict(getattr(model, "kwargs", {}))


def test_vllm_gets_structured_outputs_llamacpp_a_grammar() -> None:
    vllm = edge_chat_model("http://127.0.0.1:9/v1", "m")
    kw = _bound_kwargs(constrained(vllm, CHOICES))
    assert kw["extra_body"] == {"structured_outputs": {"choice": CHOICES}} and kw["logprobs"]
    assert kw["top_logprobs"] == 5  # the runner-up, for reply_margin
    llama = edge_chat_model("http://127.0.0.1:9/v1", "m", backend="llamacpp")
    kw = _bound_kwargs(constrained(llama, CHOICES))
    assert kw["extra_body"] == {"grammar": choice_grammar(CHOICES)} and kw["logprobs"]
    with pytest.raises(ValueError, match="'ollama'"):
        edge_chat_model("http://127.0.0.1:9/v1", "m", backend="ollama")


def test_free_no_actions_and_non_openai_models_are_left_alone() -> None:
    vllm = edge_chat_model("http://127.0.0.1:9/v1", "m")
    assert constrained(vllm, CHOICES, "free") is vllm
    assert constrained(vllm, []) is vllm
    fake = FakeListChatModel(responses=["x"])
    assert constrained(fake, CHOICES, "rank") is fake


def _scoring_server(scores: dict[str, list[float]]) -> FakeOpenAI:
    """Answers a vLLM prompt-scoring request: the candidate's tokens get ``scores[candidate]``."""

    def script(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
        assert body["continue_final_message"] and not body["add_generation_prompt"]
        assert body["prompt_logprobs"] == 0 and body["max_tokens"] == 1
        cand = body["messages"][-1]["content"]
        assert body["messages"][-1]["role"] == "assistant"
        words = cand.split(" ")
        toks = [words[0]] + [" " + w for w in words[1:]]
        prompt = [None] + [{"1": {"logprob": -0.5, "decoded_token": "x"}}] * 5
        prompt += [
            {"7": {"logprob": lp, "decoded_token": t}}
            for t, lp in zip(toks, scores[cand], strict=True)
        ]
        reply = {
            "id": "s",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
            "usage": {"prompt_tokens": len(prompt) - 1, "completion_tokens": 1},
            "prompt_logprobs": prompt,
        }
        return 200, reply, {}

    return FakeOpenAI(script)


SCORES = {
    "take apple": [-0.1, -2.0],  # -2.1
    "take apple pie": [-0.1, -0.2, -0.3],  # -0.6: best, though it starts like the first
    'say "hi"': [-3.0, -0.1],
}


def test_rank_picks_the_most_likely_action_sync_and_async() -> None:
    with _scoring_server(SCORES) as server:
        edge = edge_chat_model(server.url, "m")
        ranked = constrained(edge, list(SCORES), "rank")
        prompt = [SystemMessage("sys"), HumanMessage("what now?")]
        reply = ranked.invoke(prompt)
        assert reply.text == "take apple pie"
        assert reply_logprob(reply) == pytest.approx(-0.6)
        # Runner-up: "take apple" at -2.1, 1.5 nats behind.
        assert reply_margin(reply) == pytest.approx(1.5)
        # Prompt counted once (5 shared tokens) plus every candidate's tokens.
        assert reply.usage_metadata["input_tokens"] == 5 + 2 + 3 + 2
        areply = asyncio.run(ranked.ainvoke(prompt))
        assert areply.text == reply.text and reply_logprob(areply) == reply_logprob(reply)
        assert len(server.requests) == 6
        sent = server.requests[0][1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant"]


def test_rank_without_prompt_logprobs_says_what_to_use() -> None:
    def script(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
        from tests.fake_openai import completion

        return 200, completion("x"), {}

    with FakeOpenAI(script) as server:
        ranked = constrained(edge_chat_model(server.url, "m"), ["a", "b"], "rank")
        with pytest.raises(ValueError, match="decoding='choice'"):
            ranked.invoke([HumanMessage("q")])


def test_rank_server_error_is_raised_with_status() -> None:
    with FakeOpenAI(lambda n, b, h: (400, {"error": "bad"}, {})) as server:
        ranked = constrained(edge_chat_model(server.url, "m"), ["a", "b"], "rank")
        with pytest.raises(RuntimeError, match="400"):
            ranked.invoke([HumanMessage("q")])


@pytest.mark.parametrize(
    ("reply", "valid", "observation", "expected"),
    [
        ("", ["look", "go north"], "A room.", "returned nothing"),
        ("go north", [], "A room.", "none given"),
        ("dance", ["look"], "A room.", "not a valid action: 'dance'"),
        ("look", ["look"], "", None),  # an empty observation is still a step
    ],
)
def test_bad_replies_and_inputs_are_recorded_not_raised(reply, valid, observation, expected):
    from langgraph_hera.routing.nodes import create_action_node

    node = create_action_node(FakeListChatModel(responses=[reply]), target="edge")
    state = {"task": "t", "observation": observation, "valid_actions": valid, "step": 2}
    out = node.invoke(state, {"configurable": {}})
    errors = out.update.get("errors", [])
    if expected is None:
        assert errors == [] and out.update["action_valid"]
    else:
        assert len(errors) == 1 and errors[0].startswith("step 2: edge ") and expected in errors[0]
    assert out.goto == "env" and out.update["step"] == 3


def _tok(token: str, lp: float, *alts: tuple[str, float]) -> dict[str, Any]:
    top = sorted([(token, lp), *alts], key=lambda a: -a[1])
    return {
        "token": token,
        "logprob": lp,
        "top_logprobs": [{"token": t, "logprob": v} for t, v in top],
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # The deciding token is the narrow one: "wardrobe" 0.4 nats ahead of "dresser".
        ([_tok("put", -0.01, ("take", -5.0)), _tok(" wardrobe", -0.5, (" dresser", -0.9))], 0.4),
        # Forced tokens (no alternative) and the end token's -9999 masks do not count.
        (
            [
                _tok("go", -0.1, ("open", -2.6)),
                _tok(" north", 0.0),
                _tok("<|im_end|>", 0.0, ("!", -9999.0)),
            ],
            2.5,
        ),
        # Another spelling of the same answer ("p" then "ut" for "put") is not a rival.
        ([_tok("put", -0.2, ("p", -0.3), ("go", -2.2)), _tok(" cap", -0.1, (" c", -0.5))], 2.0),
        # Forced throughout: the cap.
        ([_tok("look", 0.0)], 30.0),
        # A non-greedy token (behind its runner-up): negative.
        ([_tok("go", -1.2, ("open", -0.4))], -0.8),
    ],
)
def test_reply_margin_is_the_narrowest_token_gap(content: list[dict], expected: float) -> None:
    from langchain_core.messages import AIMessage

    reply = AIMessage("x", response_metadata={"logprobs": {"content": content}})
    assert reply_margin(reply) == pytest.approx(expected)


def test_reply_margin_is_none_without_alternatives_from_the_server() -> None:
    from langchain_core.messages import AIMessage

    assert reply_margin(AIMessage("x")) is None
    plain = {"content": [{"token": "go", "logprob": -0.1}]}  # logprobs, no top_logprobs
    assert reply_margin(AIMessage("x", response_metadata={"logprobs": plain})) is None
    assert reply_logprob(AIMessage("x", response_metadata={"logprobs": plain})) == -0.1
