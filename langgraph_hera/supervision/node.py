"""The supervisor node: PEVR (plan, verify against the plan, replan) and EVA (verify against the
query, summary + advice), with context resets of the executor."""

from __future__ import annotations

import time
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS, entry_from_message
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.models.retry import (
    NO_RETRY,
    call_with_retries,
    cloud_retry_policy,
    retry_note,
)
from langgraph_hera.policies.base import RoutingPolicy, get_policy
from langgraph_hera.routing.features import (
    HANDOFF_KEY,
    executor_context,
    is_user_message,
    message_text,
    route_input_from_state,
)
from langgraph_hera.routing.nodes import clip_text
from langgraph_hera.routing.routed import model_name_of
from langgraph_hera.routing.router import (
    RUN_STARTS,
    RunStart,
    begin_run,
    budget_block,
    current_context,
)
from langgraph_hera.secrets import error_text
from langgraph_hera.state import (
    SUPERVISION_RUN_FIELDS,
    Decision,
    LedgerEntry,
    SupervisorDecision,
    Target,
)
from langgraph_hera.supervision.prompts import (
    advise_prompt,
    parse_verdict,
    plan_prompt,
    replan_prompt,
    verify_prompt,
)
from langgraph_hera.tracing import trace_decision

#: How a supervisor works: ``"pevr"`` (Plan-Execute-Verify-Replan: plans first, verifies
#: against the plan, replans off track) or ``"eva"`` (Execute-Verify-Advise: verifies against
#: the query, hands over a summary and advice off track).
SupervisionMode = Literal["pevr", "eva"]
MODES: tuple[SupervisionMode, ...] = ("pevr", "eva")
SIDES = ("edge", "cloud")


def transcript(state: dict[str, Any], since: int = 0, *, max_chars: int = 3000) -> str:
    """The executor's steps from step ``since`` on, as the supervisor reads them.

    Text-action agents: ``> action`` lines with the observation that followed. Tool-calling
    agents: the executor's messages since its last context reset. The oldest lines are dropped
    beyond ``max_chars``.
    """
    if "valid_actions" in state:
        records = [r for r in state.get("trajectory") or [] if int(r["step"]) >= since]
        lines = [f"> {r['action']}\n{clip_text(r['next_observation'], 300)}" for r in records]
    else:
        lines = []
        for m in executor_context(list(state.get("messages") or [])):
            role = {"human": "user", "ai": "executor", "tool": "tool"}.get(m.type, m.type)
            lines.append(f"{role}: {clip_text(message_text(m), 400)}")
    if not lines:
        return "(no steps yet)"
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        if used + len(line) > max_chars and out:
            out.append("...")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(reversed(out))


def _situation(state: dict[str, Any]) -> str:
    if "valid_actions" not in state:
        return ""
    valid = state.get("valid_actions") or []
    return (
        f"Current observation: {clip_text(state.get('observation', ''), 600)}\n"
        f"Valid actions now: {' | '.join(valid)}"
    )


def _query(state: dict[str, Any]) -> str:
    if state.get("query"):
        return str(state["query"])
    if state.get("task"):
        return str(state["task"])
    # The latest user request: the one this run serves (earlier turns had their own).
    latest = next((m for m in reversed(state.get("messages") or []) if is_user_message(m)), None)
    return message_text(latest) if latest is not None else ""


def _context_tokens(state: dict[str, Any]) -> int:
    """Prompt tokens of the executor's last call (its context before this supervisor step)."""
    for entry in reversed(state.get("ledger") or []):
        if entry["target"] != "supervisor":
            return int(entry["input_tokens"])
    return 0


def _handoff_message(state: dict[str, Any], label: str, text: str) -> HumanMessage:
    query = _query(state)
    if "valid_actions" in state:
        return HumanMessage(
            f"Task: {query}\n{label}:\n{text.strip()}\n"
            f"Observation: {clip_text(state.get('observation', ''), 1200)}",
            additional_kwargs={HANDOFF_KEY: True},
        )
    return HumanMessage(
        f"{query}\n\n{label}:\n{text.strip()}", additional_kwargs={HANDOFF_KEY: True}
    )


