"""The fake providers behave like the real ones: each quirk shown through ``ChatOpenAI``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.fake_providers import FakeProvider, Reply


@tool
def get_weather(city: str) -> str:
    """The weather in ``city``."""
    return f"sunny in {city}"


def _llm(srv: FakeProvider, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model=srv.model, base_url=srv.url, api_key="x", max_retries=0, **kwargs)


def _post(srv: FakeProvider, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw request (for what ChatOpenAI would never send or would hide)."""
    req = urllib.request.Request(
        f"{srv.url}/chat/completions",
        data=json.dumps({"model": srv.model, **body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _history(call_id: str, *, answered: bool = True) -> list:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": call_id, "type": "tool_call"}
    msgs = [HumanMessage("weather in Paris?"), AIMessage("", tool_calls=[call])]
    return msgs + ([ToolMessage("sunny", tool_call_id=call_id)] if answered else [])


def test_default_script_calls_the_offered_tool_then_answers_and_requests_are_recorded() -> None:
    with FakeProvider("openai") as srv:
        llm = _llm(srv).bind_tools([get_weather])
        first = llm.invoke("weather in Paris?")
        (call,) = first.tool_calls
        assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
        assert len(call["id"]) <= 40
        second = llm.invoke(
            [
                HumanMessage("weather in Paris?"),
                first,
                ToolMessage("sunny", tool_call_id=call["id"]),
            ]
        )
        assert second.content == "Done: sunny" and not second.tool_calls
    sent = srv.requests[1]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer x"
    assert [m["role"] for m in sent.messages] == ["user", "assistant", "tool"]
    assert sent.body["tools"][0]["function"]["name"] == "get_weather"


def test_vllm_tool_call_ids_are_46_chars_and_openai_rejects_them() -> None:
    with FakeProvider("vllm") as edge, FakeProvider("openai") as cloud:
        reply = _llm(edge).bind_tools([get_weather]).invoke("weather in Paris?")
        call_id = reply.tool_calls[0]["id"]
        assert call_id.startswith("chatcmpl-tool-") and len(call_id) == 46
        history = [HumanMessage("weather?"), reply, ToolMessage("sunny", tool_call_id=call_id)]
        with pytest.raises(openai.BadRequestError, match="maximum length 40.*length 46"):
            _llm(cloud).invoke(history)
        # The same conversation with a short id goes through.
        assert _llm(cloud).invoke(_history("call_1")).content


def test_vllm_reasoning_parser_sends_null_content() -> None:
    script = [Reply(reasoning="Let me think.", content=None)] * 2
    with FakeProvider("vllm", script=script) as srv:
        status, body = _post(srv, {"messages": [{"role": "user", "content": "hi"}]})
        message = body["choices"][0]["message"]
        assert status == 200 and message["content"] is None
        assert message["reasoning_content"] == "Let me think."
        # ChatOpenAI drops reasoning_content: the reply looks empty.
        assert _llm(srv).invoke("hi").content == ""


def test_vllm_truncated_tool_call_keeps_its_cut_arguments() -> None:
    with FakeProvider("vllm", script=[Reply.truncated_tool_call("get_weather")]) as srv:
        reply = _llm(srv).bind_tools([get_weather]).invoke("weather in Paris?")
    assert reply.response_metadata["finish_reason"] == "length"
    assert not reply.tool_calls
    assert reply.invalid_tool_calls[0]["args"] == '{"city": "Par'


@pytest.mark.parametrize("kind", ["vllm", "openai"])
def test_usage_in_streams_only_when_asked(kind: str) -> None:
    with FakeProvider(kind, script=[Reply.text("one two three")] * 2) as srv:
        plain = _aggregate(_llm(srv, stream_usage=False).stream("hi"))
        asked = _aggregate(_llm(srv, stream_usage=True).stream("hi"))
    assert plain.content == asked.content == "one two three"
    assert plain.usage_metadata is None
    assert asked.usage_metadata is not None and asked.usage_metadata["output_tokens"] > 0
    assert "stream_options" not in srv.requests[0].body
    assert srv.requests[1].body["stream_options"] == {"include_usage": True}


def test_vllm_logprobs_when_asked_in_invoke_and_stream() -> None:
    with FakeProvider("vllm", script=[Reply.text("go north now")] * 3) as srv:
        plain = _llm(srv).invoke("hi")
        asked = _llm(srv, logprobs=True, top_logprobs=1).invoke("hi")
        streamed = _aggregate(_llm(srv, logprobs=True).stream("hi"))
    assert "logprobs" not in plain.response_metadata or not plain.response_metadata["logprobs"]
    tokens = asked.response_metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == "go north now"
    assert all(len(t["top_logprobs"]) == 1 for t in tokens)
    streamed_tokens = streamed.response_metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in streamed_tokens) == "go north now"


def test_llamacpp_rejects_null_assistant_content_with_500() -> None:
    with FakeProvider("llamacpp") as srv:
        # ChatOpenAI sends content null for an AI message that only calls tools.
        with pytest.raises(openai.InternalServerError, match="NoneType"):
            _llm(srv).invoke(_history("call_1"))
        assert srv.requests[0].messages[1]["content"] is None
        history = _history("call_1")
        history[1] = history[1].model_copy(update={"content": " "})
        assert _llm(srv).invoke(history).content == "Done: sunny"


def test_llamacpp_ignores_max_completion_tokens_and_never_streams_usage() -> None:
    long = "a b c d e f g h"
    with FakeProvider("llamacpp", script=[Reply.text(long)] * 3) as srv:
        # ChatOpenAI sends max_tokens as max_completion_tokens: not honoured.
        capped = _llm(srv, max_tokens=2).invoke("hi")
        assert srv.requests[0].body["max_completion_tokens"] == 2
        assert capped.content == long and capped.response_metadata["finish_reason"] == "stop"
        status, body = _post(srv, {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2})
        assert status == 200 and body["choices"][0]["message"]["content"] == "a b "
        assert body["choices"][0]["finish_reason"] == "length"
        streamed = _aggregate(_llm(srv, stream_usage=True).stream("hi"))
    assert streamed.content == long and streamed.usage_metadata is None


def test_openai_honours_max_completion_tokens() -> None:
    with FakeProvider("openai", script=[Reply.text("a b c d")]) as srv:
        capped = _llm(srv, max_tokens=2).invoke("hi")
    assert capped.content == "a b " and capped.response_metadata["finish_reason"] == "length"


def test_openai_rejects_dangling_and_unknown_tool_calls_and_null_content() -> None:
    with FakeProvider("openai") as srv:
        dangling = _history("call_1", answered=False) + [HumanMessage("and?")]
        with pytest.raises(openai.BadRequestError, match="did not have response messages: call_1"):
            _llm(srv).invoke(dangling)
        unknown = _history("call_1")
        unknown[2] = ToolMessage("sunny", tool_call_id="call_2")
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
            _llm(srv).invoke(unknown)
        # A tool call answered after another message came in between is dangling too.
        late = _history("call_1", answered=False) + [
            HumanMessage("hurry"),
            ToolMessage("sunny", tool_call_id="call_1"),
        ]
        with pytest.raises(openai.BadRequestError, match="call_1"):
            _llm(srv).invoke(late)
        status, body = _post(
            srv,
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": None},
                ]
            },
        )
        assert status == 400 and "got null" in body["error"]["message"]
        assert len(srv.requests) == 4  # rejected requests are recorded too


