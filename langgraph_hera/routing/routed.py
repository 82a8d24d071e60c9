"""`RoutedChatModel`: a chat model that routes every call to an edge or a cloud model.

Stateless by design: one module-level instance may serve every thread of a LangGraph Server.
Each reply carries its own record (``response_metadata["hera_decision"]`` and
``["hera_ledger"]``), so the conversation is the ledger: caps are counted from the messages a
call receives (the current run, i.e. since the latest user message, or the whole thread), and
`route_log_from_messages` / `ledger_from_messages` read a thread's decisions and costs back. The
only process memory is the set of cloud calls in flight (`CloudReservations`), which empties as
calls end.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langgraph_hera.accounting.ledger import (
    DEFAULT_EDGE_PARAMS,
    entry_from_message,
    estimate_call_usd,
)
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.decide import (
    Caps,
    CloudBudgetExceeded,
    CloudReservations,
    StepOutcome,
    decide_step,
    override,
)
from langgraph_hera.routing.features import current_run, message_text, route_input_from_messages
from langgraph_hera.routing.wire import merge_chunks, to_wire, unusable_reply
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import Decision, LedgerEntry, Target
from langgraph_hera.tracing import decision_metadata, trace_cost, trace_decision

logger = get_logger(__name__)

#: LangGraph's tag that keeps a model run out of ``stream_mode="messages"``: the inner model's
#: tokens would otherwise stream twice (once from it, once from the routed model).
_NOSTREAM = "nostream"


def model_name_of(model: Any) -> str:
    """The configured model name of a chat model or a binding of one."""
    inner = getattr(model, "bound", model)
    for attr in ("model_name", "model"):
        value = getattr(inner, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(inner).__name__


def route_log_from_messages(messages: Sequence[BaseMessage]) -> list[Decision]:
    """Every routing decision recorded on the replies of a conversation, oldest first."""
    return [
        m.response_metadata["hera_decision"]
        for m in messages
        if isinstance(m, AIMessage) and "hera_decision" in (m.response_metadata or {})
    ]


def ledger_from_messages(messages: Sequence[BaseMessage]) -> list[LedgerEntry]:
    """Every ledger entry recorded on the replies of a conversation (failed edge attempts
    included), oldest first; ``CostLedger(ledger_from_messages(out["messages"]))`` totals them."""
    out: list[LedgerEntry] = []
    for m in messages:
        if isinstance(m, AIMessage):
            out.extend((m.response_metadata or {}).get("hera_ledger") or [])
    return out


def _child_callbacks(run_manager: Any) -> Any:
    """Callbacks whose runs nest under ``run_manager``'s run, tagged ``nostream``."""
    if run_manager is None:
        return None
    cls = (
        AsyncCallbackManager
        if isinstance(run_manager, AsyncCallbackManagerForLLMRun)
        else (CallbackManager)
    )
    manager = cls(
        handlers=run_manager.inheritable_handlers,
        inheritable_handlers=run_manager.inheritable_handlers,
        parent_run_id=run_manager.run_id,
    )
    manager.add_tags([*run_manager.inheritable_tags, _NOSTREAM])
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager


def _thread_id(run_manager: Any) -> str | None:
    for meta in (
        getattr(run_manager, "metadata", None),
        getattr(run_manager, "inheritable_metadata", None),
    ):
        if meta and meta.get("thread_id"):
            return str(meta["thread_id"])
    config = var_child_runnable_config.get() or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    return str(thread) if thread else None


