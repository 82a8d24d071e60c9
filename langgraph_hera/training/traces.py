"""Step records from any routed tool-calling agent: recording, the store, and the edge's replay.

A *trace* is one model step of a routed thread: the messages the model saw, the tools it was
offered, which side answered and how (text and tool calls), the routing decision and the cost.
Traces come from

- a router-node graph's final state (``messages`` + ``route_log`` + ``ledger``: `add_router`,
  `create_hera_agent`), or a ``create_agent`` + `HeraRoutingMiddleware` state: `steps_from_state`;
- the messages produced by `RoutedChatModel` (each reply carries its decision and ledger
  entries): `steps_from_messages`;
- a live thread: `record_thread` reads ``graph.get_state(config)`` after a run (no callback,
  nothing to install: the checkpoint already holds everything).

`TraceStore` keeps them in a directory: ``steps.jsonl`` (append-only, one record per step, see
`TRACE_SCHEMA`; re-recording a thread adds only its new steps), ``steps.parquet`` (written by
`TraceStore.write_parquet` when pyarrow is installed; nested fields as JSON text) and
``replays.jsonl`` (the edge's answers, one line per replayed step: `replay_traces`). Every
string is passed through `langgraph_hera.secrets.redact_personal` before it is written (API
keys, e-mail addresses, phone numbers).

`replay_traces` asks the edge model for its answer at every step the cloud answered (same
messages, same tools bound), concurrently and resumably; `replay_traces_ray` does the same as a
Ray job over several edge replicas (``pip install 'langgraph-hera[ray]'``).

Example:
    >>> out = agent.invoke({"messages": [("user", "...")]}, config)  # any routed agent
    >>> store = TraceStore("traces/train")
    >>> store.add(steps_from_state(out, tools=tools, thread_id="t1"))
    >>> replay_traces(store, edge_model, concurrency=4)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    messages_from_dict,
    messages_to_dict,
)

from langgraph_hera.routing.features import current_run, message_text
from langgraph_hera.secrets import get_logger, redact_personal_obj

logger = get_logger(__name__)

#: Field -> meaning, in file order: the step schema of `langgraph_hera.training.STEP_SCHEMA`
#: extended for chat messages and tool calls.
TRACE_SCHEMA: dict[str, str] = {
    "step_id": "unique id of the step: '<thread_id>:<turn>:<step>'",
    "thread_id": "the thread (conversation) the step belongs to",
    "turn": "the run (turn) within the thread: the id of the user message that started it",
    "step": "index of the model step within the turn, from 0",
    "task": "the current request: text of the turn's user message",
    "messages": "the messages the model saw (messages_to_dict), oldest first",
    "tools": "tools offered, OpenAI format ({'type': 'function', 'function': {name, "
    "description, parameters}}); null when not known",
    "tool_names": "names of the tools offered; null when not known",
    "target": "the side that answered: edge or cloud",
    "reply": "the answer (messages_to_dict of one AI message)",
    "reply_text": "the answer's text",
    "tool_calls": "the answer's tool calls: [{name, args, id}]",
    "history": "targets of the turn's earlier steps, oldest first",
    "decision": "the routing decision (langgraph_hera.state.Decision); null when not routed",
    "policy": "the policy that decided",
    "score": "the policy's score",
    "input_tokens": "prompt tokens of the answering call",
    "output_tokens": "completion tokens of the answering call",
    "usd": "list-price cost of the step's calls (failed edge attempts included)",
    "latency_ms": "wall time of the answering call",
    "source": "where the trace came from: state (router node / middleware) or messages "
    "(RoutedChatModel)",
}

#: Field -> meaning of a line of ``replays.jsonl``.
REPLAY_SCHEMA: dict[str, str] = {
    "step_id": "the replayed step",
    "edge_reply": "the edge's answer (messages_to_dict of one AI message); null on error",
    "edge_text": "its text",
    "edge_tool_calls": "its tool calls: [{name, args, id}]",
    "edge_invalid_tool_calls": "tool calls whose arguments did not parse",
    "edge_logprob": "sum of the answer's token log-probabilities, when returned",
    "edge_margin": "nats the answer was ahead of its runner-up (reply_margin), when returned",
    "error": "why the edge gave no answer (redacted), else null",
    "cache_hit": "whether the answer came from the proposal cache",
    "latency_ms": "wall time of the edge call",
    "replica": "the edge replica that answered (Ray replay), else null",
}

STEPS_FILE = "steps.jsonl"
REPLAYS_FILE = "replays.jsonl"


# --------------------------------------------------------------------------- recording


def _tools_openai(tools: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return [convert_to_openai_tool(t) for t in tools]


def reply_tool_calls(message: BaseMessage) -> list[dict[str, Any]]:
    """The tool calls of a reply as ``[{name, args, id}]``."""
    if not isinstance(message, AIMessage):
        return []
    return [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls]


def _thread_of(messages: Sequence[BaseMessage]) -> str:
    first = messages_to_dict(list(messages[:1]))
    return "t-" + hashlib.sha256(json.dumps(first, sort_keys=True).encode()).hexdigest()[:12]


def _match(records: Iterable[Mapping[str, Any]], turn: str | None, step: int) -> list[Any]:
    return [
        r
        for r in records
        if int(r.get("step", -1)) == step and (r.get("turn") is None or r.get("turn") == turn)
    ]


def steps_from_messages(
    messages: Sequence[BaseMessage],
    *,
    route_log: Sequence[Mapping[str, Any]] | None = None,
    ledger: Sequence[Mapping[str, Any]] | None = None,
    tools: Sequence[Any] | None = None,
    thread_id: str | None = None,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """One trace record per routed AI message of a thread (see `TRACE_SCHEMA`).

    The decision and cost of each reply come from its ``response_metadata`` (``hera_decision``
    / ``hera_ledger``: `RoutedChatModel`, and the decision from `HeraRoutingMiddleware`), or
    else from ``route_log`` / ``ledger`` by (turn, step): the last decision for the step (after
    an edge failure the router decides again) and every ledger entry of the step. AI messages
    with no decision and no ledger entry, or whose side is neither edge nor cloud (a halt
    message), are skipped.

    Args:
        messages: The thread's messages, oldest first.
        route_log: The thread's decisions (graph / middleware state).
        ledger: The thread's ledger entries.
        tools: The tools the agent offered the model (LangChain tools, functions or OpenAI-format
            dicts); stored as OpenAI-format schemas. ``None``: not known.
        thread_id: The thread's id (default: a hash of its first message).
        system_prompt: A system prompt the model saw before the messages (not in the state).

    Returns:
        The records, personal data redacted (`langgraph_hera.secrets.redact_personal`).
    """
    msgs = list(messages)
    thread = thread_id or _thread_of(msgs)
    tool_specs = _tools_openai(tools)
    names = [t["function"]["name"] for t in tool_specs] if tool_specs is not None else None
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(msgs):
        if not isinstance(msg, AIMessage):
            continue
        before = msgs[:i]
        start, turn = current_run(before)
        run = before[start:]
        step = sum(isinstance(m, AIMessage) for m in run)
        meta = msg.response_metadata or {}
        decision = meta.get("hera_decision")
        if decision is not None:
            turn = decision.get("turn", turn)
        elif route_log is not None:
            found = _match(route_log, turn, step)
            decision = dict(found[-1]) if found else None
        entries = meta.get("hera_ledger")
        if entries is None:
            entries = _match(ledger or [], turn, step)
        target = (decision or {}).get("target") or meta.get("hera_target")
        if target is None and entries:
            ok = [e for e in entries if e.get("ok", True)]
            target = (ok or entries)[-1].get("target")
        if target not in ("edge", "cloud"):
            continue
        answered = [e for e in entries if e.get("target") == target and e.get("ok", True)]
        last = answered[-1] if answered else {}
        turn_id = str(turn) if turn is not None else f"{start}"
        prompt = [SystemMessage(system_prompt), *before] if system_prompt else before
        history = [r["target"] for r in out if r["thread_id"] == thread and r["turn"] == turn_id]
        record = {
            "step_id": f"{thread}:{turn_id}:{step}",
            "thread_id": thread,
            "turn": turn_id,
            "step": step,
            "task": message_text(run[0]) if run else "",
            "messages": messages_to_dict(prompt),
            "tools": tool_specs,
            "tool_names": names,
            "target": target,
            "reply": messages_to_dict([msg])[0],
            "reply_text": str(msg.text),
            "tool_calls": reply_tool_calls(msg),
            "history": history,
            "decision": dict(decision) if decision else None,
            "policy": (decision or {}).get("policy"),
            "score": (decision or {}).get("score"),
            "input_tokens": int(last.get("input_tokens", 0) or 0),
            "output_tokens": int(last.get("output_tokens", 0) or 0),
            "usd": float(sum(float(e.get("usd", 0.0) or 0.0) for e in entries)),
            "latency_ms": float(last.get("latency_ms", 0.0) or 0.0),
            "source": "messages" if "hera_ledger" in meta else "state",
        }
        out.append(redact_personal_obj(record))
    return out


def steps_from_state(
    state: Mapping[str, Any],
    *,
    tools: Sequence[Any] | None = None,
    thread_id: str | None = None,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """Trace records of a routed graph's state: a router-node graph (`add_router`) or a
    ``create_agent`` + `HeraRoutingMiddleware` agent (``messages``, ``route_log``, ``ledger``),
    or any state whose messages came from `RoutedChatModel`. See `steps_from_messages`."""
    return steps_from_messages(
        list(state.get("messages") or []),
        route_log=state.get("route_log"),
        ledger=state.get("ledger"),
        tools=tools,
        thread_id=thread_id,
        system_prompt=system_prompt,
    )


def record_thread(
    graph: Any,
    config: Mapping[str, Any],
    store: TraceStore | str | Path,
    *,
    tools: Sequence[Any] | None = None,
    system_prompt: str | None = None,
) -> int:
    """Record a checkpointed thread's steps into ``store`` (the steps not recorded yet).

    Reads ``graph.get_state(config)``: call it after each run (or once at the end); nothing is
    installed in the graph.

    Args:
        graph: A compiled graph with a checkpointer.
        config: The thread's config (``{"configurable": {"thread_id": ...}}``).
        store: A `TraceStore` or its directory.
        tools: The tools the agent offers (stored with each step).
        system_prompt: The agent's system prompt, when it is not in the messages.

    Returns:
        The number of new records written.
    """
    snapshot = graph.get_state(config)
    thread = (config.get("configurable") or {}).get("thread_id")
    records = steps_from_state(
        snapshot.values,
        tools=tools,
        thread_id=str(thread) if thread is not None else None,
        system_prompt=system_prompt,
    )
    st = store if isinstance(store, TraceStore) else TraceStore(store)
    return st.add(records)


# --------------------------------------------------------------------------- the store


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d: skipping a malformed line", path, n)


class TraceStore:
    """A directory of trace records (``steps.jsonl``) and the edge's replays (``replays.jsonl``).

    Both files are append-only JSON lines; a line cut by a crash is skipped on reading. Records
    whose ``step_id`` is already stored are not written again, so recording a thread after
    every run is safe.

    Args:
        path: The directory (created when missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def steps_file(self) -> Path:
        return self.path / STEPS_FILE

    @property
    def replays_file(self) -> Path:
        return self.path / REPLAYS_FILE

    def __repr__(self) -> str:
        return f"TraceStore({str(self.path)!r})"

    def steps(self) -> list[dict[str, Any]]:
        """Every stored step record, in file order (the first of duplicated ids)."""
        seen: set[Any] = set()
        out = []
        for rec in _read_jsonl(self.steps_file):
            if rec.get("step_id") not in seen:
                seen.add(rec.get("step_id"))
                out.append(rec)
        return out

    def replays(self) -> dict[str, dict[str, Any]]:
        """The edge's replays by step id (the last line of a step wins)."""
        return {r["step_id"]: r for r in _read_jsonl(self.replays_file) if "step_id" in r}

    def add(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append the records whose ``step_id`` is new (redacted again: `redact_personal`).

        Returns:
            How many were written.
        """
        seen = {r.get("step_id") for r in _read_jsonl(self.steps_file)}
        n = 0
        with self.steps_file.open("a") as f:
            for rec in records:
                if rec.get("step_id") in seen:
                    continue
                seen.add(rec.get("step_id"))
                f.write(json.dumps(redact_personal_obj(dict(rec)), default=str) + "\n")
                n += 1
        return n

    def add_replay(self, replay: Mapping[str, Any]) -> None:
        """Append one replay line (flushed: a killed replay keeps what it finished)."""
        with self.replays_file.open("a") as f:
            f.write(json.dumps(redact_personal_obj(dict(replay)), default=str) + "\n")
            f.flush()

    def write_parquet(self) -> Path | None:
        """Write ``steps.parquet`` (nested fields as JSON text); ``None`` without pyarrow."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            logger.warning("pyarrow is not installed: steps.parquet not written")
            return None
        rows = self.steps()
        if not rows:
            return None
        columns = list(TRACE_SCHEMA) + sorted({k for r in rows for k in r} - set(TRACE_SCHEMA))
        nested = {"messages", "tools", "tool_names", "reply", "tool_calls", "history", "decision"}

        def cell(key: str, value: Any) -> Any:
            if key in nested or isinstance(value, dict | list):
                return json.dumps(value, default=str)
            return value

        table = pa.Table.from_pylist([{c: cell(c, r.get(c)) for c in columns} for r in rows])
        dst = self.path / "steps.parquet"
        tmp = dst.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        tmp.replace(dst)
        return dst


def as_store(store: TraceStore | str | Path) -> TraceStore:
    """``store`` as a `TraceStore`."""
    return store if isinstance(store, TraceStore) else TraceStore(store)


def step_messages(record: Mapping[str, Any]) -> list[BaseMessage]:
    """The messages a recorded step's model saw."""
    return messages_from_dict(list(record.get("messages") or []))


def step_reply(record: Mapping[str, Any]) -> AIMessage:
    """The recorded answer of a step."""
    msg = messages_from_dict([record["reply"]])[0]
    return msg if isinstance(msg, AIMessage) else AIMessage(msg.content)


def replay_reply(replay: Mapping[str, Any]) -> AIMessage | None:
    """The edge's replayed answer (``None`` when the edge failed)."""
    if not replay.get("edge_reply"):
        return None
    msg = messages_from_dict([replay["edge_reply"]])[0]
    return msg if isinstance(msg, AIMessage) else AIMessage(msg.content)
