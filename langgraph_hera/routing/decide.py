"""The one routing decision path: score, then the hard overrides, then the budget reservation.

Every integration decides a step here: the router node (`create_router_node`), `RoutedChatModel`
and `HeraRoutingMiddleware`. What they differ in is only where the inputs come from (graph
state, the messages of a call, the agent's state) and where the decision is written.

The rule, in order (`decide_step`):

1. the policy scores the step (a policy error sends it to the cloud, recorded);
2. an edge that failed at this step, or reports unhealthy, sends it to the cloud;
3. a cloud step that would cross a cap (`Caps`) goes to the edge instead; when the edge is down
   too, the run halts with the reason (`CloudBudgetExceeded` carries the counts).

Caps count the current run (turn) or the whole thread (`Caps.scope`), from the ledger entries
the caller passes (graph state or the conversation's own messages: never process memory). Callers
that may run concurrently on one scope reserve the cloud call before making it
(`CloudReservations`), so concurrent calls cannot overshoot a cap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import (
    BUDGET_SCOPES,
    BudgetScope,
    Decision,
    RouteInput,
    Target,
    context_value,
)

logger = get_logger(__name__)

_CLOUD_SIDES = ("cloud", "supervisor")


def current_context() -> Any:
    """The run's `HeraContext` (or dict) when called inside a graph node, else ``None``."""
    try:
        from langgraph.runtime import get_runtime

        return get_runtime().context
    except Exception:  # outside a graph run: no runtime
        return None


