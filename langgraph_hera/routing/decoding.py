"""Constrained action decoding: the edge answers with one of the valid actions.

Three ways (`EdgeDecoding`), chosen per action node (``edge_decoding=``):

- ``"choice"``: the server constrains generation to the valid actions -- vLLM structured
  outputs (``structured_outputs.choice``), or a GBNF grammar on a llama.cpp server (an
  `edge_chat_model` made with ``backend="llamacpp"``). One request; the chosen action's token
  log-probabilities come back with it.
- ``"rank"``: every valid action is scored by its log-likelihood after the prompt and the
  best is taken (one prompt-scoring request per action, sent concurrently; the server's prefix
  cache shares the prompt). Works with any server that returns prompt log-probabilities
  (vLLM's ``prompt_logprobs``); the answer is the argmax of the sequence likelihood, not a
  greedy token-by-token walk, so an action whose first token is unlikely can still win.
  The runner-up's log-likelihood comes back too.
- ``"free"``: no constraint; the reply is mapped onto a valid action afterwards
  (`parse_action`), as for any cloud model.

`reply_logprob` reads the answer's log-probability from the reply, `reply_margin` how far
ahead of its runner-up it was (the routers' ``edge_margin`` feature).

Models that are not OpenAI-compatible (a cloud chat model, a fake) are never constrained.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableLambda

from langgraph_hera.routing.deprecation import renamed_kwargs

#: How the edge's answer is held to the valid actions (the one name of this knob everywhere:
#: ``edge_decoding=`` in the factories, the runner, the bench and ``hera --edge-decoding``).
EdgeDecoding = Literal["choice", "rank", "free"]
#: Allowed values of `EdgeDecoding` (see the module docstring).
EDGE_DECODINGS: tuple[EdgeDecoding, ...] = ("choice", "rank", "free")
#: The old name of `EDGE_DECODINGS`.
DECODINGS = EDGE_DECODINGS
#: Alternatives the server returns per token with ``"choice"`` decoding (OpenAI
#: ``top_logprobs``), from which `reply_margin` reads the runner-up.
TOP_LOGPROBS = 5
#: `reply_margin` is clipped to +-this many nats (servers send -9999 for masked tokens).
MARGIN_CAP = 30.0


def check_decoding(decoding: EdgeDecoding | bool) -> EdgeDecoding:
    """``decoding`` as one of `EDGE_DECODINGS` (the old booleans: ``True`` = ``"choice"``,
    ``False`` = ``"free"``).

    Raises:
        ValueError: Anything else, with the allowed values.
    """
    if decoding is True:
        return "choice"
    if decoding is False:
        return "free"
    if decoding not in EDGE_DECODINGS:
        raise ValueError(f"edge_decoding must be one of {list(EDGE_DECODINGS)}, got {decoding!r}")
    return decoding


def _openai_compatible(model: Any) -> Any | None:
    """The underlying `BaseChatOpenAI` of ``model`` (possibly bound), or None."""
    from langchain_openai.chat_models.base import BaseChatOpenAI

    inner = getattr(model, "bound", model)
    return inner if isinstance(inner, BaseChatOpenAI) else None


def choice_grammar(valid_actions: Sequence[str]) -> str:
    """A GBNF grammar (llama.cpp) whose language is exactly ``valid_actions``."""
    if not valid_actions:
        raise ValueError("choice_grammar needs at least one valid action")

    def lit(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'

    return "root ::= " + " | ".join(lit(a) for a in dict.fromkeys(valid_actions))


def constrained(
    model: Any,
    valid_actions: Sequence[str],
    edge_decoding: EdgeDecoding | bool = "choice",
    **deprecated: Any,
) -> Any:
    """``model`` made to answer with one of ``valid_actions`` (see the module docstring).

    Returns ``model`` unchanged when there is nothing to choose from, when ``edge_decoding`` is
    ``"free"``, or when the model is not OpenAI-compatible. (``decoding=`` is the deprecated
    name of ``edge_decoding``.)
    """
    old = renamed_kwargs("constrained", deprecated, {"decoding": "edge_decoding"})
    decoding = check_decoding(old.get("edge_decoding", edge_decoding))
    inner = _openai_compatible(model)
    if not valid_actions or decoding == "free" or inner is None:
        return model
    if decoding == "rank":
        return ranked_choice(inner, valid_actions)
    if getattr(inner, "server_backend", None) == "llamacpp":
        extra: dict[str, Any] = {"grammar": choice_grammar(valid_actions)}
    else:
        extra = {"structured_outputs": {"choice": list(valid_actions)}}
    return model.bind(extra_body=extra, logprobs=True, top_logprobs=TOP_LOGPROBS)


def reply_logprob(reply: BaseMessage) -> float | None:
    """Sum of the reply's token log-probabilities, when the server returned them."""
    lp = (getattr(reply, "response_metadata", None) or {}).get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not content:
        return None
    return float(sum(t.get("logprob", 0.0) for t in content))


