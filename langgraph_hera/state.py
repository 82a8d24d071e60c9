"""Records, graph state and run context for routed agents: the bottom layer of the package.

The state schemas are split by kind of agent: `RoutingState` (messages + the fields every routed
step writes: the route log, one `Decision` per step, and the cost ledger, one `LedgerEntry` per
model call), `TextEnvState` (the task / observation / valid actions of a text-action episode)
and `SupervisionState` (PEVR / EVA). `HeraState` is all three together (the old name).

**Run vs thread.** A *run* is one turn of a thread: it starts when a new user message enters
the thread (or a new episode, for text-action agents) and ends when the agent answers, halts or
runs out of steps. Fields marked *per run* below are reset when the next run starts, so a halt,
a failed edge step or a step counter never leaks into the next turn; fields marked *per thread*
accumulate over every run of the thread (each record names its run in ``turn``). Nothing about
a run or a thread lives in process memory: it is all in this state, in the checkpoints.

Run settings (budgets and their scope, the environment of a text-action episode) travel in
`HeraContext`, passed as ``graph.invoke(..., context=HeraContext(...))`` or as a plain dict.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from langgraph.graph import MessagesState
from typing_extensions import TypedDict

from langgraph_hera.envs.base import ScoreKind

if TYPE_CHECKING:
    from langgraph_hera.envs.base import TextEnv

#: Where a step runs.
Target = Literal["edge", "cloud"]
TARGETS: tuple[Target, ...] = ("edge", "cloud")
#: What a budget cap counts: the current run (turn) only, or every run of the thread.
BudgetScope = Literal["run", "thread"]
BUDGET_SCOPES: tuple[BudgetScope, ...] = ("run", "thread")


@dataclass
class RouteInput:
    """Everything a policy may look at for one step (cheap to build).

    Attributes:
        task: The task: the latest user request (chat agents) or the episode's task.
        step: Index of the step about to run within the current run (0-based).
        observation: The last observation (environment text or last tool/user message).
        last_action: The previous action or AI message text of this run.
        history: Targets of the previous steps of this run, oldest first.
        valid_actions: Valid actions (text-action environments); empty otherwise.
        edge_action: The edge model's proposed action, when the edge ran first.
        edge_logprob: Log-probability of that proposal, when the server returned one.
        edge_margin: How far the proposal was ahead of the edge's runner-up answer, in nats
            (`langgraph_hera.routing.decoding.reply_margin`), when the server returned
            alternatives.
        extra: Anything else a custom policy needs.
    """

    task: str = ""
    step: int = 0
    observation: str = ""
    last_action: str = ""
    history: list[str] = field(default_factory=list)
    valid_actions: list[str] = field(default_factory=list)
    edge_action: str | None = None
    edge_logprob: float | None = None
    edge_margin: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
        turn: The run (turn) the decision belongs to (see the module docstring).
    """

    step: int
    target: Target
    score: float
    threshold: float | None
    policy: str
    reason: str
    latency_ms: float
    turn: NotRequired[str]


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
        usage_estimated: True when the reply reported no token usage and the tokens were
            counted locally (tiktoken); the USD is then an estimate too.
        price_source: How the USD price was found: ``"configured"`` (the configured model
            name), ``"reported"`` (the name in the reply) or ``"default"`` (neither is listed:
            the default price, with a warning logged).
        turn: The run (turn) the call belongs to.
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
    usage_estimated: NotRequired[bool]
    price_source: NotRequired[str]
    turn: NotRequired[str]


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
        turn: The run (turn) the supervisor call belongs to.
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
    turn: NotRequired[str]