@dataclass(frozen=True)
class Caps:
    """Hard caps on cloud use, and what they count.

    Attributes:
        cloud_budget_usd: Most cloud USD (``None``: no cap).
        max_cloud_calls: Most cloud calls, supervisor calls included (``None``: no cap).
        cloud_call_usd_estimate: Upper bound of one cloud call's USD, used to stop before a
            call would cross ``cloud_budget_usd`` (default: the dearest of the prompt-based
            estimate the caller gives and the cloud calls so far).
        scope: ``"run"``: count the current run (turn) only; ``"thread"``: every run of the
            thread.

    Raises:
        ValueError: A negative cap or an unknown scope (the message shows the value).
    """

    cloud_budget_usd: float | None = None
    max_cloud_calls: int | None = None
    cloud_call_usd_estimate: float | None = None
    scope: BudgetScope = "run"

    def __post_init__(self) -> None:
        for name in ("cloud_budget_usd", "max_cloud_calls", "cloud_call_usd_estimate"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a number >= 0 or None, got {value!r}")
        if self.scope not in BUDGET_SCOPES:
            raise ValueError(f"scope must be one of {list(BUDGET_SCOPES)}, got {self.scope!r}")

    @classmethod
    def from_context(cls, context: Any, **defaults: Any) -> Caps:
        """Caps from a run context (`HeraContext`, a dict or ``None``); ``defaults`` fill the
        keys the context leaves unset."""
        values = {
            key: context_value(context, key, None)
            for key in ("cloud_budget_usd", "max_cloud_calls", "cloud_call_usd_estimate")
        }
        values = {k: v if v is not None else defaults.get(k) for k, v in values.items()}
        scope = context_value(context, "budget_scope", None) or defaults.get("scope", "run")
        return cls(**values, scope=scope)

    @property
    def unlimited(self) -> bool:
        """True when no cap is set."""
        return self.cloud_budget_usd is None and self.max_cloud_calls is None


class CloudBudgetExceeded(RuntimeError):
    """A cloud call was needed but would cross a cap, and the edge could not serve instead.

    Attributes:
        reason: The cap and the counts, in words.
        spent_usd: Cloud USD spent in the cap's scope.
        cloud_budget_usd: The USD cap (``None``: none).
        cloud_calls: Cloud calls made in the cap's scope.
        max_cloud_calls: The call cap (``None``: none).
        scope: ``"run"`` or ``"thread"``.
    """

    def __init__(
        self,
        reason: str,
        *,
        spent_usd: float,
        cloud_budget_usd: float | None,
        cloud_calls: int,
        max_cloud_calls: int | None,
        scope: BudgetScope,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.spent_usd = spent_usd
        self.cloud_budget_usd = cloud_budget_usd
        self.cloud_calls = cloud_calls
        self.max_cloud_calls = max_cloud_calls
        self.scope = scope


@dataclass(frozen=True)
class CloudSpend:
    """Cloud use in one scope: USD, calls and the dearest single call."""

    usd: float = 0.0
    calls: int = 0
    max_call_usd: float = 0.0


def cloud_spend(
    entries: Iterable[Mapping[str, Any]], *, scope: BudgetScope = "thread", turn: str | None = None
) -> CloudSpend:
    """Sum the cloud side of ledger entries (supervisor calls on the cloud included).

    With ``scope="run"`` only entries whose ``turn`` equals ``turn`` count (entries without a
    ``turn`` belong to no run and count only for the thread).
    """
    usd, calls, dearest = 0.0, 0, 0.0
    for entry in entries:
        if entry.get("target") not in _CLOUD_SIDES or entry.get("side") == "edge":
            continue
        if scope == "run" and entry.get("turn") != turn:
            continue
        cost = float(entry.get("usd", 0.0) or 0.0)
        usd += cost
        calls += 1
        dearest = max(dearest, cost)
    return CloudSpend(usd, calls, dearest)


def budget_block(
    entries: Iterable[Mapping[str, Any]],
    caps: Caps | Any,
    *,
    turn: str | None = None,
    next_call_usd: float | None = None,
    reserved: CloudSpend | None = None,
) -> CloudBudgetExceeded | None:
    """Why one more cloud call may not be made now, or ``None``.

    The USD cap blocks a call once the spend (plus in-flight ``reserved`` calls) has reached the
    cap, or when it plus the estimate of one more call would cross it. The estimate is
    ``caps.cloud_call_usd_estimate`` when set, else the dearest of ``next_call_usd`` (the
    caller's prompt-based estimate) and the cloud calls so far. So the spend never exceeds the
    cap as long as no call costs more than its estimate.

    Args:
        entries: Ledger entries (`LedgerEntry`) of the thread.
        caps: `Caps`, or a run context to read them from (`HeraContext`, a dict).
        turn: The current run's id (for ``scope="run"``).
        next_call_usd: Estimated USD of the call about to be made.
        reserved: Cloud calls reserved in flight (not yet in ``entries``).

    Returns:
        A `CloudBudgetExceeded` describing the blocking cap, or ``None`` when the call may go.
    """
    caps = caps if isinstance(caps, Caps) else Caps.from_context(caps)
    if caps.unlimited:
        return None
    spend = cloud_spend(entries, scope=caps.scope, turn=turn)
    extra = reserved or CloudSpend()
    spent, calls = spend.usd + extra.usd, spend.calls + extra.calls
    reason = None
    if caps.cloud_budget_usd is not None:
        estimate = caps.cloud_call_usd_estimate
        if estimate is None:
            estimate = max(spend.max_call_usd, extra.max_call_usd, next_call_usd or 0.0)
        if spent >= caps.cloud_budget_usd or spent + estimate > caps.cloud_budget_usd:
            reason = (
                f"cloud budget reached ({caps.scope}): spent {spent:.6f} of "
                f"{caps.cloud_budget_usd} USD (next call estimated at {estimate:.6f})"
            )
    if reason is None and caps.max_cloud_calls is not None and calls >= caps.max_cloud_calls:
        reason = f"cloud call cap reached ({caps.scope}): {calls} of {caps.max_cloud_calls} calls"
    if reason is None:
        return None
    return CloudBudgetExceeded(
        reason,
        spent_usd=spent,
        cloud_budget_usd=caps.cloud_budget_usd,
        cloud_calls=calls,
        max_cloud_calls=caps.max_cloud_calls,
        scope=caps.scope,
    )


@dataclass
class _Reservation:
    key: str
    usd: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class CloudReservations:
    """In-flight cloud calls, reserved before they are made so concurrent callers on one scope
    (one thread, one run) cannot overshoot a cap between "check" and "record".

    Holds only calls in flight: a reservation is released when its call ends (recorded in the
    caller's ledger by then), so nothing accumulates in process memory. Across processes the
    ledger in the thread's state is the record (LangGraph Server runs one run per thread at a
    time).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, list[_Reservation]] = {}

    def in_flight(self, key: str) -> CloudSpend:
        """The calls reserved on ``key`` now."""
        with self._lock:
            items = list(self._inflight.get(key, ()))
        return CloudSpend(
            sum(r.usd for r in items), len(items), max((r.usd for r in items), default=0.0)
        )

    def try_reserve(
        self,
        key: str,
        entries: Iterable[Mapping[str, Any]],
        caps: Caps,
        *,
        turn: str | None,
        next_call_usd: float | None,
    ) -> tuple[_Reservation | None, CloudBudgetExceeded | None]:
        """Atomically check the caps (ledger + in-flight calls) and reserve one cloud call.

        Returns:
            ``(reservation, None)`` when the call may go (release it when the call ends), or
            ``(None, blocked)``.
        """
        entries = list(entries)
        with self._lock:
            items = self._inflight.get(key, [])
            reserved = CloudSpend(
                sum(r.usd for r in items), len(items), max((r.usd for r in items), default=0.0)
            )
            blocked = budget_block(
                entries, caps, turn=turn, next_call_usd=next_call_usd, reserved=reserved
            )
            if blocked is not None:
                return None, blocked
            estimate = caps.cloud_call_usd_estimate
            if estimate is None:
                spend = cloud_spend(entries, scope=caps.scope, turn=turn)
                estimate = max(spend.max_call_usd, next_call_usd or 0.0)
            reservation = _Reservation(key, float(estimate))
            self._inflight.setdefault(key, []).append(reservation)
            return reservation, None

    def release(self, reservation: _Reservation | None) -> None:
        """End a reservation (idempotent)."""
        if reservation is None:
            return
        with self._lock:
            items = self._inflight.get(reservation.key, [])
            self._inflight[reservation.key] = [r for r in items if r.token != reservation.token]
            if not self._inflight[reservation.key]:
                del self._inflight[reservation.key]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._inflight.values())


@dataclass
class StepOutcome:
    """What `decide_step` returns.

    Attributes:
        decision: The final decision (after the overrides).
        errors: Errors to record (a policy that failed).
        halt: Why the run must stop now (``None``: go on).
        blocked: The cap that changed or stopped the step, when one did.
        reservation: The cloud call reserved for this step (release it when the call ends).
    """

    decision: Decision
    errors: list[str] = field(default_factory=list)
    halt: str | None = None
    blocked: CloudBudgetExceeded | None = None
    reservation: Any = None


def override(decision: Decision, target: Target, reason: str) -> Decision:
    """A copy of ``decision`` sent to ``target``, the reason saying what the policy said."""
    new = Decision(**decision)  # type: ignore[typeddict-item]
    new["target"] = target
    new["reason"] = f"{reason} (policy said {decision['target']}: {decision['reason']})"
    return new


def decide_step(
    policy: Any,
    route_input: RouteInput,
    *,
    entries: Iterable[Mapping[str, Any]] = (),
    caps: Caps | None = None,
    turn: str | None = None,
    edge_down: str | None = None,
    next_call_usd: float | None = None,
    reservations: CloudReservations | None = None,
    scope_key: str | None = None,
) -> StepOutcome:
    """Decide one step: the policy's choice, then the overrides (module docstring).

    Args:
        policy: The `RoutingPolicy`.
        route_input: What the policy sees.
        entries: The ledger entries the caps count (graph state, or a conversation's).
        caps: The caps (default: none).
        turn: The current run's id (caps with ``scope="run"`` count only its entries).
        edge_down: Why the edge cannot serve this step (``None``: it can).
        next_call_usd: Estimated USD of a cloud call for this step (for the USD cap).
        reservations: Reserve the cloud call here (concurrent callers); ``scope_key`` names
            the scope (e.g. the thread id).
        scope_key: Key of the scope in ``reservations``.

    Returns:
        A `StepOutcome`; ``decision["turn"]`` is set when ``turn`` is given.
    """
    start = time.perf_counter()
    caps = caps or Caps()
    errors: list[str] = []
    try:
        decision = policy.decide(route_input)
    except Exception as exc:  # a broken policy must not crash the agent
        msg = f"step {route_input.step}: policy {policy.name!r} failed: {error_text(exc)}"
        errors.append(msg)
        logger.warning(msg)
        decision = Decision(
            step=route_input.step,
            target="cloud",
            score=float("nan"),
            threshold=None,
            policy=policy.name,
            reason=f"policy error ({type(exc).__name__}); cloud as the safe choice",
            latency_ms=0.0,
        )
    if decision["target"] == "edge" and edge_down:
        decision = override(decision, "cloud", edge_down)
    outcome = StepOutcome(decision, errors)
    if decision["target"] == "cloud":
        if reservations is not None and scope_key is not None:
            outcome.reservation, blocked = reservations.try_reserve(
                scope_key, entries, caps, turn=turn, next_call_usd=next_call_usd
            )
        else:
            blocked = budget_block(entries, caps, turn=turn, next_call_usd=next_call_usd)
        if blocked is not None:
            outcome.blocked = blocked
            if edge_down:
                outcome.halt = f"{blocked.reason}; and {edge_down}"
            else:
                outcome.decision = override(decision, "edge", blocked.reason)
    if turn is not None:
        outcome.decision["turn"] = turn
    outcome.decision["latency_ms"] = (time.perf_counter() - start) * 1e3
    return outcome