class _Call:
    """One routed call: the decision, the reservation, the entries, the reply's record."""

    def __init__(
        self,
        model: RoutedChatModel,
        messages: list[BaseMessage],
        run_manager: Any,
        tools: Sequence[Any] | None = None,
    ):
        self.model = model
        self.t0 = time.perf_counter()
        self.prompt = to_wire(messages)
        self.callbacks = _child_callbacks(run_manager)
        start, turn_id = current_run(messages)
        if turn_id is None and messages:
            first = message_text(messages[start])
            turn_id = f"{start}:{hashlib.sha256(first.encode()).hexdigest()[:16]}"
        self.turn: str = str(turn_id)
        self.entries = ledger_from_messages(messages)
        thread = _thread_id(run_manager)
        self.key = f"{thread}|{self.turn if model.budget_scope == 'run' else ''}"
        history = [d["target"] for d in route_log_from_messages(messages[start:])]
        self.outcome: StepOutcome = decide_step(
            model.policy,
            route_input_from_messages(messages, history=history, tools=tools),
            entries=self.entries,
            caps=model.caps(),
            turn=self.turn,
            next_call_usd=model.estimate_usd(self.prompt),
            reservations=model._reservations,
            scope_key=self.key,
        )
        if self.outcome.halt:  # pragma: no cover - decide_step halts only when the edge is down
            raise self.outcome.blocked or RuntimeError(self.outcome.halt)
        self.decision = self.outcome.decision
        self.records: list[LedgerEntry] = []
        trace_decision(self.decision, {"callbacks": self.callbacks})

    @property
    def target(self) -> Target:
        return self.decision["target"]

    def config(self) -> RunnableConfig:
        # ``nostream``: the inner model's tokens never reach ``stream_mode="messages"`` (the
        # routed model emits them, once, and the edge's only after its reply is checked). The
        # tag is on the config too because ``BaseChatModel.stream`` gives ``_stream`` no run
        # manager, so there are no child callbacks to carry it.
        return {
            "callbacks": self.callbacks,
            "metadata": decision_metadata(self.decision),
            "tags": [f"hera:{self.target}", _NOSTREAM],
        }

    def record(self, target: Target, reply: BaseMessage | None, error: str | None) -> None:
        entry = entry_from_message(
            reply,
            step=self.decision["step"],
            target=target,
            latency_ms=(time.perf_counter() - self.t0) * 1e3,
            pricing=self.model.pricing,
            model=model_name_of(self.model.edge if target == "edge" else self.model.cloud),
            edge_params=self.model.edge_params,
            error=error,
            prompt=self.prompt,
        )
        entry["turn"] = self.turn
        self.records.append(entry)
        self.t0 = time.perf_counter()

    def edge_failed(self, error: str, reply: BaseMessage | None = None) -> None:
        """Record the failed edge attempt and move the call to the cloud (caps permitting).

        Raises:
            CloudBudgetExceeded: The cloud may not be called (the edge error is in the reason).
        """
        self.record("edge", reply, error)
        logger.warning(
            "step %s: edge failed (%s); retrying on the cloud", self.decision["step"], error
        )
        reservations = self.model._reservations
        self.outcome.reservation, blocked = reservations.try_reserve(
            self.key,
            [*self.entries, *self.records],
            self.model.caps(),
            turn=self.turn,
            next_call_usd=self.model.estimate_usd(self.prompt),
        )
        if blocked is not None:
            blocked.reason = f"{blocked.reason}; and the edge failed: {error}"
            blocked.args = (blocked.reason,)
            raise blocked
        self.decision = override(self.decision, "cloud", f"edge failed: {error}")

    def message(self, reply: BaseMessage) -> AIMessage:
        """The reply with this call's record in its ``response_metadata``."""
        self.record(self.target, reply, None)
        trace_cost(self.records, [*self.entries, *self.records], {"callbacks": self.callbacks})
        message = reply if isinstance(reply, AIMessage) else AIMessage(reply.content)
        message.response_metadata = {**message.response_metadata, **self.metadata()}
        return message

    def metadata(self) -> dict[str, Any]:
        return {
            "hera_target": self.target,
            "hera_decision": dict(self.decision),
            "hera_ledger": [dict(e) for e in self.records],
        }

    def sides(self) -> Iterator[Target]:
        """The sides to try, in order: the decided one, then the cloud after an edge failure
        (`failed` / `usable` move the call there). Ends after each side was tried once."""
        tried: set[Target] = set()
        while self.target not in tried:
            tried.add(self.target)
            yield self.target

    def failed(self, exc: Exception) -> None:
        """An attempt raised: an edge error moves the call to the cloud; a cloud error, or a cap
        that forbids the cloud, is raised."""
        if isinstance(exc, CloudBudgetExceeded) or self.target == "cloud":
            raise exc
        self.edge_failed(error_text(exc))

    def usable(self, reply: BaseMessage | None) -> bool:
        """True to keep ``reply``; an unusable edge reply moves the call to the cloud (the cloud's
        reply is the last resort and is kept)."""
        problem = unusable_reply(reply) if self.target == "edge" else None
        if problem is None:
            return True
        self.edge_failed(problem, reply)
        return False

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, *_: object) -> None:
        self.model._reservations.release(self.outcome.reservation)


def _as_chunk(chunk: BaseMessage) -> AIMessageChunk:
    """An inner model's chunk as a middle chunk of the routed stream (the routed model's own
    last chunk closes it). A whole message (a model that does not stream) keeps its tool calls,
    usage and metadata: its calls become tool-call chunks with their raw arguments."""
    if isinstance(chunk, AIMessageChunk):
        return chunk.model_copy(update={"chunk_position": None})
    if not isinstance(chunk, AIMessage):
        return AIMessageChunk(content=chunk.content)
    calls = [
        tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c.get("id"), index=i)
        for i, c in enumerate(chunk.tool_calls)
    ]
    calls += [
        tool_call_chunk(
            name=c.get("name"), args=c.get("args"), id=c.get("id"), index=len(calls) + i
        )
        for i, c in enumerate(chunk.invalid_tool_calls)
    ]
    return AIMessageChunk(
        content=chunk.content,
        additional_kwargs=chunk.additional_kwargs,
        response_metadata=chunk.response_metadata,
        usage_metadata=chunk.usage_metadata,
        tool_call_chunks=calls,
        id=chunk.id,
    )