class RoutingState(MessagesState):
    """State of a routed tool-calling agent: messages plus the routing and cost records.

    Per thread (accumulate over every run): ``messages``, ``route_log``, ``ledger``,
    ``errors``. Per run (reset when the next run starts): ``turn`` names the run, ``step``,
    ``decision``, ``edge_failed_step``, ``edge_error``, ``halt``.
    """

    route_log: Annotated[list[Decision], operator.add]
    ledger: Annotated[list[LedgerEntry], operator.add]
    errors: Annotated[list[str], operator.add]
    """Recorded, non-fatal errors (edge failures, unusable replies, env faults)."""
    turn: NotRequired[str]
    """Per run: the id of the run in progress (the id of the user message that started it, or
    the episode's)."""
    step: NotRequired[int]
    """Per run: number of model steps taken in this run."""
    decision: NotRequired[Decision | None]
    """Per run: the decision for the step about to run."""
    edge_failed_step: NotRequired[int | None]
    """Per run: the step at which the edge call failed (the router then sends it to the cloud)."""
    edge_error: NotRequired[str]
    halt: NotRequired[str | None]
    """Per run: set when the run must stop early (e.g. the cloud failed and the edge is down, or
    a cap is reached and the edge cannot serve); the reason. The next run starts clear."""


class TextEnvState(RoutingState, MessagesState, TypedDict):
    """State of a text-action episode (one episode is one run; every field is per run except
    the accumulating ``trajectory``, which is per thread and names its run in ``turn``)."""

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
    action_margin: NotRequired[float | None]
    """How far the action was ahead of the model's runner-up answer, in nats (`reply_margin`),
    when the server returned top logprobs."""
    action_repeats: NotRequired[int]
    """How often the last executed action was executed before in this episode."""
    observation_repeats: NotRequired[int]
    """How often the current observation was seen before in this episode."""
    done: NotRequired[bool]
    success: NotRequired[bool]
    score: NotRequired[float]
    score_kind: NotRequired[ScoreKind]
    """What ``score`` means, from the environment at reset (``"progress"`` when absent): the
    ``"episode"`` prompt layout shows a ``"success"`` score (won or not) without per-step
    changes."""
    expert_distance: NotRequired[int | None]
    """Length of the expert's plan from the current state (ground truth of progress, recorded
    only when the env node tracks progress)."""


class SupervisionFields(TypedDict):
    """The fields a supervisor adds to a state (see `SupervisionState`)."""

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


class SupervisionState(RoutingState, SupervisionFields, MessagesState, TypedDict):
    """State of a supervised agent (PEVR / EVA). ``supervision_log`` is per thread; the plan,
    handoff and verification counters are per run (a new request gets a new plan)."""


# Every ancestor listed, TypedDict last: pdoc (Python 3.11) reads a TypedDict's bases from
# ``__orig_bases__`` only, so inherited fields need their class named here to be documented.
class HeraState(TextEnvState, SupervisionFields, RoutingState, MessagesState, TypedDict):
    """Every field of `RoutingState`, `TextEnvState` and `SupervisionState` (one schema for all
    prebuilt graphs; your own graph may use the narrowest one that fits)."""


#: Per-run fields of `RoutingState`, with the value each run starts from.
RUN_FIELDS: dict[str, Any] = {
    "step": 0,
    "decision": None,
    "edge_failed_step": None,
    "edge_error": "",
    "halt": None,
}
#: Per-run fields of `SupervisionState` (a new request gets a new plan and a fresh executor).
SUPERVISION_RUN_FIELDS: dict[str, Any] = {
    "query": "",
    "plan": None,
    "handoff": None,
    "last_verified_step": 0,
    "context_start": 0,
}


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
        budget_scope: What the caps count: ``"run"`` (default: the current run, i.e. turn, of
            the thread) or ``"thread"`` (every run of the thread so far).
        cloud_retry: How failed cloud calls are retried (`RetryPolicy`; default 4 attempts,
            exponential backoff with jitter, Retry-After honoured).
        max_steps: Stop a text-action episode after this many steps.
        env: The text environment of a text-action episode (in-process runs only).
    """

    cloud_budget_usd: float | None = None
    max_cloud_calls: int | None = None
    cloud_call_usd_estimate: float | None = None
    budget_scope: BudgetScope = "run"
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
        if self.budget_scope not in BUDGET_SCOPES:
            raise ValueError(
                f"budget_scope must be one of {list(BUDGET_SCOPES)}, got {self.budget_scope!r}"
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