def test_scripted_503_with_retry_after_and_429() -> None:
    script = [Reply.error(503, retry_after=2), Reply.error(429, retry_after=0.5)]
    with FakeProvider("openai", script=script) as srv:
        with pytest.raises(openai.InternalServerError) as err:
            _llm(srv).invoke("hi")
        assert err.value.status_code == 503 and err.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.RateLimitError) as err:
            _llm(srv).invoke("hi")
        assert err.value.response.headers["retry-after"] == "0.5"
        assert _llm(srv).invoke("hi").content == "Hello from the fake."  # past the script


def test_scripted_hang_times_out_and_function_scripts_see_the_request() -> None:
    def script(n: int, body: dict[str, Any]) -> Reply:
        if n == 0:
            return Reply.text("late", hang_s=2.0)
        return Reply.text(f"{n}: {body['messages'][-1]['content']}")

    with FakeProvider("vllm", script=script) as srv:
        with pytest.raises(openai.APITimeoutError):
            _llm(srv, timeout=0.3).invoke("hi")
        assert _llm(srv).invoke("echo").content == "1: echo"


def test_streamed_tool_calls_reassemble() -> None:
    args = '{"city": "Paris"}'
    with FakeProvider("vllm", script=[Reply.tool_call("get_weather", args)]) as srv:
        reply = _aggregate(_llm(srv).bind_tools([get_weather]).stream("weather?"))
    assert reply.tool_calls[0]["args"] == {"city": "Paris"}
    assert len(reply.tool_calls[0]["id"]) == 46


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of .* got 'tgi'"):
        FakeProvider("tgi")  # type: ignore[arg-type]


def _aggregate(chunks: Any) -> Any:
    out = None
    for chunk in chunks:
        out = chunk if out is None else out + chunk
    return out
