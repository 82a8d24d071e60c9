"""Graph state and run context for routed agents.

`HeraState` extends LangGraph's `MessagesState` with the fields every routed step writes: the
route log (one `Decision` per step), the cost ledger (one `LedgerEntry` per model call) and, for
text-action environments, the task / observation / valid actions of the current step.

Run settings (budgets, the environment of a text-action episode) travel in `HeraContext`, passed
as ``graph.invoke(..., context=HeraContext(...))`` or as a plain dict with the same keys.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from langgraph.graph import MessagesState
from typing_extensions import TypedDict

if TYPE_CHECKING:
    from langgraph_hera.envs.base import TextEnv

#: Where a step runs.
Target = Literal["edge", "cloud"]
TARGETS: tuple[Target, ...] = ("edge", "cloud")


class Decision(TypedDict):
    """One routing decision, as stored in the route log and written to run metadata.

    Attributes:
        step: Index of the agent step this decision is for (0-based).
        target: ``"edge"`` or ``"cloud"``.
        score: The policy's score (higher means "more likely to need the cloud").
        threshold: The threshold the score was compared against (``None`` if not thresholded).
        policy: Registered name of the policy that decided.
        reason: Why: the policy's rule, or an override (budget cap, edge failure).
        latency_ms: Time the decision took, featurisation included.
    """

    step: int
    target: Target
    score: float
    threshold: float | None
    policy: str
    reason: str
    latency_ms: float


class LedgerEntry(TypedDict):
    """One model call's cost, as stored in the ledger.

    Attributes:
        step: Agent step index.
        target: ``"edge"``, ``"cloud"`` or ``"supervisor"``.
        model: Model name as reported by the model (or configured).
        input_tokens: Prompt tokens, cached ones included.
        cached_tokens: Prompt tokens served from the provider's cache.
        output_tokens: Generated tokens.
        usd: Cost at list prices (0 for the edge).
        energy_j: Estimated edge energy, E = 2N(n_p + n_d) / eta (0 for the cloud).
        latency_ms: Wall time of the call.
        ok: False when the call failed (then ``error`` says why).
        error: Error message of a failed call.
        cache_hit: True when the reply came from the proposal cache (no energy spent).
    """

    step: int
    target: str
    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    usd: float
    energy_j: float
    latency_ms: float
    ok: bool
    error: NotRequired[str]
    cache_hit: NotRequired[bool]


class SupervisorDecision(TypedDict):
    """One supervisor call (PEVR / EVA), as stored in ``supervision_log`` and traced.

    Attributes:
        step: Executor steps taken when the supervisor ran.
        mode: ``"pevr"`` or ``"eva"``.
        action: ``"plan"`` (PEVR's initial plan), ``"verify"`` (on track: continue),
            ``"replan"`` (PEVR, off track) or ``"advise"`` (EVA, off track).
        on_track: The verdict (``None`` for the initial plan).
        reason: The verifier's reason, or why the verdict defaulted (unparsable, unreachable).
        parsed: False when the verifier's output could not be parsed (then on track).
        trigger: What made the supervisor run: ``"start"``, ``"every <T_v>"`` or the trigger
            policy's name.
        context_tokens: The executor's context (prompt tokens of its last call) before the call;
            after an intervention the executor starts again from the compact handoff.
        handoff_chars: Length of the handoff text given to the executor (0 when none).
        latency_ms: Wall time of the supervisor's model calls.
    """

    step: int
    mode: str
    action: str
    on_track: bool | None
    reason: str
    parsed: bool
    trigger: str
    context_tokens: int
    handoff_chars: int
    latency_ms: float


class HeraState(MessagesState):
    """State of a routed agent: messages plus routing, cost and environment fields.

    ``route_log`` and ``ledger`` accumulate (list concatenation); every other field is
    overwritten by the node that writes it.
    """

    route_log: Annotated[list[Decision], operator.add]
    ledger: Annotated[list[LedgerEntry], operator.add]
    step: NotRequired[int]
    """Number of model steps taken so far."""
    decision: NotRequired[Decision | None]
    """The decision for the step about to run."""
    # Text-action environments.
    suite: NotRequired[str]
    seed: NotRequired[int]
    trajectory: Annotated[list[dict[str, Any]], operator.add]
    """One record per executed step (see `langgraph_hera.routing.env_node.TRAJECTORY_FIELDS`)."""
    task: NotRequired[str]
    observation: NotRequired[str]
    valid_actions: NotRequired[list[str]]
    last_action: NotRequired[str]
    action: NotRequired[str]
    """The action chosen by the model node of this step (text-action agents)."""
    edge_proposal: NotRequired[dict[str, Any] | None]
    """Edge-first routing: the edge's proposed action for ``step`` (step, action, valid,
    logprob), seen by the policy before it decides."""
    action_valid: NotRequired[bool]
    action_logprob: NotRequired[float | None]
    """Log-probability of the action, when the (edge) server returned token logprobs."""
    action_repeats: NotRequired[int]
    """How often the last executed action was executed before in this episode."""
    observation_repeats: NotRequired[int]
    """How often the current observation was seen before in this episode."""
    edge_failed_step: NotRequired[int | None]
    """The step at which the edge call failed (the router then sends that step to the cloud)."""
    edge_error: NotRequired[str]
    halt: NotRequired[str | None]
    """Set when the run must stop early (e.g. the cloud failed and the edge is down); the reason."""
    done: NotRequired[bool]
    success: NotRequired[bool]
    score: NotRequired[float]
    errors: Annotated[list[str], operator.add]
    """Recorded, non-fatal errors (edge failures, unparsable outputs, env faults)."""
    # Supervised agents (PEVR / EVA).
    query: NotRequired[str]
    """The user's request as the supervisor saw it first (kept across context resets)."""
    plan: NotRequired[str | None]
    """PEVR: the supervisor's current plan."""
    handoff: NotRequired[str | None]
    """The compact text the executor restarted from at the last intervention."""
    supervision_log: Annotated[list[SupervisorDecision], operator.add]
    last_verified_step: NotRequired[int]
    """Executor step count at the supervisor's last verification (or the initial plan)."""
    context_start: NotRequired[int]
    """Executor step count at the last context reset (0: never reset)."""
    expert_distance: NotRequired[int | None]
    """Length of the expert's plan from the current state (ground truth of progress, recorded
    only when the env node tracks progress)."""