class _Supervisor:
    def __init__(
        self,
        model: Any,
        mode: str,
        verify_every: int | None,
        summarize: bool,
        trigger: RoutingPolicy | None,
        side: str,
        executor_target: Target,
        pricing: Pricing | None,
        edge_params: float,
        run_start: RunStart = "user-message",
    ) -> None:
        self.run_start = run_start
        self.model = model
        self.mode = mode
        self.verify_every = verify_every
        self.summarize = summarize
        self.trigger = trigger
        self.side = side
        self.executor_target = executor_target
        self.pricing = pricing
        self.edge_params = edge_params

    # -- one model call ----------------------------------------------------------------------

    def _call(
        self,
        messages: list[BaseMessage],
        step: int,
        config: RunnableConfig,
        ledger: list[LedgerEntry],
        notes: list[str],
        turn: str | None = None,
    ) -> tuple[str | None, LedgerEntry | None, str | None]:
        """One supervisor call: (reply text, ledger entry, error); a cloud supervisor's retried
        attempts are appended to ``notes``. A cloud supervisor is not called past a budget cap
        (no entry; the error says which cap)."""
        if self.side == "cloud":
            blocked = budget_block(ledger, current_context(), turn=turn)
            if blocked:
                return None, None, f"not called: {blocked}"
        t0 = time.perf_counter()
        policy = cloud_retry_policy(current_context()) if self.side == "cloud" else NO_RETRY
        note = retry_note(step, "supervisor", notes)

        def entry(reply: Any, error: str | None = None) -> LedgerEntry:
            out = entry_from_message(
                reply,
                step=step,
                target="supervisor",
                latency_ms=(time.perf_counter() - t0) * 1e3,
                pricing=self.pricing,
                model=model_name_of(self.model),
                edge_params=self.edge_params,
                error=error,
                side=self.side,
                prompt=messages,
            )
            if turn is not None:
                out["turn"] = turn
            return out

        try:
            reply = call_with_retries(lambda: self.model.invoke(messages, config), policy, note)
        except Exception as exc:  # an unreachable supervisor lets the executor go on
            error = error_text(exc)
            return None, entry(None, error), error
        return message_text(reply), entry(reply), None

    # -- the node ----------------------------------------------------------------------------

    def _reset(self, handoff: HumanMessage) -> list[BaseMessage]:
        """The messages update of a context reset. A chat thread keeps its messages (the user's
        conversation) and gains the marked handoff, from which the executor's view starts
        (`executor_context`); a text-action episode's messages are only the executor's context,
        so they are replaced by the handoff."""
        if self.run_start == "user-message":
            return [handoff]
        return [RemoveMessage(id=REMOVE_ALL_MESSAGES), handoff]

    def _due(self, state: dict[str, Any], step: int) -> str | None:
        """Why the supervisor verifies now (``None``: not now)."""
        last = int(state.get("last_verified_step", 0))
        if step <= last:
            return None
        if self.trigger is not None:
            decision = self.trigger.decide(route_input_from_state(state))
            if decision["target"] == "cloud":
                return f"{self.trigger.name}: {decision['reason']}"
        if self.verify_every is not None and step - last >= self.verify_every:
            return f"every {self.verify_every}"
        return None

    def _executor_decision(self, step: int) -> Decision:
        return Decision(
            step=step,
            target=self.executor_target,
            score=0.0,
            threshold=None,
            policy=f"supervised-{self.mode}",
            reason=f"executor step ({self.mode} executor)",
            latency_ms=0.0,
        )

    def __call__(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        update: dict[str, Any] = {}
        if self.run_start == "user-message":
            update = begin_run(state)
            if update:  # a new request: a new plan, a fresh executor context
                update.update(SUPERVISION_RUN_FIELDS)
            state = {**state, **update}
        step = int(state.get("step", 0))
        if not state.get("query"):
            update["query"] = _query(state)
            state = {**state, **update}
        log: SupervisorDecision | None = None
        if self.model is not None:  # None: the monolithic baseline, the executor alone
            log, more = self._supervise(state, step, config)
            update.update(more)
        if log is not None:
            if state.get("turn") is not None:
                log["turn"] = state["turn"]
            update["supervision_log"] = [log]
            trace_decision(log, config, kind="supervisor")
        decision = self._executor_decision(step)
        if state.get("turn") is not None:
            decision["turn"] = state["turn"]
        update["decision"] = decision
        update["route_log"] = [decision]
        return update

    def _supervise(
        self, state: dict[str, Any], step: int, config: RunnableConfig
    ) -> tuple[SupervisorDecision | None, dict[str, Any]]:
        """Plan (PEVR's first visit), or verify when due; retried calls go to ``errors``."""
        notes: list[str] = []
        if self.mode == "pevr" and step == 0 and state.get("plan") is None:
            log, update = self._plan(state, step, config, notes)
        else:
            trigger = self._due(state, step)
            if trigger is None:
                return None, {}
            log, update = self._verify(state, step, trigger, config, notes)
        if notes:
            update["errors"] = [*notes, *update.get("errors", [])]
        return log, update

    def _plan(
        self, state: dict[str, Any], step: int, config: RunnableConfig, notes: list[str]
    ) -> tuple[SupervisorDecision, dict[str, Any]]:
        t0 = time.perf_counter()
        ledger = list(state.get("ledger") or [])
        text, entry, error = self._call(
            plan_prompt(_query(state), _situation(state)),
            step,
            config,
            ledger,
            notes,
            state.get("turn"),
        )
        update: dict[str, Any] = {"ledger": [entry] if entry else [], "last_verified_step": step}
        reason = "initial plan"
        handoff = 0
        if error is not None or not (text or "").strip():
            reason = f"no plan ({_why(error)})" if error else "empty plan"
            update["errors"] = [f"step {step}: supervisor plan failed: {reason}"]
        else:
            assert text is not None
            msg = _handoff_message(state, "Plan", text)
            handoff = len(text)
            update.update(
                plan=text.strip(),
                handoff=text.strip(),
                messages=self._reset(msg),
            )
        return self._log(step, "plan", None, reason, True, "start", state, handoff, t0), update

    def _verify(
        self,
        state: dict[str, Any],
        step: int,
        trigger: str,
        config: RunnableConfig,
        notes: list[str],
    ) -> tuple[SupervisorDecision, dict[str, Any]]:
        t0 = time.perf_counter()
        since = int(state.get("last_verified_step", 0))
        recent = transcript(state, since)
        ledger = list(state.get("ledger") or [])
        text, entry, error = self._call(
            verify_prompt(self.mode, _query(state), recent, state.get("plan")),
            step,
            config,
            ledger,
            notes,
            state.get("turn"),
        )
        update: dict[str, Any] = {"ledger": [entry] if entry else [], "last_verified_step": step}
        if error is not None:
            on_track, reason, parsed = True, _why(error), False
        else:
            on_track, reason, parsed = parse_verdict(text)
        if not parsed:
            update["errors"] = [f"step {step}: verifier output counted as on track: {reason}"]
        if on_track:
            return (
                self._log(step, "verify", True, reason, parsed, trigger, state, 0, t0),
                update,
            )
        # Off track: intervene, and restart the executor from a compact handoff.
        if self.mode == "pevr":
            prompt = replan_prompt(
                _query(state), state.get("plan"), recent, reason, _situation(state)
            )
            action, label = "replan", "Revised plan"
        else:
            prompt = advise_prompt(
                _query(state),
                transcript(state, int(state.get("context_start", 0))),
                reason,
                summarize=self.summarize,
                situation=_situation(state),
            )
            action, label = "advise", "Summary and advice" if self.summarize else "Advice"
        text, entry2, error = self._call(
            prompt, step, config, ledger + update["ledger"], notes, state.get("turn")
        )
        if entry2 is not None:
            update["ledger"].append(entry2)
        if error is not None or not (text or "").strip():
            why = _why(error) if error else "empty reply"
            update["errors"] = [
                *update.get("errors", []),
                f"step {step}: {action} failed ({why}); the executor goes on unchanged",
            ]
            log = self._log(step, action, False, f"{reason}; {why}", parsed, trigger, state, 0, t0)
            return log, update
        assert text is not None
        update.update(
            handoff=text.strip(),
            context_start=step,
            messages=self._reset(_handoff_message(state, label, text)),
        )
        if self.mode == "pevr":
            update["plan"] = text.strip()
        log = self._log(step, action, False, reason, parsed, trigger, state, len(text), t0)
        return log, update

    def _log(
        self,
        step: int,
        action: str,
        on_track: bool | None,
        reason: str,
        parsed: bool,
        trigger: str,
        state: dict[str, Any],
        handoff_chars: int,
        t0: float,
    ) -> SupervisorDecision:
        return SupervisorDecision(
            step=step,
            mode=self.mode,
            action=action,
            on_track=on_track,
            reason=reason,
            parsed=parsed,
            trigger=trigger,
            context_tokens=_context_tokens(state),
            handoff_chars=handoff_chars,
            latency_ms=(time.perf_counter() - t0) * 1e3,
        )


def _why(error: str) -> str:
    return error if error.startswith("not called:") else f"supervisor unreachable: {error}"


def check_supervision_args(mode: str, verify_every: int | None, trigger: Any) -> None:
    """Validate the supervisor settings; raises ``ValueError`` naming the bad value."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if verify_every is None and trigger is None:
        raise ValueError("give verify_every (T_v >= 1), a trigger policy, or both")
    if verify_every is not None and (
        isinstance(verify_every, bool) or not isinstance(verify_every, int) or verify_every < 1
    ):
        raise ValueError(f"verify_every (T_v) must be an int >= 1 or None, got {verify_every!r}")


def create_supervisor_node(
    model: Any,
    *,
    mode: SupervisionMode = "pevr",
    verify_every: int | None = 4,
    summarize: bool = True,
    trigger: RoutingPolicy | str | None = None,
    side: str = "cloud",
    executor_target: Target = "edge",
    pricing: Pricing | None = None,
    edge_params: float = DEFAULT_EDGE_PARAMS,
    name: str = "supervisor",
    run_start: RunStart = "user-message",
) -> RunnableLambda:
    """The supervisor node of a PEVR / EVA agent; place it before every executor step.

    **PEVR** (Plan-Execute-Verify-Replan): at the first visit the supervisor writes a plan and
    the executor starts from it; every ``verify_every`` executor steps it checks the executor's
    recent steps against the plan; off track, it writes a revised plan for the remaining task.
    **EVA** (Execute-Verify-Advise): no plan; the check is against the user's request; off
    track, it writes a summary of the work so far (``summarize``) plus advice. Every
    intervention **resets the executor's context** to one compact handoff message (task, plan or
    advice, current observation), marked ``hera_handoff``. In a chat thread
    (``run_start="user-message"``) the thread keeps the user's conversation and the executor's
    view starts at the latest handoff of the run (`langgraph_hera.routing.features.
    executor_context`); in a text-action episode (``"external"``) the messages are the executor's
    context only and are replaced (``RemoveMessage(REMOVE_ALL_MESSAGES)``).

    Each supervisor call lands in the ledger (target ``"supervisor"``), each decision in
    ``supervision_log`` and in the trace (a ``supervisor_decision`` child run with ``hera_*``
    metadata). Unparsable verifier output counts as on track; an unreachable supervisor lets
    the executor continue; both are recorded in ``errors``.

    Args:
        model: The supervisor's chat model (the cloud model; the edge in the reverse-role
            check). ``None``: no supervision (the monolithic executor baseline); the node only
            records the executor's steps in the route log.
        mode: ``"pevr"`` or ``"eva"``.
        verify_every: The verification interval T_v in executor steps (``None`` with a trigger:
            only the trigger decides).
        summarize: EVA: include a summary of prior work in the handoff.
        trigger: Beyond the paper: a routing policy (or its registered name) that decides at
            each step whether to verify now ("cloud" = verify); combined with ``verify_every``
            as the longest interval when both are given.
        side: Where the supervisor runs (``"cloud"``: USD in the ledger; ``"edge"``: energy).
        executor_target: Where the executor runs (route-log target of executor steps).
        pricing: Cloud prices for the ledger.
        edge_params: Edge model size N (energy of an edge-side supervisor).
        name: Node name.
        run_start: What starts a new run of the thread: ``"user-message"`` (chat agents: a
            new human message gets a new plan and a fresh executor; the per-run fields of
            `langgraph_hera.state.SUPERVISION_RUN_FIELDS` start again) or ``"external"`` (the
            env node of text-action agents starts each episode).

    Raises:
        ValueError: Invalid ``mode``, ``verify_every``, ``side`` or ``run_start``.
    """
    pol = get_policy(trigger) if isinstance(trigger, str) else trigger
    if model is not None:
        check_supervision_args(mode, verify_every, pol)
    if side not in SIDES:
        raise ValueError(f"side must be one of {list(SIDES)}, got {side!r}")
    if run_start not in RUN_STARTS:
        raise ValueError(f"run_start must be one of {list(RUN_STARTS)}, got {run_start!r}")
    sup = _Supervisor(
        model,
        mode,
        verify_every,
        summarize,
        pol,
        side,
        executor_target,
        pricing,
        edge_params,
        run_start,
    )
    return RunnableLambda(sup, name=name)
