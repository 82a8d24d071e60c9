"""The edge's replay of recorded traces: its answer at every step the cloud answered.

`replay_traces` asks the edge model for its answer at every cloud-answered step of a
`TraceStore` (same messages, same tools bound), concurrently (asyncio, a semaphore) and
resumably (``replays.jsonl`` is append-only and is the resume log), with the proposal cache;
`replay_traces_ray` does the same as a Ray job with one actor per edge replica
(``pip install 'langgraph-hera[ray]'``). The labels come from `langgraph_hera.training.labels`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    messages_to_dict,
)

from langgraph_hera.routing.decoding import reply_logprob, reply_margin
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.training.traces import (
    TraceStore,
    as_store,
    reply_tool_calls,
    step_messages,
)

logger = get_logger(__name__)


@dataclass
class ReplaySummary:
    """What a replay did.

    Attributes:
        replayed: Steps the edge was asked for in this call.
        skipped: Steps already replayed (resume).
        errors: Steps where the edge failed (recorded with the error; they label as "needs
            the cloud").
        cache_hits: Answers served by the proposal cache.
        seconds: Wall time.
    """

    replayed: int = 0
    skipped: int = 0
    errors: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


def pending_steps(store: TraceStore, *, resume: bool = True) -> tuple[list[dict[str, Any]], int]:
    """The cloud-answered steps still to replay, and how many are already done."""
    done = set(store.replays()) if resume else set()
    todo, skipped = [], 0
    for rec in store.steps():
        if rec.get("target") != "cloud":
            continue
        if rec["step_id"] in done:
            skipped += 1
        else:
            todo.append(rec)
    return todo, skipped


def _bound(edge_model: Any, record: Mapping[str, Any], cache: Any) -> Any:
    model = edge_model
    if cache is not None and hasattr(model, "model_copy"):
        model = model.model_copy(update={"cache": cache})
    if record.get("tools"):
        model = model.bind_tools(record["tools"])
    return model


def replay_record(
    step_id: str, reply: BaseMessage | None, error: str | None, t0: float, replica: Any = None
) -> dict[str, Any]:
    """The ``replays.jsonl`` line of one edge answer (see `REPLAY_SCHEMA`)."""
    ai = reply if isinstance(reply, AIMessage) or reply is None else AIMessage(reply.content)
    return {
        "step_id": step_id,
        "edge_reply": messages_to_dict([ai])[0] if ai is not None else None,
        "edge_text": str(ai.text) if ai is not None else "",
        "edge_tool_calls": reply_tool_calls(ai) if ai is not None else [],
        "edge_invalid_tool_calls": [
            {"name": c.get("name"), "args": c.get("args")}
            for c in (ai.invalid_tool_calls if ai is not None else [])
        ],
        "edge_logprob": reply_logprob(ai) if ai is not None else None,
        "edge_margin": reply_margin(ai) if ai is not None else None,
        "error": error,
        "cache_hit": bool(ai is not None and (ai.response_metadata or {}).get("hera_cache_hit")),
        "latency_ms": (time.perf_counter() - t0) * 1e3,
        "replica": replica,
    }


async def areplay_traces(
    store: TraceStore | str | Path,
    edge_model: Any,
    *,
    concurrency: int = 4,
    cache: Any = None,
    resume: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> ReplaySummary:
    """Async `replay_traces`."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    st = as_store(store)
    if not resume and st.replays_file.exists():
        st.replays_file.unlink()
    todo, skipped = pending_steps(st, resume=resume)
    summary = ReplaySummary(skipped=skipped)
    sem = asyncio.Semaphore(concurrency)
    t_start = time.perf_counter()

    async def one(record: dict[str, Any]) -> None:
        async with sem:
            t0 = time.perf_counter()
            reply: BaseMessage | None = None
            error: str | None = None
            try:
                model = _bound(edge_model, record, cache)
                reply = await model.ainvoke(step_messages(record))
            except Exception as exc:  # noqa: BLE001 - an edge failure is a label, not a crash
                error = error_text(exc)
            line = replay_record(record["step_id"], reply, error, t0)
            st.add_replay(line)  # one event loop: appends never interleave
            summary.replayed += 1
            summary.errors += error is not None
            summary.cache_hits += bool(line["cache_hit"])
            if on_step is not None:
                on_step(line)

    await asyncio.gather(*(one(r) for r in todo))
    summary.seconds = time.perf_counter() - t_start
    return summary


def replay_traces(
    store: TraceStore | str | Path,
    edge_model: Any,
    *,
    concurrency: int = 4,
    cache: Any = None,
    resume: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> ReplaySummary:
    """Ask the edge for its answer at every recorded step the cloud answered.

    Each step's messages are sent to ``edge_model`` with the step's tools bound, at most
    ``concurrency`` at once (asyncio). Each answer (or the edge's error) is appended to
    ``replays.jsonl`` as soon as it arrives, so a killed replay resumes where it stopped.

    Args:
        store: A `TraceStore` or its directory.
        edge_model: The edge chat model (unbound; tools are bound per step).
        concurrency: Edge calls in flight.
        cache: A `langgraph_hera.models.ProposalCache` (or any LangChain cache) for the edge's
            answers; set on a copy of the model.
        resume: Skip steps already in ``replays.jsonl`` (``False``: start over).
        on_step: Called with each replay line.

    Returns:
        A `ReplaySummary`.

    Raises:
        ValueError: ``concurrency < 1``.
        RuntimeError: Called from a running event loop (use `areplay_traces`).
    """
    return asyncio.run(
        areplay_traces(
            store, edge_model, concurrency=concurrency, cache=cache, resume=resume, on_step=on_step
        )
    )


def replay_traces_ray(
    store: TraceStore | str | Path,
    edge_urls: Sequence[str],
    *,
    edge_model_name: str,
    concurrency_per_replica: int = 4,
    resume: bool = True,
    num_cpus: int | None = 2,
    edge_kwargs: Mapping[str, Any] | None = None,
) -> ReplaySummary:
    """`replay_traces` as a Ray job: one actor per edge replica, steps spread over them.

    Each actor holds an `edge_chat_model` for its replica's URL and answers up to
    ``concurrency_per_replica`` steps at once; the driver appends each answer to
    ``replays.jsonl`` as it arrives (resumable as `replay_traces`) and records which replica
    answered. Ray starts a local cluster when none is running (``ray.init(num_cpus=...)``);
    inside a cluster, call ``ray.init(address=...)`` first.

    Args:
        store: A `TraceStore` or its directory.
        edge_urls: Base URLs of the edge replicas (OpenAI-compatible, ending in ``/v1``).
        edge_model_name: The served model name.
        concurrency_per_replica: Calls in flight per replica.
        resume: Skip steps already replayed.
        num_cpus: CPUs of a local cluster started here.
        edge_kwargs: More `edge_chat_model` arguments (``max_tokens``, ``temperature``...).

    Raises:
        ImportError: Ray is not installed (``pip install 'langgraph-hera[ray]'``).
        ValueError: No edge URL.
    """
    try:
        import ray
    except ImportError as exc:
        raise ImportError("replay_traces_ray needs Ray: pip install 'langgraph-hera[ray]'") from exc
    if not edge_urls:
        raise ValueError("edge_urls must name at least one edge replica")
    st = as_store(store)
    if not resume and st.replays_file.exists():
        st.replays_file.unlink()
    todo, skipped = pending_steps(st, resume=resume)
    summary = ReplaySummary(skipped=skipped)
    t_start = time.perf_counter()
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    remote: Any = ray.remote  # typed overloads do not list actor options
    actor_cls = remote(num_cpus=0, max_concurrency=concurrency_per_replica)(_EdgeReplica)
    actors = [actor_cls.remote(url, edge_model_name, dict(edge_kwargs or {})) for url in edge_urls]
    pending = [actors[i % len(actors)].replay.remote(r) for i, r in enumerate(todo)]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            line = ray.get(ref)
            st.add_replay(line)
            summary.replayed += 1
            summary.errors += line["error"] is not None
            summary.cache_hits += bool(line["cache_hit"])
    summary.seconds = time.perf_counter() - t_start
    return summary


class _EdgeReplica:
    """A Ray actor (async): one edge replica's client."""

    def __init__(self, url: str, model_name: str, kwargs: dict[str, Any]) -> None:
        from langgraph_hera.models.edge import edge_chat_model

        self.url = url
        self.model = edge_chat_model(url, model_name, **kwargs)

    async def replay(self, record: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        reply: BaseMessage | None = None
        error: str | None = None
        try:
            reply = await _bound(self.model, record, None).ainvoke(step_messages(record))
        except Exception as exc:  # noqa: BLE001 - an edge failure is a label, not a crash
            error = error_text(exc)
        return replay_record(record["step_id"], reply, error, t0, replica=self.url)