@dataclass
class HeraContext:
    """Run settings for a routed graph (LangGraph ``context_schema``).

    Attributes:
        cloud_budget_usd: Hard cap on cloud spend per run; the router never sends a step to
            the cloud once the ledger has reached it. ``None`` means no cap.
        max_cloud_calls: Hard cap on the number of cloud calls per run (supervisor calls
            included).
        cloud_call_usd_estimate: Upper bound of one cloud call's cost, used to keep the spend
            under ``cloud_budget_usd`` (default: the most expensive cloud call so far).
        cloud_retry: How failed cloud calls are retried (`RetryPolicy`; default 4 attempts,
            exponential backoff with jitter, Retry-After honoured).
        max_steps: Stop a text-action episode after this many steps.
        env: The text environment of a text-action episode (in-process runs only).
    """

    cloud_budget_usd: float | None = None
    max_cloud_calls: int | None = None
    cloud_call_usd_estimate: float | None = None
    cloud_retry: Any = None
    max_steps: int = 50
    env: TextEnv | None = None

    def __post_init__(self) -> None:
        if self.cloud_budget_usd is not None and self.cloud_budget_usd < 0:
            raise ValueError(
                f"cloud_budget_usd must be >= 0 or None, got {self.cloud_budget_usd!r}"
            )
        if self.max_cloud_calls is not None and self.max_cloud_calls < 0:
            raise ValueError(f"max_cloud_calls must be >= 0 or None, got {self.max_cloud_calls!r}")
        if self.cloud_call_usd_estimate is not None and self.cloud_call_usd_estimate < 0:
            raise ValueError(
                "cloud_call_usd_estimate must be >= 0 or None, got "
                f"{self.cloud_call_usd_estimate!r}"
            )
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")


def context_value(context: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a run context that may be a `HeraContext`, a dict or ``None``."""
    if context is None:
        return default
    if isinstance(context, dict):
        return context.get(key, default)
    return getattr(context, key, default)
