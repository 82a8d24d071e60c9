"""Model nodes (edge / cloud) for tool-calling agents and for text-action environments."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs
from langgraph.graph import END
from langgraph.types import Command

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS, entry_from_message
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.models.retry import (
    NO_RETRY,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    cloud_retry_policy,
    retry_note,
)
from langgraph_hera.routing.action_prompts import (
    ACTION_SYSTEM_PROMPT,
    EPISODE_FULL_STEPS,
    EPISODE_SUCCESS_SYSTEM_PROMPT,
    EPISODE_SYSTEM_PROMPT,
    HISTORIES,
    PROMPT_LAYOUTS,
    PromptLayout,
    action_prompt,
    clip_text,
    episode_prompt,
    layout_prompt,
    messages_prompt,
    normalize_action,
    parse_action,
    run_trajectory,
    since_reset_prompt,
)
from langgraph_hera.routing.decide import current_context
from langgraph_hera.routing.decoding import (
    EdgeDecoding,
    check_decoding,
    constrained,
    reply_logprob,
    reply_margin,
)
from langgraph_hera.routing.deprecation import renamed_kwargs
from langgraph_hera.routing.features import executor_context
from langgraph_hera.routing.routed import model_name_of
from langgraph_hera.routing.wire import merge_chunks, streamed, to_wire, unusable_reply
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import LedgerEntry, Target
from langgraph_hera.tracing import decision_config, trace_cost

logger = get_logger(__name__)

__all__ = [
    "ACTION_SYSTEM_PROMPT",
    "ChatRunnable",
    "EPISODE_FULL_STEPS",
    "EPISODE_SUCCESS_SYSTEM_PROMPT",
    "EPISODE_SYSTEM_PROMPT",
    "HISTORIES",
    "PROMPT_LAYOUTS",
    "PromptLayout",
    "action_prompt",
    "clip_text",
    "create_action_node",
    "create_model_node",
    "episode_prompt",
    "layout_prompt",
    "messages_prompt",
    "normalize_action",
    "parse_action",
    "run_trajectory",
    "since_reset_prompt",
]

ChatRunnable = Runnable[LanguageModelInput, BaseMessage]
#: What a tool agent's model node shows its model (see `create_model_node`).
ModelContext = Literal["thread", "since-handoff"]


def _check_target(target: str) -> Target:
    if target not in ("edge", "cloud"):
        raise ValueError(f"target must be 'edge' or 'cloud', got {target!r}")
    return target  # type: ignore[return-value]


class _Call:
    """Shared bookkeeping of one model call: config with decision metadata, timing, ledger."""

    def __init__(
        self,
        target: Target,
        pricing: Pricing | None,
        edge_params: float,
        model_name: str,
        router_node: str | None = "router",
        check_stream: bool = False,
    ) -> None:
        self.check_stream = check_stream  # tool agents: check a streamed edge reply first
        self.router_node = router_node
        self.target = target
        self.pricing = pricing
        self.edge_params = edge_params
        self.model_name = model_name

    def config(self, state: dict[str, Any], config: RunnableConfig) -> RunnableConfig:
        decision = state.get("decision")
        return decision_config(decision, config) if decision else config

    def entry(
        self,
        message: BaseMessage | None,
        step: int,
        t0: float,
        error: str | None = None,
        *,
        state: dict[str, Any] | None = None,
        prompt: Sequence[BaseMessage] | None = None,
    ) -> LedgerEntry:
        """The ledger entry of this call; tokens are counted from ``prompt`` and the reply when
        the reply reports no usage (marked ``usage_estimated``)."""
        entry = entry_from_message(
            message,
            step=step,
            target=self.target,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            pricing=self.pricing,
            model=self.model_name,
            edge_params=self.edge_params,
            error=error,
            prompt=prompt,
        )
        turn = (state or {}).get("turn")
        if turn is not None:
            entry["turn"] = turn
        return entry

    def _policy(self) -> RetryPolicy:
        if self.target != "cloud":
            return NO_RETRY  # a failed edge call fails over to the cloud at once
        return cloud_retry_policy(current_context())

    def _checked_stream(self, config: RunnableConfig) -> RunnableConfig | None:
        """On a streamed run, the edge's config for a checked stream (``nostream``: its tokens
        reach the user only as the whole, checked reply); ``None`` otherwise."""
        if not self.check_stream or self.target != "edge" or not streamed(config):
            return None
        return merge_configs(config, {"tags": ["nostream"]})

    def invoke(
        self, model: Any, prompt: Any, config: RunnableConfig, step: int, notes: list[str]
    ) -> BaseMessage:
        """``model.invoke`` with the cloud retry policy; retried attempts noted in ``notes``.

        On a streamed run an edge reply is collected from ``model.stream`` as one chunk (raw
        tool-call arguments kept for `unusable_reply`)."""
        quiet = self._checked_stream(config)
        if quiet is not None:
            reply = merge_chunks(list(model.stream(prompt, quiet)))
            return reply if reply is not None else AIMessage("")
        note = retry_note(step, self.target, notes)
        return call_with_retries(lambda: model.invoke(prompt, config), self._policy(), note)

    async def ainvoke(
        self, model: Any, prompt: Any, config: RunnableConfig, step: int, notes: list[str]
    ) -> BaseMessage:
        """Async `invoke`."""
        quiet = self._checked_stream(config)
        if quiet is not None:
            reply = merge_chunks([c async for c in model.astream(prompt, quiet)])
            return reply if reply is not None else AIMessage("")
        note = retry_note(step, self.target, notes)
        return await acall_with_retries(lambda: model.ainvoke(prompt, config), self._policy(), note)

    def failure(
        self,
        state: dict[str, Any],
        exc: Exception | str,
        t0: float,
        *,
        reply: BaseMessage | None = None,
        prompt: Sequence[BaseMessage] | None = None,
    ) -> Command:
        """A failed call, recorded: the edge hands the step back to the router (which sends it
        to the cloud); a failed cloud call, or an edge call without a router, halts the run.

        ``exc`` is the exception, or why a ``reply`` that came back is unusable (`unusable_reply`:
        the reply is charged but never enters the thread)."""
        step = int(state.get("step", 0))
        error = exc if isinstance(exc, str) else error_text(exc)
        verb = "reply unusable" if isinstance(exc, str) else "call failed"
        msg = f"step {step}: {self.target} {verb}: {error}"
        logger.warning(msg)
        update: dict[str, Any] = {
            "ledger": [self.entry(reply, step, t0, error=error, state=state, prompt=prompt)],
            "errors": [msg],
        }
        if self.target == "edge" and self.router_node:
            update.update(edge_failed_step=step, edge_error=error)
            return Command(goto=self.router_node, update=update)
        update["halt"] = f"{self.target} call failed at step {step}: {error}"
        return Command(goto=END, update=update)


def _noted(command: Command, notes: list[str]) -> Command:
    """``command`` with the retried attempts recorded in ``errors`` (first)."""
    if notes:
        update = dict(command.update or {})  # type: ignore[call-overload]
        update["errors"] = [*notes, *update.get("errors", [])]
        return Command(goto=command.goto, update=update)
    return command


def create_model_node(
    model: ChatRunnable,
    *,
    target: Target,
    system_prompt: str | None = None,
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    tools_node: str | None = "tools",
    router_node: str | None = "router",
    context: ModelContext = "thread",
) -> RunnableLambda:
    """A node that runs one chat-model step of a tool-calling agent.

    Appends the reply to ``messages`` and its cost to ``ledger``. A failed edge call returns
    the step to the router, which sends it to the cloud with the reason recorded; a failed cloud
    call is recorded and halts the run.

    Args:
        model: Any chat model / runnable (tools already bound).
        target: ``"edge"`` or ``"cloud"``: which side this node is.
        system_prompt: Prepended to the messages when given.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N for the energy estimate.
        tools_node: Where a reply with tool calls goes (``None``: always END).
        router_node: Where a failed edge call hands the step back to (``None``: the run halts,
            recorded).
        context: What the model sees: ``"thread"`` (every message) or ``"since-handoff"`` (a
            supervised executor: from the supervisor's latest handoff of the run on, see
            `langgraph_hera.routing.features.executor_context`).

    Returns:
        A runnable node returning `Command`; declare ``destinations=(tools_node, router_node,
        END)`` when adding it (`add_router` does).

    Raises:
        ValueError: An unknown ``target`` or ``context``.
    """
    if context not in ("thread", "since-handoff"):
        raise ValueError(f"context must be 'thread' or 'since-handoff', got {context!r}")
    call = _Call(
        _check_target(target),
        pricing,
        edge_params,
        model_name_of(model),
        router_node,
        check_stream=True,
    )

    def _messages(state: dict[str, Any]) -> list[BaseMessage]:
        thread = list(state.get("messages") or [])
        msgs = to_wire(executor_context(thread) if context == "since-handoff" else thread)
        return [SystemMessage(system_prompt), *msgs] if system_prompt else msgs

    def _done(
        state: dict[str, Any],
        reply: BaseMessage,
        t0: float,
        prompt: list[BaseMessage],
        config: RunnableConfig | None = None,
    ) -> Command:
        problem = unusable_reply(reply)
        if problem is not None:
            # Never left in the thread: the edge's step fails over to the cloud; a cloud reply
            # that cannot be used ends the run with the reason.
            return call.failure(state, problem, t0, reply=reply, prompt=prompt)
        if isinstance(reply, AIMessageChunk):  # a checked edge stream: the message it makes
            reply = message_chunk_to_message(reply)
        step = int(state.get("step", 0))
        calls_tools = isinstance(reply, AIMessage) and bool(reply.tool_calls)
        entry = call.entry(reply, step, t0, state=state, prompt=prompt)
        # The call's cost and the thread's totals per side, as a `hera_cost` run in the trace.
        trace_cost([entry], [*(state.get("ledger") or []), entry], config)
        return Command(
            goto=tools_node if (calls_tools and tools_node) else END,
            update={"messages": [reply], "ledger": [entry], "step": step + 1},
        )

    def run(state: dict[str, Any], config: RunnableConfig) -> Any:
        notes: list[str] = []
        t0, step = time.perf_counter(), int(state.get("step", 0))
        prompt = _messages(state)
        try:
            cfg = call.config(state, config)
            reply = call.invoke(model, prompt, cfg, step, notes)
        except Exception as exc:
            return _noted(call.failure(state, exc, t0, prompt=prompt), notes)
        return _noted(_done(state, reply, t0, prompt, config), notes)

    async def arun(state: dict[str, Any], config: RunnableConfig) -> Any:
        notes: list[str] = []
        t0, step = time.perf_counter(), int(state.get("step", 0))
        prompt = _messages(state)
        try:
            cfg = call.config(state, config)
            reply = await call.ainvoke(model, prompt, cfg, step, notes)
        except Exception as exc:
            return _noted(call.failure(state, exc, t0, prompt=prompt), notes)
        return _noted(_done(state, reply, t0, prompt, config), notes)

    return RunnableLambda(run, afunc=arun, name=target)


# --------------------------------------------------------------------------- text actions
# The prompts live in `action_prompts` (imported above; their names stay importable from here).


def _reply_problem(text: str, ok: bool, state: dict[str, Any]) -> str | None:
    """Why a text-action reply is suspect (recorded in ``errors``), or None."""
    if not text.strip():
        return "returned nothing (an empty reply), not a valid action"
    if not state.get("valid_actions"):
        return "answered without a list of valid actions (none given): the action is unchecked"
    if not ok:
        return f"reply is not a valid action: {text!r}"
    return None


def _reused_proposal(state: dict[str, Any], env_node: str) -> Command | None:
    """The edge's proposal of this step executed (already paid for), or None if there is none."""
    proposal = state.get("edge_proposal")
    step = int(state.get("step", 0))
    if not proposal or proposal.get("step") != step:
        return None
    update: dict[str, Any] = {
        "action": proposal["action"],
        "action_valid": proposal["valid"],
        "action_logprob": proposal["logprob"],
        "action_margin": proposal.get("margin"),
        "messages": [AIMessage(proposal["action"], name="edge")],
        "step": step + 1,
    }
    if not proposal["valid"]:
        update["errors"] = [f"step {step}: edge proposal is not a valid action"]
    return Command(goto=env_node, update=update)