def reply_margin(reply: BaseMessage) -> float | None:
    """How far the reply's answer was ahead of its runner-up, in nats (>= 0 for a greedy answer).

    Token by token (``"choice"`` decoding): at each token the chosen token's log-probability
    minus the best other among the ``top_logprobs``; the smallest of these (the token where the
    answer was decided, e.g. ``wardrobe`` against ``dresser`` in ``put cap in wardrobe``). With
    structured outputs the server's probabilities are over the valid continuations, so the
    runner-up is another valid action's token; an alternative that only spells the same answer
    another way (``p`` for ``put``, a prefix of the rest of the reply) is not a rival. Whole
    answers (``"rank"`` decoding): the best action's log-likelihood minus the second best's.
    Clipped to +-`MARGIN_CAP`; tokens without an alternative (the answer was forced there) do
    not count, and a reply forced throughout gets `MARGIN_CAP`.

    Returns:
        The margin, or None when the server returned no ``top_logprobs`` (not asked for, or a
        server that does not send them).
    """
    meta = getattr(reply, "response_metadata", None) or {}
    lp = meta.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not content or not any(t.get("top_logprobs") for t in content):
        return None
    whole_answers = meta.get("decoding") == "rank"  # "take apple" rivals "take apple pie"
    margin = MARGIN_CAP
    tokens = [str(t.get("token", "")) for t in content]
    for i, t in enumerate(content):
        rest = "".join(tokens[i:])
        others = [
            float(a.get("logprob", -math.inf))
            for a in t.get("top_logprobs") or []
            if a.get("token") != t.get("token")
            and (whole_answers or not rest.startswith(str(a.get("token", ""))))
        ]
        if others:
            margin = min(margin, float(t.get("logprob", 0.0)) - max(others))
    return max(-MARGIN_CAP, min(MARGIN_CAP, margin))


# ------------------------------------------------------------------------ likelihood ranking


def _score_payload(model: Any, messages: Sequence[BaseMessage], candidate: str) -> dict:
    """A request scoring ``candidate`` as the assistant's reply (the model's own payload, so
    its message conversion and server quirks apply, plus vLLM's prompt-scoring fields)."""
    payload = model._get_request_payload([*messages, AIMessage(candidate)])
    payload.pop("max_completion_tokens", None)
    payload.update(
        max_tokens=1,
        temperature=0.0,
        prompt_logprobs=0,
        add_generation_prompt=False,
        continue_final_message=True,
    )
    return payload


