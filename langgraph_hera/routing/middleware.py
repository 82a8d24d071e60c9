"""`HeraRoutingMiddleware`: step-level edge/cloud routing for `langchain.agents.create_agent`.

LangChain 1.x chooses the model of each call in middleware (``wrap_model_call``). LangChain's own
`ModelRouterMiddleware` decides once per run (task-level routing); this one decides at every
model call of the agent, with any registered `RoutingPolicy` (a trained `HeraRouter` included),
through the project's one decision path (`langgraph_hera.routing.decide.decide_step`).

Where it goes in the middleware list: the first middleware is the outermost. Put
``HeraRoutingMiddleware`` **after** middleware that should see the routed call as one call
(``ModelCallLimitMiddleware``, ``SummarizationMiddleware``, ``ContextEditingMiddleware``,
``HumanInTheLoopMiddleware``: they act on the state or the request before routing), and
**before** ``ModelRetryMiddleware`` / ``ModelFallbackMiddleware`` when those should retry the
chosen side (inner middleware wrap the routed model call). Give an inner
``ModelRetryMiddleware`` ``on_failure="error"``: its default answers a spent retry with an AI
message, which would look like a usable edge reply instead of a failure to fail over from.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, NotRequired

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables.config import merge_configs, var_child_runnable_config
from langgraph.types import Command

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
from langgraph_hera.routing.features import current_run, route_input_from_messages
from langgraph_hera.routing.routed import model_name_of
from langgraph_hera.routing.wire import to_wire, unusable_reply
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import BUDGET_SCOPES, Decision, LedgerEntry, Target
from langgraph_hera.tracing import decision_config, trace_cost, trace_decision

logger = get_logger(__name__)


class HeraRoutingState(AgentState):
    """The agent state `HeraRoutingMiddleware` adds (checkpointed with the thread).

    ``route_log``, ``ledger`` and ``errors`` (edge fail-overs, halts) are per thread (every
    decision and entry names its run in ``turn``);
    ``hera_halt`` is per run: why the last run stopped early (a cap reached while the edge could
    not serve), cleared when the next run starts.
    """

    route_log: Annotated[list[Decision], operator.add]
    ledger: Annotated[list[LedgerEntry], operator.add]
    errors: Annotated[list[str], operator.add]
    hera_halt: NotRequired[str | None]


class HeraRoutingMiddleware(AgentMiddleware[HeraRoutingState]):
    """Route every model call of a `create_agent` agent to the edge or the cloud, step by step.

    Each call: the policy scores the step (features of the current run: the latest user request,
    the step within it, the last tool result); an edge that is down or a policy error sends it to
    the cloud; a cloud call that would cross a cap goes to the edge. The chosen (unbound) model
    is passed to the handler, so the framework binds tools and structured output after this
    middleware; the edge gets ``edge_settings``, the cloud the request's own settings plus
    ``cloud_settings`` (a provider's settings never reach the other side). An edge call that
    fails, or whose reply is unusable (empty, cut off, invalid tool calls), is retried on the
    cloud inside the same call and never enters the thread. The decision and the ledger entries
    land in the agent's state in the same step (``route_log``, ``ledger``) and in the trace (a
    ``route_decision`` child run; the model run carries the ``hera_*`` metadata and a
    ``hera:<side>`` tag). When a cap is reached and the edge cannot serve, the run ends cleanly
    with an AI message saying why (``hera_halt`` in state).

    Caps come from the run's context (``create_agent(..., context_schema=HeraContext)`` and
    ``invoke(..., context=HeraContext(max_cloud_calls=...))``, or a dict) and default to the
    constructor's; they count the current run (default) or the whole thread (``budget_scope``),
    from the ledger in state. Concurrent calls on one scope reserve the cloud call first.

    Args:
        edge: The edge chat model, unbound (e.g. `edge_chat_model(...)`).
        cloud: The cloud chat model, unbound (usually the agent's own model).
        policy: A `RoutingPolicy` or a registered name (``"threshold"``, ``"hera"``, ...).
        cloud_budget_usd: Default USD cap (the run context's value wins).
        max_cloud_calls: Default call cap.
        budget_scope: Default scope of the caps: ``"run"`` or ``"thread"``.
        edge_settings: Model settings for edge calls (e.g. ``{"max_tokens": 256}``).
        cloud_settings: Extra model settings for cloud calls.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N (edge energy estimate).
        edge_health: Liveness probe of the edge (``False``: the step goes to the cloud).

    Raises:
        ValueError: Unknown policy, models that are not chat models, a bad cap or scope.

    Example:
        >>> from langchain.agents import create_agent
        >>> agent = create_agent(
        ...     cloud, tools=my_tools, context_schema=HeraContext,
        ...     middleware=[HeraRoutingMiddleware(edge=edge, cloud=cloud, policy="threshold")])
        >>> out = agent.invoke({"messages": [("user", "...")]},
        ...                    context=HeraContext(max_cloud_calls=5))
        >>> out["route_log"], CostLedger(out["ledger"]).summary()
    """

    state_schema = HeraRoutingState

    def __init__(
        self,
        *,
        edge: BaseChatModel,
        cloud: BaseChatModel,
        policy: RoutingPolicy | str = "threshold",
        cloud_budget_usd: float | None = None,
        max_cloud_calls: int | None = None,
        budget_scope: Literal["run", "thread"] = "run",
        edge_settings: dict[str, Any] | None = None,
        cloud_settings: dict[str, Any] | None = None,
        pricing: Pricing | None = None,
        edge_params: float = DEFAULT_EDGE_PARAMS,
        edge_health: Callable[[], bool] | None = None,
    ) -> None:
        """Validate and keep the settings (see the class docstring)."""
        super().__init__()
        for side, model in (("edge", edge), ("cloud", cloud)):
            if not isinstance(model, BaseChatModel):
                raise ValueError(
                    f"{side} must be an unbound BaseChatModel (the agent binds tools after "
                    f"middleware), got {type(model).__name__}: {model!r}"
                )
        self.policy = get_policy(policy) if isinstance(policy, str) else policy
        if not isinstance(self.policy, RoutingPolicy):
            raise ValueError(f"policy must be a RoutingPolicy or a policy name, got {policy!r}")
        if budget_scope not in BUDGET_SCOPES:
            raise ValueError(
                f"budget_scope must be one of {list(BUDGET_SCOPES)}, got {budget_scope!r}"
            )
        self.defaults = Caps(
            cloud_budget_usd=cloud_budget_usd, max_cloud_calls=max_cloud_calls, scope=budget_scope
        )
        self.edge, self.cloud = edge, cloud
        self.edge_settings = dict(edge_settings or {})
        self.cloud_settings = dict(cloud_settings or {})
        self.pricing = pricing
        self.edge_params = edge_params
        self.edge_health = edge_health
        self._reservations = CloudReservations()

    @property
    def name(self) -> str:
        """Middleware name (in traces and the graph)."""
        return "HeraRoutingMiddleware"

    # ------------------------------------------------------------------ the shared work

    def _caps(self, request: ModelRequest[Any]) -> Caps:
        context = getattr(request.runtime, "context", None) if request.runtime else None
        return Caps.from_context(
            context,
            cloud_budget_usd=self.defaults.cloud_budget_usd,
            max_cloud_calls=self.defaults.max_cloud_calls,
            scope=self.defaults.scope,
        )

    def _begin(self, request: ModelRequest[Any]) -> _RoutedCall:
        state: dict[str, Any] = dict(request.state or {})
        messages = list(request.messages)
        _, turn = current_run(messages)
        turn = turn or "no-user-message"
        entries = list(state.get("ledger") or [])
        history = [d["target"] for d in state.get("route_log") or [] if d.get("turn") == turn]
        edge_down = None
        if self.edge_health is not None and not self.edge_health():
            edge_down = "edge reported unhealthy"
        caps = self._caps(request)
        prompt = to_wire(messages)
        estimate = None
        if caps.cloud_budget_usd is not None:
            estimate = estimate_call_usd(
                prompt, model=model_name_of(self.cloud), pricing=self.pricing
            )
        thread = _thread_id(request)
        outcome = decide_step(
            self.policy,
            route_input_from_messages(messages, history=history, tools=request.tools),
            entries=entries,
            caps=caps,
            turn=turn,
            edge_down=edge_down,
            next_call_usd=estimate,
            reservations=self._reservations,
            scope_key=f"{thread}|{turn if caps.scope == 'run' else ''}",
        )
        return _RoutedCall(self, request, outcome, prompt, turn, entries, caps, estimate)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ExtendedModelResponse[Any]:
        """Route one model call (sync); see `awrap_model_call` for the shared steps."""
        with self._begin(request) as call:
            for side in call.sides():
                try:
                    with call.traced():
                        response = handler(call.request_for(side))
                except Exception as exc:
                    result = call.failed(exc)
                else:
                    result = call.accept(response)
                if result is not None:
                    return result
        return call.stop()  # no side may run: a cap is reached and the edge is down

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ExtendedModelResponse[Any]:
        """Route one model call (async): try the decided side, then the cloud if the edge
        failed or answered unusably; each outcome (an answer, or a clean stop) comes from
        `_RoutedCall`."""
        with self._begin(request) as call:
            for side in call.sides():
                try:
                    with call.traced():
                        response = await handler(call.request_for(side))
                except Exception as exc:
                    result = call.failed(exc)
                else:
                    result = call.accept(response)
                if result is not None:
                    return result
        return call.stop()  # no side may run: a cap is reached and the edge is down


def _reply(response: ModelResponse[Any]) -> AIMessage | None:
    return next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)


def _thread_id(request: ModelRequest[Any]) -> str | None:
    config = var_child_runnable_config.get() or {}
    thread = (config.get("configurable") or {}).get("thread_id")
    if thread is None and request.runtime is not None:
        info = getattr(request.runtime, "execution_info", None)
        thread = getattr(info, "thread_id", None)
    return str(thread) if thread else None


class _RoutedCall:
    """One routed model call of the middleware: decision, reservation, entries, state update."""

    def __init__(
        self,
        mw: HeraRoutingMiddleware,
        request: ModelRequest[Any],
        outcome: StepOutcome,
        prompt: list[BaseMessage],
        turn: str,
        entries: list[LedgerEntry],
        caps: Caps,
        estimate: float | None,
    ) -> None:
        self.mw, self.request, self.outcome = mw, request, outcome
        self.prompt, self.turn, self.entries, self.caps = prompt, turn, entries, caps
        self.estimate = estimate
        self.decision: Decision = outcome.decision
        self.records: list[LedgerEntry] = []
        self.errors: list[str] = list(outcome.errors)
        self.t0 = time.perf_counter()
        trace_decision(self.decision, var_child_runnable_config.get())

    @property
    def target(self) -> Target:
        return self.decision["target"]

    @property
    def halted(self) -> bool:
        return self.outcome.halt is not None

    def request_for(self, target: Target) -> ModelRequest[Any]:
        model = self.mw.edge if target == "edge" else self.mw.cloud
        settings = (
            dict(self.mw.edge_settings)
            if target == "edge"
            else {**self.request.model_settings, **self.mw.cloud_settings}
        )
        return self.request.override(
            model=model,
            messages=self.prompt,  # type: ignore[arg-type]  # to_wire keeps the message types
            model_settings=settings,
        )

    @contextmanager
    def traced(self) -> Iterator[None]:
        """The model run of this call carries the decision's metadata and ``hera:<side>`` tag;
        the edge's tokens are not streamed live (its reply is checked first)."""
        config = decision_config(self.decision, var_child_runnable_config.get())
        if self.target == "edge":
            config = merge_configs(config, {"tags": ["nostream"]})
        token = var_child_runnable_config.set(config)
        try:
            yield
        finally:
            var_child_runnable_config.reset(token)

    def _entry(self, target: Target, reply: BaseMessage | None, error: str | None) -> LedgerEntry:
        entry = entry_from_message(
            reply,
            step=self.decision["step"],
            target=target,
            latency_ms=(time.perf_counter() - self.t0) * 1e3,
            pricing=self.mw.pricing,
            model=model_name_of(self.mw.edge if target == "edge" else self.mw.cloud),
            edge_params=self.mw.edge_params,
            error=error,
            prompt=self.prompt,
        )
        entry["turn"] = self.turn
        self.t0 = time.perf_counter()
        return entry

    def edge_failed(self, error: str, reply: BaseMessage | None) -> None:
        """Record the failed edge attempt; move the call to the cloud (caps permitting).

        Raises:
            CloudBudgetExceeded: A cap forbids the cloud.
        """
        self.records.append(self._entry("edge", reply, error))
        msg = f"step {self.decision['step']}: edge failed, retried on the cloud: {error}"
        self.errors.append(msg)
        logger.warning(msg)
        reservation, blocked = self.mw._reservations.try_reserve(
            f"{_thread_id(self.request)}|{self.turn if self.caps.scope == 'run' else ''}",
            [*self.entries, *self.records],
            self.caps,
            turn=self.turn,
            next_call_usd=self.estimate,
        )
        if blocked is not None:
            blocked.reason = f"{blocked.reason}; and the edge failed: {error}"
            raise blocked
        self.outcome.reservation = reservation
        self.decision = override(self.decision, "cloud", f"edge failed: {error}")
        trace_decision(self.decision, var_child_runnable_config.get())

    def _update(self, **extra: Any) -> Command[Any]:
        update: dict[str, Any] = {"route_log": [self.decision], "ledger": self.records, **extra}
        if self.errors:
            update["errors"] = self.errors
        return Command(update=update)

    def done(self, response: ModelResponse[Any]) -> ExtendedModelResponse[Any]:
        reply = _reply(response)
        self.records.append(self._entry(self.target, reply, None))
        trace_cost(self.records, [*self.entries, *self.records], var_child_runnable_config.get())
        if reply is not None:
            reply.response_metadata = {
                **reply.response_metadata,
                "hera_target": self.target,
                "hera_decision": dict(self.decision),
            }
        return ExtendedModelResponse(model_response=response, command=self._update(hera_halt=None))

    def stop(self, reason: str | None = None) -> ExtendedModelResponse[Any]:
        """End the run cleanly: an AI message (no tool calls) saying why."""
        why = reason or self.outcome.halt or "cloud cap reached"
        self.decision = {**self.decision, "reason": f"halted: {why}"}  # type: ignore[typeddict-item]
        self.errors.append(f"step {self.decision['step']}: halted: {why}")
        message = AIMessage(
            f"I had to stop: {why}.",
            response_metadata={"hera_target": "none", "hera_decision": dict(self.decision)},
        )
        return ExtendedModelResponse(
            model_response=ModelResponse(result=[message]), command=self._update(hera_halt=why)
        )

    def sides(self) -> Iterator[Target]:
        """The sides to try: none when the run must stop, else the decided one, then the cloud
        after an edge failure. Each side is tried once."""
        tried: set[Target] = set()
        while not self.halted and self.target not in tried:
            tried.add(self.target)
            yield self.target

    def failed(self, exc: Exception) -> ExtendedModelResponse[Any] | None:
        """An attempt raised: an edge error moves the call to the cloud (``None``: try it), or
        stops the run when a cap forbids the cloud; a cloud error is raised."""
        if self.target == "cloud":
            raise exc
        try:
            self.edge_failed(error_text(exc), None)
        except CloudBudgetExceeded as blocked:
            return self.stop(blocked.reason)
        return None

    def accept(self, response: ModelResponse[Any]) -> ExtendedModelResponse[Any] | None:
        """The answer with its state update; ``None`` when an unusable edge reply moved the
        call to the cloud; a stop when a cap forbids the cloud."""
        problem = unusable_reply(_reply(response)) if self.target == "edge" else None
        if problem is None:
            return self.done(response)
        try:
            self.edge_failed(problem, _reply(response))
        except CloudBudgetExceeded as blocked:
            return self.stop(blocked.reason)
        return None

    def __enter__(self) -> _RoutedCall:
        return self

    def __exit__(self, *_: object) -> None:
        self.mw._reservations.release(self.outcome.reservation)