class _ActionStep:
    """One text-action step of an action node: the prompt, the (constrained) call, the parsed
    action, and where it goes. Sync and async share everything but the call."""

    def __init__(
        self,
        model: ChatRunnable,
        call: _Call,
        *,
        edge_decoding: EdgeDecoding,
        prompt_layout: PromptLayout,
        history_window: int,
        env_node: str,
        propose_only: bool,
    ) -> None:
        self.model = model
        self.call = call
        self.edge_decoding = edge_decoding
        self.prompt_layout = prompt_layout
        self.history_window = history_window
        self.env_node = env_node
        self.propose_only = propose_only
        # Only the edge node of an edge-first graph executes the proposal of its step.
        self.reuses_proposal = call.target == "edge" and not propose_only

    def reuse(self, state: dict[str, Any]) -> Command | None:
        return _reused_proposal(state, self.env_node) if self.reuses_proposal else None

    def prompt(self, state: dict[str, Any]) -> list[BaseMessage]:
        return layout_prompt(state, self.prompt_layout, history_window=self.history_window)

    def bound(self, state: dict[str, Any]) -> ChatRunnable:
        return constrained(self.model, state.get("valid_actions") or [], self.edge_decoding)

    def proposed(self, state: dict[str, Any], reply: BaseMessage, t0: float) -> Command:
        """Edge-first routing: the proposal for the router to see (with its logprob)."""
        step = int(state.get("step", 0))
        text = reply.text if isinstance(reply.text, str) else str(reply.text)
        action, ok = parse_action(text, state.get("valid_actions") or [])
        proposal = {
            "step": step,
            "action": action,
            "valid": ok,
            "logprob": reply_logprob(reply),
            "margin": reply_margin(reply),
        }
        return Command(
            goto=self.call.router_node,
            update={
                "edge_proposal": proposal,
                "ledger": [self.call.entry(reply, step, t0, state=state)],
            },
        )

    def done(self, state: dict[str, Any], reply: BaseMessage, t0: float) -> Command:
        if self.propose_only:
            return self.proposed(state, reply, t0)
        step, target = int(state.get("step", 0)), self.call.target
        text = reply.text if isinstance(reply.text, str) else str(reply.text)
        action, ok = parse_action(text, state.get("valid_actions") or [])
        update: dict[str, Any] = {
            "action": action,
            "action_valid": ok,
            "action_logprob": reply_logprob(reply),
            "action_margin": reply_margin(reply),
            "messages": [AIMessage(action, name=target)],
            "ledger": [self.call.entry(reply, step, t0, state=state)],
            "step": step + 1,
        }
        problem = _reply_problem(text, ok, state)
        if problem:
            update["errors"] = [f"step {step}: {target} {problem}"]
        return Command(goto=self.env_node, update=update)

    def run(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        reused = self.reuse(state)
        if reused is not None:
            return reused
        notes: list[str] = []
        t0, step = time.perf_counter(), int(state.get("step", 0))
        try:
            prompt = self.prompt(state)
            cfg = self.call.config(state, config)
            reply = self.call.invoke(self.bound(state), prompt, cfg, step, notes)
        except Exception as exc:
            return _noted(self.call.failure(state, exc, t0), notes)
        return _noted(self.done(state, reply, t0), notes)

    async def arun(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        reused = self.reuse(state)
        if reused is not None:
            return reused
        notes: list[str] = []
        t0, step = time.perf_counter(), int(state.get("step", 0))
        try:
            prompt = self.prompt(state)
            cfg = self.call.config(state, config)
            reply = await self.call.ainvoke(self.bound(state), prompt, cfg, step, notes)
        except Exception as exc:
            return _noted(self.call.failure(state, exc, t0), notes)
        return _noted(self.done(state, reply, t0), notes)


def create_action_node(
    model: ChatRunnable,
    *,
    target: Target,
    edge_decoding: EdgeDecoding = "choice",
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    history_window: int = 4,
    env_node: str = "env",
    router_node: str | None = "router",
    propose_only: bool = False,
    prompt_layout: PromptLayout = "window",
    **deprecated: Any,
) -> RunnableLambda:
    """A node that asks ``model`` for the next action of a text-action environment.

    Writes ``action`` (mapped onto a valid action when possible), ``action_valid``,
    ``action_logprob`` and the ledger entry. An unparsable reply is recorded (and still sent to
    the environment, which answers it like any invalid command); it never crashes the run.

    Args:
        model: Chat model of this side.
        target: ``"edge"`` or ``"cloud"``.
        edge_decoding: How an OpenAI-compatible (vLLM / llama.cpp) model is held to the valid
            actions (`EdgeDecoding`): ``"choice"`` (the server constrains generation),
            ``"rank"`` (the most likely valid action), ``"free"`` (parsed afterwards). Other
            models are never constrained. See `langgraph_hera.routing.decoding`.
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N for the energy estimate.
        history_window: How many past (action, observation) pairs the ``"window"`` prompt shows.
        env_node: Where the action goes.
        router_node: Where a failed edge call hands the step back to (``None``: the run halts,
            recorded).
        propose_only: Edge-first routing: only propose the action (``edge_proposal``, with its
            logprob, for the router to see) and go to the router. The edge node then executes
            the proposal of the same step without calling the model again.
        prompt_layout: `PromptLayout`: ``"window"``: the prompt shows the last
            ``history_window`` steps (bounded); ``"messages"``: the model sees its whole
            context since the last reset as a chat (`messages_prompt`, the ReAct executor of
            supervised agents); ``"since-reset"``: the same context in one message
            (`since_reset_prompt`); ``"episode"``: the whole episode with the game's score
            after each step and the actions already done (`episode_prompt`, for general LLMs
            such as a cloud model).
        **deprecated: Old names, with a `DeprecationWarning`: ``constrain`` (``True`` /
            ``False`` = ``"choice"`` / ``"free"``) for ``edge_decoding``, ``history`` for
            ``prompt_layout``.

    Raises:
        ValueError: Unknown ``target``, ``edge_decoding`` or ``prompt_layout``.
    """
    old = renamed_kwargs(
        "create_action_node",
        deprecated,
        {"constrain": "edge_decoding", "history": "prompt_layout"},
    )
    edge_decoding = check_decoding(old.get("edge_decoding", edge_decoding))
    prompt_layout = old.get("prompt_layout", prompt_layout)
    if prompt_layout not in PROMPT_LAYOUTS:
        raise ValueError(
            f"prompt_layout must be one of {list(PROMPT_LAYOUTS)}, got {prompt_layout!r}"
        )
    call = _Call(_check_target(target), pricing, edge_params, model_name_of(model), router_node)
    step = _ActionStep(
        model,
        call,
        edge_decoding=edge_decoding,
        prompt_layout=prompt_layout,
        history_window=history_window,
        env_node=env_node,
        propose_only=propose_only,
    )
    return RunnableLambda(step.run, afunc=step.arun, name="propose" if propose_only else target)