def _candidate_logprob(body: dict, candidate: str) -> tuple[float, int, int]:
    """(log-likelihood of the candidate's tokens, their count, prompt tokens) of one reply.

    The prompt ends with the candidate (``continue_final_message``): its tokens are the last
    ones whose decoded text covers it.
    """
    plp = body.get("prompt_logprobs")
    if not isinstance(plp, list) or not plp:
        raise ValueError(
            "the edge server returned no prompt_logprobs: likelihood ranking needs a server "
            "that scores prompts (vLLM); use edge_decoding='choice' otherwise"
        )
    total, covered, n = 0.0, "", 0
    target = candidate.strip()
    for position in reversed(plp):
        if not position:
            break
        entry = next(iter(position.values()))
        covered = str(entry.get("decoded_token", "")) + covered
        total += float(entry.get("logprob", -math.inf))
        n += 1
        if len(covered.strip()) >= len(target):
            break
    prompt_tokens = int((body.get("usage") or {}).get("prompt_tokens", len(plp)))
    return total, n, prompt_tokens


def _ranked_reply(candidates: Sequence[str], bodies: Sequence[dict]) -> AIMessage:
    scored = [_candidate_logprob(b, c) for c, b in zip(candidates, bodies, strict=True)]
    order = sorted(range(len(candidates)), key=lambda i: scored[i][0], reverse=True)
    best = order[0]
    top = [{"token": candidates[i], "logprob": scored[i][0]} for i in order[:TOP_LOGPROBS]]
    # Every request re-sends the prompt; with the server's prefix cache only the first
    # computes it. Counted once, plus every candidate's tokens.
    shared = max(s[2] - s[1] for s in scored)
    input_tokens = shared + sum(s[1] for s in scored)
    return AIMessage(
        candidates[best],
        response_metadata={
            "logprobs": {
                "content": [
                    {"token": candidates[best], "logprob": scored[best][0], "top_logprobs": top}
                ]
            },
            "decoding": "rank",
            "candidates": len(candidates),
            "model_name": bodies[best].get("model", ""),
        },
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": 0,
            "total_tokens": input_tokens,
        },
    )


def _endpoint(model: Any) -> tuple[str, dict[str, str], float]:
    base = str(model.openai_api_base or "").rstrip("/")
    key = model.openai_api_key.get_secret_value() if model.openai_api_key else "EMPTY"
    timeout = model.request_timeout
    seconds = float(timeout) if isinstance(timeout, (int, float)) else 120.0
    return f"{base}/chat/completions", {"Authorization": f"Bearer {key}"}, seconds


def _checked(response: Any) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(
            f"edge server answered {response.status_code} to a scoring request: "
            f"{response.text[:300]}"
        )
    return response.json()


def ranked_choice(model: Any, valid_actions: Sequence[str]) -> Runnable:
    """A runnable answering with the most likely of ``valid_actions`` (``edge_decoding="rank"``).

    ``model`` is an OpenAI-compatible chat model (`edge_chat_model`); its URL, key, model name
    and timeout are used. The reply carries the winner's log-likelihood in
    ``response_metadata["logprobs"]`` (read by `reply_logprob`) and token usage.
    """
    import httpx

    candidates = list(dict.fromkeys(valid_actions))
    url, headers, timeout = _endpoint(model)

    def score(messages: list[BaseMessage]) -> AIMessage:
        with httpx.Client(timeout=timeout, headers=headers) as client:

            def one(c: str) -> dict:
                return _checked(client.post(url, json=_score_payload(model, messages, c)))

            with ThreadPoolExecutor(max_workers=min(16, len(candidates))) as pool:
                bodies = list(pool.map(one, candidates))
        return _ranked_reply(candidates, bodies)

    async def ascore(messages: list[BaseMessage]) -> AIMessage:
        async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:

            async def one(c: str) -> dict:
                return _checked(await client.post(url, json=_score_payload(model, messages, c)))

            bodies = await asyncio.gather(*(one(c) for c in candidates))
        return _ranked_reply(candidates, bodies)

    def run(value: Any) -> AIMessage:
        return score(_as_messages(value))

    async def arun(value: Any) -> AIMessage:
        return await ascore(_as_messages(value))

    return RunnableLambda(run, afunc=arun, name="rank_actions")


def _as_messages(value: Any) -> list[BaseMessage]:
    from langchain_core.messages import HumanMessage
    from langchain_core.prompt_values import PromptValue

    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(value)]
    return list(value)
