"""`RoutedChatModel`: a chat model that routes every call to an edge or a cloud model."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS, CostLedger, entry_from_message
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.features import route_input_from_messages
from langgraph_hera.routing.router import _override, budget_block
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import Decision, LedgerEntry, Target
from langgraph_hera.tracing import decision_metadata, trace_decision

logger = get_logger(__name__)


def _name_of(model: Any) -> str:
    inner = getattr(model, "bound", model)
    for attr in ("model_name", "model"):
        value = getattr(inner, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(inner).__name__


def _child_callbacks(run_manager: Any) -> Any:
    """Callbacks whose runs nest under ``run_manager``'s run (LLM run managers have no
    ``get_child``): the routed model's decision and inner model call appear as its children."""
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
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager


class RoutedChatModel(BaseChatModel):
    """A chat model that sends each call to ``edge`` or ``cloud`` as ``policy`` decides.

    Drop it into any LangChain agent (``create_agent(model, tools)``) to route per call without
    changing the graph. The decision rides on the reply (``response_metadata["hera_decision"]``),
    is traced as a ``route_decision`` child run, and is appended to `route_log`; costs go to
    `ledger`. An edge call that fails is retried on the cloud, with the reason recorded.

    Attributes:
        edge: The edge chat model.
        cloud: The cloud chat model.
        policy: A `RoutingPolicy` or a registered name.
        cloud_budget_usd: Hard cap on this model's cloud spend (``None``: no cap).
        max_cloud_calls: Hard cap on this model's cloud calls.
        pricing: Cloud prices.
        edge_params: Edge model size N (edge energy estimate).

    Example:
        >>> model = RoutedChatModel(edge=edge, cloud=cloud, policy="always-edge")
        >>> agent = create_agent(model, tools=my_tools)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    edge: Any
    cloud: Any
    policy: Any = Field(default="always-edge", validate_default=True)
    cloud_budget_usd: float | None = None
    max_cloud_calls: int | None = None
    pricing: Pricing | None = None
    edge_params: float = DEFAULT_EDGE_PARAMS
    temperature: float | None = None
    model_name: str = Field(default="hera-routed", alias="model")

    _route_log: list[Decision] = PrivateAttr(default_factory=list)
    _ledger: list[LedgerEntry] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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

    @field_validator("cloud_budget_usd", "max_cloud_calls")
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
            "edge": _name_of(self.edge),
            "cloud": _name_of(self.cloud),
            "policy": self.policy.name,
        }

    @property
    def route_log(self) -> list[Decision]:
        """Every decision this model made, oldest first."""
        return list(self._route_log)

    @property
    def ledger(self) -> CostLedger:
        """The cost of every call this model made."""
        return CostLedger(self._ledger)

    # ------------------------------------------------------------------ routing

    def _decide(self, messages: list[BaseMessage]) -> Decision:
        history = [
            m.response_metadata.get("hera_target", "")
            for m in messages
            if isinstance(m, AIMessage) and m.response_metadata.get("hera_target")
        ]
        ri = route_input_from_messages(messages, history=history)
        start = time.perf_counter()
        try:
            decision = self.policy.decide(ri)
        except Exception as exc:  # a broken policy must not break the agent
            logger.warning("policy %s failed: %r; using the cloud", self.policy.name, exc)
            decision = Decision(
                step=ri.step,
                target="cloud",
                score=float("nan"),
                threshold=None,
                policy=self.policy.name,
                reason=f"policy error ({type(exc).__name__}); cloud as the safe choice",
                latency_ms=0.0,
            )
        if decision["target"] == "cloud":
            context = {
                "cloud_budget_usd": self.cloud_budget_usd,
                "max_cloud_calls": self.max_cloud_calls,
            }
            blocked = budget_block(self._ledger, context)
            if blocked:
                decision = _override(decision, "edge", blocked)
        decision["latency_ms"] = (time.perf_counter() - start) * 1e3
        return decision

    def _record(
        self,
        decision: Decision,
        target: Target,
        reply: BaseMessage | None,
        t0: float,
        err: str | None,
    ) -> None:
        entry = entry_from_message(
            reply,
            step=decision["step"],
            target=target,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            pricing=self.pricing,
            model=_name_of(self.edge if target == "edge" else self.cloud),
            edge_params=self.edge_params,
            error=err,
        )
        with self._lock:
            self._ledger.append(entry)

    def _finish(self, decision: Decision, reply: BaseMessage) -> ChatResult:
        with self._lock:
            self._route_log.append(decision)
        message = reply if isinstance(reply, AIMessage) else AIMessage(reply.content)
        message.response_metadata = {
            **message.response_metadata,
            "hera_target": decision["target"],
            "hera_decision": dict(decision),
        }
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _config(self, decision: Decision, callbacks: Any) -> RunnableConfig:
        return {"callbacks": callbacks, "metadata": decision_metadata(decision)}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        decision = self._decide(messages)
        callbacks = _child_callbacks(run_manager)
        trace_decision(decision, {"callbacks": callbacks})
        cloud_kwargs = dict(kwargs)
        model = self._target_model(decision["target"], kwargs)
        t0 = time.perf_counter()
        try:
            reply = model.invoke(messages, self._config(decision, callbacks), stop=stop, **kwargs)
        except Exception as exc:
            self._record(decision, decision["target"], None, t0, error_text(exc))
            if decision["target"] == "cloud":
                raise
            decision = _override(decision, "cloud", f"edge failed: {type(exc).__name__}: {exc}")
            if budget_block(self._ledger, self._caps()):
                raise
            t0 = time.perf_counter()
            cloud = self._target_model("cloud", cloud_kwargs)
            reply = cloud.invoke(
                messages, self._config(decision, callbacks), stop=stop, **cloud_kwargs
            )
        self._record(decision, decision["target"], reply, t0, None)
        return self._finish(decision, reply)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        decision = self._decide(messages)
        callbacks = _child_callbacks(run_manager)
        trace_decision(decision, {"callbacks": callbacks})
        cloud_kwargs = dict(kwargs)
        model = self._target_model(decision["target"], kwargs)
        t0 = time.perf_counter()
        try:
            reply = await model.ainvoke(
                messages, self._config(decision, callbacks), stop=stop, **kwargs
            )
        except Exception as exc:
            self._record(decision, decision["target"], None, t0, error_text(exc))
            if decision["target"] == "cloud":
                raise
            decision = _override(decision, "cloud", f"edge failed: {type(exc).__name__}: {exc}")
            if budget_block(self._ledger, self._caps()):
                raise
            t0 = time.perf_counter()
            cloud = self._target_model("cloud", cloud_kwargs)
            reply = await cloud.ainvoke(
                messages, self._config(decision, callbacks), stop=stop, **cloud_kwargs
            )
        self._record(decision, decision["target"], reply, t0, None)
        return self._finish(decision, reply)

    def _caps(self) -> dict[str, Any]:
        return {"cloud_budget_usd": self.cloud_budget_usd, "max_cloud_calls": self.max_cloud_calls}

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        decision = self._decide(messages)
        callbacks = _child_callbacks(run_manager)
        trace_decision(decision, {"callbacks": callbacks})
        model = self._target_model(decision["target"], kwargs)
        t0 = time.perf_counter()
        total: AIMessageChunk | None = None
        for chunk in model.stream(messages, self._config(decision, callbacks), stop=stop, **kwargs):
            piece = (
                chunk
                if isinstance(chunk, AIMessageChunk)
                else AIMessageChunk(content=chunk.content)
            )
            total = piece if total is None else total + piece
            if run_manager and isinstance(piece.content, str):
                run_manager.on_llm_new_token(
                    piece.content, chunk=ChatGenerationChunk(message=piece)
                )
            yield ChatGenerationChunk(message=piece)
        self._record(decision, decision["target"], total, t0, None)
        with self._lock:
            self._route_log.append(decision)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                response_metadata={
                    "hera_target": decision["target"],
                    "hera_decision": dict(decision),
                },
            )
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        decision = self._decide(messages)
        callbacks = _child_callbacks(run_manager)
        trace_decision(decision, {"callbacks": callbacks})
        model = self._target_model(decision["target"], kwargs)
        t0 = time.perf_counter()
        total: AIMessageChunk | None = None
        async for chunk in model.astream(
            messages, self._config(decision, callbacks), stop=stop, **kwargs
        ):
            piece = (
                chunk
                if isinstance(chunk, AIMessageChunk)
                else AIMessageChunk(content=chunk.content)
            )
            total = piece if total is None else total + piece
            if run_manager and isinstance(piece.content, str):
                await run_manager.on_llm_new_token(
                    piece.content, chunk=ChatGenerationChunk(message=piece)
                )
            yield ChatGenerationChunk(message=piece)
        self._record(decision, decision["target"], total, t0, None)
        with self._lock:
            self._route_log.append(decision)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                response_metadata={
                    "hera_target": decision["target"],
                    "hera_decision": dict(decision),
                },
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
                raise ValueError(f"the {side} model {_name_of(model)} does not support tools")
        formatted = [convert_to_openai_tool(t) for t in tools]
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        return super().bind(tools=formatted, **extra, **kwargs)

    def _target_model(self, target: Target, kwargs: dict[str, Any]) -> Any:
        """The model for ``target``, with bound tools applied (popped from ``kwargs``)."""
        model = self.edge if target == "edge" else self.cloud
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        if tools:
            extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
            model = model.bind_tools(tools, **extra)
        return model

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "hera"
        params["ls_model_name"] = kwargs.get("model", self.model_name)
        return params