class RoutedChatModel(BaseChatModel):
    """A chat model that sends each call to ``edge`` or ``cloud`` as ``policy`` decides.

    Drop it into any LangChain agent (``create_agent(model, tools)``) to route per call without
    changing the graph. Every call path (invoke, ainvoke, stream, astream, batch) shares one
    implementation: the decision (`langgraph_hera.routing.decide.decide_step`), fail-over of an
    edge call that fails or returns an unusable reply (`unusable_reply`) to the cloud inside the
    same call, caps reserved before the cloud is called, and the record on the reply
    (``response_metadata``: ``hera_target``, ``hera_decision``, ``hera_ledger``). A reply that
    reports no token usage is counted locally and marked ``usage_estimated``. On streams the
    edge's reply is checked before its chunks are emitted (a failed or unusable edge reply
    never reaches the user); the cloud's chunks stream as they arrive.

    Attributes:
        edge: The edge chat model.
        cloud: The cloud chat model.
        policy: A `RoutingPolicy` or a registered name.
        cloud_budget_usd: Hard cap on cloud USD in the ``budget_scope`` (``None``: no cap).
        max_cloud_calls: Hard cap on cloud calls in the ``budget_scope``.
        cloud_call_usd_estimate: Upper bound of one cloud call's USD (default: counted from the
            prompt at the cloud's input price plus ``estimated_output_tokens``).
        budget_scope: ``"run"`` (default): caps count the current run, the messages since the
            latest user message; ``"thread"``: every message the call receives.
        estimated_output_tokens: Output tokens assumed when estimating a cloud call's USD.
        pricing: Cloud prices.
        edge_params: Edge model size N (edge energy estimate).

    Raises:
        CloudBudgetExceeded: A call needs the cloud (the edge failed) but a cap is reached.

    Example:
        >>> model = RoutedChatModel(edge=edge, cloud=cloud, policy="threshold", max_cloud_calls=3)
        >>> agent = create_agent(model, tools=my_tools, checkpointer=InMemorySaver())
        >>> config = {"configurable": {"thread_id": "1"}}
        >>> out = agent.invoke({"messages": [("user", "...")]}, config)
        >>> CostLedger(ledger_from_messages(out["messages"])).summary()
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    edge: Any
    cloud: Any
    policy: Any = Field(default="always-edge", validate_default=True)
    cloud_budget_usd: float | None = None
    max_cloud_calls: int | None = None
    cloud_call_usd_estimate: float | None = None
    budget_scope: Literal["run", "thread"] = "run"
    estimated_output_tokens: int = 512
    pricing: Pricing | None = None
    edge_params: float = DEFAULT_EDGE_PARAMS
    temperature: float | None = None
    model_name: str = Field(default="hera-routed", alias="model")

    _reservations: CloudReservations = PrivateAttr(default_factory=CloudReservations)

    @field_validator("policy")
    @classmethod
    def _resolve_policy(cls, value: Any) -> RoutingPolicy:
        if isinstance(value, str):
            return get_policy(value)
        if not isinstance(value, RoutingPolicy):
            raise ValueError(f"policy must be a RoutingPolicy or a policy name, got {value!r}")
        return value

    @field_validator("edge", "cloud")
    @classmethod
    def _check_model(cls, value: Any) -> Any:
        if not isinstance(value, Runnable):
            raise ValueError(f"edge and cloud must be chat models (Runnables), got {value!r}")
        return value

    @field_validator("cloud_budget_usd", "max_cloud_calls", "cloud_call_usd_estimate")
    @classmethod
    def _check_cap(cls, value: Any) -> Any:
        if value is not None and value < 0:
            raise ValueError(f"budget caps must be >= 0 or None, got {value!r}")
        return value

    @property
    def _llm_type(self) -> str:
        return "hera-routed"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "edge": model_name_of(self.edge),
            "cloud": model_name_of(self.cloud),
            "policy": self.policy.name,
        }

    def caps(self) -> Caps:
        """This model's caps (they count the entries on the messages of each call)."""
        return Caps(
            cloud_budget_usd=self.cloud_budget_usd,
            max_cloud_calls=self.max_cloud_calls,
            cloud_call_usd_estimate=self.cloud_call_usd_estimate,
            scope=self.budget_scope,
        )

    def estimate_usd(self, prompt: Sequence[BaseMessage]) -> float | None:
        """Estimated USD of a cloud call on ``prompt`` (``None`` without a USD cap)."""
        if self.cloud_budget_usd is None:
            return None
        return estimate_call_usd(
            prompt,
            model=model_name_of(self.cloud),
            pricing=self.pricing,
            output_tokens=self.estimated_output_tokens,
        )

    # ------------------------------------------------------------------ call paths

    def _model(self, call: _Call, kwargs: dict[str, Any]) -> Any:
        """The model for the call's target, with bound tools applied."""
        model = self.edge if call.target == "edge" else self.cloud
        kwargs = dict(kwargs)
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        if tools:
            extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
            model = model.bind_tools(tools, **extra)
        # The call's config on the binding itself: a binding merges its own config with the
        # ambient one (the graph node's callbacks), which would nest the inner run under the
        # node and register it twice with the tracer ("No indexed run ID").
        return (model.bind(**kwargs) if kwargs else model).with_config(call.config())

    # Every path: try the sides `_Call.sides` gives, keep the first usable reply. A failing
    # edge (an error or an unusable reply) moves the call to the cloud; caps are reserved first.

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _Call(self, messages, run_manager, kwargs.get("tools")) as call:
            for _ in call.sides():
                try:
                    reply = self._model(call, kwargs).invoke(call.prompt, call.config(), stop=stop)
                except Exception as exc:
                    call.failed(exc)
                    continue
                if call.usable(reply):
                    return ChatResult(generations=[ChatGeneration(message=call.message(reply))])
        raise RuntimeError("unreachable: the cloud's reply is always kept")  # pragma: no cover

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _Call(self, messages, run_manager, kwargs.get("tools")) as call:
            for _ in call.sides():
                try:
                    model = self._model(call, kwargs)
                    reply = await model.ainvoke(call.prompt, call.config(), stop=stop)
                except Exception as exc:
                    call.failed(exc)
                    continue
                if call.usable(reply):
                    return ChatResult(generations=[ChatGeneration(message=call.message(reply))])
        raise RuntimeError("unreachable: the cloud's reply is always kept")  # pragma: no cover

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with _Call(self, messages, run_manager, kwargs.get("tools")) as call:
            for side in call.sides():
                live = side == "cloud"  # the edge's chunks are held until its reply is checked
                chunks: list[AIMessageChunk] = []
                try:
                    model = self._model(call, kwargs)
                    for chunk in model.stream(call.prompt, call.config(), stop=stop):
                        chunks.append(_as_chunk(chunk))
                        if live:
                            yield ChatGenerationChunk(message=chunks[-1])
                except Exception as exc:
                    call.failed(exc)
                    continue
                total = merge_chunks(chunks)
                if call.usable(total):
                    if not live:
                        yield from (ChatGenerationChunk(message=c) for c in chunks)
                    yield self._final(call, total)
                    return

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        with _Call(self, messages, run_manager, kwargs.get("tools")) as call:
            for side in call.sides():
                live = side == "cloud"  # the edge's chunks are held until its reply is checked
                chunks: list[AIMessageChunk] = []
                try:
                    model = self._model(call, kwargs)
                    async for chunk in model.astream(call.prompt, call.config(), stop=stop):
                        chunks.append(_as_chunk(chunk))
                        if live:
                            yield ChatGenerationChunk(message=chunks[-1])
                except Exception as exc:
                    call.failed(exc)
                    continue
                total = merge_chunks(chunks)
                if call.usable(total):
                    if not live:
                        for c in chunks:
                            yield ChatGenerationChunk(message=c)
                    yield self._final(call, total)
                    return

    @staticmethod
    def _final(call: _Call, total: AIMessageChunk | None) -> ChatGenerationChunk:
        """The last chunk: the call's record (the streamed reply is what was charged)."""
        call.record(call.target, total, None)
        trace_cost(call.records, [*call.entries, *call.records], {"callbacks": call.callbacks})
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="", response_metadata=call.metadata(), chunk_position="last"
            )
        )

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` for both sides; each call binds them to the model it routes to."""
        for side, model in (("edge", self.edge), ("cloud", self.cloud)):
            if not hasattr(model, "bind_tools"):
                raise ValueError(f"the {side} model {model_name_of(model)} does not support tools")
        formatted = [convert_to_openai_tool(t) for t in tools]
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        return super().bind(tools=formatted, **extra, **kwargs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        # The routed run itself is not priced (its inner edge / cloud run is, under the real
        # provider and model name): an unknown provider keeps LangSmith from counting it twice.
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "hera"
        params["ls_model_name"] = kwargs.get("model", self.model_name)
        return params
